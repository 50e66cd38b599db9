"""One call, from answer to divert: the router's state machine.

    answer → greeting → by the area code's mode:
      single  → divert (or announce that the municipality is not connected)
      menu    → DTMF menu (≤ 7 options a page, "#" for more, "*" to repeat, "0" for a person)
      speech  → ask → listen → resolve → route | confirm | retry once | menu fallback
    → divert to the KCC (ringback, context passed along) → on failure: overflow, else apology + number

Every step has a timeout and a limited number of attempts, every branch ends at a person or with a spoken
explanation, and "0" reaches a person at any point. Each stage, prompt and decision is logged with the call
id and announced as an AMI UserEvent, so monitoring and tests see what the caller heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from . import channelvars as cv
from . import openinghours
from . import prompts as catalogue
from .agi import AgiError, AgiSession, Hangup
from .logs import event
from .metrics import Metrics
from .numberplan import Municipality, NumberPlan
from .plancache import Snapshot
from .recognizer import Heard, NoRecognizer, Recognizer
from .resolver import Resolution

log = logging.getLogger(__name__)

KEYS = "0123456789*#"
PAGE = 7  # menu options read per page
MENU_ATTEMPTS = 3
SPEECH_ATTEMPTS = 2  # then the menu: never a third "I did not understand"
DIGIT_WAIT_MS = 5000  # after a menu page: time to press
LISTEN_TIMEOUT = 5.0  # silence after the prompt before we count it as no input
YES_WORDS = frozenset({"ja", "jawel", "jazeker", "klopt", "correct", "precies", "juist", "yes", "yeah"})
NO_WORDS = frozenset({"nee", "niet", "neen", "no", "nope"})
SPOKEN_LANGUAGES = {
    "en": frozenset({"english", "engels", "engelsk"}),
    "fy": frozenset({"frysk", "fries", "friesch"}),
    "nl": frozenset({"nederlands", "dutch", "hollands"}),
}
DIAL_STATUSES = frozenset({"ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL", "DONTCALL"})
REFER_PREFIX = "refer:"  # a KCC destination "refer:PJSIP/…" is diverted with SIP REFER (Transfer)
IVR_LIMIT = 180.0  # seconds in the IVR before the caller is put through to a person regardless
NOT_CONNECTED_PAUSE_MS = 3000  # time to hang up before the offered transfer


class Stage(StrEnum):
    GREETING = "greeting"
    LANGUAGE = "language"
    MENU = "menu"
    SPEECH = "speech"
    CONFIRM = "confirm"
    ANNOUNCE = "announce"
    TRANSFER = "transfer"
    CONNECTED = "connected"
    DONE = "done"


class PromptSource(Protocol):
    async def path(self, p: catalogue.Prompt) -> str: ...

    def stock_fallback(self, prompt_id: str) -> str: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FlowConfig:
    default_destination: str = "Local/default@kcc"
    operator_destination: str = ""
    dial_timeout: int = 60
    ivr_limit: float = IVR_LIMIT
    clock: Callable[[], datetime] = field(default=_utcnow)  # opening hours are checked against it

    @property
    def operator(self) -> str:
        return self.operator_destination or self.default_destination


@dataclass
class CallState:
    """What the call has been through so far (later written as the call record)."""

    dialled: str
    area_code: str | None = None
    lang: str = "nl"
    mode: str = ""
    stage: Stage = Stage.GREETING
    attempts: int = 0
    utterances: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    municipality: str = ""
    destination: str = ""
    done: bool = False  # FOURTEEN_DONE set: the router answers for the call, the dialplan does not fall back
    dial_status: str = ""
    route: str = ""
    hung_up: bool = False
    last_heard: Heard | None = None
    started: float = field(default_factory=time.monotonic)
    # For the call record: every stage entered ({stage, at: seconds since start, result: how it ended}), the
    # last resolution's candidates, and who ended the call in which stage (see CallFlow._finish).
    steps: list[dict[str, object]] = field(default_factory=list)
    candidates: list[dict[str, object]] = field(default_factory=list)
    hangup_by: str = ""  # caller | kcc | router | unknown
    hangup_stage: str = ""  # a Stage value, or "transfer-ringing" (the caller gave up while the KCC rang)


class CallFlow:
    def __init__(
        self,
        session: AgiSession,
        snapshot: Snapshot,
        prompts: PromptSource,
        recognizer: Recognizer | None = None,
        config: FlowConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.s = session
        self.plan: NumberPlan = snapshot.plan
        self.resolver = snapshot.resolver
        self.prompts = prompts
        self.recognizer = recognizer or NoRecognizer()
        self.config = config or FlowConfig()
        self.state = CallState(dialled=session.env.get("agi_extension", ""))
        self.m = metrics or _default_metrics()
        self._answered_at: float | None = None
        self._decisions_seen = 0
        self._marks: dict[str, str] = {}  # Stage/Listen, sent with the router's next UserEvent

    # -- entry point -------------------------------------------------------------------------------
    async def run(self) -> CallState:
        st = self.state
        event(log, "call_start", dialled=st.dialled, caller_present=bool(self.s.env.get("agi_callerid")))
        self.m.active.inc()
        try:
            await self._run()
        finally:
            self.m.active.dec()
            self._count_call()
        return st

    def _count_call(self) -> None:
        st = self.state
        area = st.area_code or "unknown"
        outcome = st.route or ("hangup" if st.hung_up else "none")
        if st.hung_up and st.stage not in {Stage.CONNECTED, Stage.DONE}:
            outcome = "hangup"
            self.m.hangups.labels(area, st.hangup_stage or st.stage.value).inc()
        self.m.calls.labels(area, st.mode or "none", outcome).inc()
        if st.attempts:
            self.m.attempts.labels(st.mode or "none").observe(st.attempts)

    async def _run(self) -> None:
        st = self.state
        try:
            try:
                async with asyncio.timeout(self.config.ivr_limit):
                    await self._interactive()
            except TimeoutError:
                event(log, "ivr_time_limit", logging.WARNING, stage=st.stage)
                await self._to_person("ivr_time_limit")
        except Hangup:
            st.hung_up = True
            event(log, "caller_hung_up", stage=st.stage, seconds=round(time.monotonic() - st.started, 2))
        except Exception as exc:  # our fault: the caller must still reach a person
            log.exception("flow_error", extra={"fields": {"stage": st.stage}})
            await self._rescue(exc)
        await self._finish()
        event(
            log,
            "call_end",
            stage=st.stage,
            route=st.route,
            municipality=st.municipality,
            dial_status=st.dial_status,
            seconds=round(time.monotonic() - st.started, 2),
        )

    async def _interactive(self) -> None:
        st = self.state
        code = self.plan.area_code(st.dialled)
        await self.s.answer()
        self._answered_at = time.monotonic()
        await self._stage(Stage.GREETING)
        if code is None:
            st.route = "unknown_number"
            await self.say("unknown_number")
            await self._to_person("unknown_number", announce=True)
            return
        st.area_code = code.code
        st.mode = self.plan.mode(code.code) or "menu"
        pressed = await self.say("greeting", escape=KEYS)
        if st.mode == "single":
            await self._single()
            return
        speech = st.mode == "speech" and self.recognizer.available
        if st.mode == "speech" and not speech:
            event(log, "speech_unavailable", logging.INFO, reason=self.recognizer.reason)
        if not pressed and not speech:  # by speech, saying "English" (or the key) switches instead
            pressed = await self._offer_languages()
        if pressed and self._switch_language(pressed):
            await self.say("language_switched")
            pressed = None
        if pressed:
            await self._menu(first_key=pressed)
        elif speech:
            await self._speech()
        else:
            await self._menu()

    # -- modes -------------------------------------------------------------------------------------
    async def _single(self) -> None:
        assert self.state.area_code is not None
        connected = self.plan.connected_members(self.state.area_code)
        if connected:
            await self._divert(connected[0], "single")
        else:
            await self._not_connected(self.plan.members(self.state.area_code)[0])

    async def _menu(self, first_key: str | None = None, only: list[Municipality] | None = None) -> None:
        """DTMF menu over the area code's municipalities (or ``only`` these, for a same-name place)."""
        st = self.state
        assert st.area_code is not None
        await self._stage(Stage.MENU)
        members = only or self.plan.members(st.area_code)
        if only:  # a choice between a few: number them 1..n
            digits = {m.cbs_code: str(i) for i, m in enumerate(members, start=1)}
        else:
            digits = {md.cbs_code: md.menu_digit for md in self.plan.area_codes[st.area_code].members}
        choices = [(digits[m.cbs_code], m) for m in members if digits.get(m.cbs_code)]
        pages = [choices[i : i + PAGE] for i in range(0, len(choices), PAGE)] or [[]]
        key = first_key
        page = 0
        for attempt in range(MENU_ATTEMPTS):
            st.attempts += 1
            if key is None:
                key = await self._read_menu(pages[page], more=page + 1 < len(pages))
            if key is None:
                self.m.no_input.labels(st.area_code, "menu").inc()
                if attempt < MENU_ATTEMPTS - 1:
                    await self.say("no_input")
                continue
            if key == "#":
                page = (page + 1) % len(pages)
                key = None
                continue
            if key == "*":
                key = None
                continue
            if self._switch_language(key):
                await self.say("language_switched")
                key = None
                continue
            if key == "0":
                self.m.operator.labels(st.area_code, "dtmf").inc()
                await self._decide_log("operator", None, f"dtmf {key}")
                await self._to_person("operator")
                return
            chosen = next((m for d, m in choices if d == key), None)
            if chosen is not None:
                await self._decide_log("route", chosen, f"dtmf {key}")
                if chosen.status == "not_connected":
                    await self._not_connected(chosen)
                else:
                    await self._divert(chosen, "menu")
                return
            await self.say("invalid_choice")
            key = None
        await self._to_person("menu_failed")

    async def _read_menu(self, page: list[tuple[str, Municipality]], *, more: bool) -> str | None:
        await self._listen("menu")
        key = await self.say("ask_municipality_menu_intro", escape=KEYS)
        for digit, m in page:
            if key:
                break
            key = await self.say("menu_option", escape=KEYS, name=m.say_name, digit=digit)
        if not key and more:
            key = await self.say("menu_more", escape=KEYS)
        if not key:
            await self._flush_marks()
            key = await self.s.wait_for_digit(DIGIT_WAIT_MS)
        return key

    async def _speech(self) -> None:
        st = self.state
        assert st.area_code is not None
        for attempt in range(SPEECH_ATTEMPTS):
            st.attempts += 1
            await self._stage(Stage.SPEECH)
            heard = await self._hear("ask_municipality" if attempt == 0 else "retry", "speech")
            if heard.dtmf:
                self.m.dtmf_fallbacks.labels(st.area_code, "key_pressed").inc()
                await self._menu(first_key=heard.dtmf)
                return
            if heard.reason in {"error", "unavailable"}:
                event(log, "speech_failed", logging.WARNING, reason=heard.reason)
                fallback = heard.reason
                break
            if heard.reason == "silence":
                self.m.no_input.labels(st.area_code, "speech").inc()
            if self._spoken_language(heard):
                await self.say("language_switched")
                continue
            res = self._resolve(heard)
            self.m.decisions.labels(st.area_code, res.decision).inc()
            if res.decision == "retry" and heard.transcript:
                self.m.no_match.labels(st.area_code).inc()
            if attempt == 0:
                result = {"retry": "not_recognised", "confirm": "confirm"}.get(res.decision, "recognised")
                self.m.first_utterance.labels(st.area_code, result).inc()
            if await self._act(res, heard):
                return
        else:
            fallback = "not_understood"
        self.m.dtmf_fallbacks.labels(st.area_code, fallback).inc()
        pressed = await self.say("fallback_to_menu", escape=KEYS)
        await self._menu(first_key=pressed)

    def _resolve(self, heard: Heard) -> Resolution:
        """Resolve the transcript; among n-best alternatives the first that gives a clear answer wins."""
        assert self.state.area_code is not None
        texts = [heard.transcript, *(a for a in heard.alternatives if a != heard.transcript)]
        best: Resolution | None = None
        for text in texts[:5]:
            res = self.resolver.resolve(self.state.area_code, text)
            if best is None or (
                best.decision in {"retry", "confirm"} and res.decision not in {"retry", "confirm"}
            ):
                best = res
            if res.decision not in {"retry", "confirm"}:
                break
        assert best is not None
        self.state.candidates = [c.as_dict() for c in best.candidates]
        return best

    async def _act(self, res: Resolution, heard: Heard) -> bool:
        """Carry out a resolver decision; False means: ask again."""
        st = self.state
        top = self.plan.municipalities.get(res.top.cbs_code) if res.top else None
        await self._decide_log(res.decision, top, heard.transcript)
        if res.decision == "operator":
            self.m.operator.labels(st.area_code or "unknown", "speech").inc()
            await self._to_person("operator")
            return True
        if res.decision == "retry" or (top is None and res.decision != "ambiguous"):
            return False
        if res.decision == "route":
            assert top is not None
            await self._divert(top, "speech")
            return True
        if res.decision == "not_connected":
            assert top is not None
            await self._not_connected(top)
            return True
        if res.decision == "other_area":
            assert top is not None
            await self._other_area(top)
            return True
        if res.decision == "ambiguous":
            options = [
                self.plan.municipalities[c] for c in res.ambiguous_between if c in self.plan.municipalities
            ]
            await self.say("ambiguous_choice", place=res.ambiguous_place or "Die plaats")
            st.route = "ambiguous"
            await self._menu(only=options[:9])
            return True
        assert top is not None
        return await self._confirm(top)

    async def _confirm(self, m: Municipality) -> bool:
        await self._stage(Stage.CONFIRM)
        heard = await self._hear("confirm", "confirm", name=m.say_name)
        answer = (heard.dtmf or "").strip()
        words = set(heard.transcript.lower().split())
        yes = bool(words & YES_WORDS) and not words & NO_WORDS
        area = self.state.area_code or "unknown"
        if answer == "1" or yes:
            self.m.confirmations.labels(area, "yes").inc()
            await self._decide_log("route", m, heard.transcript or answer)
            await self._divert(m, "speech_confirmed")
            return True
        if answer == "0":
            await self._to_person("operator")
            return True
        if heard.transcript and not answer:  # "nee, Kapelle": a correction names the right one
            res = self._resolve(heard)
            if res.decision not in {"retry", "confirm"} and res.top and res.top.cbs_code != m.cbs_code:
                self.m.confirmations.labels(area, "correction").inc()
                return await self._act(res, heard)
        self.m.confirmations.labels(area, "no" if (answer == "2" or heard.transcript) else "no_answer").inc()
        return False

    # -- outcomes ----------------------------------------------------------------------------------
    async def _not_connected(self, m: Municipality) -> None:
        st = self.state
        st.route = "not_connected"
        st.municipality = m.cbs_code
        await self._stage(Stage.ANNOUNCE)
        if m.public_number:
            await self.say("not_connected", name=m.say_name, number=m.public_number)
            await self.say(
                "not_connected", name=m.say_name, number=m.public_number
            )  # repeated: write it down
        else:
            await self.say("not_connected_no_number", name=m.say_name)
        await self.say("offer_transfer")
        await self._flush_marks()
        await self.s.wait_for_digit(NOT_CONNECTED_PAUSE_MS)  # time to hang up and dial the number
        dest = m.overflow_destination or self.config.operator
        await self._dial(dest, m, "not_connected")

    async def _other_area(self, m: Municipality) -> None:
        area = m.main_area_code or (self.plan.area_codes_of(m.cbs_code) or ("",))[0]
        if area:
            await self.say("other_area", name=m.say_name, area_code=area)
        if m.status == "not_connected":
            await self._not_connected(m)
            return
        await self._divert(m, "other_area", announce=False)

    async def _to_person(self, why: str, announce: bool = True) -> None:
        st = self.state
        st.route = why
        if announce:
            await self.say("operator")
        await self._dial(self.config.operator, None, why)

    async def _divert(self, m: Municipality, route: str, announce: bool = True) -> None:
        if not self._open_now(m):
            await self._closed(m, route)
            return
        if announce:
            await self.say("transferring", name=m.say_name)
        await self._dial(m.destination, m, route)

    def _open_now(self, m: Municipality) -> bool:
        """The KCC's opening hours, when the municipality set them; a text that does not parse (stored
        before it was validated) never keeps a caller from the KCC."""
        try:
            return openinghours.parse(m.opening_hours).is_open(self.config.clock())
        except openinghours.OpeningHoursError as exc:
            event(log, "opening_hours_invalid", logging.WARNING, municipality=m.cbs_code, error=str(exc))
            return True

    async def _closed(self, m: Municipality, route: str) -> None:
        """Outside opening hours: say so and when it opens; then the overflow (a regional or after-hours
        line) when there is one, else goodbye — not a KCC that would ring out."""
        st = self.state
        st.municipality = m.cbs_code
        event(log, "kcc_closed", municipality=m.cbs_code, wanted_route=route)
        await self._stage(Stage.ANNOUNCE)
        await self.say("outside_hours", name=m.say_name, hours=m.opening_hours)
        if m.overflow_destination:
            await self.say("operator")
            await self._dial(m.overflow_destination, m, "closed_overflow")
            return
        st.route = "closed"
        await self.s.set_variables({cv.MUNICIPALITY: m.cbs_code, cv.ROUTE: "closed", cv.DONE: "1"})
        st.done = True
        await self.say("goodbye")

    async def _dial(self, destination: str, m: Municipality | None, route: str) -> None:
        """Dial with ringback, context in inherited variables; on failure try overflow, then apologise."""
        st = self.state
        st.route = route
        st.municipality = m.cbs_code if m else ""
        st.destination = destination
        st.done = True
        await self._stage(Stage.TRANSFER)
        await self.s.set_variables(  # DONE: from here on the router is responsible, also on failure
            {
                cv.MUNICIPALITY: st.municipality,
                cv.UTTERANCE: (st.utterances[-1] if st.utterances else "")[:200],
                cv.ROUTE: route,
                cv.DONE: "1",
            }
        )
        status = await self._dial_once(destination, m, route)
        if status == "ANSWER":
            await self._stage(Stage.DONE)
            return
        if m is not None and m.overflow_destination and destination != m.overflow_destination:
            status = await self._dial_once(m.overflow_destination, m, f"{route}_overflow")
            if status == "ANSWER":
                await self._stage(Stage.DONE)
                return
        await self._stage(Stage.ANNOUNCE)
        if m is not None and m.public_number:
            await self.say("divert_failed_number", name=m.say_name, number=m.public_number)
        elif destination != self.config.operator:
            await self.say("busy")
            await self._dial_once(self.config.operator, m, f"{route}_to_operator")
            return
        else:
            await self.say("busy")
        await self.say("goodbye")
        await self._stage(Stage.DONE)

    async def _dial_once(self, destination: str, m: Municipality | None, route: str) -> str:
        st = self.state
        if self._answered_at is not None and not st.dial_status:
            self.m.time_to_route.labels(st.mode or "none").observe(time.monotonic() - self._answered_at)
        await self._event(
            cv.EV_DIVERT, Destination=destination, Municipality=m.cbs_code if m else "", Route=route
        )
        event(log, "divert", destination=destination, municipality=m.cbs_code if m else "", route=route)
        if destination.startswith(REFER_PREFIX):
            # A true diversion: the carrier connects the caller to the KCC (SIP REFER) and the PBX leaves
            # the call. Only when that fails (TRANSFERSTATUS) does the router bridge the call itself.
            target = destination.removeprefix(REFER_PREFIX)
            await self.s.exec("Transfer", target, timeout=30.0)
            transfer = (await self.s.get_variable("TRANSFERSTATUS")) or "UNKNOWN"
            event(log, "transfer_result", transfer_status=transfer, target=target)
            if transfer == "SUCCESS":
                st.dial_status = "ANSWER"
                st.stage = Stage.CONNECTED
                self.m.transfers.labels(m.cbs_code if m else "default", "ANSWER").inc()
                return st.dial_status
            destination = target
        await self.s.exec(
            "Dial", f"{destination},{self.config.dial_timeout},rb(fourteen-predial^s^1)", timeout=None
        )
        st.dial_status = (await self.s.get_variable(cv.DIALSTATUS)) or "UNKNOWN"
        event(log, "divert_result", dial_status=st.dial_status, destination=destination)
        who = m.cbs_code if m else ("operator" if destination == self.config.operator else "default")
        status = st.dial_status if st.dial_status in DIAL_STATUSES else "OTHER"
        self.m.transfers.labels(who, status).inc()
        if status != "ANSWER":
            self.m.transfer_failures.labels(who, status).inc()
        if st.dial_status == "ANSWER":
            st.stage = Stage.CONNECTED
        return st.dial_status

    async def _rescue(self, exc: BaseException) -> None:
        """After a bug: apologise and put the caller through to a person, if the line is still there."""
        if self.s.hung_up:
            return
        try:
            await self.say("router_down")
            await self._dial(self.config.operator, None, "error")
        except AgiError:
            pass  # FOURTEEN_DONE may still be unset: the dialplan's fallback takes over
        except Exception:
            log.exception("rescue_failed")

    # -- speaking and listening --------------------------------------------------------------------
    async def say(self, prompt_id: str, escape: str = "", lang: str = "", **values: object) -> str | None:
        """Play one prompt from the catalogue (synthesised on demand); returns the key that cut it off."""
        path = await self._prompt_path(prompt_id, lang or self.state.lang, values)
        return await self.s.stream_file(path, escape)

    async def _prompt_path(self, prompt_id: str, lang: str, values: dict[str, object]) -> str:
        """The audio to play for a catalogue prompt, announced to AMI and the log; a stock sound when the
        synthesis failed, rather than silence."""
        st = self.state
        p = catalogue.prompt(prompt_id, lang, **values)
        try:
            path = await self.prompts.path(p)
        except Exception as exc:
            self.m.prompt_failures.inc()
            event(log, "prompt_unavailable", logging.WARNING, prompt=p.name, error=str(exc)[:120])
            path = self.prompts.stock_fallback(prompt_id)
        st.prompts.append(p.name)
        await self._event(cv.EV_PROMPT, Prompt=p.name)
        event(log, "prompt", prompt=p.name, lang=lang)
        return path

    # -- languages ---------------------------------------------------------------------------------
    def _language_keys(self) -> dict[str, str]:
        """Keys that switch language here: only those no municipality of this area code uses."""
        st = self.state
        if st.area_code is None:
            return {}
        ac = self.plan.area_codes[st.area_code]
        taken = {m.menu_digit for m in ac.members}
        return {
            catalogue.LANGUAGE_DIGITS[lang]: lang
            for lang in ac.languages
            if lang != st.lang
            and lang in catalogue.LANGUAGE_DIGITS
            and catalogue.LANGUAGE_DIGITS[lang] not in taken
        }

    async def _offer_languages(self) -> str | None:
        """ "For English, press 9": offered once, in that language, interruptible; never a forced step."""
        offers = self._language_keys()
        if not offers:
            return None
        await self._stage(Stage.LANGUAGE)
        await self._listen("language")
        for key, lang in offers.items():
            pressed = await self.say("language_choice", escape=KEYS, lang=lang, digit=key)
            if pressed:
                return pressed
        return None

    def _switch_language(self, key: str | None) -> bool:
        lang = self._language_keys().get(key or "")
        if lang is None:
            return False
        event(log, "language_switched", lang=lang, by="key")
        self.state.lang = lang
        return True

    def _spoken_language(self, heard: Heard) -> bool:
        """ "English" / "Engels" / "Frysk" said instead of a name switches the language."""
        words = set(heard.transcript.lower().split())
        ac = self.plan.area_codes[self.state.area_code] if self.state.area_code else None
        for lang, names in SPOKEN_LANGUAGES.items():
            if words & names and ac is not None and lang in ac.languages and lang != self.state.lang:
                event(log, "language_switched", lang=lang, by="speech")
                self.state.lang = lang
                return True
        return False

    async def _hear(self, prompt_id: str, purpose: str, **values: object) -> Heard:
        st = self.state
        assert st.area_code is not None
        await self._listen(purpose)
        path = await self._prompt_path(prompt_id, st.lang, values)
        try:
            heard = await self.recognizer.listen(
                self.s, path, area_code=st.area_code, lang=st.lang, escape_digits=KEYS, timeout=LISTEN_TIMEOUT
            )
        except AgiError:
            raise
        except Exception as exc:  # a crashed recogniser must not end the call
            event(log, "recognizer_error", logging.WARNING, error=repr(exc)[:200])
            heard = Heard(reason="error")
        st.last_heard = heard
        if heard.seconds_to_decision > 0:
            self.m.speech_decision.observe(heard.seconds_to_decision)
        if heard.decode_seconds > 0:
            self.m.decode.observe(heard.decode_seconds)
        if heard.transcript:
            st.utterances.append(heard.transcript)
        event(
            log, "heard", purpose=purpose, reason=heard.reason, transcript=heard.transcript, dtmf=heard.dtmf
        )
        return heard

    # -- AMI UserEvents ----------------------------------------------------------------------------
    # Stage changes and "listening from now on" ride along on the next event (a prompt, a decision, a
    # divert) instead of costing an AGI round trip each; they go on their own only when the router is about
    # to wait on the caller without one. AGI commands cannot be pipelined (Asterisk reads the socket
    # through stdio and polls the descriptor: a second command waits in its buffer), so fewer is the way.
    async def _event(self, name: str, **fields: object) -> None:
        marks, self._marks = self._marks, {}
        await self.s.user_event(name, **marks, **fields)

    async def _flush_marks(self) -> None:
        """Before waiting on the caller: pending marks must not arrive late."""
        if cv.MARK_STAGE in self._marks:
            await self._event(cv.EV_STAGE)
        elif self._marks:
            await self._event(cv.EV_LISTEN)

    async def _listen(self, purpose: str) -> None:
        self._marks[cv.MARK_LISTEN] = purpose

    async def _stage(self, stage: Stage) -> None:
        self._end_step()
        self.state.steps.append({"stage": stage.value, "at": self._offset(), "result": ""})
        self.state.stage = stage
        if cv.MARK_STAGE in self._marks:  # the previous stage had no event of its own: it goes first
            await self._flush_marks()
        self._marks[cv.MARK_STAGE] = stage.value
        event(log, "stage", stage=stage.value, area_code=self.state.area_code, mode=self.state.mode)

    def _offset(self) -> float:
        return round(time.monotonic() - self.state.started, 3)

    def _end_step(self, result: str = "") -> None:
        """How the current step ended: the caller hanging up, the dial status, or a decision taken in it."""
        st = self.state
        if st.steps and not st.steps[-1]["result"]:
            step = st.steps[-1]
            fresh = len(st.decisions) > self._decisions_seen
            step["result"] = result or (
                st.dial_status if step["stage"] == Stage.TRANSFER.value else st.decisions[-1] if fresh else ""
            )
        self._decisions_seen = len(st.decisions)

    async def _finish(self) -> None:
        """Who ended the call and in which stage (for the call record), without AMI; then hang up.

        Asterisk allows GET VARIABLE on a dead channel, so DIALSTATUS is read even when the caller hung up:
        CANCEL, or a hang-up while still in the transfer stage, means the caller gave up while the KCC rang.
        After ANSWER, the AGI ``HANGUP`` notice (or a refused command) means the caller ended the
        conversation; a command that still succeeds means the KCC did, and then the router hangs up, so a
        call it handled never lingers in the dialplan.
        """
        st = self.state
        gone = st.hung_up or self.s.hung_up
        if st.dial_status == "ANSWER":
            st.hangup_by, st.hangup_stage = ("caller" if gone else "kcc"), Stage.CONNECTED.value
        elif gone:
            ringing = st.dial_status == "CANCEL" or st.stage is Stage.TRANSFER
            st.hangup_by, st.hangup_stage = "caller", ("transfer-ringing" if ringing else st.stage.value)
        elif st.done:  # handled (FOURTEEN_DONE set): the router ends it after the last prompt
            st.hangup_by, st.hangup_stage = "router", st.stage.value
        else:  # not handled: the dialplan's fallback takes the call over
            st.hangup_by, st.hangup_stage = "unknown", st.stage.value
        self._end_step("hangup" if gone else "")
        if not gone and st.done:
            await self.s.hangup()

    async def _decide_log(self, decision: str, m: Municipality | None, utterance: str) -> None:
        self.state.decisions.append(decision)
        heard = self.state.last_heard
        await self._event(
            cv.EV_DECISION,
            Decision=decision,
            Municipality=m.cbs_code if m else "",
            Utterance=utterance[:100],
            BargeIn="yes" if heard and heard.barge_in else "no",
            DecisionSeconds=f"{heard.seconds_to_decision:.3f}" if heard else "",
        )
        event(
            log,
            "decision",
            decision=decision,
            municipality=m.cbs_code if m else "",
            utterance=utterance[:100],
        )


_METRICS: Metrics | None = None


def _default_metrics() -> Metrics:
    """A private registry for flows run without a router's metrics (tests, tools)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = Metrics()
    return _METRICS
