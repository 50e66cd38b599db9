# ruff: noqa: ASYNC109  (per-command ``timeout`` arguments are this module's API, as in asyncio.wait_for)
"""The FastAGI protocol, asyncio-native: one session object per call, one coroutine per command.

Written here rather than taken from panoramisk's FastAGI server, whose known defects (a peer that
disconnects before the blank line ending the environment spins the event loop, plain-function routes fail
on Python 3.11+, a listen backlog of 100) would each drop calls. Every read here is bounded in size and in
time, a hang-up (``HANGUP`` line, ``511``, EOF) raises :class:`Hangup` wherever the flow is, and nothing
in this module can block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

MAX_LINE = 8192  # bytes in one AGI line (env variables carry caller names, URLs)
MAX_ENV_VARS = 200
ENV_TIMEOUT = 5.0  # seconds for Asterisk to send the environment after connecting
COMMAND_TIMEOUT = 30.0  # default for commands that do not wait on the caller

_RESULT = re.compile(r"^(\d{3})(?=[ -]|$)(?:[ -]result=(-?\d+))?(?:\s*\((.*)\))?(.*)$")


class AgiError(Exception):
    """The AGI conversation went wrong; the dialplan's fallback takes the call over."""


class AgiProtocolError(AgiError):
    """Asterisk (or something pretending to be it) sent what FastAGI does not allow."""


class Hangup(AgiError):
    """The caller hung up: nothing more can be said to them."""


class CommandTimeout(AgiError):
    """Asterisk did not answer a command in time."""


@dataclass(frozen=True, slots=True)
class AgiResult:
    code: int
    result: int
    data: str
    raw: str

    @property
    def digit(self) -> str | None:
        """For STREAM FILE / WAIT FOR DIGIT / GET OPTION: the key pressed, if any."""
        return chr(self.result) if self.result > 0 else None


def parse_result(line: str) -> AgiResult:
    m = _RESULT.match(line.strip())
    if not m:
        raise AgiProtocolError(f"unparseable AGI response {line[:80]!r}")
    code = int(m.group(1))
    result = int(m.group(2)) if m.group(2) is not None else 0
    return AgiResult(code, result, m.group(3) or "", line)


def quote(arg: object) -> str:
    """Quote one AGI argument: Asterisk splits on spaces unless double-quoted; quotes are escaped."""
    s = str(arg).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{s}"'


async def read_environment(reader: asyncio.StreamReader, timeout: float = ENV_TIMEOUT) -> dict[str, str]:
    """Read ``agi_*: value`` lines up to the blank line; bounded in lines, line length and time."""
    env: dict[str, str] = {}

    async def _read() -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                raise AgiProtocolError("connection closed before the AGI environment ended")
            if not raw.endswith(b"\n"):
                raise AgiProtocolError("AGI environment line without end")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                return
            key, sep, value = line.partition(":")
            if not sep or not key.startswith("agi_"):
                raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
            if len(env) >= MAX_ENV_VARS:
                raise AgiProtocolError("too many AGI environment variables")
            env[key.strip()] = value.strip()

    try:
        await asyncio.wait_for(_read(), timeout)
    except TimeoutError as exc:
        raise AgiProtocolError("timed out waiting for the AGI environment") from exc
    except (ValueError, asyncio.LimitOverrunError) as exc:  # a line longer than the reader's limit
        raise AgiProtocolError("AGI environment line too long") from exc
    return env


class AgiSession:
    """One call's AGI conversation. Commands are sent one at a time, as the protocol requires."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: Mapping[str, str]
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = dict(env)
        self.hung_up = False
        self._lock = asyncio.Lock()

    @property
    def script(self) -> str:
        """The network script (``agi://host:port/<script>``) that selects the handler."""
        return self.env.get("agi_network_script", "").strip("/").split("?")[0]

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def dialled(self) -> str:
        return self.env.get("agi_extension", "")

    async def command(self, *words: object, timeout: float | None = COMMAND_TIMEOUT) -> AgiResult:
        """Send one command and return its result; raises Hangup once the channel is gone."""
        if self.hung_up:
            raise Hangup("channel already hung up")
        line = " ".join(str(words[0]) if i == 0 else quote(w) for i, w in enumerate(words))
        async with self._lock:
            try:
                self.writer.write(line.encode("utf-8") + b"\n")
                async with asyncio.timeout(timeout):  # no task per command, unlike wait_for on 3.11
                    await self.writer.drain()
                    return await self._read_result()
            except TimeoutError as exc:
                raise CommandTimeout(f"no answer to {line[:60]!r} within {timeout} s") from exc
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.hung_up = True
                raise Hangup("connection lost") from exc

    async def _read_result(self) -> AgiResult:
        while True:
            try:
                raw = await self.reader.readline()
            except (ValueError, asyncio.LimitOverrunError) as exc:
                raise AgiProtocolError("AGI response line too long") from exc
            if not raw:
                self.hung_up = True
                raise Hangup("connection closed")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "HANGUP":  # FastAGI's out-of-band hang-up notice; a result line follows
                self.hung_up = True
                continue
            if line.startswith("520-"):  # multi-line usage text ends with "520 End of proper usage."
                while line and not line.startswith("520 "):
                    line = (await self.reader.readline()).decode("utf-8", "replace").rstrip("\r\n")
                raise AgiProtocolError("command usage error (520)")
            result = parse_result(line)
            if result.code == 511:
                self.hung_up = True
                raise Hangup("channel hung up (511)")
            if result.code != 200:
                raise AgiProtocolError(f"AGI error {line[:80]!r}")
            return result

    # -- the commands the call flow uses -------------------------------------------------------------
    async def answer(self) -> None:
        await self.command("ANSWER", timeout=5.0)

    async def hangup(self) -> None:
        if not self.hung_up:
            with contextlib.suppress(AgiError):
                await self.command("HANGUP", timeout=5.0)

    async def get_variable(self, name: str) -> str | None:
        r = await self.command("GET VARIABLE", name)
        return r.data if r.result == 1 else None

    async def set_variable(self, name: str, value: object) -> None:
        await self.command("SET VARIABLE", name, value)

    async def set_variables(self, values: Mapping[str, object]) -> None:
        """Several variables in one round trip (``MSet``); commas would split them, so they become ';'."""
        body = ",".join(f"{k}={str(v).replace(',', ';')}" for k, v in values.items())
        await self.exec("MSet", body, timeout=5.0)

    async def stream_file(self, path: str, escape_digits: str = "", timeout: float = 120.0) -> str | None:
        """Play a sound file; returns the key that interrupted it, if any."""
        r = await self.command("STREAM FILE", path, escape_digits, timeout=timeout)
        if r.result < 0:
            raise Hangup("STREAM FILE failed (channel gone)")
        return r.digit

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        r = await self.command("WAIT FOR DIGIT", timeout_ms, timeout=timeout_ms / 1000 + 5.0)
        if r.result < 0:
            raise Hangup("WAIT FOR DIGIT failed (channel gone)")
        return r.digit

    async def exec(self, app: str, options: str = "", timeout: float | None = COMMAND_TIMEOUT) -> AgiResult:
        """Run a dialplan application. ``-2`` (no such application) raises; other results are returned."""
        r = await self.command("EXEC", app, options, timeout=timeout)
        if r.result == -2:
            raise AgiProtocolError(f"no dialplan application {app!r}")
        return r

    async def user_event(self, name: str, **fields: object) -> None:
        """A UserEvent on AMI, so tests and monitoring can follow the call (commas would split fields)."""
        body = ",".join(f"{k}: {str(v).replace(',', ';').replace('|', '/')}" for k, v in fields.items())
        await self.exec("UserEvent", f"{name},{body}" if body else name, timeout=5.0)

    async def verbose(self, message: str, level: int = 3) -> None:
        await self.command("VERBOSE", message, level, timeout=5.0)

    async def close(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
        except (ConnectionError, TimeoutError, OSError):
            pass
