"""Opening hours: the text municipalities type, when the KCC is open, and how a prompt says it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fourteen.openinghours import ALWAYS_OPEN, OpeningHoursError, easter, parse, public_holidays

AMS = ZoneInfo("Europe/Amsterdam")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=AMS)


def test_empty_is_always_open() -> None:
    assert parse("") is ALWAYS_OPEN and parse("   ") is ALWAYS_OPEN
    assert ALWAYS_OPEN.is_open(datetime(2026, 12, 6, 3, tzinfo=UTC))  # a Sunday night


def test_weekdays_with_a_lunch_break() -> None:
    h = parse("ma-do 08:30-12:00, 13:00-17:00; vr 08:30-12:00")
    assert h.text == "ma-do 08:30-12:00,13:00-17:00; vr 08:30-12:00"
    monday = local(2026, 11, 30, 0)
    assert not h.is_open(monday.replace(hour=8, minute=29))
    assert h.is_open(monday.replace(hour=8, minute=30))
    assert not h.is_open(monday.replace(hour=12, minute=30))  # lunch
    assert h.is_open(monday.replace(hour=16, minute=59))
    assert not h.is_open(monday.replace(hour=17))  # the end is exclusive
    friday = local(2026, 12, 4, 14)
    assert not h.is_open(friday) and h.is_open(friday.replace(hour=11))
    assert not h.is_open(local(2026, 12, 5, 10))  # Saturday: not named, closed


def test_dutch_local_time_whatever_the_clock_says() -> None:
    h = parse("ma-vr 08:00-17:00")
    assert h.is_open(datetime(2026, 12, 1, 7, 30, tzinfo=UTC))  # 08:30 CET
    assert not h.is_open(datetime(2026, 7, 1, 5, 30, tzinfo=UTC))  # 07:30 CEST
    assert h.is_open(datetime(2026, 7, 1, 6, 30, tzinfo=UTC))  # 08:30 CEST
    assert h.is_open(datetime(2026, 12, 1, 7, 30))  # naive: UTC


def test_english_days_lists_and_whole_days() -> None:
    h = parse("MO,WE 09:00-12:00; sa 00:00-24:00")
    assert h.is_open(local(2026, 12, 2, 9)) and not h.is_open(local(2026, 12, 1, 9))  # Wed yes, Tue no
    assert h.is_open(local(2026, 12, 5, 23, 59))


def test_overlapping_rules_merge() -> None:
    h = parse("ma-vr 09:00-12:00; ma 11:00-14:00")
    assert [(s.start, s.end) for s in h.week[0]] == [(540, 840)]
    assert [(s.start, s.end) for s in h.week[1]] == [(540, 720)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ma-vr 08:30", "time range"),
        ("ma-vr", "days, then times"),
        ("maandag 09:00-17:00", "days are ma di wo"),
        ("vr-ma 09:00-17:00", "runs forward"),
        ("ma 17:00-09:00", "end must come after"),
        ("ma 9-17", "not a time like"),
        ("ma 09:00-25:00", "not a time of day"),
        ("ma 24:00-24:00", "not a time of day"),
        ("ma 09:60-17:00", "not a time of day"),
        ("ma-vr 08:00-17:00; " * 20, "at most 200"),
    ],
)
def test_mistakes_are_explained(text: str, says: str) -> None:
    with pytest.raises(OpeningHoursError, match=says):
        parse(text)


def test_spoken_in_each_language() -> None:
    h = parse("ma-do 08:30-12:00,13:00-17:00; vr 08:30-12:00")
    assert h.spoken("nl") == (
        "maandag tot en met donderdag van 8 uur 30 tot 12 uur en van 13 uur tot 17 uur, "
        "vrijdag van 8 uur 30 tot 12 uur"
    )
    assert h.spoken("en") == (
        "Monday to Thursday from 8:30 am to noon and from 1 pm to 5 pm, Friday from 8:30 am to noon"
    )
    assert h.spoken("fy").startswith("moandei oant en mei tongersdei fan 8 oere 30 oant 12 oere")
    assert (
        parse("ma,wo 09:00-12:00").spoken("nl")
        == "maandag van 9 uur tot 12 uur, woensdag van 9 uur tot 12 uur"
    )


def test_closed_on_public_holidays_when_asked() -> None:
    h = parse("Feestdagen gesloten; ma-vr 08:30-17:00")
    assert h.text == "ma-vr 08:30-17:00; feestdagen gesloten" and h.closed_on_holidays
    for holiday in [(2026, 5, 14), (2026, 5, 25), (2026, 12, 25), (2026, 4, 6), (2026, 4, 27), (2027, 1, 1)]:
        assert not h.is_open(local(*holiday, 10)), holiday  # Ascension, Whit Monday, Christmas, …
    assert h.is_open(local(2026, 5, 15, 10))  # the Friday after Ascension Day
    assert parse("ma-vr 08:30-17:00").is_open(local(2026, 5, 14, 10))  # without the rule: open
    assert h.spoken("nl").endswith(", behalve op feestdagen")
    assert h.spoken("en").endswith(", except on public holidays")


def test_easter_and_kings_day() -> None:
    assert [easter(y).isoformat() for y in (2024, 2025, 2026, 2027, 1818, 2285)] == [
        "2024-03-31", "2025-04-20", "2026-04-05", "2027-03-28", "1818-03-22", "2285-03-22",
    ]  # fmt: skip
    from datetime import date

    assert date(2025, 4, 26) in public_holidays(2025)  # 27 April 2025 is a Sunday: King's Day moves back
    assert date(2026, 4, 27) in public_holidays(2026) and len(public_holidays(2026)) == 10


@given(st.text(max_size=60))
def test_any_text_parses_or_is_explained(text: str) -> None:
    try:
        h = parse(text)
    except OpeningHoursError as exc:
        assert str(exc)
        return
    assert h == parse(h.text)  # the normal form means the same
    h.spoken("nl")
