"""A throwaway PostgreSQL server for the storage tests: initdb in a temp dir, 127.0.0.1, stopped by PID.

Used when ``FOURTEEN_TEST_POSTGRES_URL`` does not name a server. As root, the server runs as the ``postgres``
system user (PostgreSQL refuses to run as root), which Debian's ``postgresql`` package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="fourteen-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.pid: int | None = None

    def _as_user(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return ["runuser", "-u", "postgres", "--", *cmd]

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            self._as_user(
                [
                    self.initdb,
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self.start_again()

    def start_again(self) -> str:
        """Start the server on its data directory and port (first start, or after :meth:`stop_server`)."""
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._as_user(
                [
                    self.pg_ctl,
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def stop_server(self) -> None:
        """Stop the server (fast shutdown: clients cut off at once), keeping its data for start_again()."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown: connections are cut at once
                for _ in range(200):
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)
