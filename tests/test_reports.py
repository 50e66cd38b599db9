"""Reports from call records: the figures a municipality asked for, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fourteen import reports, store
from fourteen.models import CallRecordRow

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam


def _row(i: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "call_id": f"c{i}",
        "router_instance": "test",
        "started_at": T0 + timedelta(minutes=i),
        "ended_at": T0 + timedelta(minutes=i, seconds=30),
        "dialled": "140113",
        "area_code": "0113",
        "caller_hash": "x",
        "language": "nl",
        "mode": "speech",
        "steps": [],
        "attempts": 1,
        "utterances": ["reimerswaal"],
        "candidates": [],
        "decision": "route",
        "municipality": "GM0703",
        "destination": "Local/GM0703@kcc",
        "route": "speech",
        "transfer_result": "ANSWER",
        "hangup_by": "kcc",
        "hangup_stage": "connected",
        "seconds_to_route": 5.0 + i,
        "kcc_answer_seconds": 1.0,
        "purge_after": date(2027, 11, 2),
    }
    base.update(kw)
    return base


async def test_report(db_url: str) -> None:
    await store.upgrade(db_url)
    engine = store.make_engine(db_url)
    rows = [_row(i) for i in range(6)]
    rows.append(_row(6, attempts=2, route="speech_confirmed", decision="confirm", utterances=["rijmers"]))
    rows.append(_row(7, attempts=2, route="menu", decision="retry", utterances=["hoes", "hoes"]))
    rows.append(
        _row(
            8,
            route="",
            transfer_result="",
            hangup_by="caller",
            hangup_stage="speech",
            municipality="",
            seconds_to_route=None,
            decision="retry",
            utterances=["hoes"],
        )
    )
    rows.append(
        _row(
            9,
            mode="single",
            area_code="0111",
            municipality="GM1676",
            route="single",
            utterances=[],
            started_at=T0 + timedelta(hours=5),
        )
    )
    rows.append(_row(10, started_at=T0 - timedelta(days=5)))  # outside the period
    try:
        async with engine.begin() as conn:
            await conn.execute(CallRecordRow.__table__.insert(), rows)
        start, end = reports.parse_day("2026-11-01"), reports.parse_day("2026-11-03")
        rep = await reports.build_report(engine, start, end)
        assert rep.calls == 10
        assert rep.speech_calls == 9
        assert rep.first_time_recognised_pct == round(100 * 6 / 9, 1)
        assert rep.eventual_success_pct == 90.0
        assert rep.ivr_hangup_pct == {"speech": 10.0}
        assert rep.busiest_hours[0] == (9, 9)  # 08:00 UTC is 09:00 in Amsterdam
        assert rep.top_misrecognitions[0] == ("hoes", 3)
        assert rep.transfer_p50_s is not None and rep.transfer_p95_s is not None
        one = await reports.build_report(engine, start, end, "GM1676")
        assert one.calls == 1 and one.scope == "GM1676"
        md = reports.to_markdown(rep)
        assert "| calls | 10 |" in md and '"hoes" × 3' in md
        assert "first_time_recognised_pct" in reports.to_csv(rep)
        empty = await reports.build_report(engine, start, end, "GM9999")
        assert empty.calls == 0 and empty.first_time_recognised_pct is None
    finally:
        await engine.dispose()
