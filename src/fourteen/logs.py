"""Structured logging: one event per line as ``key=value`` pairs, always with the call id when there is one.

Call code logs ``log.info("stage", extra={"fields": {...}})`` or uses :func:`event`; the call id comes from a
context variable that the call flow sets once per call, so every line of a call can be grepped together.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

call_id: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@+")


def _fmt(value: Any) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if s and all(c in _PLAIN for c in s):
        return s
    return json.dumps(s, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [
            f"ts={ts}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"call={_fmt(call_id.get())}",
            f"event={_fmt(record.getMessage())}",
        ]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts.extend(f"{k}={_fmt(v)}" for k, v in fields.items())
        if record.exc_info:
            parts.append(f"exc={_fmt(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, name, extra={"fields": fields})


class RecentEvents(logging.Handler):
    """Keeps the last warnings and errors in memory for the operator status page."""

    def __init__(self, size: int = 50, level: int = logging.WARNING) -> None:
        super().__init__(level)
        from collections import deque

        self.events: deque[dict[str, Any]] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        self.events.append(
            {
                "ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created)),
                "level": record.levelname.lower(),
                "event": record.getMessage(),
                "call": call_id.get(),
                "fields": fields if isinstance(fields, dict) else {},
            }
        )
