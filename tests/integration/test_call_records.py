"""Call records from real calls through the real Asterisk: one row per call, hung up in every stage a scripted
caller can reach, and every record arriving after the database was unreachable during the calls.

The router runs in this process (as in test_router_calls.py) with AMI enrichment on; each record is found by
the call id the router sees (the uniqueid of the ``;2`` half of the test call's Local channel).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fourteen import store
from fourteen.ami import AmiClient
from fourteen.models import CallRecordRow
from fourteen.numberplan import default_data_dir
from fourteen.router import Router
from fourteen.sandbox import SandboxConfig
from fourteen.settings import Settings
from fourteen.testcall import CallResult, hangup, place_call, press, wait

from ..pgserver import PgServer
from .routers import router_settings, running

pytestmark = pytest.mark.asterisk

NUMBER = "0612345678"


def settings_for(sandbox: SandboxConfig, tmp_path: Path, **kw: object) -> Settings:
    return router_settings(sandbox, tmp_path, caller_hash_salt="integration-salt", **kw)


@pytest.fixture
async def router(sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path) -> AsyncIterator[Router]:
    async with running(Router(settings_for(sandbox, tmp_path)), ami) as r:
        yield r


def router_call_id(res: CallResult) -> str:
    """The uniqueid of the channel the router served: the ``;2`` half of the originated Local channel."""
    for e in res.events:
        channel = e.get("Channel", "")
        if "@fourteen-incoming-" in channel and channel.endswith(";2") and e.get("Uniqueid"):
            return e["Uniqueid"]
    raise AssertionError(f"no router channel among the events of {res.call_id}")


async def records(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {r.call_id: r for r in (await conn.execute(select(CallRecordRow))).all()}


async def wait_records(router: Router, n: int, within: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        got = await records(router.engine)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


async def until(check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


def hangup_counts(router: Router) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for metric in router.metrics.registry.collect():
        for s in metric.samples:
            if s.name == "fourteen_ivr_hangups_total":
                out[(s.labels["area_code"], s.labels["stage"])] = s.value
    return out


async def test_a_record_per_call_for_every_way_a_call_ends(router: Router, ami: AmiClient) -> None:
    await store.update_municipality(router.engine, "GM0703", kcc_destination="Local/noanswer@kcc")
    await store.update_municipality(router.engine, "GM0654", kcc_destination="Local/busy@kcc")
    await asyncio.sleep(router.plans.min_interval)
    calls = {
        # caller hangs up while the greeting plays
        "greeting": await place_call("140113", [wait(1), hangup()], ami=ami, caller_id=NUMBER),
        # … during "For English, press 9" ("w" presses nothing: it only waits for the router to listen)
        "language": await place_call("140113", [press("w"), hangup()], ami=ami, listen_delay=0.1),
        # … in the menu
        "menu": await place_call("140113", [press("#"), hangup()], ami=ami),
        # … while Reimerswaal's KCC rings and never answers
        "ringing": await place_call("140113", [press("5"), wait(6), hangup()], ami=ami, timeout=60),
        # … after the KCC answered (the caller ends the conversation)
        "caller_ends": await place_call("140111", [], ami=ami, hangup_on_kcc=True),
        # the KCC ends the conversation (it hangs up after a second)
        "kcc_ends": await place_call("140111", [], ami=ami, hangup_on_kcc=False),
        # Borsele's KCC is busy: its public number is announced and the router ends the call
        "router_ends": await place_call("140113", [press("1")], ami=ami, timeout=60),
    }
    ids = {name: router_call_id(res) for name, res in calls.items()}
    got = await wait_records(router, len(calls))
    seen = "\n".join(f"{name}: {res.summary()}" for name, res in calls.items())
    assert set(got) == set(ids.values()), f"{router.calls_total} calls reached us:\n{seen}"
    r = {name: got[uid] for name, uid in ids.items()}

    def summary(row: Any) -> tuple[str, str, str, str, str]:
        return row.hangup_by, row.hangup_stage, row.route, row.municipality, row.transfer_result

    assert summary(r["greeting"]) == ("caller", "greeting", "", "", "")
    assert summary(r["language"]) == ("caller", "language", "", "", "")
    assert summary(r["menu"]) == ("caller", "menu", "", "", "")
    assert summary(r["ringing"]) == ("caller", "transfer-ringing", "menu", "GM0703", "CANCEL")
    assert r["ringing"].destination == "Local/noanswer@kcc"
    assert summary(r["caller_ends"]) == ("caller", "connected", "single", "GM1676", "ANSWER")
    assert summary(r["kcc_ends"]) == ("kcc", "connected", "single", "GM1676", "ANSWER")
    assert summary(r["router_ends"]) == ("router", "done", "menu", "GM0654", "BUSY")

    for name in ("caller_ends", "kcc_ends"):  # AMI enrichment: how long the KCC took to answer
        row = r[name]
        assert row.kcc_answer_seconds is not None and 0 <= row.kcc_answer_seconds < 5
        assert row.seconds_to_route is not None and 2 < row.seconds_to_route < 15  # greeting + announcement
        assert [s["stage"] for s in row.steps] == ["greeting", "transfer", "done"]
        assert row.steps[1]["result"] == "ANSWER"
    assert r["ringing"].kcc_answer_seconds is None
    menu_steps = [s["stage"] for s in r["menu"].steps]
    assert menu_steps == ["greeting", "language", "menu"] and r["menu"].steps[-1]["result"] == "hangup"
    for row in got.values():
        assert row.dialled in {"140113", "140111"} and row.router_instance
        assert row.ended_at >= row.started_at
        assert NUMBER not in " ".join(str(v) for v in row._mapping.values())
    assert r["greeting"].caller_hash and len(r["greeting"].caller_hash) == 64
    assert r["greeting"].area_code == "0113" and r["greeting"].language == "nl"

    # The IVR hang-up counter agrees with the records: callers who left before reaching a KCC, by stage.
    assert hangup_counts(router) == {
        ("0113", "greeting"): 1.0,
        ("0113", "language"): 1.0,
        ("0113", "menu"): 1.0,
        ("0113", "transfer-ringing"): 1.0,
    }


@pytest.mark.postgres
async def test_records_survive_the_database_being_down_during_calls(
    sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path, own_pg: PgServer
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{own_pg.port}/postgres"
    await store.upgrade(url)
    engine = store.make_engine(url)
    await store.seed(engine, default_data_dir())
    await engine.dispose()
    router = Router(settings_for(sandbox, tmp_path, database_url=url))
    async with running(router, ami) as r:
        first = await place_call("140111", [], ami=ami)  # the database is up
        assert len(await wait_records(r, 1)) == 1
        await asyncio.to_thread(own_pg.stop_server)
        during = [
            await place_call("140111", [], ami=ami),
            await place_call("140113", [press("2")], ami=ami),
            await place_call("140113", [press("#"), hangup()], ami=ami),
            await place_call("140111", [], ami=ami, hangup_on_kcc=False),
        ]
        assert [c.reached for c in during] == ["GM1676", "GM0664", None, "GM1676"]  # routed all the same
        writer = r.records.writer
        await until(lambda: writer.spool.count >= len(during), 15)
        assert writer.spool.count == len(during) and not writer.db_ok
        assert r.metrics.record_backlog._value.get() == len(during)  # type: ignore[attr-defined]
        await asyncio.to_thread(own_pg.start_again)
        await until(lambda: writer.backlog == 0, 45)  # the writer's backoff is at most 30 s
        assert writer.backlog == 0 and writer.db_ok
        got = await records(r.engine)
        ids = [router_call_id(c) for c in [first, *during]]
        assert sorted(got) == sorted(ids)  # each exactly once
        assert got[ids[2]].municipality == "GM0664" and got[ids[2]].route == "menu"
        assert got[ids[3]].hangup_stage == "menu" and got[ids[3]].hangup_by == "caller"
        assert got[ids[4]].hangup_by == "kcc"
        assert list((tmp_path / "spool").glob("*.jsonl")) == []
        assert r.metrics.record_backlog._value.get() == 0  # type: ignore[attr-defined]
