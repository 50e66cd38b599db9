"""Storage of the routing configuration: migrate, seed, load a plan snapshot, validated admin changes.

All functions take an ``AsyncEngine``; the same code runs on SQLite (aiosqlite) and PostgreSQL (asyncpg).
Writes happen in one transaction each and bump the plan revision, so a failed change leaves nothing
half-written and every router sees a change on its next call.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import openinghours
from .models import (
    AliasRow,
    AreaCodeMemberRow,
    AreaCodeRow,
    Base,
    MunicipalityRow,
    PlaceRow,
    PlanRevisionRow,
    utcnow,
)
from .numberplan import (
    LANGUAGES,
    SHARED_MODES,
    STATUSES,
    Alias,
    AreaCode,
    Member,
    Municipality,
    NumberPlan,
    Place,
    read_csv_rows,
)

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class ValidationError(ValueError):
    """Admin input that cannot be stored; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFound(LookupError):
    pass


def make_engine(url: str) -> AsyncEngine:
    """An engine for the configured URL; SQLite gets foreign keys on and a data directory that exists."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)

        @event.listens_for(engine.sync_engine, "connect")
        def _fk_on(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


# -- schema ------------------------------------------------------------------------------------------
def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations (in a worker thread: Alembic's command API is synchronous)."""
    from alembic import command

    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def create_all(engine: AsyncEngine) -> None:
    """Create the schema straight from the models (tests); production uses :func:`upgrade`."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def prepare_embedded(url: str, seed_dir: Path) -> bool:
    """Bring the embedded database to the current schema and seed it when empty; True when it was created.

    An existing schema that cannot be upgraded keeps serving (the error propagates only when there was no
    schema at all), so a router or command never loses a working database to a failed migration.
    """
    engine = make_engine(url)
    try:
        try:
            existing: int | None = await current_revision(engine)
        except Exception:
            existing = None
        try:
            await upgrade(url)
        except Exception:
            if existing is None:
                raise
            log.warning("embedded_db_upgrade_failed", exc_info=True)
        if await current_revision(engine) == 0:
            await seed(engine, seed_dir)
        return existing is None
    finally:
        await engine.dispose()


# -- revision ----------------------------------------------------------------------------------------
_CURRENT_REVISION = select(PlanRevisionRow.revision).where(PlanRevisionRow.id == 1)


async def current_revision(engine: AsyncEngine) -> int:
    """The plan's revision: what every router checks before a call (at most once a second), so the statement
    is built once."""
    async with engine.connect() as conn:
        rev = await conn.scalar(_CURRENT_REVISION)
    return int(rev or 0)


async def _bump(conn: AsyncConnection) -> int:
    res = await conn.execute(
        update(PlanRevisionRow)
        .where(PlanRevisionRow.id == 1)
        .values(revision=PlanRevisionRow.revision + 1, changed_at=utcnow())
        .returning(PlanRevisionRow.revision)
    )
    row = res.first()
    if row is None:
        await conn.execute(PlanRevisionRow.__table__.insert().values(id=1, revision=1, changed_at=utcnow()))
        return 1
    return int(row[0])


# -- seed --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedResult:
    municipalities: int
    area_codes: int
    members: int
    places: int
    aliases: int
    revision: int


async def seed(engine: AsyncEngine, data_dir: Path) -> SeedResult:
    """Load ``data/`` into an empty or partly filled database; rows that exist are left as they are.

    Seeding twice changes nothing, and it never overwrites what a municipality configured itself.
    """
    munis, areas, places, aliases = read_csv_rows(data_dir)
    async with engine.begin() as conn:
        have_m = set((await conn.scalars(select(MunicipalityRow.cbs_code))).all())
        have_a = set((await conn.scalars(select(AreaCodeRow.code))).all())
        have_mem = {
            tuple(r)
            for r in (
                await conn.execute(select(AreaCodeMemberRow.area_code, AreaCodeMemberRow.cbs_code))
            ).all()
        }
        have_p = {tuple(r) for r in (await conn.execute(select(PlaceRow.cbs_code, PlaceRow.name))).all()}
        have_al = {
            tuple(r)
            for r in (await conn.execute(select(AliasRow.cbs_code, AliasRow.alias, AliasRow.place))).all()
        }
        new_m = [_muni_values(m) for m in munis if m.cbs_code not in have_m]
        new_a = [
            {
                "code": a.code,
                "main_place": a.main_place,
                "shared_mode": a.shared_mode,
                "languages": ",".join(a.languages),
                "updated_at": utcnow(),
            }
            for a in areas
            if a.code not in have_a
        ]
        new_mem = [
            {
                "area_code": a.code,
                "cbs_code": m.cbs_code,
                "menu_digit": m.menu_digit or None,
                "menu_order": m.menu_order,
            }
            for a in areas
            for m in a.members
            if (a.code, m.cbs_code) not in have_mem
        ]
        new_p = [
            {
                "name": p.name,
                "kind": p.kind,
                "cbs_code": p.cbs_code,
                "area_code": p.area_code,
                "woonplaats_code": p.woonplaats_code,
            }
            for p in places
            if (p.cbs_code, p.name) not in have_p
        ]
        new_al = [
            {"alias": a.alias, "cbs_code": a.cbs_code, "kind": a.kind, "place": a.place}
            for a in aliases
            if (a.cbs_code, a.alias, a.place) not in have_al
        ]
        for table, rows in (
            (MunicipalityRow, new_m),
            (AreaCodeRow, new_a),
            (AreaCodeMemberRow, new_mem),
            (PlaceRow, new_p),
            (AliasRow, new_al),
        ):
            for i in range(0, len(rows), 1000):
                await conn.execute(table.__table__.insert(), rows[i : i + 1000])
        changed = any((new_m, new_a, new_mem, new_p, new_al))
        revision = (
            await _bump(conn)
            if changed
            else int(await conn.scalar(select(func.coalesce(func.max(PlanRevisionRow.revision), 0))) or 0)
        )
    return SeedResult(len(new_m), len(new_a), len(new_mem), len(new_p), len(new_al), revision)


def _muni_values(m: Municipality) -> dict[str, Any]:
    return {
        "cbs_code": m.cbs_code,
        "name": m.name,
        "name_short": m.name_short,
        "province": m.province,
        "seat": m.seat,
        "status": m.status,
        "main_area_code": m.main_area_code,
        "public_number": m.public_number,
        "fourteen_plus_number": m.fourteen_plus_number,
        "kcc_destination": m.kcc_destination,
        "overflow_destination": m.overflow_destination,
        "opening_hours": m.opening_hours,
        "spoken_name": m.spoken_name,
        "updated_at": utcnow(),
    }


# -- load --------------------------------------------------------------------------------------------
async def load_plan(engine: AsyncEngine) -> NumberPlan:
    """Read the whole configuration into an immutable snapshot (one consistent read)."""
    async with engine.connect() as conn, conn.begin():
        revision = int(
            await conn.scalar(select(PlanRevisionRow.revision).where(PlanRevisionRow.id == 1)) or 0
        )
        mrows = (await conn.execute(select(MunicipalityRow.__table__))).mappings().all()
        arows = (await conn.execute(select(AreaCodeRow.__table__))).mappings().all()
        memrows = (await conn.execute(select(AreaCodeMemberRow.__table__))).mappings().all()
        prows = (await conn.execute(select(PlaceRow.__table__).order_by(PlaceRow.id))).mappings().all()
        alrows = (await conn.execute(select(AliasRow.__table__).order_by(AliasRow.id))).mappings().all()
    members: dict[str, list[Member]] = {}
    for r in memrows:
        members.setdefault(r["area_code"], []).append(
            Member(r["cbs_code"], r["menu_digit"] or "", int(r["menu_order"]))
        )
    munis = [
        Municipality(
            cbs_code=r["cbs_code"],
            name=r["name"],
            name_short=r["name_short"],
            province=r["province"],
            seat=r["seat"],
            status=r["status"],
            main_area_code=r["main_area_code"],
            public_number=r["public_number"],
            fourteen_plus_number=r["fourteen_plus_number"],
            kcc_destination=r["kcc_destination"],
            overflow_destination=r["overflow_destination"],
            opening_hours=r["opening_hours"],
            spoken_name=r["spoken_name"],
        )
        for r in mrows
    ]
    areas = [
        AreaCode(
            code=r["code"],
            main_place=r["main_place"],
            members=tuple(sorted(members.get(r["code"], []), key=lambda m: (m.menu_order, m.cbs_code))),
            shared_mode=r["shared_mode"],
            languages=tuple(x for x in r["languages"].split(",") if x),
        )
        for r in arows
    ]
    places = [Place(r["name"], r["cbs_code"], r["kind"], r["area_code"], r["woonplaats_code"]) for r in prows]
    aliases = [Alias(r["alias"], r["cbs_code"], r["kind"], r["place"]) for r in alrows]
    return NumberPlan.from_rows(munis, areas, places, aliases, revision=revision)


# -- validated admin changes -------------------------------------------------------------------------
_DIAL_RE = re.compile(
    r"^(?:refer:)?(?:(?:PJSIP|SIP|IAX2|Local|DAHDI)/[\w.@:+\-/;=]+|sips?:[\w.+\-]+@[\w.\-]+(?::\d+)?)$"
)
_PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{6,20}$")
#: What admins may change per municipality (in this order on screens).
MUNICIPALITY_FIELDS = (
    "status",
    "kcc_destination",
    "overflow_destination",
    "public_number",
    "opening_hours",
    "spoken_name",
)


def validate_municipality_change(changes: dict[str, Any]) -> dict[str, str]:
    """Clean a change to a municipality's routing; raise ValidationError listing every bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for field, value in changes.items():
        if field not in MUNICIPALITY_FIELDS:
            errors[field] = f"unknown field (allowed: {', '.join(sorted(MUNICIPALITY_FIELDS))})"
            continue
        if not isinstance(value, str):
            errors[field] = "must be text"
            continue
        v = value.strip()
        if any(ord(c) < 32 for c in v):
            errors[field] = "contains control characters"
        elif field == "status" and v not in STATUSES:
            errors[field] = f"must be one of {', '.join(STATUSES)}"
        elif field in {"kcc_destination", "overflow_destination"} and v and not _DIAL_RE.match(v):
            errors[field] = (
                "must be an Asterisk dial string (PJSIP/…, Local/…@context) or a sip: URI, optionally "
                "prefixed refer: for a SIP REFER diversion"
            )
        elif field == "public_number" and v and not _PHONE_RE.match(v):
            errors[field] = "must be a phone number such as 0900 1852 or +31 20 624 1111"
        elif field == "public_number" and v.replace(" ", "").startswith("14"):
            errors[field] = "must not be a 14+ number: callers who reach this announcement just dialled 14+"
        elif field == "spoken_name" and len(v) > 200:
            errors[field] = "at most 200 characters"
        elif field == "opening_hours":
            try:
                clean[field] = openinghours.parse(v).text
            except openinghours.OpeningHoursError as exc:
                errors[field] = f"{exc} (for example 'ma-vr 08:30-17:00; za 09:00-12:00'; empty: always open)"
        else:
            clean[field] = v
    if errors:
        raise ValidationError(errors)
    return clean


async def update_municipality(engine: AsyncEngine, cbs_code: str, **changes: Any) -> int:
    """Change a municipality's routing settings; returns the new plan revision."""
    clean = validate_municipality_change(changes)
    async with engine.begin() as conn:
        res = await conn.execute(
            update(MunicipalityRow)
            .where(MunicipalityRow.cbs_code == cbs_code)
            .values(**clean, updated_at=utcnow())
        )
        if res.rowcount == 0:
            raise NotFound(f"no municipality {cbs_code!r}")
        return await _bump(conn)


async def update_area_code(
    engine: AsyncEngine,
    code: str,
    *,
    shared_mode: str | None = None,
    languages: list[str] | None = None,
    menu: dict[str, str] | None = None,
) -> int:
    """Change how a shared area code asks (speech/menu), its languages, or its menu keys (cbs → digit)."""
    errors: dict[str, str] = {}
    if shared_mode is not None and shared_mode not in SHARED_MODES:
        errors["shared_mode"] = f"must be one of {', '.join(SHARED_MODES)}"
    if languages is not None and (
        not languages or "nl" not in languages or any(x not in LANGUAGES for x in languages)
    ):
        errors["languages"] = f"must include nl and only use {', '.join(LANGUAGES)}"
    if menu is not None:
        digits = list(menu.values())
        if any(d not in "123456789" or len(d) != 1 for d in digits):
            errors["menu"] = "keys must be single digits 1-9 (0 is for a person)"
        elif len(set(digits)) != len(digits):
            errors["menu"] = "each key may be used once"
    if errors:
        raise ValidationError(errors)
    async with engine.begin() as conn:
        if await conn.scalar(select(AreaCodeRow.code).where(AreaCodeRow.code == code)) is None:
            raise NotFound(f"no area code {code!r}")
        values: dict[str, Any] = {}
        if shared_mode is not None:
            values["shared_mode"] = shared_mode
        if languages is not None:
            values["languages"] = ",".join(languages)
        if values:
            await conn.execute(
                update(AreaCodeRow).where(AreaCodeRow.code == code).values(**values, updated_at=utcnow())
            )
        if menu is not None:
            members = set(
                (
                    await conn.scalars(
                        select(AreaCodeMemberRow.cbs_code).where(AreaCodeMemberRow.area_code == code)
                    )
                ).all()
            )
            unknown = sorted(set(menu) - members)
            if unknown:
                raise ValidationError({"menu": f"not behind {code}: {', '.join(unknown)}"})
            await conn.execute(
                update(AreaCodeMemberRow).where(AreaCodeMemberRow.area_code == code).values(menu_digit=None)
            )
            for order, (cbs, digit) in enumerate(sorted(menu.items(), key=lambda kv: kv[1]), start=1):
                await conn.execute(
                    update(AreaCodeMemberRow)
                    .where(AreaCodeMemberRow.area_code == code, AreaCodeMemberRow.cbs_code == cbs)
                    .values(menu_digit=digit, menu_order=order)
                )
        return await _bump(conn)


async def add_alias(
    engine: AsyncEngine, cbs_code: str, alias: str, kind: str = "colloquial", place: str = ""
) -> int:
    """Another name callers use for a municipality (or one of its places); returns the new revision."""
    errors: dict[str, str] = {}
    name = alias.strip() if isinstance(alias, str) else ""
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        errors["alias"] = "must be 1-100 characters of text"
    if errors:
        raise ValidationError(errors)
    async with engine.begin() as conn:
        if (
            await conn.scalar(select(MunicipalityRow.cbs_code).where(MunicipalityRow.cbs_code == cbs_code))
            is None
        ):
            raise NotFound(f"no municipality {cbs_code!r}")
        await conn.execute(
            AliasRow.__table__.insert().values(
                alias=name, cbs_code=cbs_code, kind=kind[:24], place=place[:100]
            )
        )
        return await _bump(conn)


async def create_area_code(
    engine: AsyncEngine, code: str, members: list[str], *, main_place: str = "", shared_mode: str = "speech"
) -> int:
    """A new area code with its municipalities (menu keys 1..n in the given order)."""
    errors: dict[str, str] = {}
    if not re.fullmatch(r"0[1-9]\d{0,2}", code or ""):
        errors["code"] = "must be an area code such as 0113 or 020"
    if not members or len(members) > 9 or len(set(members)) != len(members):
        errors["members"] = "1 to 9 different municipalities"
    if shared_mode not in SHARED_MODES:
        errors["shared_mode"] = f"must be one of {', '.join(SHARED_MODES)}"
    if errors:
        raise ValidationError(errors)
    async with engine.begin() as conn:
        known = set(
            (
                await conn.scalars(
                    select(MunicipalityRow.cbs_code).where(MunicipalityRow.cbs_code.in_(members))
                )
            ).all()
        )
        if set(members) - known:
            raise ValidationError({"members": f"unknown: {', '.join(sorted(set(members) - known))}"})
        if await conn.scalar(select(AreaCodeRow.code).where(AreaCodeRow.code == code)) is not None:
            raise ValidationError({"code": f"{code} exists already"})
        await conn.execute(
            AreaCodeRow.__table__.insert().values(
                code=code,
                main_place=main_place,
                shared_mode=shared_mode,
                languages="nl,en",
                updated_at=utcnow(),
            )
        )
        await conn.execute(
            AreaCodeMemberRow.__table__.insert(),
            [
                {"area_code": code, "cbs_code": c, "menu_digit": str(i), "menu_order": i}
                for i, c in enumerate(members, start=1)
            ],
        )
        return await _bump(conn)
