"""Reports from the call records: per municipality and platform-wide, for a period.

What 54% of municipalities asked for in the user study: how many callers reached them, how many were
recognised the first time, how many gave up where, how long routing took, when it is busy, and which
utterances the platform failed to understand. Counts are aggregated in SQL; only the per-call numbers a
percentile needs are read out.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .models import CallRecordRow

LOCAL = ZoneInfo("Europe/Amsterdam")
IVR_STAGES = ("greeting", "language", "menu", "speech", "confirm", "announce", "transfer-ringing")


@dataclass
class Report:
    start: str
    end: str
    scope: str  # "platform" or a CBS code
    calls: int = 0
    speech_calls: int = 0
    first_time_recognised_pct: float | None = None
    eventual_success_pct: float | None = None
    ivr_hangup_pct: dict[str, float] = field(default_factory=dict)
    transfer_p50_s: float | None = None
    transfer_p95_s: float | None = None
    busiest_hours: list[tuple[int, int]] = field(default_factory=list)  # (hour, calls), local time
    top_misrecognitions: list[tuple[str, int]] = field(default_factory=list)
    by_outcome: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 2)


async def build_report(
    engine: AsyncEngine, start: datetime, end: datetime, municipality: str | None = None
) -> Report:
    r = CallRecordRow
    where = [r.started_at >= start, r.started_at < end]
    if municipality:
        where.append(r.municipality == municipality)
    rep = Report(start.isoformat(), end.isoformat(), municipality or "platform")
    async with engine.connect() as conn:
        rep.calls = int(await conn.scalar(select(func.count()).select_from(r).where(*where)) or 0)
        if not rep.calls:
            return rep
        outcomes = (await conn.execute(select(r.route, func.count()).where(*where).group_by(r.route))).all()
        rep.by_outcome = {route or "none": int(n) for route, n in outcomes}
        speech = [*where, r.mode == "speech"]
        rep.speech_calls = int(await conn.scalar(select(func.count()).select_from(r).where(*speech)) or 0)
        first = int(
            await conn.scalar(
                select(func.count()).select_from(r).where(*speech, r.route == "speech", r.attempts <= 1)
            )
            or 0
        )
        rep.first_time_recognised_pct = _pct(first, rep.speech_calls)
        answered = int(
            await conn.scalar(
                select(func.count()).select_from(r).where(*where, r.transfer_result == "ANSWER")
            )
            or 0
        )
        rep.eventual_success_pct = _pct(answered, rep.calls)
        hangups = (
            await conn.execute(
                select(r.hangup_stage, func.count())
                .where(*where, r.hangup_by == "caller", r.hangup_stage.in_(IVR_STAGES))
                .group_by(r.hangup_stage)
            )
        ).all()
        rep.ivr_hangup_pct = {stage: _pct(int(n), rep.calls) or 0.0 for stage, n in hangups}
        routing = [
            float(v)
            for (v,) in (
                await conn.execute(select(r.seconds_to_route).where(*where, r.seconds_to_route.is_not(None)))
            )
        ]
        rep.transfer_p50_s, rep.transfer_p95_s = _quantile(routing, 0.5), _quantile(routing, 0.95)
        hours: Counter[int] = Counter()
        for (started,) in await conn.execute(select(r.started_at).where(*where)):
            if started.tzinfo is None:  # SQLite hands back naive UTC
                started = started.replace(tzinfo=ZoneInfo("UTC"))
            hours[started.astimezone(LOCAL).hour] += 1
        rep.busiest_hours = sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        missed: Counter[str] = Counter()
        rows = await conn.execute(select(r.utterances).where(*where, r.decision.in_(("retry", "confirm"))))
        for (utterances,) in rows:
            for u in utterances or []:
                text = " ".join(str(u).lower().split())
                if text:
                    missed[text] += 1
        rep.top_misrecognitions = missed.most_common(10)
    return rep


def to_markdown(rep: Report) -> str:
    def fmt(v: object, unit: str = "") -> str:
        return "–" if v is None else f"{v}{unit}"

    lines = [
        f"# Calls {rep.start[:10]} – {rep.end[:10]} ({rep.scope})",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| calls | {rep.calls} |",
        f"| speech calls | {rep.speech_calls} |",
        f"| recognised the first time | {fmt(rep.first_time_recognised_pct, ' %')} |",
        f"| reached a KCC | {fmt(rep.eventual_success_pct, ' %')} |",
        f"| time to route p50 / p95 | {fmt(rep.transfer_p50_s, ' s')} / {fmt(rep.transfer_p95_s, ' s')} |",
    ]
    for stage in IVR_STAGES:
        if stage in rep.ivr_hangup_pct:
            lines.append(f"| hung up in {stage} | {rep.ivr_hangup_pct[stage]} % |")
    if rep.busiest_hours:
        lines.append(
            "| busiest hours | " + ", ".join(f"{h:02d}:00 ({n})" for h, n in rep.busiest_hours) + " |"
        )
    if rep.top_misrecognitions:
        lines += ["", "Top misrecognitions:", ""]
        lines += [f'- "{text}" × {n}' for text, n in rep.top_misrecognitions]
    return "\n".join(lines) + "\n"


def to_csv(rep: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["scope", "start", "end", "measure", "value"])
    base = [rep.scope, rep.start, rep.end]
    w.writerow([*base, "calls", rep.calls])
    w.writerow([*base, "speech_calls", rep.speech_calls])
    w.writerow([*base, "first_time_recognised_pct", rep.first_time_recognised_pct])
    w.writerow([*base, "eventual_success_pct", rep.eventual_success_pct])
    w.writerow([*base, "transfer_p50_s", rep.transfer_p50_s])
    w.writerow([*base, "transfer_p95_s", rep.transfer_p95_s])
    for stage, pct in rep.ivr_hangup_pct.items():
        w.writerow([*base, f"ivr_hangup_pct_{stage}", pct])
    for hour, n in rep.busiest_hours:
        w.writerow([*base, f"calls_hour_{hour:02d}", n])
    for text, n in rep.top_misrecognitions:
        w.writerow([*base, f"misrecognised:{text}", n])
    return out.getvalue()


def parse_day(value: str) -> datetime:
    """'2026-11-01' (local midnight) or a full ISO timestamp."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=LOCAL)


def render(rep: Report, fmt: str) -> str:
    if fmt == "csv":
        return to_csv(rep)
    if fmt == "json":
        import json

        return json.dumps(rep.as_dict(), ensure_ascii=False)
    return to_markdown(rep)


def register_cli(sub: Any) -> None:
    p = sub.add_parser("report", help="call report for a period, per municipality or platform-wide")
    p.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (local time)")
    p.add_argument("--to", dest="end", required=True, help="day after the last, YYYY-MM-DD")
    p.add_argument("--municipality", help="CBS code, e.g. GM0703 (default: the whole platform)")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")

    async def run(args: Any, settings: Any) -> int:
        from . import store
        from .cli import CliError

        try:
            start, end = parse_day(args.start), parse_day(args.end)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if end <= start:
            raise CliError("--to must be after --from")
        engine = store.make_engine(settings.effective_database_url)
        try:
            rep = await build_report(engine, start, end, args.municipality)
        except Exception as exc:
            raise CliError(
                f"cannot read call records ({exc.__class__.__name__}): run `fourteen db upgrade`"
            ) from exc
        finally:
            await engine.dispose()
        print(render(rep, args.format), end="")
        return 0

    p.set_defaults(handler=run)
