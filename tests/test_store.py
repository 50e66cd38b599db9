"""Storage on SQLite and a real PostgreSQL: migrations from empty, seed, load, validated changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from fourteen import store
from fourteen.numberplan import NumberPlan, default_data_dir
from fourteen.plancache import PlanCache


async def _ready(url: str):  # type: ignore[no-untyped-def]
    await store.upgrade(url)
    engine = store.make_engine(url)
    await store.seed(engine, default_data_dir())
    return engine


async def test_upgrade_from_empty_creates_schema(db_url: str) -> None:
    await store.upgrade(db_url)
    engine = store.make_engine(db_url)
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("select version_num from alembic_version"))
        assert version == "0002"
        assert await store.current_revision(engine) == 0
    finally:
        await engine.dispose()


async def test_seed_then_load_equals_the_csv_plan_and_is_idempotent(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        plan = await store.load_plan(engine)
        expected = NumberPlan.from_csv(default_data_dir(), revision=plan.revision)
        assert len(plan.municipalities) == 342
        assert plan.municipalities == expected.municipalities
        assert plan.area_codes == expected.area_codes
        assert plan.places == expected.places
        assert plan.aliases == expected.aliases
        again = await store.seed(engine, default_data_dir())
        assert (again.municipalities, again.places, again.aliases) == (0, 0, 0)
        assert again.revision == plan.revision
    finally:
        await engine.dispose()


async def test_seed_keeps_what_a_municipality_configured(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        await store.update_municipality(engine, "GM0703", kcc_destination="PJSIP/kcc-reimerswaal")
        await store.seed(engine, default_data_dir())
        plan = await store.load_plan(engine)
        assert plan.municipalities["GM0703"].destination == "PJSIP/kcc-reimerswaal"
    finally:
        await engine.dispose()


async def test_changes_bump_the_revision_and_reach_a_running_router(db_url: str) -> None:
    engine = await _ready(db_url)
    cache = PlanCache(engine, default_data_dir(), min_interval=0)
    try:
        before = await cache.get()
        assert before.plan.mode("0113") == "speech"
        rev = await store.update_area_code(engine, "0113", shared_mode="menu")
        after = await cache.get()
        assert after.plan.revision == rev > before.plan.revision
        assert after.plan.mode("0113") == "menu"
        await store.update_municipality(
            engine, "GM0664", status="not_connected", public_number="0113 249 600"
        )
        snap = await cache.get()
        assert snap.resolver.resolve("0113", "goes").decision == "not_connected"
    finally:
        await engine.dispose()


async def test_menu_keys_are_validated_and_stored(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        await store.update_area_code(
            engine, "0113", menu={"GM0664": "1", "GM0654": "2", "GM0678": "3", "GM1695": "4", "GM0703": "5"}
        )
        plan = await store.load_plan(engine)
        assert plan.by_menu_digit("0113", "1").cbs_code == "GM0664"
        with pytest.raises(store.ValidationError) as err:
            await store.update_area_code(engine, "0113", menu={"GM0664": "1", "GM0654": "1"})
        assert "once" in str(err.value)
        with pytest.raises(store.ValidationError, match="0 is for a person"):
            await store.update_area_code(engine, "0113", menu={"GM0664": "0"})
        with pytest.raises(store.ValidationError, match="not behind 0113"):
            await store.update_area_code(engine, "0113", menu={"GM0363": "6"})
        # the failed changes left the stored menu intact
        plan2 = await store.load_plan(engine)
        assert plan2.by_menu_digit("0113", "1").cbs_code == "GM0664"
        assert plan2.revision == plan.revision
    finally:
        await engine.dispose()


async def test_opening_hours_are_stored_in_their_normal_form(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        await store.update_municipality(
            engine, "GM0703", opening_hours=" MA-VR 8:30 - 17:00 ;za 09:00-12:00 "
        )
        m = (await store.load_plan(engine)).municipalities["GM0703"]
        assert m.opening_hours == "ma-vr 08:30-17:00; za 09:00-12:00"
        await store.update_municipality(engine, "GM0703", opening_hours="")  # always open again
        assert (await store.load_plan(engine)).municipalities["GM0703"].opening_hours == ""
    finally:
        await engine.dispose()


async def test_invalid_admin_input_gives_clear_errors_and_stores_nothing(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        rev = await store.current_revision(engine)
        with pytest.raises(store.ValidationError) as err:
            await store.update_municipality(
                engine,
                "GM0703",
                status="sleeping",
                kcc_destination="rm -rf /",
                public_number="14 0113",
                opening_hours="weekdays nine to five",
                colour="red",
            )
        assert set(err.value.errors) == {
            "status",
            "kcc_destination",
            "public_number",
            "opening_hours",
            "colour",
        }
        assert "ma-vr 08:30-17:00" in err.value.errors["opening_hours"]
        with pytest.raises(store.NotFound):
            await store.update_municipality(engine, "GM9999", status="active")
        with pytest.raises(store.ValidationError, match="languages"):
            await store.update_area_code(engine, "0113", languages=["de"])
        assert await store.current_revision(engine) == rev
    finally:
        await engine.dispose()


async def test_plan_cache_serves_seed_data_when_the_database_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = store.make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    cache = PlanCache(engine, default_data_dir(), min_interval=0)
    try:
        snap = await asyncio.wait_for(cache.get(), 30)
        assert snap.source.startswith("seed data")
        assert snap.resolver.resolve("0113", "goes").decision == "route"
        assert cache.db_ok is False
    finally:
        await engine.dispose()


async def test_new_area_code_and_alias(db_url: str) -> None:
    engine = await _ready(db_url)
    try:
        await store.create_area_code(engine, "0999", ["GM0703", "GM0664"], main_place="Test")
        await store.add_alias(engine, "GM0703", "서울", kind="test")
        plan = await store.load_plan(engine)
        assert [m.cbs_code for m in plan.members("0999")] == ["GM0703", "GM0664"]
        assert any(a.alias == "서울" for a in plan.aliases)
        with pytest.raises(store.ValidationError, match="exists"):
            await store.create_area_code(engine, "0999", ["GM0703"])
        with pytest.raises(store.ValidationError, match="unknown"):
            await store.create_area_code(engine, "0998", ["GM9999"])
        with pytest.raises(store.ValidationError):
            await store.create_area_code(engine, "abc", [])
        with pytest.raises(store.NotFound):
            await store.add_alias(engine, "GM9999", "x")
        with pytest.raises(store.ValidationError):
            await store.add_alias(engine, "GM0703", "\x00")
    finally:
        await engine.dispose()


def test_fourteen_municipality_shows_changes_and_explains_mistakes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fourteen import cli

    monkeypatch.setenv("FOURTEEN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FOURTEEN_DATABASE_URL", raising=False)
    assert cli.main(["municipality", "GM1676", "--opening-hours", "MA-VR 8:30-17:00"]) == 0
    assert "opening_hours changed" in capsys.readouterr().out
    assert cli.main(["municipality", "GM1676", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["opening_hours"] == "ma-vr 08:30-17:00" and row["destination"] == "Local/GM1676@kcc"
    bad = ["municipality", "GM1676", "--opening-hours", "weekdays", "--public-number", "14 0111"]
    assert cli.main(bad) == 2
    err = capsys.readouterr().err
    assert "opening_hours:" in err and "public_number:" in err
    assert cli.main(["municipality", "GM1676", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["opening_hours"] == "ma-vr 08:30-17:00"  # nothing stored
    assert cli.main(["municipality", "GM9999", "--status", "active"]) == 2
    assert "no municipality" in capsys.readouterr().err
