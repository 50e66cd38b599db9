"""Call records: one row per call in ``call_record``, and never lost.

A call's record is built from the flow's :class:`~fourteen.callflow.CallState` when the flow ends and handed
to a :class:`RecordWriter`, which never makes a call wait: ``submit`` puts it on a bounded in-memory queue
(or, when that is full, straight into the disk spool) and a background task writes batches in one
transaction each. Rows are upserted by ``call_id``, so a batch written twice (a retry after a lost commit
reply, a spool replayed after a crash) never duplicates a call. When the database cannot be reached the
batch goes to an fsync'd JSONL spool under ``spool_dir``; the writer retries with backoff and replays the
spool on start and as soon as the database answers again, deleting a spool file only after its records are
committed. The backlog (queued + spooled) is the ``fourteen_call_record_backlog`` gauge.

Privacy: the caller's number is stored only as a salted SHA-256 (``FOURTEEN_CALLER_HASH_SALT``), and every
row carries ``purge_after`` (``FOURTEEN_RECORD_RETENTION_DAYS``) for :func:`purge_expired`.

With AMI reachable, :class:`CallEventTracker` follows ``DialBegin``/``DialEnd``/``BridgeEnter``/
``BridgeLeave``/``Hangup`` by ``Linkedid``: a record waits up to ~2 s after the call for them, to learn how
long the KCC took to answer and which side left the conversation first. Without AMI records are written all
the same, with what the AGI session alone could tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .ami import AmiClient, Message, Subscription
from .callflow import CallState
from .logs import event
from .models import CallRecordRow

log = logging.getLogger(__name__)

SPOOL_NAME = "call-records"  # active file <name>.jsonl; sealed files <name>-<ns>.jsonl, replayed in order
MAX_SPOOL_BYTES = 256 * 1024 * 1024
REPLAY_CHUNK = 1000  # records per transaction when replaying the spool
ENRICH_WAIT = 2.0  # seconds a record waits for the call's AMI events after the flow ended


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


def caller_hash(number: str, salt: str) -> str:
    """Salted SHA-256 of the caller's number ('' when unknown): calls can be related, never read back."""
    digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if not any(ch.isdigit() for ch in digits):
        return ""
    return hashlib.sha256(f"{salt}\x00{digits}".encode()).hexdigest()


def router_instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class CallRecord:
    """One call as stored (the columns of ``call_record``); JSON-able for the spool."""

    call_id: str
    router_instance: str
    started_at: datetime
    ended_at: datetime
    dialled: str
    area_code: str | None
    caller_hash: str
    language: str
    mode: str
    steps: list[dict[str, Any]]
    attempts: int
    utterances: list[str]
    candidates: list[dict[str, Any]]
    decision: str
    municipality: str
    destination: str
    route: str
    transfer_result: str
    hangup_by: str
    hangup_stage: str
    seconds_to_route: float | None
    kcc_answer_seconds: float | None
    purge_after: date

    @classmethod
    def from_state(
        cls,
        state: CallState,
        session_env: Mapping[str, str],
        *,
        salt: str,
        instance: str,
        retention_days: int,
        now: datetime | None = None,
    ) -> CallRecord:
        """The record of a finished flow; the number in ``agi_callerid`` only ever leaves here hashed."""
        ended = now or datetime.now(UTC)
        started = ended - timedelta(seconds=max(0.0, time.monotonic() - state.started))
        steps = [dict(s) for s in state.steps]
        first: dict[str, float] = {}
        for s in steps:
            first.setdefault(str(s["stage"]), float(s["at"]))  # type: ignore[arg-type]
        to_route = None
        if "transfer" in first and "greeting" in first:  # the greeting starts right after the answer
            to_route = round(first["transfer"] - first["greeting"], 3)
        return cls(
            call_id=session_env.get("agi_uniqueid") or f"nouid-{uuid.uuid4().hex}",
            router_instance=instance,
            started_at=started,
            ended_at=ended,
            dialled=state.dialled,
            area_code=state.area_code,
            caller_hash=caller_hash(session_env.get("agi_callerid", ""), salt),
            language=state.lang,
            mode=state.mode,
            steps=steps,
            attempts=state.attempts,
            utterances=list(state.utterances),
            candidates=[dict(c) for c in state.candidates],
            decision=state.decisions[-1] if state.decisions else "",
            municipality=state.municipality,
            destination=state.destination,
            route=state.route,
            transfer_result=state.dial_status,
            hangup_by=state.hangup_by or "unknown",
            hangup_stage=state.hangup_stage or state.stage.value,
            seconds_to_route=to_route,
            kcc_answer_seconds=None,
            purge_after=started.date() + timedelta(days=retention_days),
        )

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["ended_at"] = self.ended_at.isoformat()
        d["purge_after"] = self.purge_after.isoformat()
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> CallRecord:
        d = json.loads(line)
        d["started_at"] = datetime.fromisoformat(d["started_at"])
        d["ended_at"] = datetime.fromisoformat(d["ended_at"])
        d["purge_after"] = date.fromisoformat(d["purge_after"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# -- the spool ---------------------------------------------------------------------------------------------
class Spool:
    """Append-only JSONL files: each append fsync'd, total size bounded, sealed files replayed in order.

    Appends come from the writer task (in a worker thread) and from ``submit`` when the queue is full (on
    the event loop), hence the lock. The active file is renamed ("sealed") before a replay reads it, so
    records appended meanwhile go to a fresh file and are never deleted unread.
    """

    def __init__(self, directory: Path, max_bytes: int = MAX_SPOOL_BYTES) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self._full = False
        self.dir.mkdir(parents=True, exist_ok=True)
        files = self.files(include_active=True)
        self.bytes = sum(p.stat().st_size for p in files)
        self.count = sum(_count_lines(p) for p in files)

    @property
    def active(self) -> Path:
        return self.dir / f"{SPOOL_NAME}.jsonl"

    def files(self, include_active: bool = False) -> list[Path]:
        sealed = sorted(self.dir.glob(f"{SPOOL_NAME}-*.jsonl"))
        return [*sealed, self.active] if include_active and self.active.exists() else sealed

    def append(self, records: list[CallRecord]) -> bool:
        """Write and fsync; False (and a loud log) when the size limit or the disk refuses them."""
        data = "".join(r.to_json() + "\n" for r in records).encode()
        with self._lock:
            if self.bytes + len(data) > self.max_bytes:
                self.dropped += len(records)
                if not self._full:  # once per episode, not once per record
                    event(
                        log,
                        "call_record_spool_full",
                        logging.ERROR,
                        limit_bytes=self.max_bytes,
                        dir=str(self.dir),
                        hint="records are being LOST until the database is back or the limit is raised",
                    )
                self._full = True
                event(log, "call_records_dropped", logging.ERROR, records=len(records), total=self.dropped)
                return False
            try:
                new = not self.active.exists()
                fd = os.open(self.active, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if new:
                    _fsync_dir(self.dir)
            except OSError as exc:
                self.dropped += len(records)
                event(
                    log,
                    "call_record_spool_failed",
                    logging.ERROR,
                    error=repr(exc)[:200],
                    records=len(records),
                )
                return False
            self.bytes += len(data)
            self.count += len(records)
            self._full = False
            return True

    def seal(self) -> list[Path]:
        """Close the active file for replay; the sealed files, oldest first."""
        with self._lock:
            if self.active.exists():
                self.active.rename(self.dir / f"{SPOOL_NAME}-{time.time_ns():020d}.jsonl")
                _fsync_dir(self.dir)
        return self.files()

    def read(self, path: Path) -> tuple[list[CallRecord], int]:
        """The records of one file and its line count; a torn line (crash mid-append) is logged, skipped."""
        records: list[CallRecord] = []
        lines = 0
        with path.open(encoding="utf-8") as f:
            for line in f:
                lines += 1
                try:
                    records.append(CallRecord.from_json(line))
                except (ValueError, TypeError, KeyError) as exc:
                    event(
                        log, "call_record_spool_bad_line", logging.ERROR, file=path.name, error=str(exc)[:120]
                    )
        return records, lines

    def remove(self, path: Path, lines: int) -> None:
        with self._lock:
            size = path.stat().st_size
            path.unlink()
            _fsync_dir(self.dir)
            self.bytes = max(0, self.bytes - size)
            self.count = max(0, self.count - lines)


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the writer --------------------------------------------------------------------------------------------
@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (call_id) DO UPDATE of every column, built once per dialect (a write per batch
    of calls; rebuilding it each time was a visible part of the router's CPU per call)."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(CallRecordRow)
    return stmt.on_conflict_do_update(
        index_elements=["call_id"],
        set_={c.name: stmt.excluded[c.name] for c in CallRecordRow.__table__.columns if c.name != "call_id"},
    )


class RecordWriter:
    """Batches records into the database; spools to disk while it is unreachable (see the module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        spool_dir: Path | str,
        *,
        batch: int = 100,
        interval: float = 2.0,
        max_queue: int = 10_000,
        metrics_backlog_gauge: Gauge | None = None,
        max_spool_bytes: int = MAX_SPOOL_BYTES,
        db_timeout: float = 10.0,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        purge_interval: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.batch = batch
        self.interval = interval
        self.gauge = metrics_backlog_gauge
        self.spool = Spool(Path(spool_dir), max_spool_bytes)
        self.db_timeout = db_timeout
        self.retry_min, self.retry_max = retry_min, retry_max
        self.purge_interval = purge_interval
        self.written = 0  # records committed (a replayed record counts again)
        self.db_ok = True
        self._queue: asyncio.Queue[CallRecord] = asyncio.Queue(max_queue)
        self._in_flight = 0
        self._backoff = retry_min
        self._retry_at = 0.0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + self._in_flight + self.spool.count

    def _gauge(self) -> None:
        if self.gauge is not None:
            self.gauge.set(self.backlog)

    def submit(self, record: CallRecord) -> None:
        """Never blocks the call, never raises: the queue, or the spool when the queue is full."""
        try:
            try:
                self._queue.put_nowait(record)
            except asyncio.QueueFull:
                event(log, "call_record_queue_full", logging.WARNING, call_id=record.call_id)
                self.spool.append([record])
            self._gauge()
        except Exception:
            log.exception("call_record_submit_failed")

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="call-record-writer"),
            asyncio.create_task(self._purge_loop(), name="call-record-purge"),
        ]

    async def stop(self, grace: float = 30.0) -> None:
        """Flush: what is queued goes to the database, or to the spool if it cannot."""
        self._stopping = True
        writer, *others = self._tasks or [None]
        for task in others:
            task.cancel()
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), grace)
            except TimeoutError:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        rest = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        if rest:
            self.spool.append(rest)
        self._gauge()
        event(log, "call_records_stopped", written=self.written, spooled=self.spool.count)

    async def _run(self) -> None:
        replay = True  # first what an earlier run (or this one's outage) left behind
        while not (self._stopping and self._queue.empty()):
            try:
                if replay:
                    await self._replay()
                batch = await self._collect()
                if batch:
                    await self._write_or_spool(batch)
                due = self.spool.count and time.monotonic() >= self._retry_at
                replay = bool(due) and not (self._stopping and not self.db_ok)
            except Exception:  # a bug here must not stop the writer: what is queued stays queued
                log.exception("call_record_writer_error")
                await asyncio.sleep(self.interval)

    async def _collect(self) -> list[CallRecord]:
        """Up to ``batch`` records, waiting at most ``interval`` (so a record is written within about it)."""
        batch: list[CallRecord] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0 if self._stopping else self.interval):
                batch.append(await self._queue.get())  # the item stays queued if this is cancelled
                while len(batch) < self.batch:
                    batch.append(await self._queue.get())
        while len(batch) < self.batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write_or_spool(self, batch: list[CallRecord]) -> None:
        self._in_flight = len(batch)
        try:
            if self.db_ok or time.monotonic() >= self._retry_at:
                try:
                    await self._write(batch)
                    self._up()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._down(exc)
            await asyncio.to_thread(self.spool.append, batch)
        except asyncio.CancelledError:
            self.spool.append(batch)  # shutting down mid-write: the spool has it (upsert on replay)
            raise
        finally:
            self._in_flight = 0
            self._gauge()

    async def _write(self, records: Iterable[CallRecord]) -> None:
        """One transaction, upserted by call_id (the last version of a call wins, never a second row)."""
        rows = list({r.call_id: r.as_row() for r in records}.values())
        async with asyncio.timeout(self.db_timeout), self.engine.begin() as conn:
            await conn.execute(_upsert(conn.dialect.name), rows)
        self.written += len(rows)

    async def _replay(self) -> None:
        """Write the spool back, file by file; a file is deleted only after all its records committed."""
        if not self.spool.count and not self.spool.files(include_active=True):
            return
        for path in await asyncio.to_thread(self.spool.seal):
            records, lines = await asyncio.to_thread(self.spool.read, path)
            try:
                for i in range(0, len(records), REPLAY_CHUNK):
                    await self._write(records[i : i + REPLAY_CHUNK])
            except Exception as exc:
                self._down(exc)
                return
            await asyncio.to_thread(self.spool.remove, path, lines)
            self._up()
            self._gauge()
            event(log, "call_records_replayed", records=len(records), file=path.name, left=self.spool.count)

    def _down(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.db_ok:
            self._backoff = self.retry_min
            event(log, "call_records_database_unavailable", logging.WARNING, error=repr(exc)[:300])
        else:
            self._backoff = min(self._backoff * 2, self.retry_max)
        self.db_ok = False
        self._retry_at = now + self._backoff

    def _up(self) -> None:
        if not self.db_ok:
            event(log, "call_records_database_back", spooled=self.spool.count)
        self.db_ok = True
        self._backoff = self.retry_min

    async def _purge_loop(self) -> None:
        while True:
            try:
                removed = await purge_expired(self.engine)
                if removed:
                    event(log, "call_records_purged", records=removed)
            except Exception as exc:  # the database is down: next time
                event(log, "call_records_purge_failed", logging.WARNING, error=repr(exc)[:200])
            await asyncio.sleep(self.purge_interval)


async def purge_expired(engine: AsyncEngine, today: date | None = None) -> int:
    """Delete records whose ``purge_after`` has passed (kept through that day); returns how many."""
    today = today or datetime.now(UTC).date()
    async with engine.begin() as conn:
        result = await conn.execute(delete(CallRecordRow).where(CallRecordRow.purge_after < today))
    return int(result.rowcount or 0)


# -- AMI enrichment ----------------------------------------------------------------------------------------
@dataclass
class _CallEvents:
    """What AMI said about one call (all channels of one Linkedid)."""

    seen: float
    dial_begin: dict[str, float] = field(default_factory=dict)  # dialling channel → last DialBegin
    dialer: str = ""  # the channel whose Dial was answered
    answer_seconds: float | None = None
    bridge: str = ""
    first_leave: str = ""  # the first channel out of the KCC bridge: the side that ended the conversation
    causes: dict[str, str] = field(default_factory=dict)  # channel uniqueid → Hangup Cause


class CallEventTracker:
    """Follows calls on AMI by Linkedid to time the KCC's answer and to see who left the bridge first.

    Bounded: a call's events are forgotten ``keep`` seconds after its last one.
    """

    EVENTS = frozenset({"DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup"})

    def __init__(self, ami: AmiClient, keep: float = 120.0) -> None:
        self.ami = ami
        self.keep = keep
        self._calls: dict[str, _CallEvents] = {}
        self._linked: dict[str, tuple[str, float]] = {}  # channel uniqueid → (Linkedid, last seen)
        self._hung_up: dict[str, float] = {}  # channel uniqueid → when its Hangup arrived
        self._waiters: dict[str, asyncio.Event] = {}  # records waiting for their channel's Hangup
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._pruned = time.monotonic()

    async def start(self) -> None:
        if not await self.ami.only_events(self.EVENTS):
            event(log, "ami_event_filter_refused", logging.INFO, hint="give the AMI user write=system")
        self._sub = self.ami.subscribe(lambda m: m.event in self.EVENTS, maxsize=20_000)
        self._task = asyncio.create_task(self._run(), name="call-event-tracker")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def connected(self) -> bool:
        return self.ami.connected

    async def _run(self) -> None:
        assert self._sub is not None
        async for message in self._sub:
            try:
                self.feed(message)
            except Exception:
                log.exception("call_event_tracker_failed")
        event(
            log, "call_event_tracker_disconnected", logging.WARNING, reason=repr(self.ami.closed_reason)[:200]
        )

    def feed(self, m: Message, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        uid, linked = m.get("Uniqueid") or "", m.get("Linkedid") or ""
        if not uid or not linked:
            return
        self._linked[uid] = (linked, now)
        call = self._calls.get(linked)
        if call is None:
            call = self._calls[linked] = _CallEvents(now)
        call.seen = now
        name = m.event
        if name == "DialBegin":
            call.dial_begin[uid] = now
        elif name == "DialEnd" and m.get("DialStatus") == "ANSWER" and uid in call.dial_begin:
            call.dialer = uid
            call.answer_seconds = now - call.dial_begin[uid]
        elif name == "BridgeEnter" and uid == call.dialer and not call.bridge:
            call.bridge = m.get("BridgeUniqueid") or ""
        elif name == "BridgeLeave" and call.bridge and m.get("BridgeUniqueid") == call.bridge:
            call.first_leave = call.first_leave or uid
        elif name == "Hangup":
            call.causes[uid] = m.get("Cause") or ""
            self._hung_up[uid] = now
            if (waiter := self._waiters.get(uid)) is not None:
                waiter.set()
        if now - self._pruned > 10.0:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._pruned = now
        old = now - self.keep
        self._calls = {k: c for k, c in self._calls.items() if c.seen >= old}
        self._linked = {k: v for k, v in self._linked.items() if v[1] >= old}
        self._hung_up = {k: t for k, t in self._hung_up.items() if t >= old}

    async def enrich(self, record: CallRecord, wait: float = ENRICH_WAIT) -> None:
        """Fill ``kcc_answer_seconds`` and confirm ``hangup_by`` once the router's channel is gone."""
        if record.call_id not in self._hung_up:
            gone = self._waiters.setdefault(record.call_id, asyncio.Event())
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), wait)
            finally:
                self._waiters.pop(record.call_id, None)
        linked = self._linked.get(record.call_id)
        call = self._calls.get(linked[0]) if linked else None
        if call is None or call.dialer != record.call_id:
            return
        if call.answer_seconds is not None:
            record.kcc_answer_seconds = round(call.answer_seconds, 3)
        if record.hangup_stage == "connected" and call.first_leave:
            by = "caller" if call.first_leave == record.call_id else "kcc"
            if by != record.hangup_by:
                event(
                    log,
                    "call_record_hangup_by_from_ami",
                    call_id=record.call_id,
                    agi=record.hangup_by,
                    ami=by,
                )
            record.hangup_by = by


# -- what the router holds ---------------------------------------------------------------------------------
class CallRecorder:
    """The router's side: one record per call, enriched from AMI when it is there, then to the writer."""

    def __init__(
        self,
        engine: AsyncEngine,
        spool_dir: Path,
        *,
        salt: str,
        retention_days: int,
        backlog_gauge: Gauge | None = None,
        ami_connect: Any = None,  # async () -> AmiClient; None: no enrichment
        enrich_wait: float = ENRICH_WAIT,
    ) -> None:
        self.writer = RecordWriter(engine, spool_dir, metrics_backlog_gauge=backlog_gauge)
        self.salt = salt
        self.retention_days = retention_days
        self.instance = router_instance()
        self.enrich_wait = enrich_wait
        self._ami_connect = ami_connect
        self._ami: AmiClient | None = None
        self.tracker: CallEventTracker | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.writer.start()
        if self._ami_connect is None:
            return
        try:
            self._ami = await self._ami_connect()
        except Exception as exc:
            event(log, "call_records_without_ami", logging.INFO, reason=str(exc)[:200])
            return
        self.tracker = CallEventTracker(self._ami)
        await self.tracker.start()

    def submit(self, state: CallState, session_env: Mapping[str, str]) -> None:
        """Never raises: a record that cannot be built fully is still written with what is known."""
        try:
            record = CallRecord.from_state(
                state, session_env, salt=self.salt, instance=self.instance, retention_days=self.retention_days
            )
        except Exception:
            log.exception("call_record_build_failed")
            now = datetime.now(UTC)
            record = CallRecord(
                session_env.get("agi_uniqueid") or f"nouid-{uuid.uuid4().hex}", self.instance, now, now,
                state.dialled, state.area_code, "", state.lang, state.mode, [], state.attempts, [], [], "",
                state.municipality, state.destination, state.route, state.dial_status, "unknown",
                state.stage.value, None, None, now.date() + timedelta(days=self.retention_days),
            )  # fmt: skip
        if self.tracker is not None and self.tracker.connected:
            task = asyncio.create_task(self._enrich_then_submit(record))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        else:
            self.writer.submit(record)

    async def _enrich_then_submit(self, record: CallRecord) -> None:
        assert self.tracker is not None
        try:
            await self.tracker.enrich(record, self.enrich_wait)
        except Exception:
            log.exception("call_record_enrich_failed")
        finally:  # also when cancelled at shutdown
            self.writer.submit(record)

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.enrich_wait + 1.0)
            for task in list(self._pending):
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self.tracker is not None:
            await self.tracker.stop()
        if self._ami is not None:
            await self._ami.close()
        await self.writer.stop()
