"""The ``fourteen`` command: database, number plan, resolver (and, in later modules, router and sandbox).

Every subcommand reads the same :class:`Settings`. On the embedded default (SQLite in
``$FOURTEEN_DATA_DIR``) a database that does not exist yet is created and seeded on first use, so
``fourteen plan 0113`` works on a fresh machine; a configured PostgreSQL is never changed implicitly.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO

from . import store
from .numberplan import NumberPlan, default_data_dir, normalise_area_code
from .resolver import Resolution, Resolver
from .settings import Settings

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


# -- database helpers ----------------------------------------------------------------------------------
async def _ensure_db(settings: Settings) -> Any:
    """The embedded default prepares itself; a configured database must have been migrated and seeded."""
    if not settings.database_url:
        if await store.prepare_embedded(settings.effective_database_url, default_data_dir()):
            print(f"fourteen: created the embedded database in {settings.data_dir}", file=sys.stderr)
        return store.make_engine(settings.effective_database_url)
    engine = store.make_engine(settings.effective_database_url)
    try:
        await store.current_revision(engine)
    except Exception as exc:
        await engine.dispose()
        raise CliError(
            f"the database at {settings.database_url.split('@')[-1]} has no fourteen schema: "
            "run `fourteen db upgrade` and `fourteen db seed`"
        ) from exc
    return engine


async def _load(settings: Settings) -> NumberPlan:
    engine = await _ensure_db(settings)
    try:
        return await store.load_plan(engine)
    finally:
        await engine.dispose()


# -- db ------------------------------------------------------------------------------------------------
async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    await store.upgrade(settings.effective_database_url, args.revision)
    print(f"database at revision {args.revision}: {_safe_url(settings)}")
    return 0


async def cmd_db_seed(args: argparse.Namespace, settings: Settings) -> int:
    engine = store.make_engine(settings.effective_database_url)
    try:
        try:
            await store.current_revision(engine)
        except Exception as exc:
            raise CliError("the database has no schema yet: run `fourteen db upgrade` first") from exc
        res = await store.seed(engine, args.data)
    finally:
        await engine.dispose()
    print(
        f"seeded {_safe_url(settings)} from {args.data}: {res.municipalities} municipalities, "
        f"{res.area_codes} area codes, {res.members} memberships, {res.places} places, {res.aliases} aliases "
        f"added; plan revision {res.revision}"
    )
    return 0


def _safe_url(settings: Settings) -> str:
    url = settings.effective_database_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url


# -- plan ----------------------------------------------------------------------------------------------
def plan_dict(plan: NumberPlan, code: str) -> dict[str, Any]:
    ac = plan.area_codes[code]
    digits = {m.cbs_code: m.menu_digit for m in ac.members}
    munis = []
    for m in plan.members(code):
        places = [p.name for p in plan.places_of(m.cbs_code)]
        munis.append(
            {
                "cbs_code": m.cbs_code,
                "name": m.name,
                "status": m.status,
                "menu_digit": digits.get(m.cbs_code) or None,
                "destination": m.destination,
                "public_number": m.public_number or None,
                "fourteen_plus_number": m.fourteen_plus_number or None,
                "places": places,
            }
        )
    return {
        "area_code": code,
        "main_place": ac.main_place,
        "mode": plan.mode(code),
        "shared_mode": ac.shared_mode,
        "languages": list(ac.languages),
        "municipalities": munis,
        "revision": plan.revision,
    }


def _print_plan(d: dict[str, Any], out: TextIO) -> None:
    print(
        f"14 {d['area_code']}  ({d['main_place'] or '-'})  mode: {d['mode']}  "
        f"languages: {', '.join(d['languages'])}",
        file=out,
    )
    for m in d["municipalities"]:
        digit = m["menu_digit"] or "-"
        print(
            f"  [{digit}] {m['name']:<32} {m['cbs_code']}  {m['status']:<13} → {m['destination']}",
            file=out,
        )
        places = m["places"]
        if places:
            shown = ", ".join(places[:10]) + (f", … (+{len(places) - 10})" if len(places) > 10 else "")
            print(f"        places: {shown}", file=out)


async def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    plan = await _load(settings)
    if args.area_code is None:
        codes = sorted(plan.area_codes)
        if args.json:
            print(json.dumps([plan_dict(plan, c) for c in codes], ensure_ascii=False))
        else:
            for c in codes:
                names = ", ".join(m.name for m in plan.members(c))
                print(f"14 {c:<5} {plan.mode(c):<7} {names}")
        return 0
    code = normalise_area_code(args.area_code)
    if code is None or code not in plan.area_codes:
        raise CliError(f"unknown area code {args.area_code!r} (try `fourteen plan` for the list)")
    d = plan_dict(plan, code)
    if args.json:
        print(json.dumps(d, ensure_ascii=False))
    else:
        _print_plan(d, sys.stdout)
    return 0


# -- resolve -------------------------------------------------------------------------------------------
def _batch_rows(path: str) -> Iterator[dict[str, str]]:
    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    text = raw.decode("utf-8-sig", "replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {f.strip() for f in (reader.fieldnames or [])}
    missing = {"area_code", "utterance"} - fields
    if missing:
        raise CliError(
            f"{path}: the CSV header needs the columns area_code and utterance (missing: "
            f"{', '.join(sorted(missing))})"
        )
    for row in reader:
        yield {(k or "").strip(): (v if isinstance(v, str) else "") for k, v in row.items()}


def _result_json(area_code: str, utterance: str, res: Resolution) -> str:
    return json.dumps(
        {
            "area_code": area_code,
            "utterance": utterance,
            "decision": res.decision,
            "candidates": [c.as_dict() for c in res.candidates],
        },
        ensure_ascii=False,
    )


async def cmd_resolve(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch is None and args.area_code is None:
        raise CliError("give an area code and an utterance, or --batch FILE.csv")
    plan = await _load(settings)
    resolver = Resolver(plan)
    out = sys.stdout
    if args.batch is not None:
        for row in _batch_rows(args.batch):
            ac, utt = row.get("area_code", ""), row.get("utterance", "")
            out.write(_result_json(ac, utt, resolver.resolve(ac, utt)) + "\n")
        return 0
    if args.dtmf is not None:
        res = resolver.resolve_dtmf(args.area_code, args.dtmf)
        utterance = args.dtmf
    else:
        utterance = " ".join(args.utterance)
        res = resolver.resolve(args.area_code, utterance)
    if args.json:
        d = res.as_dict()
        d["utterance"] = utterance
        print(json.dumps(d, ensure_ascii=False))
        return 0
    print(f"decision: {res.decision}  ({res.reason})")
    if res.ambiguous_place:
        names = [plan.municipalities[c].name for c in res.ambiguous_between]
        print(f"  '{res.ambiguous_place}' is in: {', '.join(names)}")
    for c in res.candidates:
        where = "behind this code" if c.in_area else "elsewhere"
        via = f" via '{c.matched}'" if c.matched and c.matched != c.name else ""
        print(f"  {c.score:5.1f}  {c.name} ({c.cbs_code}, {where}){via}")
    return 0


# -- municipality ----------------------------------------------------------------------------------------
async def cmd_municipality(args: argparse.Namespace, settings: Settings) -> int:
    """Show a municipality's routing settings, or change them (validated; live on the next call)."""
    fields = store.MUNICIPALITY_FIELDS
    unknown = CliError(f"no municipality {args.cbs_code!r} (CBS codes look like GM0703)")
    changes = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    engine = await _ensure_db(settings)
    try:
        if changes:
            try:
                revision = await store.update_municipality(engine, args.cbs_code, **changes)
            except store.NotFound:
                raise unknown from None
            print(f"{args.cbs_code}: {', '.join(sorted(changes))} changed; plan revision {revision}")
        plan = await store.load_plan(engine)
    finally:
        await engine.dispose()
    m = plan.municipalities.get(args.cbs_code)
    if m is None:
        raise unknown
    row = {"cbs_code": m.cbs_code, "name": m.name, **{f: getattr(m, f) for f in fields}}
    row["destination"] = m.destination
    if args.json:
        print(json.dumps(row, ensure_ascii=False))
    elif not changes:
        for key, value in row.items():
            print(f"  {key:<22} {value}")
    return 0


# -- parser --------------------------------------------------------------------------------------------
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fourteen",
        description="Routing for the Dutch 14+netnummer: 14 + area code → the municipality's contact centre.",
        epilog="Settings come from FOURTEEN_* environment variables (see README); the database defaults to "
        "SQLite in $FOURTEEN_DATA_DIR (~/.local/share/fourteen).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database schema and seed data")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply the Alembic migrations (creates the schema)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=cmd_db_upgrade)
    sd = dbsub.add_parser("seed", help="load the number plan from data/ (keeps rows that exist)")
    sd.add_argument("--data", type=Path, default=default_data_dir(), help="directory with the plan CSVs")
    sd.set_defaults(handler=cmd_db_seed)

    pl = sub.add_parser("plan", help="show how an area code is routed (all codes when none is given)")
    pl.add_argument("area_code", nargs="?", help="e.g. 0113, 140113 or 14 0113")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(handler=cmd_plan)

    rs = sub.add_parser(
        "resolve",
        help="resolve what a caller said (or pressed) on an area code",
        description="Resolve a transcript to a decision and ranked municipalities. --batch reads a CSV with "
        "at least the columns area_code and utterance and prints one JSON object per row, in input order.",
    )
    rs.add_argument("area_code", nargs="?")
    rs.add_argument("utterance", nargs="*", help="what the caller said (as the recogniser wrote it)")
    rs.add_argument("--dtmf", help="a key pressed in the menu instead of speech")
    rs.add_argument("--batch", metavar="FILE.csv", help="CSV with area_code,utterance columns ('-' = stdin)")
    rs.add_argument("--json", action="store_true", help="machine-readable output")
    rs.set_defaults(handler=cmd_resolve)

    mu = sub.add_parser(
        "municipality",
        help="show or change a municipality's routing (validated; takes effect on the next call)",
        description="Without options: the municipality's routing settings. With options: change them, each "
        "validated (a clear error per field, nothing stored on failure); every router picks the change up "
        "before its next call. An empty value ('') clears a setting.",
    )
    mu.add_argument("cbs_code", help="e.g. GM0703")
    mu.add_argument("--status", choices=("active", "technical", "not_connected"))
    mu.add_argument("--kcc-destination", dest="kcc_destination", metavar="DIAL", help="e.g. PJSIP/kcc-goes")
    mu.add_argument("--overflow-destination", dest="overflow_destination", metavar="DIAL")
    mu.add_argument("--public-number", dest="public_number", metavar="NUMBER", help="e.g. 0113 249 249")
    mu.add_argument(
        "--opening-hours",
        dest="opening_hours",
        metavar="HOURS",
        help="e.g. 'ma-vr 08:30-17:00; za 09:00-12:00'",
    )
    mu.add_argument("--spoken-name", dest="spoken_name", metavar="TEXT", help="how prompts say the name")
    mu.add_argument("--json", action="store_true", help="machine-readable output")
    mu.set_defaults(handler=cmd_municipality)

    _register_extensions(sub)
    return p


def _register_extensions(sub: Any) -> None:
    """Subcommands that live with their modules; imported only when the parser is built."""
    from . import grammar, promptlib, reports, router, testcall

    for register in (
        router.register_cli,
        testcall.register_call_command,
        testcall.register_sandbox_command,
        promptlib.register_cli,
        reports.register_cli,
        grammar.register_cli,
    ):
        register(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except CliError as exc:
        print(f"fourteen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except store.ValidationError as exc:
        print(f"fourteen: invalid input: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
