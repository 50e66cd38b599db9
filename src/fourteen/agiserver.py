"""The FastAGI server: accepts Asterisk's connections and runs one handler task per call.

Handlers are registered by AGI script name (``agi://router:4573/route`` → ``route``), as in Wazo's agid.
A handler's failure ends that call's AGI session only: the dialplan then finds ``FOURTEEN_DONE`` unset and
takes the call to its fallback destination, and every other call carries on. Malformed sessions (garbage,
huge lines, a peer that disconnects early) are closed after bounded reads and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

from . import logs
from .agi import MAX_LINE, AgiError, AgiProtocolError, AgiSession, Hangup, read_environment
from .logs import event

log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]


class AgiServer:
    def __init__(
        self, host: str, port: int, backlog: int = 1024, on_protocol_error: Callable[[], object] | None = None
    ) -> None:
        self.host = host
        self.on_protocol_error = on_protocol_error
        self.port = port
        self.backlog = backlog
        self.handlers: dict[str, Handler] = {}
        self.active: set[asyncio.Task[None]] = set()
        self.sessions_total = 0
        self.protocol_errors = 0
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)

    def route(self, script: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@server.route("route")`` registers the handler for ``agi://…/route``."""

        def register(fn: Handler) -> Handler:
            self.handlers[script] = fn
            return fn

        return register

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, backlog=self.backlog, limit=MAX_LINE
        )
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        event(log, "agi_listening", host=self.host, port=self.port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; give calls in progress ``grace`` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.active:
            _, pending = await asyncio.wait(set(self.active), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.active.add(task)
        self.sessions_total += 1
        token = logs.call_id.set(f"agi-{next(self._ids)}")
        started = time.monotonic()
        session: AgiSession | None = None
        try:
            env = await read_environment(reader)
            session = AgiSession(reader, writer, env)
            if session.uniqueid:
                logs.call_id.set(session.uniqueid)
            handler = self.handlers.get(session.script)
            if handler is None:
                event(log, "agi_unknown_script", logging.WARNING, script=session.script[:80])
                return
            await handler(session)
        except AgiProtocolError as exc:
            self.protocol_errors += 1
            if self.on_protocol_error is not None:
                self.on_protocol_error()
            event(log, "agi_protocol_error", logging.WARNING, error=str(exc)[:200])
        except Hangup:
            event(log, "agi_hangup")
        except AgiError as exc:
            event(log, "agi_error", logging.WARNING, error=str(exc)[:200])
        except asyncio.CancelledError:
            event(log, "agi_cancelled", logging.WARNING)
            raise
        except Exception:
            log.exception(
                "agi_handler_crashed", extra={"fields": {"script": session.script if session else ""}}
            )
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            event(log, "agi_session_end", seconds=round(time.monotonic() - started, 3))
            logs.call_id.reset(token)
            self.active.discard(task)
