"""The number plan as the router sees it: an immutable snapshot of area codes, municipalities and places.

A snapshot is built from the database (``store.load_plan``) or straight from the CSV files in ``data/``
(tests, tools). It never changes after it is built: a configuration change produces a new snapshot with a
higher ``revision``, and each call uses the snapshot that was current when it started. That is what lets
municipalities change their routing while calls are in progress, on any number of router instances.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

Status = Literal["active", "technical", "not_connected"]
Mode = Literal["single", "menu", "speech"]
STATUSES: tuple[Status, ...] = ("active", "technical", "not_connected")
SHARED_MODES: tuple[Mode, ...] = ("speech", "menu")
LANGUAGES = ("nl", "en", "fy")

#: Default KCC destination for a municipality that has not configured one. The Asterisk sandbox's test KCC
#: answers every ``Local/<cbs>@kcc``; production replaces it per municipality (a PJSIP dial string).
DEFAULT_KCC_TEMPLATE = "Local/{cbs_code}@kcc"

_AREA_CODE_RE = re.compile(r"0[1-9]\d{0,2}")
_CBS_RE = re.compile(r"GM\d{4}")


def normalise_area_code(raw: object) -> str | None:
    """Turn what a caller dialled ("140113", "14 0113", "0113", "113", b"0113") into "0113", or None.

    Only the shape is checked here; whether the code exists is the plan's business.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return None
    return _normalise_str(raw[:64])


@lru_cache(maxsize=4096)
def _normalise_str(raw: str) -> str | None:
    digits = "".join(ch for ch in raw if ch.isdigit() and ch.isascii())
    if digits == "14":
        return None
    if digits.startswith("14") and len(digits) >= 5:
        digits = digits[2:]
    if digits and not digits.startswith("0"):
        digits = "0" + digits
    return digits if _AREA_CODE_RE.fullmatch(digits) else None


def is_cbs_code(value: str) -> bool:
    return bool(_CBS_RE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Municipality:
    cbs_code: str
    name: str
    name_short: str
    province: str
    seat: str = ""
    status: Status = "technical"
    main_area_code: str = ""
    #: The municipality's own (non-14) number: announced when it is not connected or cannot be reached.
    public_number: str = ""
    fourteen_plus_number: str = ""
    kcc_destination: str = ""
    overflow_destination: str = ""
    #: The KCC's opening hours (:mod:`fourteen.openinghours`: ``ma-vr 08:30-17:00``); empty: always open, the
    #: KCC's own PBX handles closing time.
    opening_hours: str = ""
    #: How prompts say the name (defaults to ``name_short``); municipalities may override it.
    spoken_name: str = ""

    @property
    def destination(self) -> str:
        return self.kcc_destination or DEFAULT_KCC_TEMPLATE.format(cbs_code=self.cbs_code)

    @property
    def say_name(self) -> str:
        return self.spoken_name or self.name_short or self.name


@dataclass(frozen=True, slots=True)
class Member:
    """A municipality behind an area code, with its key in that area code's menu."""

    cbs_code: str
    menu_digit: str
    menu_order: int


@dataclass(frozen=True, slots=True)
class AreaCode:
    code: str
    main_place: str
    members: tuple[Member, ...]
    #: How a shared code asks the caller: by speech (the default, as VNG describes) or by DTMF menu.
    shared_mode: Mode = "speech"
    languages: tuple[str, ...] = ("nl", "en")


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    cbs_code: str
    kind: str = "woonplaats"
    area_code: str = ""
    woonplaats_code: str = ""


@dataclass(frozen=True, slots=True)
class Alias:
    alias: str
    cbs_code: str
    kind: str
    place: str = ""


@dataclass(frozen=True)
class NumberPlan:
    municipalities: Mapping[str, Municipality]
    area_codes: Mapping[str, AreaCode]
    places: tuple[Place, ...] = ()
    aliases: tuple[Alias, ...] = ()
    revision: int = 0
    _area_codes_of: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _places_of: dict[str, list[Place]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[str]] = {}
        for ac in self.area_codes.values():
            for m in ac.members:
                index.setdefault(m.cbs_code, []).append(ac.code)
        self._area_codes_of.update({k: tuple(v) for k, v in index.items()})
        for p in self.places:
            self._places_of.setdefault(p.cbs_code, []).append(p)

    # -- queries the call flow needs -----------------------------------------------------------------
    def area_code(self, raw: object) -> AreaCode | None:
        code = normalise_area_code(raw)
        return self.area_codes.get(code) if code else None

    def members(self, area_code: str) -> list[Municipality]:
        """Municipalities behind an area code, in menu order."""
        ac = self.area_codes.get(area_code)
        if ac is None:
            return []
        return [self.municipalities[m.cbs_code] for m in sorted(ac.members, key=lambda m: m.menu_order)]

    def connected_members(self, area_code: str) -> list[Municipality]:
        return [m for m in self.members(area_code) if m.status != "not_connected"]

    def mode(self, area_code: str) -> Mode | None:
        """``single`` when at most one connected municipality is behind the code, else the configured mode.

        A code whose only municipality is not connected is ``single`` too: the flow announces that.
        """
        ac = self.area_codes.get(area_code)
        if ac is None:
            return None
        if len(self.connected_members(area_code)) <= 1:
            return "single"
        return ac.shared_mode

    def area_codes_of(self, cbs_code: str) -> tuple[str, ...]:
        return self._area_codes_of.get(cbs_code, ())

    def by_menu_digit(self, area_code: str, digit: str) -> Municipality | None:
        ac = self.area_codes.get(area_code)
        if ac is None:
            return None
        for m in ac.members:
            if m.menu_digit == digit:
                return self.municipalities[m.cbs_code]
        return None

    def places_of(self, cbs_code: str) -> list[Place]:
        return list(self._places_of.get(cbs_code, ()))

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_csv(cls, data_dir: Path, revision: int = 0) -> NumberPlan:
        """Build a plan from the project's ``data/`` files with the seed defaults."""
        return cls.from_rows(*read_csv_rows(data_dir), revision=revision)

    @classmethod
    def from_rows(
        cls,
        municipalities: Iterable[Municipality],
        area_codes: Iterable[AreaCode],
        places: Iterable[Place],
        aliases: Iterable[Alias],
        revision: int = 0,
    ) -> NumberPlan:
        return cls(
            municipalities={m.cbs_code: m for m in municipalities},
            area_codes={a.code: a for a in area_codes},
            places=tuple(places),
            aliases=tuple(aliases),
            revision=revision,
        )


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


FRISIAN_PROVINCE = "Fryslân"


def read_csv_rows(
    data_dir: Path,
) -> tuple[list[Municipality], list[AreaCode], list[Place], list[Alias]]:
    """Read ``data/`` into plan records with the seed defaults (what ``fourteen db seed`` stores)."""
    munis = []
    for r in _read(data_dir / "municipalities.csv"):
        status = r["status"] if r["status"] in STATUSES else "technical"
        public = r["phone_general"]
        if public.startswith("14"):
            public = ""  # a 14+ number is no alternative for a caller who just dialled 14+
        munis.append(
            Municipality(
                cbs_code=r["cbs_code"],
                name=r["name"],
                name_short=r["name_short"],
                province=r["province"],
                seat=r["seat"],
                status=status,  # type: ignore[arg-type]
                main_area_code=r["main_area_code"],
                public_number=public,
                fourteen_plus_number=r["fourteen_plus_number"],
            )
        )
    province = {m.cbs_code: m.province for m in munis}
    names = {m.cbs_code: m.name for m in munis}
    areas = []
    for r in _read(data_dir / "area_codes.csv"):
        codes = [c for c in r["municipalities"].split(";") if c]
        codes.sort(key=lambda c: names[c].lower())
        members = tuple(
            Member(cbs_code=c, menu_digit=str(i) if i <= 9 else "", menu_order=i)
            for i, c in enumerate(codes, start=1)
        )
        frisian = any(province.get(c) == FRISIAN_PROVINCE for c in codes)
        areas.append(
            AreaCode(
                code=r["area_code"],
                main_place=r["main_place"],
                members=members,
                shared_mode="speech",
                languages=("nl", "en", "fy") if frisian else ("nl", "en"),
            )
        )
    places = [
        Place(
            name=r["place"],
            cbs_code=r["municipality_cbs_code"],
            kind=r["kind"],
            area_code=r["area_code"],
            woonplaats_code=r["woonplaats_code"],
        )
        for r in _read(data_dir / "places.csv")
    ]
    aliases = [
        Alias(alias=r["alias"], cbs_code=r["municipality_cbs_code"], kind=r["kind"], place=r["place"])
        for r in _read(data_dir / "aliases.csv")
    ]
    return munis, areas, places, aliases


def default_data_dir() -> Path:
    """The ``data/`` directory of a source checkout (the seed data)."""
    return Path(__file__).resolve().parents[2] / "data"
