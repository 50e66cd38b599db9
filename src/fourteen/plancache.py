"""The plan snapshot a router serves from, refreshed when the configuration's revision moves.

Before a call the router asks :meth:`PlanCache.get`; at most every ``min_interval`` seconds that costs one
indexed read of the revision number, and only a changed revision reloads the plan (in a worker thread for
the resolver's index, so the event loop never stalls). When the database is unreachable the last good
snapshot keeps serving, and a router that starts during an outage serves the seed data from ``data/``:
calls are routed either way, and the log says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from . import store
from .logs import event
from .numberplan import NumberPlan
from .resolver import Resolver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    plan: NumberPlan
    resolver: Resolver
    source: str  # "database" or "seed data (database unavailable)"


class PlanCache:
    def __init__(
        self,
        engine: AsyncEngine | None,
        seed_dir: Path,
        min_interval: float = 1.0,
        db_timeout: float = 0.5,
        retry_after: float = 5.0,
    ) -> None:
        self.engine = engine
        self.seed_dir = seed_dir
        self.min_interval = min_interval
        self.db_timeout = db_timeout  # a call never waits longer than this for the database
        self.retry_after = retry_after  # while the database is down, calls do not wait on it at all
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()
        self.db_ok = engine is not None

    def _fresh(self) -> bool:
        age = time.monotonic() - self._checked
        return self._snapshot is not None and age < (self.min_interval if self.db_ok else self.retry_after)

    async def get(self) -> Snapshot:
        if self._fresh():
            assert self._snapshot is not None
            return self._snapshot
        async with self._lock:
            if self._fresh():
                assert self._snapshot is not None
                return self._snapshot
            return await self._refresh()

    async def _refresh(self) -> Snapshot:
        self._checked = time.monotonic()
        snap = self._snapshot
        if self.engine is not None:
            try:
                async with asyncio.timeout(self.db_timeout):
                    revision = await store.current_revision(self.engine)
                if snap is None or snap.source != "database" or snap.plan.revision != revision:
                    plan = await asyncio.wait_for(store.load_plan(self.engine), max(self.db_timeout, 10.0))
                    resolver = await asyncio.to_thread(Resolver, plan)
                    self._snapshot = Snapshot(plan, resolver, "database")
                    event(log, "plan_loaded", revision=plan.revision, area_codes=len(plan.area_codes))
                if not self.db_ok:
                    event(log, "database_back")
                self.db_ok = True
            except Exception as exc:  # any database failure: keep routing on what we have
                if self.db_ok:
                    event(log, "database_unavailable", logging.WARNING, error=repr(exc)[:300])
                self.db_ok = False
        if self._snapshot is None:
            plan = await asyncio.to_thread(NumberPlan.from_csv, self.seed_dir)
            resolver = await asyncio.to_thread(Resolver, plan)
            self._snapshot = Snapshot(plan, resolver, "seed data (database unavailable)")
            event(log, "plan_from_seed_data", logging.WARNING, dir=str(self.seed_dir))
        return self._snapshot
