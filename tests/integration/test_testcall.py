"""Test calls through the real Asterisk sandbox with a scripted caller, and no router: every 14-call takes
the dialplan's fallback (the calls carry a FOURTEEN_AGI_URL of a closed port), so these tests do not depend
on it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from fourteen.agi import AgiSession
from fourteen.agiserver import AgiServer
from fourteen.ami import AmiClient
from fourteen.sandbox import SandboxConfig
from fourteen.testcall import (
    AsteriskSounds,
    Caller,
    _wav_seconds,
    hangup,
    place_call,
    press,
    route_calls_to,
    say,
    wait,
)

from .routers import route_url

pytestmark = pytest.mark.asterisk


def kcc_events(events: list[dict[str, str]]) -> list[dict[str, str]]:
    return [e for e in events if e.get("UserEvent") == "KCCReached"]


async def test_router_down_a_pressed_key_ends_at_the_default_kcc(ami: AmiClient, router_down: str) -> None:
    result = await place_call("140113", [press("1")], ami=ami)
    assert result.fallback and not result.fallback_failed
    assert result.reached == "default"
    assert result.kcc_event["FourteenDialled"] == "140113" and result.kcc_event["FourteenRoute"] == "fallback"
    assert result.stages == [] and result.hangup_stage is None  # no router, no stages
    # No router ever listened: the key was never pressed (the KCC answered first) and the result says so.
    assert any("before the router listened: press 1" in w for w in result.warnings)
    assert not result.timed_out and result.seconds < 10
    assert result.as_json()["reached"] == "default"
    # every channel of the call is gone when place_call returns
    assert len(kcc_events(result.events)) == 1
    assert {e["Uniqueid"] for e in result.events if e.get("Event") == "Newchannel"} == {
        e["Uniqueid"] for e in result.events if e.get("Event") == "Hangup"
    }


async def test_keys_reach_the_called_side(ami: AmiClient, router_down: str) -> None:
    result = await place_call("140113", [press("1#")], ami=ami, listen_timeout=0.1)
    assert any("no Listen mark within 0.1 s" in w for w in result.warnings)
    received = [
        e["Digit"]
        for e in result.events
        if e.get("Event") == "DTMFEnd" and e.get("Direction") == "Received" and e["Channel"].endswith(";2")
    ]
    assert received == ["1", "#"]
    assert result.reached == "default"


async def test_a_number_that_is_not_14_is_refused(ami: AmiClient) -> None:
    result = await place_call("0201234567", [], ami=ami)
    assert result.unknown_number and result.reached is None and not result.fallback
    assert not kcc_events(result.events)


async def test_say_plays_synthesised_speech(ami: AmiClient, router_down: str, sandbox: SandboxConfig) -> None:
    sounds = AsteriskSounds.sandbox(sandbox)
    result = await place_call(
        "140113",
        [say("ik wil naar Reimerswaal"), hangup()],
        ami=ami,
        asterisk_sounds=sounds,
        listen_timeout=0.1,
        variables={"FOURTEEN_DEFAULT_DESTINATION": "Local/noanswer@kcc"},  # no KCC cuts the sentence off
    )
    step = result.steps[0]
    assert step["result"] == 0 and step["file"].startswith(sounds.asterisk_dir)
    assert (sounds.host_dir / f"{step['file'].rsplit('/', 1)[1]}.wav").is_file()
    audio = step["audio_seconds"]
    assert audio > 1.0  # a real sentence, not an empty file
    assert step["played_seconds"] == pytest.approx(audio, abs=0.05)  # every sample reached the channel
    assert step["seconds"] == pytest.approx(audio, abs=0.3)  # played in real time
    assert result.fallback and result.reached is None


async def test_a_caller_who_hangs_up_reaches_no_kcc(ami: AmiClient, router_down: str) -> None:
    result = await place_call("140113", [wait(0.5), hangup()], ami=ami)
    assert result.reached is None and not kcc_events(result.events)
    assert [s["step"] for s in result.steps] == ["wait 0.5", "hangup"]
    assert result.steps[0]["seconds"] == pytest.approx(0.5, abs=0.15)  # timer-driven silence
    assert not result.timed_out and result.seconds < 3


async def test_the_total_timeout_hangs_the_call_up(ami: AmiClient, router_down: str) -> None:
    result = await place_call("140113", [], ami=ami, timeout=1.0)  # the fallback needs ≈3 s to divert
    assert result.timed_out and result.reached is None
    assert any(e.get("Event") == "Hangup" for e in result.events)
    channels = await ami.action_list("CoreShowChannels")
    assert not [c for c in channels if c.get("Linkedid") == result.call_id]


async def test_concurrent_calls_each_run_their_own_script(ami: AmiClient, router_down: str) -> None:
    async with Caller(ami) as caller:
        results = await asyncio.gather(
            caller.call("140113", [hangup()]),
            caller.call("140113", [wait(1)]),
            caller.call("0201234567", []),
        )
    assert [r.reached for r in results] == [None, "default", None]
    assert [r.unknown_number for r in results] == [False, False, True]
    assert len({r.call_id for r in results}) == 3


async def test_fourteen_call_command(router_down: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fourteen.cli", "call", "140113", "--press", "1", "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["dialled"] == "140113" and result["reached"] == "default" and result["fallback"] is True
    assert set(result) >= {"prompts", "hangup_stage", "stages", "decisions", "seconds"}


# -- with a stand-in router: the caller waits for FourteenListen, then presses or speaks -----------------
@pytest.fixture
async def fake_router(ami: AmiClient, sandbox: SandboxConfig) -> AsyncIterator[dict[str, float]]:
    """A minimal router on a random port: menu (1 → GM0703, 2 → GM0654) or, on 140166, it records what
    the caller says until 1.5 s of silence and routes to GM0703. ``seen`` reports what it measured."""
    seen: dict[str, float] = {}
    server = AgiServer("127.0.0.1", 0)

    @server.route("route")
    async def route(s: AgiSession) -> None:
        await s.answer()
        if s.dialled == "140166":
            await s.user_event("FourteenStage", Stage="speech")
            await s.user_event("FourteenListen", Listen="speech")
            started = time.monotonic()
            path = f"{sandbox.instance_dir}/spool/fake-router-{uuid.uuid4().hex[:8]}"
            await s.command("RECORD FILE", path, "wav", "", 15000, "s=1.5", timeout=20)
            seen["record_seconds"] = time.monotonic() - started
            seen["recorded_seconds"] = _wav_seconds(sandbox.host_path(path + ".wav")) or 0.0
            digit: str | None = "1"
        else:
            await s.user_event("FourteenStage", Stage="menu")
            await s.user_event("FourteenPrompt", Prompt="menu-0113")
            await s.user_event("FourteenListen", Listen="menu")
            digit = await s.stream_file("silence/1", "0123456789") or await s.wait_for_digit(5000)
        municipality = {"1": "GM0703", "2": "GM0654"}.get(digit or "", "operator")
        await s.user_event("FourteenDecision", Decision="route", Municipality=municipality, Utterance=digit)
        await s.set_variable("__FOURTEEN_MUNICIPALITY", municipality)
        await s.set_variable("FOURTEEN_DONE", "1")
        await s.user_event("FourteenStage", Stage="connected")
        await s.exec("Dial", f"Local/{municipality}@kcc,10", timeout=30)

    await server.start()
    try:
        with route_calls_to(route_url(server.port)):
            yield seen
    finally:
        await server.stop(grace=2.0)


async def test_a_key_is_pressed_when_the_router_listens(
    ami: AmiClient, fake_router: dict[str, float]
) -> None:
    result = await place_call("140113", [press("2")], ami=ami)
    assert result.reached == "GM0654" and result.kcc_event["FourteenMunicipality"] == "GM0654"
    assert result.listens == ["menu"] and result.prompts == ["menu-0113"]
    assert result.decisions == [{"decision": "route", "municipality": "GM0654", "utterance": "2"}]
    assert result.stages == ["menu", "connected"] and result.hangup_stage == "connected"
    assert not result.warnings and not result.fallback
    assert result.seconds < 3


async def test_speech_ends_on_the_callers_silence(ami: AmiClient, fake_router: dict[str, float]) -> None:
    result = await place_call("140166", [say("Reimerswaal")], ami=ami)
    assert result.reached == "GM0703" and not result.warnings
    spoken = result.steps[0]["audio_seconds"]
    # The recording stopped on 1.5 s of the caller's (timer-driven) silence, long before its 15 s limit.
    assert spoken < fake_router["recorded_seconds"] < spoken + 2.5
    assert fake_router["record_seconds"] < spoken + 2.5
