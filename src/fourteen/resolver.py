"""From (dialled area code, what the caller said or pressed) to ranked municipalities and one decision.

The resolver is pure and synchronous: it reads an immutable :class:`NumberPlan` snapshot and never does
I/O, so it can be called on the event loop (a few microseconds per utterance) and tested exhaustively.

How a transcript is matched:

* it is cleaned and folded (:mod:`fourteen.normalise`) into tokens;
* every run of up to ``MAX_SPAN`` consecutive tokens that contains a content word is looked up whole
  (squashed, so "bor sele" finds Borsele) in an index of names, aliases and places — whole words only,
  so "ede" inside "tevreden" never counts;
* runs without an exact hit are compared with ``fuzz.ratio`` (not ``WRatio``, which favours short names)
  against the names behind the dialled area code, and with a stricter cut-off against the whole country;
  names of four letters or fewer (Ede, Epe, Oss, Urk) only match exactly;
* after a correction ("nee, niet Goes maar Kapelle") only what follows the last correction counts.

The decision uses the score of the best candidate and its margin over the best *other* municipality.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

from .normalise import (
    CORRECTION_MARKERS,
    OPERATOR_WORDS,
    ORDINARY_WORDS,
    STOPWORDS,
    clean,
    key,
    tokens,
    without_cbs_suffix,
)
from .numberplan import NumberPlan, normalise_area_code

Decision = Literal["route", "confirm", "retry", "not_connected", "other_area", "ambiguous", "operator"]
DECISIONS: tuple[Decision, ...] = (
    "route",
    "confirm",
    "retry",
    "not_connected",
    "other_area",
    "ambiguous",
    "operator",
)

MAX_SPAN = 5  # tokens in the longest name ("Nuenen, Gerwen en Nederwetten" is 4)
ROUTE_MIN = 88.0  # a candidate this good, with a clear margin, is routed without asking
CONFIRM_MIN = 72.0  # below this nothing is proposed
MARGIN_MIN = 8.0  # the best must beat the best other municipality by this much to route
OTHER_AREA_MIN = 90.0  # naming a municipality elsewhere must be this clear (the country is a big haystack)
FUZZY_MIN_LEN = 5  # keys this short only match exactly
IN_AREA_BONUS = 4.0  # candidates behind the dialled code rank first at similar scores
ORDINARY_CAP = 80.0  # an everyday word inside a sentence is a guess, not a name
HAMLET_PENALTY = 6.0  # a hamlet elsewhere rarely beats a near-miss behind the dialled code
DTMF_OPERATOR = "0"

Kind = Literal["municipality", "alias", "place"]


@dataclass(frozen=True, slots=True)
class Target:
    cbs_code: str
    label: str
    kind: Kind
    place: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    cbs_code: str
    name: str
    score: float
    in_area: bool
    matched: str = ""  # the name, alias or place that matched
    place: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"cbs_code": self.cbs_code, "name": self.name, "score": round(self.score, 1)}


@dataclass(frozen=True, slots=True)
class Resolution:
    decision: Decision
    area_code: str | None
    candidates: tuple[Candidate, ...] = ()
    reason: str = ""
    transcript: str = ""
    #: For ``ambiguous``: the place name said, and the municipalities it exists in.
    ambiguous_place: str = ""
    ambiguous_between: tuple[str, ...] = ()

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "area_code": self.area_code,
            "decision": self.decision,
            "candidates": [c.as_dict() for c in self.candidates],
            "reason": self.reason,
        }
        if self.ambiguous_place:
            d["ambiguous_place"] = self.ambiguous_place
            d["ambiguous_between"] = list(self.ambiguous_between)
        return d


@dataclass(slots=True)
class _Hit:
    score: float
    start: int  # index of the span's first token
    pos: int  # index of the span's last token: later mentions win after a correction
    target: Target
    key: str


@dataclass
class _AreaIndex:
    members: frozenset[str]
    keys: list[str] = field(default_factory=list)


class Resolver:
    """Matches transcripts and key presses against one number-plan snapshot. Build once per revision."""

    def __init__(self, plan: NumberPlan, max_candidates: int = 5) -> None:
        self.plan = plan
        self.max_candidates = max_candidates
        self._index: dict[str, list[Target]] = defaultdict(list)
        for t, k in self._targets(plan):
            if k and t not in self._index[k]:
                self._index[k].append(t)
        self._by_len: dict[int, list[str]] = defaultdict(list)
        for k in self._index:
            if len(k) >= FUZZY_MIN_LEN:
                self._by_len[len(k)].append(k)
        self._woonplaatsen = {(p.cbs_code, p.name) for p in plan.places if p.kind == "woonplaats"}
        self._keys_of: dict[str, set[str]] = defaultdict(set)
        for k, ts in self._index.items():
            if len(k) >= FUZZY_MIN_LEN:
                for t in ts:
                    self._keys_of[t.cbs_code].add(k)
        self._areas: dict[str, _AreaIndex] = {}

    # -- index -------------------------------------------------------------------------------------
    @staticmethod
    def _targets(plan: NumberPlan) -> Iterable[tuple[Target, str]]:
        for m in plan.municipalities.values():
            for label in {m.name, m.name_short, without_cbs_suffix(m.name), m.spoken_name} - {""}:
                yield Target(m.cbs_code, label, "municipality"), key(label)
        for a in plan.aliases:
            if a.cbs_code in plan.municipalities:
                yield Target(a.cbs_code, a.alias, "alias", a.place), key(without_cbs_suffix(a.alias))
        for p in plan.places:
            if p.cbs_code in plan.municipalities:
                label = without_cbs_suffix(p.name)
                yield Target(p.cbs_code, label, "place", p.name), key(_strip_bag_suffix(label))

    def _area(self, area_code: str | None) -> _AreaIndex:
        code = area_code or ""
        area = self._areas.get(code)
        if area is None:
            members = frozenset(m.cbs_code for m in self.plan.members(code)) if code else frozenset()
            keys = sorted(set().union(*(self._keys_of[c] for c in members))) if members else []
            area = self._areas[code] = _AreaIndex(members, keys)
        return area

    # -- public API --------------------------------------------------------------------------------
    def resolve(self, area_code: object, utterance: object) -> Resolution:
        """Decide what to do with what the caller said. Never raises for any input."""
        code = normalise_area_code(area_code)
        area = self._area(code if code in self.plan.area_codes else None)
        text = clean(utterance)
        toks = tokens(text)
        if not toks:
            return Resolution("retry", code, reason="nothing said", transcript=text)

        operator = any(t in OPERATOR_WORDS for t in toks)
        hits = self._match(toks, area)
        hits = _after_last_correction(hits, toks)
        content = [t for t in toks if t not in STOPWORDS]
        best = self._best_per_municipality(hits, content, area)
        ranked = sorted(best.values(), key=lambda h: self._rank(h, area), reverse=True)
        candidates = tuple(self._candidate(h, area) for h in ranked[: self.max_candidates])
        return self._decide(code, text, candidates, ranked, area, operator)

    def resolve_dtmf(self, area_code: object, digits: object) -> Resolution:
        """A key press in the menu: its municipality, "0" for a person, anything else: ask again."""
        code = normalise_area_code(area_code)
        pressed = clean(digits)
        if pressed == DTMF_OPERATOR:
            return Resolution("operator", code, reason="pressed 0", transcript=pressed)
        if code is None or code not in self.plan.area_codes:
            return Resolution("retry", code, reason="unknown area code", transcript=pressed)
        m = self.plan.by_menu_digit(code, pressed) if len(pressed) == 1 else None
        if m is None:
            return Resolution("retry", code, reason="no menu option for that key", transcript=pressed)
        cand = (Candidate(m.cbs_code, m.name, 100.0, True, matched=f"dtmf {pressed}"),)
        if m.status == "not_connected":
            return Resolution(
                "not_connected", code, cand, reason="municipality not connected", transcript=pressed
            )
        return Resolution("route", code, cand, reason="menu choice", transcript=pressed)

    # -- matching ----------------------------------------------------------------------------------
    def _match(self, toks: tuple[str, ...], area: _AreaIndex) -> list[_Hit]:
        hits: list[_Hit] = []
        fuzzy_spans: list[tuple[str, int, int]] = []
        exact_in_area = False
        n = len(toks)
        for i in range(n):
            squashed = ""
            for j in range(i, min(n, i + MAX_SPAN)):
                squashed += toks[j]
                if all(t in STOPWORDS for t in toks[i : j + 1]):
                    continue
                here = False
                for t in self._index.get(squashed, ()):
                    hits.append(_Hit(100.0, i, j, t, squashed))
                    here = here or t.cbs_code in area.members
                exact_in_area = exact_in_area or here
                if (
                    not here
                    and len(squashed) >= FUZZY_MIN_LEN
                    and j - i < 3
                    and toks[i] not in STOPWORDS
                    and toks[j] not in STOPWORDS
                    and toks[i] not in OPERATOR_WORDS
                    and toks[j] not in OPERATOR_WORDS
                ):
                    fuzzy_spans.append((squashed, i, j))
        if not exact_in_area and fuzzy_spans and area.keys:
            for span, start, pos in fuzzy_spans:
                for k, score, _ in process.extract(
                    span, area.keys, scorer=fuzz.ratio, score_cutoff=CONFIRM_MIN - IN_AREA_BONUS, limit=4
                ):
                    hits.extend(_Hit(score, start, pos, t, k) for t in self._index[k])
        if fuzzy_spans and not any(h.score >= ROUTE_MIN for h in hits):
            # Nothing clear behind the dialled code: perhaps the caller named a place elsewhere.
            for span, start, pos in fuzzy_spans:
                lo, hi = int(len(span) * 0.8), int(len(span) * 1.25) + 1
                pool = [k for size in range(lo, hi + 1) for k in self._by_len.get(size, ())]
                for k, score, _ in process.extract(
                    span, pool, scorer=fuzz.ratio, score_cutoff=OTHER_AREA_MIN, limit=3
                ):
                    hits.extend(_Hit(score, start, pos, t, k) for t in self._index[k])
        return _drop_contained(hits)

    def _best_per_municipality(
        self, hits: list[_Hit], content: list[str], area: _AreaIndex
    ) -> dict[str, _Hit]:
        best: dict[str, _Hit] = {}
        lone = len(content) <= 1
        for h in hits:
            score = h.score
            if h.key in ORDINARY_WORDS and not lone:
                score = min(score, ORDINARY_CAP)
            h = _Hit(score, h.start, h.pos, h.target, h.key)
            cur = best.get(h.target.cbs_code)
            if cur is None or self._rank(h, area) > self._rank(cur, area):
                best[h.target.cbs_code] = h
        return best

    def _rank(self, h: _Hit, area: _AreaIndex) -> tuple[float, int, int]:
        """Ordering of hits: score, nudged towards the dialled code and away from hamlets elsewhere."""
        effective = h.score
        if h.target.cbs_code in area.members:
            effective += IN_AREA_BONUS
        elif self._strength(h) < 2:
            effective -= HAMLET_PENALTY
        return (effective, h.pos, self._strength(h))

    def _strength(self, h: _Hit) -> int:
        """How much a name says: a municipality's own name or a woonplaats (2) over a hamlet (1)."""
        t = h.target
        if t.kind != "place":
            return 2
        return 2 if (t.cbs_code, t.place) in self._woonplaatsen else 1

    def _candidate(self, h: _Hit, area: _AreaIndex) -> Candidate:
        m = self.plan.municipalities[h.target.cbs_code]
        return Candidate(
            m.cbs_code,
            m.name,
            h.score,
            m.cbs_code in area.members,
            matched=h.target.label,
            place=h.target.place,
        )

    # -- deciding ----------------------------------------------------------------------------------
    def _decide(
        self,
        code: str | None,
        text: str,
        candidates: tuple[Candidate, ...],
        ranked: list[_Hit],
        area: _AreaIndex,
        operator: bool,
    ) -> Resolution:
        def res(
            decision: Decision, reason: str, cands: tuple[Candidate, ...] = candidates, **kw: object
        ) -> Resolution:
            return Resolution(decision, code, cands, reason=reason, transcript=text, **kw)  # type: ignore[arg-type]

        if not ranked or ranked[0].score < CONFIRM_MIN:
            if operator:
                return res("operator", "asked for a person")
            return res("retry", "no name recognised")
        top = ranked[0]
        if operator and top.score < ROUTE_MIN:
            return res("operator", "asked for a person")

        # The same name in several municipalities: the dialled code may settle it, or the weight of the
        # name (a municipality or woonplaats over a hamlet elsewhere).
        same = [h for h in ranked if h.key == top.key and h.score == top.score]
        if len(same) > 1:
            in_area = [h for h in same if h.target.cbs_code in area.members]
            strongest = max(self._strength(h) for h in same)
            pool = in_area or [h for h in same if self._strength(h) == strongest]
            if len(pool) > 1:
                return res(
                    "ambiguous",
                    "place name exists in several municipalities",
                    ambiguous_place=top.target.label,
                    ambiguous_between=tuple(h.target.cbs_code for h in pool),
                )
            top = pool[0]
            ranked = [top, *(h for h in ranked if h not in same)]
            candidates = tuple(self._candidate(h, area) for h in ranked[: self.max_candidates])

        m = self.plan.municipalities[top.target.cbs_code]
        if m.cbs_code not in area.members:
            if top.score >= OTHER_AREA_MIN:
                if m.status == "not_connected":
                    return res("not_connected", "municipality not connected to 14+", candidates)
                return res("other_area", "municipality is not behind the dialled area code", candidates)
            return res("confirm", "unsure, and not behind the dialled area code", candidates)

        margin = self._rank(top, area)[0] - (self._rank(ranked[1], area)[0] if len(ranked) > 1 else 0.0)
        if top.score >= ROUTE_MIN and margin >= MARGIN_MIN:
            if m.status == "not_connected":
                return res("not_connected", "municipality not connected to 14+", candidates)
            return res("route", "clear match", candidates)
        return res("confirm", "close call" if top.score >= ROUTE_MIN else "unsure match", candidates)


def _drop_contained(hits: list[_Hit]) -> list[_Hit]:
    """A name inside a longer name that was also said does not count ("Noord" in "Noord-Beveland")."""
    if len(hits) < 2:
        return hits
    spans = {(h.start, h.pos) for h in hits if h.score >= ROUTE_MIN}
    return [
        h
        for h in hits
        if not any(s <= h.start and h.pos <= e and (s, e) != (h.start, h.pos) for s, e in spans)
    ]


def _after_last_correction(hits: list[_Hit], toks: tuple[str, ...]) -> list[_Hit]:
    """Keep only what was named after the last correction that is followed by a name."""
    if not hits:
        return hits
    last_start = max(h.start for h in hits)
    markers = [i for i, t in enumerate(toks) if t in CORRECTION_MARKERS and i < last_start]
    if not markers:
        return hits
    return [h for h in hits if h.start > markers[-1]] or hits


_BAG_SUFFIX = re.compile(r"\s+(?:ca|c\.a\.|gem\.?\s*\w+|nb|l|gld|nh|zh|o|u|ov|fr|gr|dr)\.?$", re.IGNORECASE)


def _strip_bag_suffix(name: str) -> str:
    """'Bleskensgraaf ca' → 'Bleskensgraaf', 'Katwijk NB' → 'Katwijk': BAG's disambiguators are not spoken."""
    return _BAG_SUFFIX.sub("", name) or name
