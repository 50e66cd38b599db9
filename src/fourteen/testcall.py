# ruff: noqa: ASYNC109  (call and listen timeouts are this module's API, as in asyncio.wait_for)
"""Place a test call through Asterisk, play the caller's part from a script, and report where it went.

Nobody has to pick up a phone to check a call flow: :func:`place_call` AMI-originates
``Local/<number>@fourteen-incoming`` whose caller half (``;1``) runs ``fourteen-caller,agi``, a FastAGI
session back into this process. That session is the caller: it presses keys (``SendDTMF``), says things
(espeak-ng audio played with ``STREAM FILE``), waits (timer-driven ``silence/1``, as a phone's RTP is) or
hangs up. Everything the call does is read from AMI events of its ``Linkedid`` (the originate's
``ChannelId``):

* the router's UserEvents ``FourteenPrompt``, ``FourteenDecision``, ``FourteenDivert`` (and ``FourteenStage``,
  ``FourteenListen``), any of which may carry the marks ``Stage`` and ``Listen`` (input accepted from now
  on; see :mod:`fourteen.channelvars`);
* the dialplan's ``KCCReached``, ``FourteenFallback``, ``FourteenFallbackFailed``,
  ``FourteenUnknownNumber``; Asterisk's own ``Newchannel``/``Hangup`` (the call is over when every channel
  of it has hung up).

DTMF sent while nobody reads digits is lost, so ``press`` and ``say`` first wait for the router's next
``Listen`` mark (up to ``listen_timeout``; then they go anyway, with a warning). When a KCC answers, the
caller hangs up at once (``hangup_on_kcc``): the result is known and the test KCC would only wait a second.

    result = await place_call("140113", [press("2")], ami=AmiParams())
    assert result.reached == "GM0703"

``fourteen call 140113 --press 2`` is the same from the command line; ``fourteen sandbox up|down|status``
drives the Asterisk sandbox it normally calls into.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import sys
import time
import uuid
import wave
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from . import audio
from . import channelvars as cv
from .agi import AgiResult, AgiSession, Hangup
from .agiserver import AgiServer
from .ami import AmiClient, AmiError, Message, Subscription
from .settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "AmiParams",
    "AsteriskSounds",
    "CallLog",
    "CallResult",
    "Caller",
    "Step",
    "hangup",
    "place_call",
    "play",
    "press",
    "register_call_command",
    "register_sandbox_command",
    "say",
    "steps_from_args",
    "wait",
]

StepKind = Literal["press", "say", "play", "wait", "hangup"]
STEP_KINDS: tuple[str, ...] = get_args(StepKind)
LISTENING_STEPS = frozenset({"press", "say"})  # these wait for the router's Listen mark first
LANGUAGES = ("nl", "en", "ko", "fy")
MAX_CALL_EVENTS = 5000  # per call; a looping call flow cannot fill memory
SAMPLE_RATE = 8000
QUIET_SECONDS = 0.1  # the caller's pauses come in steps this long, so it reacts to events this fast
_DTMF = re.compile(r"^[0-9*#A-Dw]{1,64}$")
_NUMBER = re.compile(r"^[0-9A-Za-z+*#]{1,40}$")
_ENDPOS = re.compile(r"endpos=(\d+)")
_AUDIO_VERSION = "1"  # bump when synthesis changes, so cached caller audio is made again
_CALL_KEYS = frozenset({"linkedid", "uniqueid", "actionid"})  # fields that tie an AMI event to a call


# ------------------------------------------------------------------------------------------------ steps
@dataclass(frozen=True, slots=True)
class Step:
    """One thing the caller does; build with :func:`press`, :func:`say`, … or :meth:`parse`."""

    kind: StepKind
    value: str = ""
    lang: str = "nl"

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise ValueError(f"unknown step {self.kind!r}: use one of {', '.join(STEP_KINDS)}")
        if self.kind == "press" and not _DTMF.match(self.value):
            raise ValueError(f"press: {self.value!r} is not DTMF (digits 0-9 * # A-D, w = pause 0.5 s)")
        if self.kind in ("say", "play") and not self.value.strip():
            raise ValueError(f"{self.kind}: nothing given")
        if self.kind == "wait":
            try:
                seconds = float(self.value)
            except ValueError:
                raise ValueError(f"wait: {self.value!r} is not a number of seconds") from None
            if not 0 < seconds <= 3600:
                raise ValueError(f"wait: {seconds} s is out of range (0 < s ≤ 3600)")

    @classmethod
    def parse(cls, text: str, lang: str = "nl") -> Step:
        """``"press 12"``, ``"say ik wil naar Goes"``, ``"play /tmp/x.wav"``, ``"wait 2"``, ``"hangup"``."""
        kind, _, value = text.strip().partition(" ")
        if kind not in STEP_KINDS:
            raise ValueError(f"unknown step {text!r}: use one of {', '.join(STEP_KINDS)}")
        return cls(kind, value.strip(), lang)  # type: ignore[arg-type]

    @property
    def seconds(self) -> float:
        return float(self.value) if self.kind == "wait" else 0.0

    def __str__(self) -> str:
        if self.kind == "say":
            return f"say {self.value!r} ({self.lang})"
        return f"{self.kind} {self.value}".strip()


def press(digits: str) -> Step:
    return Step("press", digits)


def say(text: str, lang: str = "nl") -> Step:
    return Step("say", text, lang)


def play(path: str) -> Step:
    """An existing WAV on this host (converted for Asterisk), or a sound name Asterisk knows."""
    return Step("play", path)


def wait(seconds: float) -> Step:
    return Step("wait", f"{seconds:g}")


def hangup() -> Step:
    return Step("hangup")


# ------------------------------------------------------------------------------------------ connection
@dataclass(frozen=True, slots=True)
class AmiParams:
    """Where AMI is and how to log in (defaults: the sandbox's)."""

    host: str = "127.0.0.1"
    port: int = 5038
    user: str = "fourteen"
    secret: str = "fourteen"

    @classmethod
    def from_settings(cls, settings: Settings) -> AmiParams:
        host, port = settings.ami_host_port
        return cls(host, port, settings.ami_user, settings.ami_secret)

    async def connect(self) -> AmiClient:
        return await AmiClient.connect(self.host, self.port, self.user, self.secret)


@dataclass(frozen=True, slots=True)
class AsteriskSounds:
    """A directory for the caller's audio, as this process writes it and as Asterisk reads it.

    They differ when Asterisk runs in a chroot (the sandbox) or another container; for an Asterisk on this
    host both are the same path (:meth:`local`).
    """

    host_dir: Path
    asterisk_dir: str

    @classmethod
    def sandbox(cls, cfg: Any = None) -> AsteriskSounds:
        from .sandbox import SandboxConfig

        cfg = cfg or SandboxConfig()
        inside = f"{cfg.sounds_dir}/testcall"
        return cls(cfg.host_path(inside), inside)

    @classmethod
    def local(cls, directory: str | Path) -> AsteriskSounds:
        path = Path(directory).resolve()
        return cls(path, str(path))

    def asterisk_path(self, name: str) -> str:
        return f"{self.asterisk_dir.rstrip('/')}/{name}"


# -------------------------------------------------------------------------------------------- results
@dataclass
class CallLog:
    """What one call's AMI events say, kept up to date by :meth:`feed` (pure bookkeeping, no I/O)."""

    call_id: str
    dialled: str
    events: list[dict[str, str]] = field(default_factory=list)
    events_dropped: int = 0
    prompts: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    listens: list[str] = field(default_factory=list)
    decisions: list[dict[str, str]] = field(default_factory=list)
    diverts: list[dict[str, str]] = field(default_factory=list)
    reached: str | None = None
    kcc_event: dict[str, str] = field(default_factory=dict)
    kcc_at: float | None = None
    fallback: bool = False
    fallback_failed: bool = False
    unknown_number: bool = False
    originate_failed: str | None = None
    caller_channel: str | None = None
    alive: dict[str, str] = field(default_factory=dict)  # Uniqueid → channel name
    gone: set[str] = field(default_factory=set)

    def feed(self, message: Message, at: float = 0.0) -> None:
        """Take one event of this call (``at``: seconds since the originate)."""
        if len(self.events) < MAX_CALL_EVENTS:
            self.events.append(message.as_dict())
        else:
            self.events_dropped += 1
        name = message.event
        if name == "OriginateResponse":
            if (message.get("Response") or "").lower() != "success":
                self.originate_failed = message.get("Reason") or "failure"
            return
        uid = message.get("Uniqueid")
        if uid:
            if name == "Hangup":
                self.alive.pop(uid, None)
                self.gone.add(uid)
            elif uid not in self.gone:
                self.alive[uid] = message.get("Channel") or ""
            if uid == self.call_id and message.get("Channel"):
                self.caller_channel = message.get("Channel")
        if name != "UserEvent":
            return
        kind = message.get("UserEvent") or ""
        if kind.startswith("Fourteen"):  # the router's marks ride on any of its events (see channelvars)
            if stage := message.get(cv.MARK_STAGE):
                self.stages.append(stage)
            if listen := message.get(cv.MARK_LISTEN):
                self.listens.append(listen)
        if kind == "FourteenPrompt":
            self.prompts.append(message.get("Prompt") or "")
        elif kind == "FourteenDecision":
            self.decisions.append(_fields(message, "Decision", "Municipality", "Utterance"))
        elif kind == "FourteenDivert":
            self.diverts.append(_fields(message, "Destination", "Municipality", "Route", "DialStatus"))
        elif kind == "KCCReached" and self.reached is None:
            self.reached = message.get("Municipality") or ""
            self.kcc_event = message.as_dict()
            self.kcc_at = at
        elif kind == "FourteenFallback":
            self.fallback = True
        elif kind == "FourteenFallbackFailed":
            self.fallback = self.fallback_failed = True
        elif kind == "FourteenUnknownNumber":
            self.unknown_number = True

    @property
    def ended(self) -> bool:
        """Every channel of the call has hung up (or the originate failed before any existed)."""
        return bool(self.gone or self.originate_failed) and not self.alive


def _fields(message: Message, *names: str) -> dict[str, str]:
    return {name.lower(): message.get(name) or "" for name in names}


@dataclass
class CallResult:
    """Where a test call went; :meth:`as_json` for machines, :meth:`summary` for people."""

    call_id: str
    dialled: str
    reached: str | None
    prompts: list[str]
    stages: list[str]
    listens: list[str]
    decisions: list[dict[str, str]]
    diverts: list[dict[str, str]]
    hangup_stage: str | None
    fallback: bool
    fallback_failed: bool
    unknown_number: bool
    kcc_event: dict[str, str]
    events: list[dict[str, str]]
    steps: list[dict[str, Any]]  # what the caller did, with timings
    warnings: list[str]
    timed_out: bool
    seconds: float
    kcc_seconds: float | None = None

    @classmethod
    def from_log(
        cls,
        call: CallLog,
        *,
        steps: list[dict[str, Any]],
        warnings: list[str],
        timed_out: bool,
        seconds: float,
    ) -> CallResult:
        return cls(
            call_id=call.call_id,
            dialled=call.dialled,
            reached=call.reached,
            prompts=list(call.prompts),
            stages=list(call.stages),
            listens=list(call.listens),
            decisions=list(call.decisions),
            diverts=list(call.diverts),
            hangup_stage=call.stages[-1] if call.stages else None,
            fallback=call.fallback,
            fallback_failed=call.fallback_failed,
            unknown_number=call.unknown_number,
            kcc_event=dict(call.kcc_event),
            events=list(call.events),
            steps=steps,
            warnings=warnings,
            timed_out=timed_out,
            seconds=round(seconds, 3),
            kcc_seconds=None if call.kcc_at is None else round(call.kcc_at, 3),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "dialled": self.dialled,
            "reached": self.reached,
            "prompts": self.prompts,
            "hangup_stage": self.hangup_stage,
            "stages": self.stages,
            "decisions": self.decisions,
            "fallback": self.fallback,
            "seconds": self.seconds,
            "timed_out": self.timed_out,
            "warnings": self.warnings,
        }

    def summary(self) -> str:
        if self.reached is not None:
            head = f"{self.dialled} → KCC {self.reached} reached after {self.kcc_seconds} s"
        elif self.unknown_number:
            head = f"{self.dialled} → refused: not a 14+ number (FourteenUnknownNumber)"
        elif self.timed_out:
            head = f"{self.dialled} → no KCC reached: timed out after {self.seconds} s"
        else:
            stage = f" in stage {self.hangup_stage}" if self.hangup_stage else ""
            head = f"{self.dialled} → no KCC reached: call ended{stage} after {self.seconds} s"
        lines = [head]
        if self.stages:
            lines.append(f"  stages:    {' → '.join(self.stages)}")
        if self.prompts:
            lines.append(f"  prompts:   {', '.join(self.prompts)}")
        for d in self.decisions:
            heard = f' ("{d["utterance"]}")' if d.get("utterance") else ""
            lines.append(f"  decision:  {d['decision']} {d['municipality']}{heard}".rstrip())
        for d in self.diverts:
            status = f" [{d['dialstatus']}]" if d.get("dialstatus") else ""
            lines.append(f"  divert:    {d['destination']} ({d['route']}){status}")
        if self.fallback:
            lines.append(f"  fallback:  yes{' (divert failed)' if self.fallback_failed else ''}")
        for s in self.steps:
            lines.append(f"  caller:    {s['step']} at {s['at']} s, {s['seconds']} s{_step_note(s)}")
        lines.extend(f"  warning:   {w}" for w in self.warnings)
        return "\n".join(lines)


def _step_note(record: dict[str, Any]) -> str:
    if "played_seconds" in record:
        return f" (played {record['played_seconds']} of {record.get('audio_seconds')} s)"
    return ""


# ------------------------------------------------------------------------------------------- the call
@dataclass
class _Prepared:
    path: str = ""  # as Asterisk sees it, without extension
    audio_seconds: float | None = None
    fraction: str = ""  # wait: file for the part under a second


class _Call:
    """One call in progress: its bookkeeping plus what the caller's AGI script needs to decide."""

    def __init__(
        self,
        log_: CallLog,
        steps: Sequence[Step],
        prepared: dict[int, _Prepared],
        *,
        listen_timeout: float,
        listen_delay: float,
        quiet: str = "silence/1",
    ) -> None:
        self.log = log_
        self.steps = list(steps)
        self.prepared = prepared
        self.listen_timeout = listen_timeout
        self.listen_delay = listen_delay
        self.quiet = quiet  # a short silence file: the caller's pauses, in steps the poll can react in
        self.quiet_works = True
        self.started = time.monotonic()
        self.listens_used = 0
        self.timed_out = False
        self.step_log: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.caller_done = asyncio.Event()
        self.caller_started = False

    def now(self) -> float:
        return time.monotonic() - self.started

    @property
    def over(self) -> bool:
        """Nothing more for the caller to do: the KCC answered, the call ended, or time ran out."""
        return self.log.reached is not None or self.log.ended or self.timed_out

    def feed(self, message: Message) -> None:
        self.log.feed(message, round(self.now(), 3))

    def take_listen(self) -> Literal["listen", "over"] | None:
        """``over``; ``listen`` when the router has listened since the last time (several unread count as
        one: the caller answers the latest); None while neither."""
        if self.over:
            return "over"
        if len(self.log.listens) > self.listens_used:
            self.listens_used = len(self.log.listens)
            return "listen"
        return None


class Caller:
    """Places test calls: one FastAGI server (the callers' handsets) and one AMI connection, any number of
    concurrent calls (each caller AGI session finds its script by ``CALLER_ID``).

        async with Caller(ami) as caller:
            result = await caller.call("140113", [press("2")])
    """

    def __init__(
        self,
        ami: AmiClient,
        sounds: AsteriskSounds | None = None,
        *,
        agi_host: str = "127.0.0.1",
        agi_port: int = 0,
        incoming_context: str = "fourteen-incoming",
        caller_context: str = "fourteen-caller",
    ) -> None:
        self.ami = ami
        self.sounds = sounds or AsteriskSounds.sandbox()
        self.agi = AgiServer(agi_host, agi_port)
        self.agi.route("caller")(self._on_caller)
        self.incoming_context = incoming_context
        self.caller_context = caller_context
        self._calls: dict[str, _Call] = {}
        self._started = False
        self._keys_of: tuple[Message | None, frozenset[str]] = (None, frozenset())

    async def start(self) -> None:
        if not self._started:
            await self.agi.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.agi.stop(grace=2.0)
            self._started = False

    async def __aenter__(self) -> Caller:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def call(
        self,
        number: str,
        steps: Sequence[Step] = (),
        *,
        timeout: float = 60.0,
        listen_timeout: float = 15.0,
        listen_delay: float = 0.3,
        hangup_on_kcc: bool = True,
        caller_id: str | None = None,
        router_url: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> CallResult:
        """Place one call and follow it to its end (all its channels gone) or ``timeout`` seconds.

        ``listen_delay``: after a ``Listen`` mark the caller reacts this much later, as a person would
        (and so the router's STREAM FILE is surely reading digits). ``router_url`` (default: what
        :func:`route_calls_to` set, else the dialplan's own ``FOURTEEN_AGI_URL``) sends this call to
        that router: a channel variable of the same name shadows the dialplan global, and Local channels
        copy it to the half that runs ``fourteen-incoming`` — so test runs sharing one Asterisk each reach
        their own router. ``variables``: more channel variables the same way (e.g.
        ``FOURTEEN_DEFAULT_DESTINATION`` for the dialplan's fallback); values must not contain commas.
        """
        if not _NUMBER.match(number):
            raise ValueError(f"not a dialable number: {number!r}")
        await self.start()
        call_id = f"fourteen-call-{uuid.uuid4().hex[:16]}"
        prepared = await self._prepare(steps)
        call = _Call(
            CallLog(call_id, number),
            steps,
            prepared,
            listen_timeout=listen_timeout,
            listen_delay=listen_delay,
            quiet=await self._silence(QUIET_SECONDS),
        )
        originate_id = f"{call_id}-originate"
        channel_vars = [f"CALLER_AGI_PORT={self.agi.port}", f"CALLER_ID={call_id}"]
        if self.agi.host not in ("127.0.0.1", "0.0.0.0", "::"):
            channel_vars.append(f"CALLER_AGI_HOST={self.agi.host}")
        if router_url := router_url or _router_url:
            channel_vars.append(f"{cv.AGI_URL}={router_url}")
        for name, value in (variables or {}).items():
            if "," in value or "\n" in value:
                raise ValueError(f"channel variable {name}: commas and line breaks cannot be passed")
            channel_vars.append(f"{name}={value}")
        extra: dict[str, object] = {"CallerID": caller_id} if caller_id else {}

        def ours(m: Message) -> bool:
            keys = self._call_keys(m)
            return call_id in keys or originate_id in keys

        self._calls[call_id] = call
        subscription = self.ami.subscribe(ours, maxsize=MAX_CALL_EVENTS * 2)
        try:
            await self.ami.originate(
                f"Local/{number}@{self.incoming_context}",
                ChannelId=call_id,
                ActionID=originate_id,
                Context=self.caller_context,
                Exten="agi",
                Priority="1",
                Timeout=int(timeout * 1000),
                Variable=channel_vars,  # one header each: Asterisk splits a Variable value on commas
                **extra,
            )
            try:
                async with asyncio.timeout(timeout):
                    await self._follow(call, subscription, hangup_on_kcc)
            except TimeoutError:
                call.timed_out = True
                call.warnings.append(f"the call did not end within {timeout} s: hung up")
                await self._hangup_all(call)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await self._follow(call, subscription, False)
            seconds = call.now()
            if call.caller_started:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.caller_done.wait(), 5.0)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._hangup_all(call))
            raise
        finally:
            subscription.close()
            self._calls.pop(call_id, None)
        if subscription.dropped or call.log.events_dropped:
            call.warnings.append("some AMI events of this call were dropped (too many)")
        if steps and not call.caller_started:
            why = call.log.originate_failed or "never answered"
            call.warnings.append(f"the caller's side never ran ({why}): no steps were taken")
        return CallResult.from_log(
            call.log, steps=call.step_log, warnings=call.warnings, timed_out=call.timed_out, seconds=seconds
        )

    def _call_keys(self, m: Message) -> frozenset[str]:
        """An event's Linkedid, Uniqueid and ActionID, worked out once per event: every call in progress asks
        (one subscription each), and with hundreds of concurrent calls scanning the fields each time costs
        more than the rest of the caller."""
        last, keys = self._keys_of
        if last is not m:
            keys = frozenset(v for k, v in m.fields if k.lower() in _CALL_KEYS)
            self._keys_of = (m, keys)
        return keys

    async def _follow(self, call: _Call, subscription: Subscription, hangup_on_kcc: bool) -> None:
        """Feed the call's events into its log until it has ended; hang up when the KCC answers."""
        hung_up = False
        while not call.log.ended:
            call.feed(await subscription.get())
            if hangup_on_kcc and call.log.reached is not None and not hung_up:
                hung_up = True
                if call.log.caller_channel:
                    with contextlib.suppress(AmiError):
                        await self.ami.hangup(call.log.caller_channel)

    async def _hangup_all(self, call: _Call) -> None:
        channels = [call.log.caller_channel] if call.log.caller_channel else []
        channels += [name for name in call.log.alive.values() if name and name not in channels]
        for channel in channels:
            with contextlib.suppress(AmiError):
                await self.ami.hangup(channel)

    # -- audio ---------------------------------------------------------------------------------------
    async def _prepare(self, steps: Sequence[Step]) -> dict[int, _Prepared]:
        """Make every file the caller will play before dialling, so synthesis never delays a reply."""
        prepared: dict[int, _Prepared] = {}
        for index, step in enumerate(steps):
            if step.kind == "say":
                name = _digest("say", step.lang, step.value)
                out = self.sounds.host_dir / f"{name}.wav"
                if not out.exists():
                    await audio.synthesize_utterance(step.value, step.lang, out, rate=SAMPLE_RATE)
                prepared[index] = _Prepared(self.sounds.asterisk_path(name), _wav_seconds(out))
            elif step.kind == "play":
                found = await asyncio.to_thread(_read_if_file, step.value)
                if found is not None:
                    name = _digest("play", hashlib.sha256(found[1]).hexdigest())
                    out = self.sounds.host_dir / f"{name}.wav"
                    if not out.exists():
                        await _to_asterisk_wav(found[0], out)
                    prepared[index] = _Prepared(self.sounds.asterisk_path(name), _wav_seconds(out))
                else:  # a sound Asterisk has, e.g. "digits/1" or "/usr/share/…/beep"
                    prepared[index] = _Prepared(re.sub(r"\.(wav|gsm|ulaw|alaw|sln)$", "", step.value))
            elif step.kind == "wait":
                fraction = round(step.seconds - math.floor(step.seconds), 2)
                if fraction >= 0.05:
                    prepared[index] = _Prepared(fraction=await self._silence(fraction))
        return prepared

    async def _silence(self, seconds: float) -> str:
        name = _digest("silence", f"{seconds:.2f}")
        out = self.sounds.host_dir / f"{name}.wav"
        if not out.exists():
            await audio.silence(out, seconds, rate=SAMPLE_RATE)
        return self.sounds.asterisk_path(name)

    # -- the caller's side (FastAGI) ----------------------------------------------------------------
    async def _on_caller(self, session: AgiSession) -> None:
        call_id = await session.get_variable("CALLER_ID") or ""
        call = self._calls.get(call_id)
        if call is None:  # a stale or foreign call: do not keep it on the line
            log.warning("caller_unknown_call", extra={"fields": {"caller_id": call_id[:60]}})
            await session.hangup()
            return
        call.caller_started = True
        try:
            await self._run_script(call, session)
        except Hangup:
            pass
        finally:
            call.caller_done.set()

    async def _run_script(self, call: _Call, session: AgiSession) -> None:
        for index, step in enumerate(call.steps):
            if call.over:
                rest = ", ".join(str(s) for s in call.steps[index:])
                call.warnings.append(f"not done, the call was over first: {rest}")
                return
            if step.kind in LISTENING_STEPS:
                heard = await self._await_listen(call, session)
                if heard == "over":
                    rest = ", ".join(str(s) for s in call.steps[index:])
                    call.warnings.append(f"not done, the call was over before the router listened: {rest}")
                    return
                if heard == "timeout":
                    call.warnings.append(
                        f"no Listen mark within {call.listen_timeout} s before '{step}': done anyway"
                    )
                else:  # react as a person would, and so the router's STREAM FILE surely reads digits
                    end = call.now() + call.listen_delay
                    while call.now() < end:
                        await _quiet(call, session)
            if step.kind == "hangup":
                call.step_log.append({"step": str(step), "at": round(call.now(), 3), "seconds": 0.0})
                await session.hangup()
                return
            await self._perform(call, session, step, call.prepared.get(index, _Prepared()))
        while True:  # stay on the line, as quietly and steadily as a phone, until the call ends
            await _quiet(call, session)

    @staticmethod
    async def _await_listen(call: _Call, session: AgiSession) -> Literal["listen", "timeout", "over"]:
        """Until the router's next Listen mark, sending silence meanwhile: an idle AGI channel sends no
        frames at all, unlike a phone, and the router's silence detection would never fire."""
        deadline = call.now() + call.listen_timeout
        while (heard := call.take_listen()) is None:
            if call.now() >= deadline:
                return "timeout"
            await _quiet(call, session)
        return heard

    async def _perform(self, call: _Call, session: AgiSession, step: Step, prepared: _Prepared) -> None:
        started = call.now()
        record: dict[str, Any] = {"step": str(step), "at": round(started, 3)}
        call.step_log.append(record)
        try:
            if step.kind == "press":
                await session.exec("SendDTMF", step.value, timeout=30.0 + len(step.value))
            elif step.kind in ("say", "play"):
                result = await _stream(session, prepared.path)
                endpos = _endpos(result)
                record.update(file=prepared.path, result=result.result, endpos=endpos)
                record["played_seconds"] = round(endpos / SAMPLE_RATE, 3)
                record["audio_seconds"] = prepared.audio_seconds
                if result.result < 0 and endpos == 0 and not call.over:
                    call.warnings.append(f"'{step}': Asterisk could not play {prepared.path}")
            elif step.kind == "wait":
                for _ in range(math.floor(step.seconds)):
                    await _stream(session, "silence/1")
                if prepared.fraction:
                    await _stream(session, prepared.fraction)
        finally:
            record["seconds"] = round(call.now() - started, 3)


async def _quiet(call: _Call, session: AgiSession) -> None:
    """One short pause of timer-driven silence (``EXEC Wait`` when Asterisk cannot read the file)."""
    if call.quiet_works:
        result = await _stream(session, call.quiet)
        if result.result >= 0 or _endpos(result) > 0:
            return
        call.quiet_works = False
        call.warnings.append(f"Asterisk cannot play {call.quiet} (sounds dirs right?): pauses send no frames")
    await session.exec("Wait", f"{QUIET_SECONDS}")


async def _stream(session: AgiSession, path: str) -> AgiResult:
    """STREAM FILE without escape digits; returns the raw result (``-1``: could not play or hung up)."""
    result = await session.command("STREAM FILE", path, "", timeout=600.0)
    if session.hung_up:
        raise Hangup("caller's channel hung up")
    return result


def _endpos(result: AgiResult) -> int:
    m = _ENDPOS.search(result.raw)
    return int(m.group(1)) if m else 0


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join((_AUDIO_VERSION, *parts)).encode()).hexdigest()[:20]


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            return round(w.getnframes() / w.getframerate(), 3)
    except (OSError, wave.Error, EOFError):
        return None


def _read_if_file(path: str) -> tuple[str, bytes] | None:
    """(the path with ``~`` expanded, its content) when ``path`` is a file on this host."""
    source = Path(path).expanduser()
    return (str(source), source.read_bytes()) if source.is_file() else None


async def _to_asterisk_wav(source: str, out: Path) -> None:
    """Any audio sox reads → 8 kHz mono 16-bit WAV (what Asterisk's ``wav`` format plays)."""
    audio.require_tools(("sox",))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    argv = ["sox", "-q", source, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16"]
    argv += ["-e", "signed-integer", "-t", "wav", str(tmp)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise audio.AudioError(f"sox cannot convert {source}: {err.decode(errors='replace').strip()}")
    tmp.replace(out)


_router_url: str | None = None


@contextlib.contextmanager
def route_calls_to(url: str | None) -> Iterator[str | None]:
    """Within this block, test calls from this process go to the router at ``url`` (an ``agi://…`` URL;
    None: the dialplan's default) unless a call names its own. The dialplan's global stays as it is, so
    test runs sharing one Asterisk do not take each other's calls."""
    global _router_url
    old, _router_url = _router_url, url
    try:
        yield url
    finally:
        _router_url = old


async def place_call(
    number: str,
    steps: Sequence[Step] = (),
    *,
    ami: AmiParams | AmiClient | None = None,
    asterisk_sounds: AsteriskSounds | None = None,
    timeout: float = 60.0,
    listen_timeout: float = 15.0,
    listen_delay: float = 0.3,
    hangup_on_kcc: bool = True,
    caller_id: str | None = None,
    agi_host: str = "127.0.0.1",
    router_url: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> CallResult:
    """Place one test call (see the module docstring) and return where it went.

    ``ami``: an open :class:`AmiClient` to share, or where to connect (default :class:`AmiParams`).
    ``asterisk_sounds``: where the caller's audio goes (default: the sandbox's ``sounds/testcall``).
    """
    client = ami if isinstance(ami, AmiClient) else await (ami or AmiParams()).connect()
    try:
        async with Caller(client, asterisk_sounds, agi_host=agi_host) as caller:
            return await caller.call(
                number,
                steps,
                timeout=timeout,
                listen_timeout=listen_timeout,
                listen_delay=listen_delay,
                hangup_on_kcc=hangup_on_kcc,
                caller_id=caller_id,
                router_url=router_url,
                variables=variables,
            )
    finally:
        if client is not ami:
            await client.close()


# ------------------------------------------------------------------------------------------------ CLI
class _StepAction(argparse.Action):
    """Appends (kind, value) to ``namespace.steps``, so the steps keep their command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        kind = str(self.const)
        value = "" if values is None or values == [] else str(values)
        try:
            Step(kind, value)  # type: ignore[arg-type]  # validate now, for a usage error that names the option
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        steps = list(getattr(namespace, "steps", None) or [])  # a copy: argparse shares defaults
        steps.append((kind, value))
        namespace.steps = steps


def steps_from_args(args: argparse.Namespace) -> list[Step]:
    """The ``--say/--press/--play/--wait/--hangup`` options of ``fourteen call``, in order."""
    pairs = getattr(args, "steps", None) or []
    return [Step(kind, value, args.lang) if kind == "say" else Step(kind, value) for kind, value in pairs]


def register_call_command(sub: Any) -> None:
    """``fourteen call NUMBER [--say TEXT]... [--press DIGITS]... [--wait S] [--hangup] …``."""
    p = sub.add_parser(
        "call",
        help="place a test call through Asterisk and report where it went",
        description="Originate a call to NUMBER (e.g. 140113) through Asterisk (AMI from FOURTEEN_AMI_*), "
        "play the caller's part in command-line order, and report the stages, prompts, decisions and the "
        "KCC reached. press/say wait for the router to listen first. Exit 0 when a KCC was reached.",
    )
    p.add_argument("number", help="what the caller dials, e.g. 140113")
    steps = p.add_argument_group("caller steps (in the order given)")
    for kind, metavar, text in (
        ("say", "TEXT", "say TEXT (espeak-ng, in --lang)"),
        ("press", "DIGITS", "press keys (0-9 * # A-D; w = 0.5 s pause)"),
        ("play", "FILE", "play a WAV file (or a sound name Asterisk has)"),
        ("wait", "S", "stay silent for S seconds"),
        ("hangup", None, "hang up (a caller who gives up)"),
    ):
        more: dict[str, Any] = {"metavar": metavar} if metavar else {"nargs": 0}
        steps.add_argument(f"--{kind}", dest="steps", action=_StepAction, const=kind, help=text, **more)
    p.add_argument("--lang", default="nl", choices=LANGUAGES, help="language of --say (default nl)")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.add_argument("--events", action="store_true", help="also print every AMI event of the call")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after S seconds (default 60)")
    p.add_argument(
        "--listen-timeout",
        type=float,
        default=15.0,
        help="how long press/say wait for the router to listen (default 15)",
    )
    p.add_argument("--caller-id", help="the caller's number as the router sees it")
    p.add_argument(
        "--router",
        metavar="URL",
        help="send this call to the router at URL (agi://host:port/route) instead of the dialplan's own",
    )
    p.add_argument(
        "--sounds-dir",
        type=Path,
        help="where to write the caller's audio (default: the sandbox's sounds/testcall)",
    )
    p.add_argument(
        "--asterisk-sounds-dir", help="the same directory as Asterisk sees it (default: --sounds-dir)"
    )
    p.set_defaults(handler=_cmd_call, steps=None)


async def _cmd_call(args: argparse.Namespace, settings: Settings) -> int:
    sounds = None
    if args.sounds_dir is not None:
        host_dir = args.sounds_dir.resolve()
        sounds = AsteriskSounds(host_dir, args.asterisk_sounds_dir or str(host_dir))
    try:
        result = await place_call(
            args.number,
            steps_from_args(args),
            ami=AmiParams.from_settings(settings),
            asterisk_sounds=sounds,
            timeout=args.timeout,
            listen_timeout=args.listen_timeout,
            caller_id=args.caller_id,
            router_url=args.router,
        )
    except (AmiError, audio.AudioToolMissing, audio.AudioError, ValueError, OSError) as exc:
        print(f"fourteen call: {exc}", file=sys.stderr)
        if isinstance(exc, AmiError):
            print("  (the sandbox: `fourteen sandbox up`; AMI address: FOURTEEN_AMI_ADDR)", file=sys.stderr)
        return 1
    if args.json:
        out = result.as_json()
        if args.events:
            out["events"] = result.events
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(result.summary())
        if args.events:
            for e in result.events:
                print("  " + " ".join(f"{k}={v}" for k, v in e.items()))
    return 0 if result.reached is not None else 1


def register_sandbox_command(sub: Any) -> None:
    """``fourteen sandbox up|down|status|rx CMD|provision``: the Asterisk sandbox (root only)."""
    p = sub.add_parser(
        "sandbox",
        help="the project's Asterisk sandbox (a cached Debian chroot; needs root)",
        description="Start, stop or inspect the real Asterisk 22 that tests and `fourteen call` use "
        "(FOURTEEN_SANDBOX_ROOT, default /var/cache/fourteen/asterisk-chroot).",
    )
    p.add_argument("action", choices=["up", "down", "status", "rx", "provision"])
    p.add_argument("cli", nargs="*", help="rx: the Asterisk CLI command, e.g. 'core show channels'")
    p.add_argument("--json", action="store_true", help="status (and up) as JSON")
    p.set_defaults(handler=_cmd_sandbox)


async def _cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from . import sandbox

    cfg = sandbox.SandboxConfig()
    try:
        if args.action == "rx":
            if not args.cli:
                print("fourteen sandbox rx: give the Asterisk CLI command", file=sys.stderr)
                return 2
            print(await asyncio.to_thread(sandbox.rx, cfg, " ".join(args.cli)), end="")
            return 0
        if args.action == "down":
            await asyncio.to_thread(sandbox.down, cfg)
        elif args.action == "provision":
            await asyncio.to_thread(sandbox.provision, cfg)
        info = await asyncio.to_thread(sandbox.up if args.action == "up" else sandbox.status, cfg)
    except sandbox.SandboxError as exc:
        print(f"fourteen sandbox: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2) if args.json else _status_text(info))
    return 0


def _status_text(info: dict[str, Any]) -> str:
    version = (info["version"] or "").split(" built ")[0]
    state = f"running (pid {info['pid']}), {version}" if info["running"] else "stopped"
    if "boot_seconds" in info:
        state += f", booted in {info['boot_seconds']} s"
    ports = info["ports"]
    provisioned = "" if info["provisioned"] else " (not provisioned: `fourteen sandbox up` makes it)"
    return "\n".join(
        [
            f"Asterisk sandbox: {state}",
            f"  chroot: {info['root']}{provisioned}",
            f"  AMI {ports['ami']}  HTTP/ARI {ports['http']}  SIP {ports['sip']}  RTP {ports['rtp']}",
            f"  router expected at {ports['agi_target']} (FastAGI)",
            f"  sounds: {info['sounds_dir']}",
        ]
    )
