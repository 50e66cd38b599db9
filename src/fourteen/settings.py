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
    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "fourteen"
    ari_password: str = "fourteen"
    ari_app: str = "fourteen"
    grammars_dir: str = ""
    speech_streams: str = "8"
    record_retention_days: str = "365"

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
        "ari_url": "FOURTEEN_ARI_URL",
        "ari_user": "FOURTEEN_ARI_USER",
        "ari_password": "FOURTEEN_ARI_PASSWORD",
        "ari_app": "FOURTEEN_ARI_APP",
        "grammars_dir": "FOURTEEN_GRAMMARS_DIR",
        "speech_streams": "FOURTEEN_SPEECH_STREAMS",
        "record_retention_days": "FOURTEEN_RECORD_RETENTION_DAYS",
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
    def recordings_dir(self) -> Path:
        """Where Asterisk writes recordings for the record-then-decode fallback (beside the sounds)."""
        return self.sounds_dir.parent / "recordings"

    @property
    def asterisk_recordings_dir(self) -> str:
        base = self.asterisk_sounds_dir or str(self.sounds_dir)
        return str(Path(base).parent / "recordings")

    @property
    def grammars_path(self) -> Path:
        if self.grammars_dir:
            return Path(self.grammars_dir)
        return Path(__file__).resolve().parents[2] / "grammars"

    @property
    def max_speech_streams(self) -> int:
        try:
            return max(0, int(self.speech_streams))
        except ValueError:
            return 8

    @property
    def retention_days(self) -> int:
        """Days a call record is kept (privacy: personal data only as long as needed); at least one."""
        try:
            return max(1, int(self.record_retention_days))
        except ValueError:
            return 365

    @property
    def agi_host_port(self) -> tuple[str, int]:
        return _split_addr(self.agi_addr, 4573)

    @property
    def http_host_port(self) -> tuple[str, int]:
        return _split_addr(self.http_addr, 8080)

    @property
    def ami_host_port(self) -> tuple[str, int]:
        return _split_addr(self.ami_addr, 5038)
