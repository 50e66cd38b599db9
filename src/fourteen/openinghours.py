"""A KCC's opening hours: one short, validated text per municipality (``ma-vr 08:30-17:00; za 09:00-12:00``).

Municipalities type it in the portal, so it reads like their own website: rules separated by ``;``, each a
set of days (``ma``…``zo`` or ``mo``…``su``, ranges ``ma-vr``, lists ``ma,wo``) and one or more time ranges
(``08:30-12:00,13:00-17:00``; ``24:00`` ends a day). Days not named are closed. The rule ``feestdagen
gesloten`` (or ``holidays closed``) closes the KCC on the generally recognised public holidays of the
Algemene termijnenwet (art. 3): New Year's Day, Easter Monday, King's Day, 5 May, Ascension Day, Whit Monday
and both Christmas days (Easter and Whit Sunday are Sundays anyway). Empty means the KCC's own PBX handles
closing time, so the router never says "closed" for it. Times are Dutch local time (CET/CEST), whatever the
machine's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

TIME_ZONE = ZoneInfo("Europe/Amsterdam")

_DAYS = {
    **{d: i for i, d in enumerate(("ma", "di", "wo", "do", "vr", "za", "zo"))},
    **{d: i for i, d in enumerate(("mo", "tu", "we", "th", "fr", "sa", "su"))},
}
_DAY_NAMES = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fy": ("moandei", "tiisdei", "woansdei", "tongersdei", "freed", "sneon", "snein"),
}
_WORDS = {  # through, from, to, and
    "nl": ("tot en met", "van", "tot", "en"),
    "en": ("to", "from", "to", "and"),
    "fy": ("oant en mei", "fan", "oant", "en"),
}
_HOLIDAY_RULES = frozenset({"feestdagen gesloten", "feestdagen dicht", "holidays closed"})
_EXCEPT_HOLIDAYS = {
    "nl": "behalve op feestdagen",
    "en": "except on public holidays",
    "fy": "útsein op feestdagen",
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_LENGTH = 200


class OpeningHoursError(ValueError):
    """The text is not opening hours this module understands; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Span:
    start: int  # minutes since midnight
    end: int  # exclusive; 1440 = midnight at the end of the day


@dataclass(frozen=True, slots=True)
class OpeningHours:
    text: str
    #: per weekday (0 = Monday) the spans it is open, sorted, not overlapping
    week: tuple[tuple[Span, ...], ...]
    closed_on_holidays: bool = False

    @property
    def always_open(self) -> bool:
        return not self.text

    def is_open(self, at: datetime) -> bool:
        """Open at ``at`` (an aware datetime; naive ones are taken as UTC)? Always, when no hours are set."""
        if self.always_open:
            return True
        local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(TIME_ZONE)
        if self.closed_on_holidays and local.date() in public_holidays(local.year):
            return False
        minute = local.hour * 60 + local.minute
        return any(s.start <= minute < s.end for s in self.week[local.weekday()])

    def spoken(self, lang: str = "nl") -> str:
        """The hours as a prompt says them: "maandag tot en met vrijdag van 8 uur 30 tot 17 uur"."""
        names = _DAY_NAMES.get(lang, _DAY_NAMES["nl"])
        through, frm, to, and_ = _WORDS.get(lang, _WORDS["nl"])
        parts: list[str] = []
        day = 0
        while day < 7:  # consecutive days with the same hours are said once
            spans = self.week[day]
            last = day
            while last + 1 < 7 and self.week[last + 1] == spans:
                last += 1
            if spans:
                days = names[day] if last == day else f"{names[day]} {through} {names[last]}"
                times = f" {and_} ".join(
                    f"{frm} {_say(s.start, lang)} {to} {_say(s.end, lang)}" for s in spans
                )
                parts.append(f"{days} {times}")
            day = last + 1
        if self.closed_on_holidays:
            parts.append(_EXCEPT_HOLIDAYS.get(lang, _EXCEPT_HOLIDAYS["nl"]))
        return ", ".join(parts)


def easter(year: int) -> date:
    """Easter Sunday (Gregorian; the anonymous algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def public_holidays(year: int) -> frozenset[date]:
    """The generally recognised public holidays (Algemene termijnenwet art. 3), Sundays included."""
    e = easter(year)
    kings_day = date(year, 4, 27)
    if kings_day.weekday() == 6:  # on a Sunday it moves to the Saturday before
        kings_day -= timedelta(days=1)
    return frozenset(
        {
            date(year, 1, 1),
            e,
            e + timedelta(days=1),
            kings_day,
            date(year, 5, 5),
            e + timedelta(days=39),  # Ascension Day
            e + timedelta(days=49),
            e + timedelta(days=50),  # Whit Monday
            date(year, 12, 25),
            date(year, 12, 26),
        }
    )


ALWAYS_OPEN = OpeningHours("", tuple(() for _ in range(7)))


def _say(minutes: int, lang: str) -> str:
    h, m = divmod(minutes, 60)
    if lang == "en":
        if h in (0, 24) and not m:
            return "midnight"
        if h == 12 and not m:
            return "noon"
        clock = f"{(h - 1) % 12 + 1}:{m:02d}" if m else f"{(h - 1) % 12 + 1}"
        return f"{clock} {'am' if h < 12 else 'pm'}"
    hour = "oere" if lang == "fy" else "uur"
    return f"{h} {hour} {m}" if m else f"{h} {hour}"


def _minutes(text: str, *, end: bool) -> int:
    m = _TIME.match(text)
    if not m:
        raise OpeningHoursError(f"{text!r} is not a time like 08:30")
    h, mm = int(m.group(1)), int(m.group(2))
    if mm > 59 or h > 24 or (h == 24 and (mm or not end)):
        raise OpeningHoursError(f"{text!r} is not a time of day (00:00–23:59, or 24:00 as an end)")
    return h * 60 + mm


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            a = _DAYS[first.strip()]
            b = _DAYS[last.strip()] if sep else a
        except KeyError:
            raise OpeningHoursError(
                f"{part.strip()!r}: days are ma di wo do vr za zo (or mo tu we th fr sa su), e.g. ma-vr"
            ) from None
        if b < a:
            raise OpeningHoursError(f"{part.strip()!r}: a day range runs forward, e.g. ma-vr")
        out.extend(range(a, b + 1))
    return out


def _merge(spans: Sequence[Span]) -> tuple[Span, ...]:
    merged: list[Span] = []
    for s in sorted(spans, key=lambda s: s.start):
        if merged and s.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, s.end))
        else:
            merged.append(s)
    return tuple(merged)


@lru_cache(maxsize=1024)
def parse(text: str) -> OpeningHours:
    """Parse opening hours; raises :class:`OpeningHoursError` with what is wrong. Empty: always open.

    Cached (the result is immutable): the call flow checks a municipality's hours on every divert and the
    prompt catalogue says them, from the same stored text."""
    clean = " ".join(text.lower().split())
    if not clean:
        return ALWAYS_OPEN
    if len(clean) > MAX_LENGTH:
        raise OpeningHoursError(f"at most {MAX_LENGTH} characters")
    week: list[list[Span]] = [[] for _ in range(7)]
    rules: list[str] = []
    holidays = False
    for rule in clean.split(";"):
        rule = rule.strip()
        if not rule:
            continue
        if rule in _HOLIDAY_RULES:
            holidays = True
            continue
        days_text, _, times_text = re.sub(r"\s*([,-])\s*", r"\1", rule).partition(" ")
        if not times_text:
            raise OpeningHoursError(f"{rule!r}: days, then times, e.g. 'ma-vr 08:30-17:00'")
        spans = []
        for rng in times_text.replace(" ", "").split(","):
            a, sep, b = rng.partition("-")
            if not sep:
                raise OpeningHoursError(f"{rng!r} is not a time range like 08:30-17:00")
            start, end = _minutes(a, end=False), _minutes(b, end=True)
            if end <= start:
                raise OpeningHoursError(f"{rng!r}: the end must come after the start")
            spans.append(Span(start, end))
        for day in _days(days_text):
            week[day].extend(spans)
        rules.append(f"{days_text} {','.join(f'{_hhmm(x.start)}-{_hhmm(x.end)}' for x in spans)}")
    if holidays:
        rules.append("feestdagen gesloten")
    normal = "; ".join(rules)
    return OpeningHours(normal, tuple(_merge(w) for w in week), holidays)
