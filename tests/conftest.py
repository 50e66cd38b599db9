"""Shared fixtures: the seed plan and resolver, and databases (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from fourteen.numberplan import NumberPlan, default_data_dir
from fourteen.resolver import Resolver

from .pgserver import PgServer


@pytest.fixture(scope="session")
def plan() -> NumberPlan:
    return NumberPlan.from_csv(default_data_dir())


@pytest.fixture(scope="session")
def resolver(plan: NumberPlan) -> Resolver:
    return Resolver(plan)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A real PostgreSQL: FOURTEEN_TEST_POSTGRES_URL if set, else a throwaway server started here."""
    url = os.environ.get("FOURTEEN_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, which the test may stop and start again (outage tests)."""
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _create_database(admin_url: str) -> str:
    import asyncpg

    name = f"fourteen_test_{uuid.uuid4().hex[:10]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """An empty database of each kind the project supports."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fourteen.sqlite3'}"
    else:
        admin = request.getfixturevalue("pg_admin_url")
        yield await _create_database(admin)
