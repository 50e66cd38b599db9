"""Call flows against a fake Asterisk (fast): every mode, every outcome, bad input, hang-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fourteen.agiserver import AgiServer
from fourteen.callflow import CallFlow, FlowConfig
from fourteen.numberplan import NumberPlan
from fourteen.plancache import Snapshot
from fourteen.recognizer import Heard
from fourteen.resolver import Resolver

from .fakeasterisk import FakeCall, FakePrompts, run_call

CONFIG = FlowConfig(default_destination="Local/default@kcc", operator_destination="Local/operator@kcc")


class ScriptedRecognizer:
    """Test double: hands the flow what a caller 'said', in order."""

    available = True
    reason = ""

    def __init__(self, *heard: Heard | Exception) -> None:
        self.heard = list(heard)
        self.prompts: list[str] = []

    async def listen(self, session, prompt, **kw):  # type: ignore[no-untyped-def]
        self.prompts.append(prompt)
        await session.stream_file(prompt, kw["escape_digits"])
        item = self.heard.pop(0) if self.heard else Heard(reason="silence")
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
async def router(plan: NumberPlan, resolver: Resolver) -> AsyncIterator[dict]:  # type: ignore[type-arg]
    state: dict = {"recognizer": None, "plan": plan, "resolver": resolver}  # type: ignore[type-arg]
    server = AgiServer("127.0.0.1", 0)

    @server.route("route")
    async def handle(session) -> None:  # type: ignore[no-untyped-def]
        snap = Snapshot(state["plan"], state["resolver"], "test")
        config = state.get("config", CONFIG)
        await CallFlow(session, snap, FakePrompts(), state["recognizer"], config).run()

    await server.start()
    state["port"] = server.port
    state["server"] = server
    yield state
    await server.stop()


async def call(router: dict, **kw) -> FakeCall:  # type: ignore[type-arg]
    return await run_call(router["port"], FakeCall(**kw))


async def test_single_municipality_diverts_at_once(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, dialled="140111")  # Schouwen-Duiveland alone
    assert c.answered
    assert c.dials == ["Local/GM1676@kcc"]
    assert c.variables["FOURTEEN_DONE"] == "1"
    assert c.variables["__FOURTEEN_ROUTE"] == "single"
    assert c.variables["__FOURTEEN_MUNICIPALITY"] == "GM1676"
    assert c.prompt_names == ["greeting", "transferring-schouwen-duiveland"]
    assert c.stages == ["greeting", "transfer"]  # "done" is in the call record; nothing on AMI follows it


async def test_menu_key_pressed_during_the_prompt(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, keys=["5"])  # pressed during the greeting: Reimerswaal
    assert c.dials == ["Local/GM0703@kcc"]
    assert c.variables["__FOURTEEN_ROUTE"] == "menu"


async def test_speech_code_without_recogniser_uses_the_menu(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(
        router, press_on=[("menu_option-reimerswaal", "2")]
    )  # listens to all options, then presses
    assert "menu" in c.stages
    assert c.dials == ["Local/GM0664@kcc"]  # Goes
    assert [p for p in c.prompt_names if p.startswith("menu_option")][:2] == [
        "menu_option-borsele-1",
        "menu_option-goes-2",
    ]
    assert c.listens[:2] == ["language", "menu"]


async def test_zero_reaches_a_person(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, keys=["0"])
    assert c.dials == ["Local/operator@kcc"]
    assert c.variables["__FOURTEEN_ROUTE"] == "operator"


async def test_unknown_number_is_explained_and_put_through(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, dialled="149999")
    assert "unknown_number" in c.prompt_names
    assert c.dials == ["Local/operator@kcc"]


async def test_not_connected_municipality_is_announced_with_its_number(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, dialled="140252", keys=["1"])  # Haarlemmermeer is key 1 behind 0252
    names = c.prompt_names
    assert any(p.startswith("not_connected-haarlemmermeer") for p in names)
    assert "offer_transfer" in names
    assert c.dials == ["Local/operator@kcc"]  # the offered transfer: a person, never silently a neighbour
    assert c.variables["__FOURTEEN_ROUTE"] == "not_connected"


async def test_invalid_keys_three_times_then_a_person(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, keys=["8", "9", "8"])
    assert c.prompt_names.count("invalid_choice") >= 2
    assert c.dials == ["Local/operator@kcc"]


async def test_no_input_at_all_still_reaches_a_person(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router)
    assert c.dials == ["Local/operator@kcc"]
    assert c.variables["__FOURTEEN_ROUTE"] == "menu_failed"


async def test_busy_kcc_announces_the_public_number(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, keys=["1"], dial_status={"Local/GM0654@kcc": "BUSY"})  # Borsele
    assert c.dials == ["Local/GM0654@kcc"]
    assert any(p.startswith("divert_failed_number-borsele") for p in c.prompt_names)
    assert c.prompt_names[-1] == "goodbye"


async def test_unreachable_kcc_without_public_number_goes_to_a_person(router: dict, plan: NumberPlan) -> None:  # type: ignore[type-arg]
    hulst = plan.municipalities["GM0677"]  # alone behind 0114, a 14+ number only: nothing else to announce
    assert hulst.public_number == ""
    c = await call(router, dialled="140114", dial_status={"Local/GM0677@kcc": "CHANUNAVAIL"})
    assert c.dials == ["Local/GM0677@kcc", "Local/operator@kcc"]
    assert "busy" in c.prompt_names


async def test_caller_hangs_up_in_the_menu(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, hangup_after_prompts=2)
    assert c.dials == []
    assert c.stages[-1] == "menu"


async def test_speech_route(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("eh ik wil naar rijmerswaal"))
    c = await call(router)
    assert c.dials == ["Local/GM0703@kcc"]
    assert c.variables["__FOURTEEN_ROUTE"] == "speech"
    assert c.variables["__FOURTEEN_UTTERANCE"] == "eh ik wil naar rijmerswaal"
    assert c.user_events("FourteenDecision")[0]["Decision"] == "route"


async def test_speech_confirm_yes(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("rijmers"), Heard("ja"))
    c = await call(router)
    assert any(p.startswith("confirm-reimerswaal") for p in c.prompt_names)
    assert c.dials == ["Local/GM0703@kcc"]


async def test_speech_confirm_with_a_correction(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("kapel"), Heard("nee kapelle"))
    c = await call(router)
    assert c.dials == ["Local/GM0678@kcc"]


async def test_speech_confirm_by_key(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("rijmers"), Heard(dtmf="1", reason="dtmf"))
    c = await call(router)
    assert c.dials == ["Local/GM0703@kcc"]


async def test_silence_retry_then_menu(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard(reason="silence"), Heard("blabla"))
    c = await call(router, press_on=[("ask_municipality_menu_intro", "3")])
    names = c.prompt_names
    assert names.count("retry") == 1  # asked once more, never a third "I did not understand"
    assert "fallback_to_menu" in names
    assert c.dials == ["Local/GM0678@kcc"]


async def test_crashing_recogniser_falls_back_to_the_menu(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(RuntimeError("decoder crashed"))
    c = await call(router, press_on=[("ask_municipality_menu_intro", "1")])
    assert "fallback_to_menu" in c.prompt_names
    assert c.dials == ["Local/GM0654@kcc"]


async def test_speech_other_area_explains_and_connects(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("amsterdam"))
    c = await call(router)
    assert any(p.startswith("other_area-amsterdam") for p in c.prompt_names)
    assert c.dials == ["Local/GM0363@kcc"]


async def test_speech_operator(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("een medewerker alstublieft"))
    c = await call(router)
    assert c.dials == ["Local/operator@kcc"]


async def test_speech_ambiguous_place_offers_a_choice(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("kloetinge"))  # in Goes and (2020 list) Kapelle
    c = await call(router, press_on=[("menu_option", "1")])
    assert any(p.startswith("ambiguous_choice-kloetinge") for p in c.prompt_names)
    assert c.dials and c.dials[0] in {"Local/GM0664@kcc", "Local/GM0678@kcc"}


async def test_a_bug_in_the_flow_still_reaches_a_person(
    router: dict, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[type-arg]
    async def boom(self) -> None:  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(CallFlow, "_menu", boom)
    c = await call(router)
    assert "router_down" in c.prompt_names
    assert c.dials == ["Local/operator@kcc"]


async def test_malformed_sessions_do_not_disturb_a_concurrent_call(router: dict) -> None:  # type: ignore[type-arg]
    port = router["port"]

    async def garbage(payload: bytes, close: bool = True) -> None:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(payload)
        await w.drain()
        if close:
            w.close()
        else:
            await asyncio.sleep(0.5)
            w.close()

    bad = [
        garbage(b"agi_network: yes\nagi_"),  # disconnect before the environment ends
        garbage(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),  # not AGI at all
        garbage(b"agi_x: " + b"A" * 100_000 + b"\n\n"),  # a huge line
        garbage(b"\xff\xfe\x00\x01\n\n"),  # binary
        garbage(b"agi_network: yes\n", close=False),  # stalls
    ]
    good = call(router, keys=["5"])
    results = await asyncio.gather(good, *bad)
    assert results[0].dials == ["Local/GM0703@kcc"]
    assert router["server"].protocol_errors >= 3
    assert not router["server"].active or all(not t.done() for t in router["server"].active)


async def test_language_key_switches_to_english(router: dict) -> None:  # type: ignore[type-arg]
    c = await call(router, press_on=[("language_choice", "9"), ("menu_option-goes", "2")])
    assert "language_switched" in c.prompt_names
    assert c.prompts[-1].startswith("/sounds/en/")  # the rest of the call is in English
    assert c.dials == ["Local/GM0664@kcc"]


async def test_no_language_key_where_a_municipality_has_it(router: dict, plan: NumberPlan) -> None:  # type: ignore[type-arg]
    assert len(plan.members("035")) == 9  # key 9 belongs to a municipality here
    c = await call(router, dialled="14035", press_on=[("menu_option", "9")])
    assert not any(p.startswith("language_choice") for p in c.prompt_names)
    assert c.dials == [plan.by_menu_digit("035", "9").destination]


async def test_saying_english_switches_language(router: dict) -> None:  # type: ignore[type-arg]
    router["recognizer"] = ScriptedRecognizer(Heard("english please"), Heard("goes"))
    c = await call(router)
    assert "language_switched" in c.prompt_names
    assert c.dials == ["Local/GM0664@kcc"]


async def test_metrics_count_outcomes_hangups_and_speech(plan: NumberPlan, resolver: Resolver) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from fourteen.metrics import Metrics

    metrics = Metrics()
    recognizer = ScriptedRecognizer(Heard("rijmerswaal", seconds_to_decision=0.4, decode_seconds=0.05))
    server = AgiServer("127.0.0.1", 0)

    @server.route("route")
    async def handle(session) -> None:  # type: ignore[no-untyped-def]
        rec = recognizer if session.env["agi_extension"] == "140113" and recognizer.heard else None
        await CallFlow(session, Snapshot(plan, resolver, "t"), FakePrompts(), rec, CONFIG, metrics).run()

    await server.start()
    try:
        await run_call(server.port, FakeCall(dialled="140113"))  # speech: recognised first time
        await run_call(server.port, FakeCall(dialled="140111"))  # single
        await run_call(
            server.port, FakeCall(dialled="140113", hangup_after_prompts=3)
        )  # hangs up in the menu
    finally:
        await server.stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(metrics.render().decode())
        for s in fam.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("fourteen_calls_total", area_code="0113", mode="speech", outcome="speech") == 1
    assert value("fourteen_calls_total", area_code="0111", mode="single", outcome="single") == 1
    assert value("fourteen_ivr_hangups_total", area_code="0113", stage="menu") == 1
    assert value("fourteen_speech_first_utterance_total", area_code="0113", result="recognised") == 1
    assert value("fourteen_transfers_total", municipality="GM0703", dial_status="ANSWER") == 1
    assert value("fourteen_speech_decision_seconds_count") == 1
    assert value("fourteen_active_calls") == 0


async def test_refer_diversion_and_its_fallback(router: dict, plan: NumberPlan, resolver: Resolver) -> None:  # type: ignore[type-arg]
    import dataclasses

    sd = plan.municipalities["GM1676"]
    referred = dataclasses.replace(sd, kcc_destination="refer:PJSIP/sip:kcc@schouwen.example")
    router["plan"] = dataclasses.replace(plan, municipalities={**plan.municipalities, "GM1676": referred})
    router["resolver"] = Resolver(router["plan"])
    ok = await run_call(router["port"], FakeCall(dialled="140111", transfer_status="SUCCESS"))
    assert ok.dials == ["transfer:PJSIP/sip:kcc@schouwen.example"]  # the carrier took the call over
    fallback = await run_call(router["port"], FakeCall(dialled="140111", transfer_status="UNSUPPORTED"))
    assert fallback.dials == ["transfer:PJSIP/sip:kcc@schouwen.example", "PJSIP/sip:kcc@schouwen.example"]


def _with_municipality(router: dict, plan: NumberPlan, cbs: str, **changes: str) -> None:  # type: ignore[type-arg]
    import dataclasses

    m = dataclasses.replace(plan.municipalities[cbs], **changes)
    router["plan"] = dataclasses.replace(plan, municipalities={**plan.municipalities, cbs: m})
    router["resolver"] = Resolver(router["plan"])


def _at(*when: int) -> FlowConfig:
    import dataclasses
    from datetime import datetime
    from zoneinfo import ZoneInfo

    moment = datetime(*when, tzinfo=ZoneInfo("Europe/Amsterdam"))  # type: ignore[misc]
    return dataclasses.replace(CONFIG, clock=lambda: moment)


async def test_outside_opening_hours_says_so_and_when_it_opens(router: dict, plan: NumberPlan) -> None:  # type: ignore[type-arg]
    _with_municipality(router, plan, "GM1676", opening_hours="ma-vr 08:30-17:00")
    router["config"] = _at(2026, 12, 5, 10)  # a Saturday morning
    closed = await call(router, dialled="140111")
    assert closed.dials == []  # no KCC left ringing out
    assert closed.prompt_names == [
        "greeting",
        "outside_hours-schouwen-duiveland-ma-vr-08-30-17-00",
        "goodbye",
    ]
    assert closed.variables["FOURTEEN_DONE"] == "1" and closed.variables["__FOURTEEN_ROUTE"] == "closed"
    assert closed.commands[-1] == "HANGUP"  # the router ends it; the dialplan does not fall back
    router["config"] = _at(2026, 12, 7, 10)  # Monday morning: open
    assert (await call(router, dialled="140111")).dials == ["Local/GM1676@kcc"]


async def test_outside_opening_hours_with_an_overflow_line(router: dict, plan: NumberPlan) -> None:  # type: ignore[type-arg]
    _with_municipality(
        router, plan, "GM0703", opening_hours="ma-vr 08:30-17:00", overflow_destination="Local/regio@kcc"
    )
    router["config"] = _at(2026, 12, 1, 20)  # Tuesday evening
    c = await call(router, dialled="140113", keys=["5"])  # Reimerswaal in the 0113 menu
    assert c.dials == ["Local/regio@kcc"]
    assert any(p.startswith("outside_hours-reimerswaal") for p in c.prompt_names)
    assert c.variables["__FOURTEEN_ROUTE"] == "closed_overflow"


async def test_unreadable_stored_hours_never_keep_a_caller_from_the_kcc(
    router: dict, plan: NumberPlan
) -> None:  # type: ignore[type-arg]
    _with_municipality(
        router, plan, "GM1676", opening_hours="werkdagen van 9 tot 5"
    )  # from before validation
    router["config"] = _at(2026, 12, 5, 10)
    assert (await call(router, dialled="140111")).dials == ["Local/GM1676@kcc"]
