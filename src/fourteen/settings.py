"""One settings object, read from ``FOURTEEN_*`` environment variables with sane defaults.

Everything configurable lives here so that a container, a test and a developer's shell all configure the
router the same way, and so that nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar


def _default_data_dir() -> Path:
    """Per-user data directory (XDG) holding the embedded SQLite database and caches."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fourteen"


def _split_addr(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value or "127.0.0.1", default_port
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build with :meth:`from_env`; tests pass explicit values."""

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    agi_addr: str = "127.0.0.1:4573"
    http_addr: str = "127.0.0.1:8080"
    ami_addr: str = "127.0.0.1:5038"
    ami_user: str = "fourteen"
    ami_secret: str = "fourteen"
    vosk_model: str = ""
    log_level: str = "INFO"
    default_destination: str = "Local/default@kcc"
    operator_destination: str = ""
    caller_hash_salt: str = "change-me"
    sounds_dir_override: str = ""
    asterisk_sounds_dir: str = ""

    _ENV: ClassVar[dict[str, str]] = {
        "data_dir": "FOURTEEN_DATA_DIR",
        "database_url": "FOURTEEN_DATABASE_URL",
        "agi_addr": "FOURTEEN_AGI_ADDR",
        "http_addr": "FOURTEEN_HTTP_ADDR",
        "ami_addr": "FOURTEEN_AMI_ADDR",
        "ami_user": "FOURTEEN_AMI_USER",
        "ami_secret": "FOURTEEN_AMI_SECRET",
        "vosk_model": "FOURTEEN_VOSK_MODEL",
        "log_level": "FOURTEEN_LOG_LEVEL",
        "default_destination": "FOURTEEN_DEFAULT_DESTINATION",
        "operator_destination": "FOURTEEN_OPERATOR_DESTINATION",
        "caller_hash_salt": "FOURTEEN_CALLER_HASH_SALT",
        "sounds_dir_override": "FOURTEEN_SOUNDS_DIR",
        "asterisk_sounds_dir": "FOURTEEN_ASTERISK_SOUNDS_DIR",
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = cls._ENV.get(f.name)
            if name and env.get(name):
                raw = env[name]
                values[f.name] = Path(raw).expanduser() if f.name == "data_dir" else raw
        return cls(**values)  # type: ignore[arg-type]

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'fourteen.sqlite3'}"

    @property
    def sounds_dir(self) -> Path:
        """Where the router writes prompt audio (``<lang>/<name>.wav``)."""
        if self.sounds_dir_override:
            return Path(self.sounds_dir_override)
        return self.data_dir / "sounds" / "fourteen"

    @property
    def agi_host_port(self) -> tuple[str, int]:
        return _split_addr(self.agi_addr, 4573)

    @property
    def http_host_port(self) -> tuple[str, int]:
        return _split_addr(self.http_addr, 8080)

    @property
    def ami_host_port(self) -> tuple[str, int]:
        return _split_addr(self.ami_addr, 5038)
