#!/usr/bin/env python3

"""Calls through the real Asterisk sandbox: the router vs a pure-dialplan route, then a concurrency sweep.

Figures, not assertions. A realistic call: about ``--ivr-seconds`` in the IVR with audio playing (the
router's greeting, language offer and menu until the caller presses a key, then "u wordt doorverbonden"),
then the divert to the test KCC. The same number of calls at the same concurrency goes

  (a) through the router: ``140113`` into ``fourteen-incoming`` → FastAGI → ``fourteen serve`` (a separate
      process, so its CPU is measured on its own) → menu → key → ``Dial(Local/GM0664@kcc)``;
  (b) through the dialplan alone: ``Local/140113@fourteen-puredialplan`` plays the same prompt files for the
      same time (``BASELINE_AUDIO``, cut where the router call's caller pressed) → ``Dial(Local/GM0000@kcc)``;

in alternating rounds (a, b, a, b), then a sweep of more and more concurrent router calls, which stops when
calls fail or the p95 set-up or answer time passes 2 s.

CPU is read from ``/proc/<pid>/stat`` (utime + stime) of Asterisk, the router and this load generator before
and after each batch. Times come from Asterisk's own event timestamps (``timestampevents``): answer latency =
originate → first prompt starts; set-up delay = end of the last prompt → ``KCCReached``; reaction = the
router's DTMF received → its next prompt starts. The caller legs (``fourteen-caller``, scripted over FastAGI
by :class:`fourteen.testcall.Caller` in this process) cost Asterisk CPU too: the same on both paths. Per-call
CPU is net of what each process uses when idle (measured for a few seconds first).

    .venv/bin/python loadtests/calls.py [--calls 100] [--concurrency 25] [--ivr-seconds 10] [--rounds 2]
                                        [--sweep 25 50 ... 300] [--sweep-calls N] [--max-minutes 12]
                                        [--shared-sandbox]

Needs root (the sandbox). By default it runs an Asterisk instance of its own in the sandbox's chroot
(``/opt/fourteen-loadtest``, free ports, verbose 0), so other people's tests on the shared instance neither
reset its dialplan globals nor add to its CPU; ``--shared-sandbox`` uses the project's instance (AMI 5038).
Either is brought up, and down at the end when it was not running. Everything binds to 127.0.0.1; the
router it started is stopped by PID at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CORES,
    CpuMeter,
    CpuSample,
    RouterProcess,
    free_port,
    idle_rates,
    ms,
    num,
    p50_95,
    pct,
    run_as_root,
    sandbox_config,
    wav_seconds,
)

from fourteen import sandbox as sb
from fourteen.ami import AmiClient
from fourteen.testcall import AsteriskSounds, Caller, CallResult, Step, press, wait

NUMBER = "140113"  # Borsele, Goes, Kapelle, Reimerswaal: the menu (no speech recogniser here)
KEY = "2"  # Goes
ROUTER_KCC = "GM0664"
BASELINE_KCC = "GM0000"
TRANSFER_PROMPT = "transferring-goes"  # "U wordt doorverbonden met Goes": the router's last prompt
LANGS = ("nl", "en", "fy")
AMI_EVENTS = "call,user,dtmf"  # all Caller needs (+ DTMFEnd); no dialplan/agi classes: less AMI work
SETUP_LIMIT = 2.0  # s: the sweep stops when p95 set-up delay exceeds this, or calls fail


# ----------------------------------------------------------------------------------------- one call
@dataclass
class CallMetrics:
    ok: bool
    why: str  # empty when ok
    answer: float | None = None  # originate → first prompt starts (s)
    setup: float | None = None  # end of the last prompt → KCCReached (s)
    reaction: float | None = None  # router: DTMF received → next prompt starts (s)
    ivr: float | None = None  # first prompt starts → end of the last prompt (s)


def _ts(event: dict[str, str]) -> float | None:
    try:
        return float(event["Timestamp"])
    except (KeyError, ValueError):
        return None


class Durations:
    """Seconds of audio per prompt name, read once from the sandbox's sounds directory."""

    def __init__(self, sounds_host_dir: Path) -> None:
        self.dir = sounds_host_dir
        self.cache: dict[str, float] = {}

    def file(self, name: str) -> Path | None:
        for lang in LANGS:
            path = self.dir / lang / f"{name}.wav"
            if path.exists():
                return path
        return None

    def __call__(self, name: str) -> float:
        if name not in self.cache:
            path = self.file(name)
            self.cache[name] = wav_seconds(path) if path else math.nan
        return self.cache[name]


def prompt_starts(result: CallResult) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for e in result.events:
        if e.get("Event") == "UserEvent" and e.get("UserEvent") == "FourteenPrompt":
            at = _ts(e)
            if at is not None:
                out.append((e.get("Prompt", ""), at))
    return out


def measure(
    result: CallResult,
    originated: float,
    expected: str,
    last_prompt_seconds: Callable[[str], float],
) -> CallMetrics:
    """Judge one call and take its times from Asterisk's event timestamps."""
    if result.reached != expected or result.fallback:
        if result.fallback:
            why = "fallback (router not reached or gave up)"
        elif result.reached is not None:
            why = f"reached {result.reached}"
        elif result.timed_out:
            why = "timed out"
        else:
            why = f"ended in {result.hangup_stage or 'no stage'}"
        return CallMetrics(False, why)
    m = CallMetrics(True, "")
    starts = prompt_starts(result)
    kcc_at = _ts(result.kcc_event)
    if starts:
        m.answer = starts[0][1] - originated
        before_kcc = [(n, t) for n, t in starts if kcc_at is None or t <= kcc_at]
        if before_kcc and kcc_at is not None:
            name, started = before_kcc[-1]
            end = started + last_prompt_seconds(name)
            m.setup = kcc_at - end
            m.ivr = end - starts[0][1]
    dtmf = next(
        (
            _ts(e)
            for e in result.events
            if e.get("Event") == "DTMFEnd" and e.get("Direction") == "Received" and _ts(e) is not None
        ),
        None,
    )
    if dtmf is not None:
        after = [t for _, t in starts if t >= dtmf]
        if after:
            m.reaction = after[0] - dtmf
    return m


# --------------------------------------------------------------------------------------- one batch
@dataclass
class Batch:
    label: str
    calls: int
    concurrency: int
    metrics: list[CallMetrics] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # whole batch, seconds
    steady_wall: float = 0.0
    steady_cpu: dict[str, float] = field(default_factory=dict)
    not_started: int = 0
    peak_active: int = 0
    idle: dict[str, float] = field(default_factory=dict)  # CPU s per s of each process when idle

    @property
    def completed(self) -> int:
        return sum(m.ok for m in self.metrics)

    @property
    def failures(self) -> int:
        return self.calls - self.completed

    def values(self, attr: str) -> list[float]:
        return [v for m in self.metrics if m.ok and (v := getattr(m, attr)) is not None]

    def per_call_ms(self, who: str) -> float:
        """CPU per completed call, net of what the process uses when idle."""
        net = self.cpu.get(who, math.nan) - self.idle.get(who, 0.0) * self.wall
        return 1000 * net / max(self.completed, 1)

    def cores_pct(self, *who: str) -> float:
        """Share of all cores over the steady part (all slots busy), else over the whole batch."""
        wall, cpu = (self.steady_wall, self.steady_cpu) if self.steady_wall >= 2.0 else (self.wall, self.cpu)
        return 100 * sum(cpu.get(w, math.nan) for w in who) / (wall * CORES) if wall > 0 else math.nan

    def why_failed(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.metrics:
            if not m.ok:
                out[m.why] = out.get(m.why, 0) + 1
        if self.not_started:
            out["not started (time limit)"] = self.not_started
        return out


async def run_batch(
    caller: Caller,
    label: str,
    calls: int,
    concurrency: int,
    steps: Sequence[Step],
    *,
    expected: str,
    last_prompt_seconds: Callable[[str], float],
    meter: CpuMeter,
    ramp: float,
    call_timeout: float,
    deadline: float,
    idle: dict[str, float],
) -> Batch:
    """``calls`` calls, at most ``concurrency`` at once; the first ``concurrency`` are spread over ``ramp``
    seconds (then each ending call makes room for the next), as calls arriving at a steady rate would be."""
    batch = Batch(label, calls, concurrency, idle=idle)
    slots = asyncio.Semaphore(concurrency)
    active = 0
    launched_all = False
    marks: dict[str, CpuSample] = {}
    tasks: list[asyncio.Task[None]] = []

    async def one() -> None:
        nonlocal active
        try:
            originated = time.time()
            result = await caller.call(NUMBER, steps, timeout=call_timeout, listen_timeout=call_timeout)
            batch.metrics.append(measure(result, originated, expected, last_prompt_seconds))
        except Exception as exc:  # an AMI error: count it, keep the batch going
            batch.metrics.append(CallMetrics(False, f"error: {type(exc).__name__}: {str(exc)[:80]}"))
        finally:
            active -= 1
            slots.release()
            if launched_all and "steady_end" not in marks and "steady_start" in marks:
                marks["steady_end"] = meter.sample()

    start = meter.sample()
    gap = ramp / concurrency if concurrency else 0.0
    for i in range(calls):
        if time.monotonic() > deadline:
            batch.not_started = calls - i
            batch.calls = i
            break
        await slots.acquire()
        active += 1
        batch.peak_active = max(batch.peak_active, active)
        if active == concurrency and "steady_start" not in marks:
            marks["steady_start"] = meter.sample()
        tasks.append(asyncio.create_task(one()))
        if i + 1 < concurrency:
            await asyncio.sleep(gap)
    launched_all = True
    if tasks:
        await asyncio.gather(*tasks)
    end = meter.sample()
    batch.wall, batch.cpu = end.minus(start)
    if "steady_start" in marks and "steady_end" in marks:
        batch.steady_wall, batch.steady_cpu = marks["steady_end"].minus(marks["steady_start"])
    return batch


# ------------------------------------------------------------------------------------------ output
def merge(parts: list[Batch]) -> Batch:
    """Batches of one path run in several rounds, as one."""
    first = parts[0]
    out = Batch(first.label, sum(p.calls for p in parts), first.concurrency, idle=first.idle)
    for p in parts:
        out.metrics += p.metrics
        out.wall += p.wall
        out.not_started += p.not_started
        out.peak_active = max(out.peak_active, p.peak_active)
        for k, v in p.cpu.items():
            out.cpu[k] = out.cpu.get(k, 0.0) + v
    return out


def print_comparison(a: Batch, b: Batch, rounds: int) -> None:
    def row(name: str, x: str, y: str, diff: str = "") -> None:
        print(f"  {name:<44} {x:>14} {y:>14} {diff:>12}")

    def diff_ms(attr: str, p: float) -> str:
        x, y = pct(a.values(attr), p), pct(b.values(attr), p)
        return "-" if x is None or y is None else f"{1000 * (x - y):+.0f}"

    ast_a, ast_b = a.per_call_ms("asterisk"), b.per_call_ms("asterisk")
    router = a.per_call_ms("router")
    print()
    print(
        f"Router vs pure dialplan: {a.calls} calls per path, {a.concurrency} at once, "
        f"{rounds} alternating round(s), {CORES} cores"
    )
    row("", "router", "pure dialplan", "difference")
    row("calls", str(a.calls), str(b.calls))
    row("completed (KCC reached)", str(a.completed), str(b.completed))
    row("failures", str(a.failures), str(b.failures))
    row("wall time (s)", num(a.wall), num(b.wall))
    row("calls/s", num(a.completed / a.wall, 2), num(b.completed / b.wall, 2))
    row("IVR with audio per call, mean (s)", num(_mean(a.values("ivr")), 2), num(_mean(b.values("ivr")), 2))
    row("Asterisk CPU per call (ms)", num(ast_a), num(ast_b), f"{ast_a - ast_b:+.1f}")
    row("router CPU per call (ms)", num(router), "-")
    row("router CPU as % of Asterisk CPU per call", f"{100 * router / ast_a:.1f} %", "-")
    row(
        "router + extra Asterisk CPU, % of baseline",
        f"{100 * (router + ast_a - ast_b) / ast_b:.1f} %",
        "-",
    )
    row("load generator CPU per call (ms)", num(a.per_call_ms("loadgen")), num(b.per_call_ms("loadgen")))
    row("machine CPU, all processes (% of cores)", num(a.cores_pct("machine")), num(b.cores_pct("machine")))
    row("answer latency p50 / p95 (ms)", p50_95(a.values("answer")), p50_95(b.values("answer")))
    row(
        "set-up delay p50 / p95 (ms)",
        p50_95(a.values("setup")),
        p50_95(b.values("setup")),
        f"{diff_ms('setup', 50)} / {diff_ms('setup', 95)}",
    )
    row("key press → next prompt p50 / p95 (ms)", p50_95(a.values("reaction")), "-")
    for batch in (a, b):
        if batch.failures:
            print(f"  {batch.label} failures: {batch.why_failed()}")
    print(
        "  Asterisk CPU includes the load generator's caller legs (fourteen-caller over FastAGI, Local\n"
        "  channels, the audio they receive): the same work on both paths. Per-call CPU is net of idle use.\n"
        "  Answer latency: originate → first prompt; set-up delay: end of the last prompt → KCCReached;\n"
        "  key press → next prompt: the router's reaction (DTMF received → 'doorverbonden' starts).\n"
        "  Times from Asterisk's event timestamps."
    )


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def print_sweep_header() -> None:
    print()
    print(f"Concurrency sweep, router path ({CORES} cores; CPU as % of all cores while every slot was busy;")
    print("  machine = every process and the kernel, other users' work included; ast ms/call net of idle)")
    print(
        f"  {'concurrent':>10} {'calls':>6} {'completed':>10} {'calls/s':>8} {'answer p95':>11} "
        f"{'set-up p95':>11} {'ast+router':>11} {'asterisk':>9} {'router':>7} {'loadgen':>8} "
        f"{'machine':>8} {'ast ms/call':>12}"
    )


def print_sweep_row(b: Batch) -> None:
    done = 100 * b.completed / b.calls if b.calls else 0.0
    print(
        f"  {b.concurrency:>10} {b.calls:>6} {done:>9.1f}% {b.completed / b.wall:>8.2f} "
        f"{ms(pct(b.values('answer'), 95)) + ' ms':>11} {ms(pct(b.values('setup'), 95)) + ' ms':>11} "
        f"{num(b.cores_pct('asterisk', 'router')) + ' %':>11} {num(b.cores_pct('asterisk')) + ' %':>9} "
        f"{num(b.cores_pct('router')) + ' %':>7} {num(b.cores_pct('loadgen')) + ' %':>8} "
        f"{num(b.cores_pct('machine')) + ' %':>8} "
        f"{num(b.per_call_ms('asterisk')):>12}",
        flush=True,
    )
    if b.failures:
        print(f"  {'':>10} failures: {b.why_failed()}")


# --------------------------------------------------------------------------------------- baseline
async def baseline_audio(
    warm: CallResult, durations: Durations, sounds: AsteriskSounds, cfg: sb.SandboxConfig
) -> tuple[str, float]:
    """What the router call's caller heard, as files for Playback: each prompt as long as it played (the one
    the key press cut off is a trimmed copy). Returns (BASELINE_AUDIO, seconds)."""
    starts = prompt_starts(warm)
    kcc_at = _ts(warm.kcc_event) or math.inf
    starts = [(n, t) for n, t in starts if t <= kcc_at]
    inside = f"{cfg.sounds_dir}/fourteen"
    parts: list[str] = []
    total = 0.0
    for i, (name, started) in enumerate(starts):
        path = durations.file(name)
        if path is None:
            raise RuntimeError(f"prompt {name} has no file under {durations.dir}")
        full = durations(name)
        played = min(full, starts[i + 1][1] - started) if i + 1 < len(starts) else full
        asterisk_path = f"{inside}/{path.parent.name}/{name}"
        if played < full - 0.05:
            cut = f"baseline-{name}-{round(1000 * played)}ms"
            out = sounds.host_dir / f"{cut}.wav"
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                proc = await asyncio.create_subprocess_exec(
                    "sox", "-q", str(path), str(out), "trim", "0", f"{played:.3f}"
                )
                if await proc.wait() != 0:
                    raise RuntimeError(f"sox could not cut {path}")
            asterisk_path = sounds.asterisk_path(cut)
            played = wav_seconds(out)
        parts.append(asterisk_path)
        total += played
    return "&".join(parts), total


# ------------------------------------------------------------------------------------------- main
async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + 60 * args.max_minutes
    agi_port = free_port()
    cfg = sandbox_config(args.shared_sandbox, agi_port)
    was_running = bool((await asyncio.to_thread(sb.status, cfg))["running"])
    router: RouterProcess | None = None
    ami: AmiClient | None = None
    old_url: str | None = None
    old_verbose: str | None = None
    tmp = Path(tempfile.mkdtemp(prefix="fourteen-loadtest-"))
    finished = False
    try:
        info = await asyncio.to_thread(sb.up, cfg)
        asterisk_pid = int(info["pid"])
        print(
            f"Asterisk sandbox instance {cfg.instance_dir} {'was running' if was_running else 'started'} "
            f"(pid {asterisk_pid}, AMI {cfg.bind_host}:{cfg.ami_port})"
        )
        settings = await asyncio.to_thread(sb.rx, cfg, "core show settings")
        old_verbose = next(
            (ln.split(":")[1].strip() for ln in settings.splitlines() if "Root console verbosity" in ln),
            None,
        )
        await asyncio.to_thread(sb.rx, cfg, "core set verbose 0")  # no verbose lines in full.log per step

        router = RouterProcess(cfg, tmp, agi_port)
        router.start()
        await router.wait_ready()
        print(f"router: pid {router.pid}, FastAGI 127.0.0.1:{router.agi_port}, log {router.log_path}")

        ami = await AmiClient.connect(
            cfg.bind_host, cfg.ami_port, cfg.ami_user, cfg.ami_secret, events=AMI_EVENTS
        )
        old_url = await ami.getvar("FOURTEEN_AGI_URL")
        await ami.setvar("FOURTEEN_AGI_URL", f"agi://127.0.0.1:{router.agi_port}/route")
        await ami.setvar("BASELINE_AUDIO", "")
        meter = CpuMeter({"asterisk": asterisk_pid, "router": router.pid, "loadgen": os.getpid()})
        durations = Durations(cfg.host_path(f"{cfg.sounds_dir}/fourteen"))
        sounds = AsteriskSounds.sandbox(cfg)
        call_timeout = args.ivr_seconds + 30.0

        async with (
            Caller(ami, sounds) as via_router,
            Caller(ami, sounds, incoming_context="fourteen-puredialplan") as via_dialplan,
        ):
            # -- warm-up: prompts synthesised, caches filled; the last call gives the baseline's audio
            wait_s = max(1.0, args.ivr_seconds - 3.5)
            warm: CallResult | None = None
            for i in range(args.warmup):
                if i == 1:  # the transfer prompt exists now: aim at --ivr-seconds in the IVR
                    transfer = durations(TRANSFER_PROMPT)
                    if not math.isnan(transfer):
                        wait_s = max(1.0, args.ivr_seconds - transfer - 0.5)
                res = await via_router.call(NUMBER, [wait(wait_s), press(KEY)], timeout=call_timeout)
                if res.reached != ROUTER_KCC:
                    print(res.summary(), file=sys.stderr)
                    print(router.log_tail(), file=sys.stderr)
                    raise RuntimeError(f"warm-up call {i + 1} did not reach {ROUTER_KCC}")
                warm = res
            assert warm is not None
            audio, audio_seconds = await baseline_audio(warm, durations, sounds, cfg)
            await ami.setvar("BASELINE_AUDIO", audio)
            print(
                f"warm-up: {args.warmup} router calls; caller waits {wait_s:.1f} s, then presses {KEY}; "
                f"prompts {' → '.join(warm.prompts)}"
            )
            print(f"baseline plays the same audio: {audio_seconds:.2f} s ({audio.count('&') + 1} files)")
            res = await via_dialplan.call(NUMBER, [wait(wait_s + 0.3)], timeout=call_timeout)
            if res.reached != BASELINE_KCC:
                print(res.summary(), file=sys.stderr)
                raise RuntimeError("the pure-dialplan warm-up call did not reach the KCC")

            def router_last(name: str) -> float:
                return durations(name)

            def baseline_last(_name: str) -> float:
                return audio_seconds

            idle = await idle_rates(meter, args.idle_seconds)
            print(
                "idle CPU (subtracted per call): "
                + ", ".join(f"{k} {1000 * v:.1f} ms/s" for k, v in idle.items())
            )
            common: dict[str, Any] = {
                "idle": idle,
                "meter": meter,
                "ramp": args.ivr_seconds,
                "call_timeout": call_timeout,
                "deadline": deadline,
            }
            # -- (a) and (b): same calls, same concurrency; in alternating rounds, so that whatever else
            # the machine does at the time weighs on both paths alike
            rounds = max(1, min(args.rounds, args.calls // args.concurrency))
            per_round = [args.calls // rounds + (r < args.calls % rounds) for r in range(rounds)]
            a_parts: list[Batch] = []
            b_parts: list[Batch] = []
            for n in per_round:
                await asyncio.sleep(2)
                a_parts.append(
                    await run_batch(
                        via_router,
                        "router",
                        n,
                        args.concurrency,
                        [wait(wait_s), press(KEY)],
                        expected=ROUTER_KCC,
                        last_prompt_seconds=router_last,
                        **common,
                    )
                )
                await asyncio.sleep(2)
                b_parts.append(
                    await run_batch(
                        via_dialplan,
                        "pure dialplan",
                        n,
                        args.concurrency,
                        [wait(wait_s + 0.3)],  # the same caller-leg work as the router caller's wait + press
                        expected=BASELINE_KCC,
                        last_prompt_seconds=baseline_last,
                        **common,
                    )
                )
            print_comparison(merge(a_parts), merge(b_parts), rounds)

            # -- the sweep: router path, more and more concurrent calls
            if args.sweep:
                print_sweep_header()
            for level in args.sweep:
                if time.monotonic() > deadline:
                    print(f"  (time limit of {args.max_minutes} min reached: sweep stopped)")
                    break
                await asyncio.sleep(2)
                n = args.sweep_calls or min(2 * level, 600)
                batch = await run_batch(
                    via_router,
                    "router",
                    n,
                    level,
                    [wait(wait_s), press(KEY)],
                    expected=ROUTER_KCC,
                    last_prompt_seconds=router_last,
                    **common,
                )
                print_sweep_row(batch)
                p95 = pct(batch.values("setup"), 95)
                answer95 = pct(batch.values("answer"), 95)
                if (
                    batch.failures
                    or batch.not_started
                    or p95 is None
                    or p95 > SETUP_LIMIT
                    or (answer95 or 0.0) > SETUP_LIMIT
                ):
                    print(
                        f"  stopped at {level} concurrent: failures or p95 set-up/answer > {SETUP_LIMIT:g} s"
                    )
                    break
        print(f"\ntotal run time {time.monotonic() - started:.0f} s")
        finished = True
        return 0
    finally:
        if ami is not None:
            with contextlib.suppress(Exception):
                await ami.setvar("BASELINE_AUDIO", "")
                if old_url is not None:
                    await ami.setvar("FOURTEEN_AGI_URL", old_url)
            with contextlib.suppress(Exception):
                await ami.close()
        if router is not None:
            router.stop()
        if finished:  # else keep the router's log for a look
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"router data and log kept in {tmp}", file=sys.stderr)
        with contextlib.suppress(Exception):
            if was_running and old_verbose:
                await asyncio.to_thread(sb.rx, cfg, f"core set verbose {old_verbose}")
            elif not was_running:
                await asyncio.to_thread(sb.down, cfg)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=100, help="calls per path in the comparison (default 100)")
    p.add_argument("--concurrency", type=int, default=25, help="concurrent calls in the comparison (25)")
    p.add_argument("--ivr-seconds", type=float, default=10.0, help="seconds in the IVR per call (10)")
    p.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[25, 50, 100, 150, 200, 250, 300],
        help="concurrency levels for the router path (default 25 50 100 150 200 250 300; none: no sweep)",
    )
    p.add_argument("--sweep-calls", type=int, default=0, help="calls per level (default 2 × level, ≤ 600)")
    p.add_argument(
        "--rounds", type=int, default=2, help="comparison: alternate router/dialplan batches this often (2)"
    )
    p.add_argument("--warmup", type=int, default=3, help="router calls before measuring (default 3)")
    p.add_argument(
        "--idle-seconds", type=float, default=10.0, help="measure idle CPU this long first (10; 0: don't)"
    )
    p.add_argument(
        "--shared-sandbox",
        action="store_true",
        help="use the project's sandbox instance (AMI 5038) instead of one of our own in the same chroot",
    )
    p.add_argument("--max-minutes", type=float, default=12.0, help="stop starting calls after this (12)")
    args = p.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1 or args.warmup < 1 or not 3 <= args.ivr_seconds <= 120:
        p.error("--calls, --concurrency and --warmup must be ≥ 1, --ivr-seconds 3..120")
    if any(level < 1 or level > 1000 for level in args.sweep):
        p.error("--sweep levels must be 1..1000")
    return run_as_root("calls.py", run, args, "calls hung up, router stopped")


if __name__ == "__main__":
    sys.exit(main())
