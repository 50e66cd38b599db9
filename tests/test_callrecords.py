"""Call records on SQLite and a real PostgreSQL: batches, the hashed caller, upserts, the disk spool through a
database outage (each record arrives exactly once), a full queue, retention, and the AMI enrichment."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fourteen import store
from fourteen.ami import Message
from fourteen.callflow import CallState, Stage
from fourteen.callrecords import CallEventTracker, CallRecord, RecordWriter, Spool, purge_expired
from fourteen.metrics import Metrics
from fourteen.models import CallRecordRow

from .pgserver import PgServer

NUMBER = "0612345678"


def record(i: int, **changes: object) -> CallRecord:
    now = datetime.now(UTC)
    base = CallRecord(
        call_id=f"1700000000.{i}",
        router_instance="test:1",
        started_at=now - timedelta(seconds=30),
        ended_at=now,
        dialled="140113",
        area_code="0113",
        caller_hash="",
        language="nl",
        mode="speech",
        steps=[{"stage": "greeting", "at": 0.01, "result": ""}],
        attempts=1,
        utterances=["goes"],
        candidates=[{"cbs_code": "GM0664", "name": "Goes", "score": 100.0}],
        decision="route",
        municipality="GM0664",
        destination="Local/GM0664@kcc",
        route="speech",
        transfer_result="ANSWER",
        hangup_by="caller",
        hangup_stage="connected",
        seconds_to_route=4.2,
        kcc_answer_seconds=None,
        purge_after=now.date() + timedelta(days=365),
    )
    for k, v in changes.items():
        setattr(base, k, v)
    return base


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await store.upgrade(db_url)
    eng = store.make_engine(db_url)
    yield eng
    await eng.dispose()


async def rows(engine: AsyncEngine) -> list[CallRecordRow]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(CallRecordRow).order_by(CallRecordRow.call_id))).all())


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(CallRecordRow)) or 0)


async def until(check: Callable[[], object], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def writer_for(engine: AsyncEngine, tmp_path: Path, **kw: object) -> RecordWriter:
    opts: dict = {"batch": 10, "interval": 0.05, "retry_min": 0.1, "retry_max": 0.5, "db_timeout": 3.0}
    opts.update(kw)
    return RecordWriter(engine, tmp_path / "spool", **opts)


# -- records ---------------------------------------------------------------------------------------------
def test_record_from_state_hashes_the_caller_and_times_the_route() -> None:
    st = CallState(dialled="140113", area_code="0113", mode="menu", started=time.monotonic() - 10)
    st.steps = [
        {"stage": "greeting", "at": 0.2, "result": ""},
        {"stage": "menu", "at": 3.0, "result": "route"},
        {"stage": "transfer", "at": 7.5, "result": "ANSWER"},
    ]
    st.decisions, st.municipality, st.route, st.dial_status = ["route"], "GM0703", "menu", "ANSWER"
    st.hangup_by, st.hangup_stage = "kcc", "connected"
    env = {"agi_uniqueid": "1700000000.7", "agi_callerid": NUMBER}
    r = CallRecord.from_state(st, env, salt="pepper", instance="host:1", retention_days=30)
    assert r.call_id == "1700000000.7"
    assert r.caller_hash == hashlib.sha256(f"pepper\x00{NUMBER}".encode()).hexdigest()
    assert NUMBER not in r.to_json() and NUMBER[1:] not in r.to_json()
    assert r.seconds_to_route == 7.3
    assert r.hangup_by == "kcc" and r.hangup_stage == "connected" and r.transfer_result == "ANSWER"
    assert r.purge_after == r.started_at.date() + timedelta(days=30)
    assert 9 < (r.ended_at - r.started_at).total_seconds() < 11
    assert CallRecord.from_json(r.to_json()) == r
    other_salt = CallRecord.from_state(st, env, salt="salt2", instance="h:1", retention_days=30)
    assert other_salt.caller_hash != r.caller_hash
    for unknown in ("", "unknown", "anonymous"):
        anon = CallRecord.from_state(
            st, {"agi_callerid": unknown}, salt="p", instance="h:1", retention_days=1
        )
        assert anon.caller_hash == "" and anon.call_id.startswith("nouid-")


async def test_records_are_written_in_batches(engine: AsyncEngine, tmp_path: Path) -> None:
    metrics = Metrics()
    w = writer_for(engine, tmp_path, batch=10, interval=0.2, metrics_backlog_gauge=metrics.record_backlog)
    transactions: list[int] = []
    write = w._write

    async def counting(records):  # type: ignore[no-untyped-def]
        records = list(records)
        transactions.append(len(records))
        await write(records)

    w._write = counting  # type: ignore[method-assign]
    await w.start()
    for i in range(35):
        w.submit(record(i))
    assert metrics.record_backlog._value.get() == 35  # type: ignore[attr-defined]
    await until(lambda: w.written == 35)
    await w.stop()
    assert await count(engine) == 35
    assert transactions == [10, 10, 10, 5]
    assert metrics.record_backlog._value.get() == 0  # type: ignore[attr-defined]
    got = (await rows(engine))[0]
    assert got.steps == [{"stage": "greeting", "at": 0.01, "result": ""}]
    assert got.candidates[0]["cbs_code"] == "GM0664" and got.utterances == ["goes"]
    assert got.started_at.utcoffset() is not None or engine.dialect.name == "sqlite"


async def test_the_caller_number_appears_nowhere_in_the_row(engine: AsyncEngine, tmp_path: Path) -> None:
    st = CallState(dialled="140113", area_code="0113")
    st.utterances = ["goes"]
    env = {"agi_uniqueid": "1700000001.1", "agi_callerid": NUMBER, "agi_calleridname": NUMBER}
    w = writer_for(engine, tmp_path)
    await w.start()
    w.submit(CallRecord.from_state(st, env, salt="s3cret", instance="h:1", retention_days=365))
    await w.stop()
    async with engine.connect() as conn:
        row = (await conn.execute(select(CallRecordRow.__table__))).one()
    text = " ".join(str(v) for v in row)
    assert NUMBER not in text and NUMBER[1:] not in text
    assert row.caller_hash == hashlib.sha256(f"s3cret\x00{NUMBER}".encode()).hexdigest()


async def test_a_retried_batch_never_duplicates(engine: AsyncEngine, tmp_path: Path) -> None:
    w = writer_for(engine, tmp_path)
    batch = [record(i) for i in range(5)]
    await w._write(batch)
    await w._write(batch)  # e.g. the commit went through but its reply was lost
    await w._write([record(0, hangup_by="kcc"), record(0, hangup_by="kcc"), record(9)])  # same id twice
    got = await rows(engine)
    assert [r.call_id for r in got] == [f"1700000000.{i}" for i in (0, 1, 2, 3, 4, 9)]
    assert got[0].hangup_by == "kcc"


async def test_queue_full_goes_to_the_spool_and_is_written_on_start(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    w = writer_for(engine, tmp_path, max_queue=3)
    for i in range(8):  # not started yet: the queue fills, the rest goes to disk at once
        w.submit(record(i))
    assert w._queue.qsize() == 3 and w.spool.count == 5 and w.backlog == 8
    assert len((tmp_path / "spool" / "call-records.jsonl").read_text().splitlines()) == 5
    await w.start()
    await until(lambda: w.backlog == 0)
    await w.stop()
    assert await count(engine) == 8
    assert list((tmp_path / "spool").iterdir()) == []


async def test_spool_left_by_an_earlier_run_is_replayed(engine: AsyncEngine, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([record(i) for i in range(4)])
    with (tmp_path / "spool" / "call-records.jsonl").open("a") as f:
        f.write('{"call_id": "torn')  # a crash in the middle of an append
    w = writer_for(engine, tmp_path)
    assert w.spool.count == 5
    await w.start()
    await until(lambda: w.spool.count == 0)
    await w.stop()
    assert await count(engine) == 4


def test_spool_size_is_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, max_bytes=3000)
    assert spool.append([record(0)])
    kept = spool.count
    while spool.append([record(kept)]):
        kept += 1
    assert spool.dropped == 1 and spool.bytes <= 3000
    assert "call_record_spool_full" in caplog.text


async def test_retention_purge(engine: AsyncEngine, tmp_path: Path) -> None:
    today = date(2026, 6, 1)
    await writer_for(engine, tmp_path)._write(
        [
            record(1, purge_after=today - timedelta(days=1)),
            record(2, purge_after=today),
            record(3, purge_after=today + timedelta(days=200)),
        ]
    )
    assert await purge_expired(engine, today) == 1
    assert [r.call_id for r in await rows(engine)] == ["1700000000.2", "1700000000.3"]
    assert await purge_expired(engine, today) == 0


# -- outages -----------------------------------------------------------------------------------------------
async def test_sqlite_outage_spools_then_every_record_arrives_once(tmp_path: Path) -> None:
    db = tmp_path / "db" / "fourteen.sqlite3"
    url = f"sqlite+aiosqlite:///{db}"
    await store.upgrade(url)
    engine = store.make_engine(url)
    w = writer_for(engine, tmp_path)
    await w.start()
    try:
        for i in range(10):
            w.submit(record(i))
        await until(lambda: w.written == 10)
        # The database becomes unreachable: its directory moved away, a file in its place.
        await engine.dispose()
        (tmp_path / "db").rename(tmp_path / "db-away")
        (tmp_path / "db").write_text("not a directory")
        for i in range(10, 40):
            w.submit(record(i))
        await until(lambda: w.spool.count == 30)
        assert not w.db_ok and w.backlog == 30
        (tmp_path / "db").unlink()
        (tmp_path / "db-away").rename(tmp_path / "db")
        await until(lambda: w.backlog == 0)
        assert w.db_ok
    finally:
        await w.stop()
    assert [r.call_id for r in await rows(engine)] == sorted(f"1700000000.{i}" for i in range(40))
    assert list((tmp_path / "spool").iterdir()) == []
    await engine.dispose()


@pytest.mark.postgres
async def test_postgres_outage_spools_then_every_record_arrives_once(
    own_pg: PgServer, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{own_pg.port}/postgres"
    await store.upgrade(url)
    engine = store.make_engine(url)
    w = writer_for(engine, tmp_path)
    await w.start()
    try:
        for i in range(10):
            w.submit(record(i))
        await until(lambda: w.written == 10)
        await asyncio.to_thread(own_pg.stop_server)
        for i in range(10, 50):
            w.submit(record(i))
            await asyncio.sleep(0.01)  # several batches, all spooled
        await until(lambda: w.spool.count == 40)
        assert not w.db_ok
        await asyncio.sleep(1.0)  # retries fail meanwhile: nothing is lost or doubled by them
        await asyncio.to_thread(own_pg.start_again)
        for i in range(50, 55):  # records submitted as it comes back
            w.submit(record(i))
        await until(lambda: w.backlog == 0, within=30)
    finally:
        await w.stop()
    got = [r.call_id for r in await rows(engine)]
    assert got == sorted(f"1700000000.{i}" for i in range(55))
    assert list((tmp_path / "spool").iterdir()) == []
    await engine.dispose()


async def test_stop_during_an_outage_spools_what_is_queued(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.sqlite3'}"
    engine = store.make_engine(url)  # no schema: every write fails
    w = writer_for(engine, tmp_path, interval=5.0)
    await w.start()
    for i in range(7):
        w.submit(record(i))
    await w.stop()
    assert w.spool.count == 7
    await store.upgrade(url)
    w2 = writer_for(engine, tmp_path)
    await w2.start()
    await until(lambda: w2.backlog == 0)
    await w2.stop()
    assert await count(engine) == 7
    await engine.dispose()


# -- throughput ----------------------------------------------------------------------------------------------
async def test_write_throughput(engine: AsyncEngine, tmp_path: Path) -> None:
    """A figure, printed (``-s``): records per second through the writer, batches of 100."""
    n = 5000
    w = writer_for(engine, tmp_path, batch=100, interval=0.05, max_queue=n)
    await w.start()
    started = time.perf_counter()
    for i in range(n):
        w.submit(record(i))
    await until(lambda: w.written == n, within=120)
    seconds = time.perf_counter() - started
    await w.stop()
    rate = n / seconds
    print(f"\ncall records: {engine.dialect.name}: {n} in {seconds:.2f} s = {rate:.0f} records/s (batch 100)")
    assert await count(engine) == n
    assert rate > 200


# -- AMI enrichment ------------------------------------------------------------------------------------------
def ami(name: str, uid: str, linked: str = "L1", **fields: str) -> Message:
    return Message.of(Event=name, Uniqueid=uid, Linkedid=linked, **fields)


@pytest.mark.parametrize(("first_out", "expected"), [("R", "caller"), ("K", "kcc")])
async def test_tracker_times_the_kcc_and_sees_who_left_first(first_out: str, expected: str) -> None:
    t = CallEventTracker(ami=None)  # type: ignore[arg-type]  (fed by hand)
    t.feed(ami("DialBegin", "R", DestUniqueid="K"), now=10.0)
    t.feed(ami("DialEnd", "R", DialStatus="ANSWER", DestUniqueid="K"), now=13.25)
    t.feed(ami("BridgeEnter", "R", BridgeUniqueid="B"), now=13.3)
    t.feed(ami("BridgeEnter", "K", BridgeUniqueid="B"), now=13.3)
    other = "K" if first_out == "R" else "R"
    t.feed(ami("BridgeLeave", first_out, BridgeUniqueid="B"), now=20.0)
    t.feed(ami("BridgeLeave", other, BridgeUniqueid="B"), now=20.0)
    t.feed(ami("Hangup", "K", Cause="16"), now=20.1)
    t.feed(ami("Hangup", "R", Cause="16"), now=20.1)
    r = record(0, call_id="R", hangup_by="unknown", hangup_stage="connected")
    await t.enrich(r, wait=0.1)
    assert r.kcc_answer_seconds == 3.25 and r.hangup_by == expected


async def test_tracker_waits_for_the_hangup_and_leaves_unknown_calls_alone() -> None:
    t = CallEventTracker(ami=None)  # type: ignore[arg-type]  (fed by hand)
    r = record(0, call_id="X", hangup_stage="menu", hangup_by="caller")
    started = time.monotonic()
    await t.enrich(r, wait=0.2)  # never seen on AMI: waits, then leaves the record as it is
    assert time.monotonic() - started >= 0.19
    assert r.hangup_by == "caller" and r.kcc_answer_seconds is None
    r2 = record(1, call_id="Y", hangup_stage="menu")
    t.feed(ami("Hangup", "Y", "L2", Cause="16"))
    await asyncio.wait_for(t.enrich(r2, wait=5.0), 1.0)  # already gone: no wait


async def test_callflow_state_feeds_a_record_end_to_end(engine: AsyncEngine, tmp_path: Path) -> None:
    st = CallState(dialled="140113", area_code="0113", mode="menu")
    st.stage = Stage.MENU
    st.hung_up = True
    st.hangup_by, st.hangup_stage = "caller", "menu"
    w = writer_for(engine, tmp_path)
    await w.start()
    w.submit(CallRecord.from_state(st, {"agi_uniqueid": "u1"}, salt="s", instance="h:1", retention_days=365))
    await w.stop()
    (got,) = await rows(engine)
    assert (got.hangup_by, got.hangup_stage, got.area_code, got.municipality) == (
        "caller",
        "menu",
        "0113",
        "",
    )
