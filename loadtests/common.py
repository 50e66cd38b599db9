# ruff: noqa: ASYNC109  (timeouts are parameters here, as in fourteen.testcall)
"""What the load tests share: CPU accounting from /proc, an Asterisk instance of their own in the sandbox
chroot, the router as a separate process, percentiles and number formatting.

``loadtests/calls.py`` (calls through the router vs the pure dialplan) and ``loadtests/speech.py`` (speech
calls: end of speech → decision) import this from the same directory (scripts run as
``.venv/bin/python loadtests/<name>.py``, so ``loadtests/`` is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fourteen import sandbox as sb

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# ------------------------------------------------------------------------------------------- CPU
def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads) in seconds, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    rest = raw.rsplit(")", 1)[1].split()  # after "pid (comm)": state is rest[0], utime rest[11]
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (every process, the kernel, other people's work too)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass(frozen=True)
class CpuSample:
    at: float
    seconds: dict[str, float]

    def minus(self, earlier: CpuSample) -> tuple[float, dict[str, float]]:
        return self.at - earlier.at, {k: v - earlier.seconds[k] for k, v in self.seconds.items()}


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def sample(self) -> CpuSample:
        seconds = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        seconds["machine"] = machine_busy_seconds()
        return CpuSample(time.monotonic(), seconds)


# --------------------------------------------------------------------------------------- the router
def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox_config(
    shared: bool, agi_port: int, instance_dir: str = "/opt/fourteen-loadtest"
) -> sb.SandboxConfig:
    """The shared project sandbox (AMI 5038), or by default an instance of our own in the same chroot.

    Other engineers' integration tests use the shared instance concurrently: their ``sandbox up`` reloads the
    dialplan (resetting FOURTEEN_AGI_URL to its default) and their calls would count as our Asterisk CPU.
    An instance of our own (own config, ports, sounds, pidfile; same chroot and Asterisk) avoids both.
    """
    if shared:
        return sb.SandboxConfig()
    return sb.SandboxConfig(
        instance_dir=instance_dir,
        ami_port=free_port(),
        http_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        rtp_start=17000,
        rtp_end=17999,
        agi_port=agi_port,
        verbose=0,
    )


class RouterProcess:
    """``fourteen serve`` as a child process of its own session (Ctrl-C reaches only us); stopped by PID."""

    def __init__(
        self,
        cfg: sb.SandboxConfig,
        data_dir: Path,
        agi_port: int,
        *,
        env: dict[str, str] | None = None,
        log_level: str = "WARNING",
    ) -> None:
        self.cfg = cfg
        self.data_dir = data_dir
        self.agi_port = agi_port
        self.extra_env = dict(env or {})  # more FOURTEEN_* settings (speech: model, ARI, pool size)
        self.log_level = log_level
        self.http_port = free_port()
        self.log_path = data_dir / "router.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        exe = REPO / ".venv/bin/fourteen"
        if not exe.exists():
            exe = Path(sys.executable).parent / "fourteen"
        sounds_inside = f"{self.cfg.sounds_dir}/fourteen"
        env = dict(os.environ)
        env.update(
            FOURTEEN_AGI_ADDR=f"127.0.0.1:{self.agi_port}",
            FOURTEEN_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
            FOURTEEN_DATA_DIR=str(self.data_dir),
            FOURTEEN_SOUNDS_DIR=str(self.cfg.host_path(sounds_inside)),
            FOURTEEN_ASTERISK_SOUNDS_DIR=sounds_inside,
            FOURTEEN_OPERATOR_DESTINATION="Local/operator@kcc",
            FOURTEEN_LOG_LEVEL=self.log_level,
            FOURTEEN_AMI_ADDR=f"{self.cfg.bind_host}:{self.cfg.ami_port}",
        )
        env.update(self.extra_env)
        env.pop("FOURTEEN_DATABASE_URL", None)  # the embedded SQLite in the temp dir
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(exe), "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 120.0) -> None:
        url = f"http://127.0.0.1:{self.http_port}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the router exited at start: {self.log_tail()}")
            try:
                await asyncio.to_thread(http_get, url)
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the router did not answer {url} within {timeout} s: {self.log_tail()}")

    async def metrics(self) -> str:
        """The router's Prometheus text (``/metrics``)."""
        body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{self.http_port}/metrics")
        return body.decode(errors="replace")

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """TERM, then KILL, by PID; idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
                return


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return bytes(response.read())


# ------------------------------------------------------------------------------------------- audio
def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# ------------------------------------------------------------------------------------------ output
def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{1000 * value:.0f}"


def p50_95(values: list[float]) -> str:
    return f"{ms(pct(values, 50))} / {ms(pct(values, 95))}"


def num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


async def idle_rates(meter: CpuMeter, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each process with no calls (Asterisk's timers, the pollers)."""
    if seconds <= 0:
        return {}
    await asyncio.sleep(1.0)  # the warm-up's last channels gone
    before = meter.sample()
    await asyncio.sleep(seconds)
    wall, cpu = meter.sample().minus(before)
    return {k: v / wall for k, v in cpu.items()}


# ---------------------------------------------------------------------------------- the Asterisk instance
@dataclass
class AsteriskInstance:
    """A running sandbox instance: its config and Asterisk's pid."""

    cfg: sb.SandboxConfig
    pid: int
    was_running: bool


@contextlib.asynccontextmanager
async def asterisk_instance(cfg: sb.SandboxConfig) -> AsyncIterator[AsteriskInstance]:
    """Bring the instance up with verbose 0 (no verbose lines in full.log per call step); at the end put the
    verbosity back when it was running already, else stop it (``sb.down``: by its pidfile) — also on an
    error or a cancelled run."""
    was_running = bool((await asyncio.to_thread(sb.status, cfg))["running"])
    old_verbose: str | None = None
    try:
        info = await asyncio.to_thread(sb.up, cfg)
        settings = await asyncio.to_thread(sb.rx, cfg, "core show settings")
        old_verbose = next(
            (ln.split(":")[1].strip() for ln in settings.splitlines() if "Root console verbosity" in ln),
            None,
        )
        await asyncio.to_thread(sb.rx, cfg, "core set verbose 0")
        yield AsteriskInstance(cfg, int(info["pid"]), was_running)
    finally:
        with contextlib.suppress(Exception):
            if was_running and old_verbose:
                await asyncio.to_thread(sb.rx, cfg, f"core set verbose {old_verbose}")
            elif not was_running:
                await asyncio.to_thread(sb.down, cfg)


# ------------------------------------------------------------------------------------------- metrics text
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def prometheus_values(text: str) -> dict[str, float]:
    """``name{labels}`` → value from Prometheus text (comments skipped); labels kept verbatim."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m:
            with contextlib.suppress(ValueError):
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def run_as_root(name: str, run: Callable[[Any], Awaitable[int]], args: Any, interrupted: str) -> int:
    """Run a load test's coroutine: root only (the sandbox is a chroot), Ctrl-C/SIGTERM cancel it cleanly."""
    if os.geteuid() != 0:
        print(f"{name}: the Asterisk sandbox needs root", file=sys.stderr)
        return 2

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):  # cancel the run: its finally hangs up and cleans up
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        return await run(args)

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130
