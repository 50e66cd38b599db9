"""Real calls through the real Asterisk into the real router: every call flow of the issue, end to end.

The router runs in this test process (FastAGI on a free port, SQLite in a temp dir, prompts synthesised on
demand into the sandbox's sounds directory); each test call carries the router's URL (FOURTEEN_AGI_URL as a
channel variable, which shadows the dialplan global), so other test runs on the same sandbox are
unaffected. The scripted caller (fourteen.testcall) presses keys when the router listens, and the test KCC
reports where the call arrived. Prompts are asserted as the caller heard them (FourteenPrompt events, in
order).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fourteen.ami import AmiClient
from fourteen.router import Router
from fourteen.sandbox import SandboxConfig
from fourteen.settings import Settings
from fourteen.testcall import hangup, place_call, press, wait

from .routers import router_settings, running

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def router(sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path) -> AsyncIterator[Router]:
    async with running(Router(router_settings(sandbox, tmp_path)), ami) as r:
        yield r


async def test_single_municipality_code_reaches_its_kcc(router: Router, ami: AmiClient) -> None:
    res = await place_call("140111", [], ami=ami)
    assert res.reached == "GM1676"  # Schouwen-Duiveland
    assert res.prompts == ["greeting", "transferring-schouwen-duiveland"]
    assert res.kcc_event["FourteenRoute"] == "single"
    assert res.kcc_event["FourteenMunicipality"] == "GM1676"
    assert res.kcc_event["FourteenDialled"] == "140111"
    assert not res.fallback


async def test_shared_code_by_menu(router: Router, ami: AmiClient) -> None:
    # A speech code without a recogniser: the menu. The caller presses as soon as the router listens (the
    # language offer after the greeting); a municipality's key works there too.
    res = await place_call("140113", [press("5")], ami=ami)
    assert res.reached == "GM0703"  # Reimerswaal
    assert res.prompts == ["greeting", "language_choice-9", "transferring-reimerswaal"]
    assert res.kcc_event["FourteenRoute"] == "menu"
    assert "menu" in res.stages


async def test_menu_read_out_then_a_key(router: Router, ami: AmiClient) -> None:
    res = await place_call("140113", [wait(9), press("3")], ami=ami, timeout=90)  # listens to the menu first
    assert res.reached == "GM0678"  # Kapelle
    assert "ask_municipality_menu_intro" in res.prompts
    assert "menu_option-borsele-1" in res.prompts


async def test_not_connected_municipality_is_explained(router: Router, ami: AmiClient) -> None:
    res = await place_call("140252", [press("1")], ami=ami, timeout=90)  # Haarlemmermeer
    assert any(p.startswith("not_connected-haarlemmermeer") for p in res.prompts)
    assert "offer_transfer" in res.prompts
    assert res.reached == "operator"  # a person, not silently a neighbour
    assert res.kcc_event["FourteenRoute"] == "not_connected"


async def test_unknown_fourteen_number(router: Router, ami: AmiClient) -> None:
    res = await place_call("149999", [], ami=ami)
    assert res.prompts == ["unknown_number", "operator"]
    assert res.reached == "operator"


async def test_zero_for_a_person(router: Router, ami: AmiClient) -> None:
    res = await place_call("140113", [press("0")], ami=ami)
    assert res.reached == "operator"
    assert res.kcc_event["FourteenRoute"] == "operator"


async def test_caller_hangs_up_in_the_menu(router: Router, ami: AmiClient) -> None:
    res = await place_call("140113", [press("#"), hangup()], ami=ami)
    assert res.reached is None
    assert res.hangup_stage == "menu"


async def test_router_killed_calls_reach_the_default_destination(router: Router, ami: AmiClient) -> None:
    await router.stop()  # the router process is gone: connection refused
    res = await place_call("140113", [], ami=ami)
    assert res.fallback
    assert res.reached == "default"


async def test_malformed_agi_sessions_do_not_stop_a_concurrent_call(router: Router, ami: AmiClient) -> None:
    port = router.agi.port

    async def garbage(payload: bytes) -> None:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(payload)
        await w.drain()
        await asyncio.sleep(0.2)
        w.close()

    bad = [
        garbage(b"agi_network: yes\nagi_ext"),
        garbage(b"agi_x: " + b"A" * 200_000 + b"\n\n"),
        garbage(b"\x00\xff" * 1000),
        garbage(b"agi_network: yes\n"),  # stalls: read timeout
    ]
    call = place_call("140113", [press("2")], ami=ami)
    results = await asyncio.gather(call, *bad)
    assert results[0].reached == "GM0664"  # Goes
    assert router.agi.protocol_errors >= 2


async def test_busy_kcc_and_overflow(router: Router, ami: AmiClient) -> None:
    from fourteen import store

    await store.update_municipality(
        router.engine, "GM0654", kcc_destination="Local/busy@kcc", overflow_destination="Local/operator@kcc"
    )
    await asyncio.sleep(router.plans.min_interval)
    res = await place_call("140113", [press("1")], ami=ami)  # Borsele: busy → its overflow
    assert res.reached == "operator"
    assert [d["route"] for d in res.diverts] == ["menu", "menu_overflow"]


async def test_configuration_change_takes_effect_on_the_next_call(router: Router, ami: AmiClient) -> None:
    from fourteen import store

    await store.update_municipality(router.engine, "GM1676", kcc_destination="Local/GM9999@kcc")
    await asyncio.sleep(router.plans.min_interval)  # at most this long after a change
    res = await place_call("140111", [], ami=ami)
    assert res.reached == "GM9999"


async def test_closed_kcc_is_announced_with_its_hours(router: Router, ami: AmiClient) -> None:
    """Opening hours on a day other than today: the caller hears them, and no KCC rings out."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fourteen import store

    other_day = ("ma", "di", "wo", "do", "vr", "za", "zo")[
        (datetime.now(ZoneInfo("Europe/Amsterdam")).weekday() + 3) % 7
    ]
    await store.update_municipality(router.engine, "GM1676", opening_hours=f"{other_day} 09:00-17:00")
    await asyncio.sleep(router.plans.min_interval)
    res = await place_call("140111", [], ami=ami)
    assert res.reached is None and not res.fallback  # nobody dialled, and the dialplan did not take over
    assert res.prompts == ["greeting", f"outside_hours-schouwen-duiveland-{other_day}-09-00-17-00", "goodbye"]


def test_settings_are_a_frozen_dataclass() -> None:
    assert dataclasses.is_dataclass(Settings)
