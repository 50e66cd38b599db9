"""From (dialled area code, what the caller said or pressed) to ranked municipalities and one decision.

The resolver is pure and synchronous: it reads an immutable :class:`NumberPlan` snapshot and never does
I/O, so it can be called on the event loop (microseconds per utterance) and tested exhaustively.

How a transcript is matched:

* it is cleaned and folded (:mod:`fourteen.normalise`) into tokens;
* every run of up to ``MAX_SPAN`` consecutive tokens that contains a content word is looked up whole
  (squashed, so "bor sele" finds Borsele) in an index of names, aliases and places — whole words only,
  so "ede" inside "tevreden" never counts;
* behind the dialled code, runs without an exact hit are compared with ``fuzz.ratio`` (not ``WRatio``,
  which favours short names), and a run may be the first word of a longer name ("Alphen") or a clear
  prefix ("Achtkar…"), which is worth a confirmation, not a route;
* only when nothing behind the dialled code is clear is the whole country searched, with a stricter
  cut-off and without hamlets (a near miss on a hamlet somewhere is noise);
* names of four letters or fewer (Ede, Epe, Oss, Urk) only match exactly, and inside a sentence a short
  place name or an everyday word ("best", "echt", "drie") is not taken for a name;
* after a correction ("nee, niet Goes maar Kapelle") only what follows the last correction counts.

The decision uses the best candidate's score and its margin over the best *other* municipality; names
behind the dialled code come first unless a name elsewhere is clearly better.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

from .normalise import (
    CORRECTION_MARKERS,
    FRAME_WORDS,
    OPERATOR_WORDS,
    ORDINARY_WORDS,
    STOPWORDS,
    clean,
    key,
    literal_key,
    literal_tokens,
    literal_tokens_of_clean,
    spoken_forms,
    tokens_of_clean,
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
ROUTE_MIN = 83.0  # a candidate this good, with a clear margin, is routed without asking
CONFIRM_MIN = 70.0  # below this nothing is proposed
MARGIN_MIN = 8.0  # the best must beat the best other municipality by this much to route
OTHER_AREA_MIN = 90.0  # naming a municipality elsewhere must be this clear (the country is a big haystack)
OTHER_AREA_MARGIN = 20.0  # ... and clearly better than the best name behind the dialled code
FUZZY_MIN_LEN = 5  # keys shorter than this only match exactly
SHORT_KEY = 3  # keys this short that match only after folding ("os" for Oss) are worth a question
SHORT_FOLDED = 78.0
PARTIAL = 80.0  # the first word of a longer name ("Alphen" for Alphen aan den Rijn)
HYPHEN_PART = 90.0  # one half of a double name ("Hardinxveld" for Hardinxveld-Giessendam)
PREFIX_MIN_COVER = 0.4  # a prefix must cover this share of the name to count
IN_AREA_BONUS = 4.0  # candidates behind the dialled code rank first at similar scores
HAMLET_PENALTY = 6.0  # a hamlet elsewhere rarely beats a near-miss behind the dialled code
SENTENCE_PENALTY = 12.0  # a near miss inside a sentence of other words is probably one of those words
DTMF_OPERATOR = "0"

Kind = Literal["municipality", "alias", "place", "partial"]


@dataclass(frozen=True, slots=True)
class Target:
    cbs_code: str
    label: str
    kind: Kind
    place: str = ""
    strength: int = 2  # 3: a municipality's own name, 2: alias or woonplaats, 1: hamlet (kern)
    literal: str = ""  # unfolded key, to prefer "Ede" over "Eede" when both fold to the same key


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
    literal: bool = False  # the words said are the name as written, not just alike after folding


@dataclass(frozen=True, slots=True)
class _AreaIndex:
    members: frozenset[str]
    keys: tuple[str, ...]  # fuzzy-matchable keys of names behind the code
    partial: dict[str, list[tuple[float, Target]]]  # parts and first words of names behind the code


class Resolver:
    """Matches transcripts and key presses against one number-plan snapshot. Build once per revision."""

    def __init__(self, plan: NumberPlan, max_candidates: int = 5) -> None:
        self.plan = plan
        self.max_candidates = max_candidates
        self._index: dict[str, list[Target]] = defaultdict(list)
        for t, k in self._targets(plan):
            if k and t not in self._index[k]:
                self._index[k].append(t)
        self._index = dict(self._index)
        self._by_len: dict[int, list[str]] = defaultdict(list)
        self._keys_of: dict[str, set[str]] = defaultdict(set)
        for k, ts in self._index.items():
            if len(k) >= FUZZY_MIN_LEN:
                if any(t.strength > 1 for t in ts):
                    self._by_len[len(k)].append(k)
                for t in ts:
                    self._keys_of[t.cbs_code].add(k)
        self._areas: dict[str, _AreaIndex] = {}
        self._pools: dict[int, list[str]] = {}

    # -- index -------------------------------------------------------------------------------------
    @staticmethod
    def _targets(plan: NumberPlan) -> Iterable[tuple[Target, str]]:
        woonplaatsen = {(p.cbs_code, p.name) for p in plan.places if p.kind == "woonplaats"}
        for m in plan.municipalities.values():
            names = {m.name, m.name_short, m.spoken_name} - {""}
            for label in set().union(*(spoken_forms(n) for n in names)):
                yield Target(m.cbs_code, m.name, "municipality", "", 3, literal_key(label)), key(label)
        for a in plan.aliases:
            if a.cbs_code in plan.municipalities:
                for label in spoken_forms(a.alias):
                    t = Target(a.cbs_code, a.alias, "alias", a.place, 2, literal_key(label))
                    yield t, key(label)
        for p in plan.places:
            if p.cbs_code in plan.municipalities:
                strength = 2 if (p.cbs_code, p.name) in woonplaatsen else 1
                for label in spoken_forms(p.name):
                    yield (
                        Target(p.cbs_code, p.name, "place", p.name, strength, literal_key(label)),
                        key(label),
                    )

    def _area(self, area_code: str | None) -> _AreaIndex:
        code = area_code or ""
        area = self._areas.get(code)
        if area is None:
            members = frozenset(m.cbs_code for m in self.plan.members(code)) if code else frozenset()
            keys = tuple(sorted(set().union(*(self._keys_of[c] for c in members)))) if members else ()
            partial: dict[str, list[tuple[float, Target]]] = defaultdict(list)
            for m in self.plan.members(code) if code else ():
                for name in {without_cbs_suffix(m.name), m.name_short}:
                    parts = name.split("-")
                    if len(parts) > 1:  # "Hardinxveld" for Hardinxveld-Giessendam: how people say it
                        for part in parts:
                            k = key(part)
                            if len(k) >= FUZZY_MIN_LEN:
                                partial[k].append(
                                    (HYPHEN_PART, Target(m.cbs_code, m.name, "partial", "", 2, k))
                                )
                    words = [w for w in literal_tokens(name) if w not in STOPWORDS]
                    if len(literal_tokens(name)) > 1 and words and len(key(words[0])) >= FUZZY_MIN_LEN:
                        k = key(words[0])  # "Alphen" for Alphen aan den Rijn: likely, but worth asking
                        if not any(t.cbs_code == m.cbs_code for _, t in partial[k]):
                            partial[k].append((PARTIAL, Target(m.cbs_code, m.name, "partial", "", 2, k)))
            area = self._areas[code] = _AreaIndex(members, keys, dict(partial))
        return area

    # -- public API --------------------------------------------------------------------------------
    def resolve(self, area_code: object, utterance: object) -> Resolution:
        """Decide what to do with what the caller said. Never raises for any input."""
        code = normalise_area_code(area_code)
        area = self._area(code if code in self.plan.area_codes else None)
        text = clean(utterance)
        toks = tokens_of_clean(text)
        if not toks:
            return Resolution("retry", code, reason="nothing said", transcript=text)
        lits = literal_tokens_of_clean(text)
        if len(lits) != len(toks):  # cannot happen (same split); never trust it blindly
            lits = toks

        operator = any(t in OPERATOR_WORDS for t in lits)
        hits = self._match(toks, lits, area)
        hits, first = _after_last_correction(hits, lits)
        other_words = [t for t in lits[first:] if t not in FRAME_WORDS and t not in OPERATOR_WORDS]
        best = self._best_per_municipality(hits, len(other_words), area)
        ranked = sorted(best.values(), key=lambda h: self._rank(h, area), reverse=True)
        return self._decide(code, text, ranked, area, operator)

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
            return Resolution("not_connected", code, cand, reason="not connected", transcript=pressed)
        return Resolution("route", code, cand, reason="menu choice", transcript=pressed)

    # -- matching ----------------------------------------------------------------------------------
    def _match(self, toks: tuple[str, ...], lits: tuple[str, ...], area: _AreaIndex) -> list[_Hit]:
        hits: list[_Hit] = []
        open_spans: list[tuple[str, int, int]] = []  # runs without an exact hit behind the dialled code
        exact_in_area = False
        stop = [w in STOPWORDS for w in lits]
        frame = [s or w in OPERATOR_WORDS for s, w in zip(stop, lits, strict=True)]
        n = len(toks)
        for i in range(n):
            squashed = literal = ""
            only_stopwords = True
            for j in range(i, min(n, i + MAX_SPAN)):
                squashed += toks[j]
                literal += lits[j]
                only_stopwords = only_stopwords and stop[j]
                if only_stopwords:
                    continue
                here = False
                for t in self._index.get(squashed, ()):
                    is_literal = t.literal == literal
                    score = 100.0 if is_literal or len(squashed) > SHORT_KEY else SHORT_FOLDED
                    hits.append(_Hit(score, i, j, t, squashed, is_literal))
                    here = here or t.cbs_code in area.members
                exact_in_area = exact_in_area or here
                if not (here or frame[i] or frame[j]) and len(squashed) >= 4:
                    open_spans.append((squashed, i, j))
        if not exact_in_area and area.keys:
            for span, start, pos in open_spans:
                if start == pos:
                    hits.extend(self._partial(span, start, area))
                if len(span) < FUZZY_MIN_LEN:
                    continue
                for k, score, _ in process.extract(
                    span, area.keys, scorer=fuzz.ratio, score_cutoff=CONFIRM_MIN - IN_AREA_BONUS, limit=4
                ):
                    hits.extend(_Hit(score, start, pos, t, k) for t in self._index[k])
        if not any(
            (h.score >= 100 and h.target.strength > 1)
            or (h.score >= ROUTE_MIN and h.target.cbs_code in area.members)
            for h in hits
        ):
            # Nothing clear anywhere yet: perhaps the caller named a place elsewhere, misrecognised.
            for span, start, pos in open_spans:
                if pos - start > 2 or len(span) < FUZZY_MIN_LEN:
                    continue
                for k, score, _ in process.extract(
                    span, self._pool(len(span)), scorer=fuzz.ratio, score_cutoff=OTHER_AREA_MIN, limit=3
                ):
                    hits.extend(_Hit(score, start, pos, t, k) for t in self._index[k] if t.strength > 1)
        return _drop_contained(hits)

    def _pool(self, size: int) -> list[str]:
        """Keys whose length allows ``fuzz.ratio`` ≥ OTHER_AREA_MIN against a span of ``size`` letters."""
        pool = self._pools.get(size)
        if pool is None:
            lo, hi = int(size * 0.8), int(size * 1.25) + 1
            pool = self._pools[size] = [k for n in range(lo, hi + 1) for k in self._by_len.get(n, ())]
        return pool

    def _partial(self, span: str, i: int, area: _AreaIndex) -> list[_Hit]:
        """First word of a longer name behind the code, or a clear prefix of one: a guess worth asking."""
        found = [_Hit(score, i, i, t, span) for score, t in area.partial.get(span, ())]
        if len(span) >= 4 and not found:
            for k in area.keys:
                if k.startswith(span) and len(span) / len(k) >= PREFIX_MIN_COVER:
                    score = min(ROUTE_MIN - 1, CONFIRM_MIN + 20 * len(span) / len(k))
                    found.extend(
                        _Hit(score, i, i, t, k) for t in self._index[k] if t.cbs_code in area.members
                    )
        return found

    def _best_per_municipality(self, hits: list[_Hit], words: int, area: _AreaIndex) -> dict[str, _Hit]:
        """Best hit per municipality; ``words`` counts what was said besides the frame ("ik wil naar")."""
        best: dict[str, _Hit] = {}
        for h in hits:
            if words > 1 and h.key in ORDINARY_WORDS:
                continue  # "dat is het best", "echt waar": everyday words inside a sentence
            if words > 1 and len(h.key) <= 4 and h.target.strength < 3:
                continue  # a short place name inside a sentence is most likely an ordinary word
            if words > 2 and h.score < 100:
                h = _Hit(h.score - SENTENCE_PENALTY, h.start, h.pos, h.target, h.key, h.literal)
            cur = best.get(h.target.cbs_code)
            if cur is None or self._rank(h, area) > self._rank(cur, area):
                best[h.target.cbs_code] = h
        return best

    @staticmethod
    def _rank(h: _Hit, area: _AreaIndex) -> tuple[float, int, bool, int]:
        """Ordering of hits: score, nudged towards the dialled code and away from hamlets elsewhere."""
        effective = h.score
        if h.target.cbs_code in area.members:
            effective += IN_AREA_BONUS
        elif h.target.strength < 2:
            effective -= HAMLET_PENALTY
        return (effective, h.pos, h.literal, h.target.strength)

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
        self, code: str | None, text: str, ranked: list[_Hit], area: _AreaIndex, operator: bool
    ) -> Resolution:
        def res(decision: Decision, reason: str, order: list[_Hit], **kw: object) -> Resolution:
            cands = tuple(self._candidate(h, area) for h in order[: self.max_candidates])
            return Resolution(decision, code, cands, reason=reason, transcript=text, **kw)  # type: ignore[arg-type]

        if not ranked or ranked[0].score < CONFIRM_MIN:
            return res(
                "operator" if operator else "retry",
                "asked for a person" if operator else "no name recognised",
                ranked,
            )
        if operator and ranked[0].score < ROUTE_MIN:
            return res("operator", "asked for a person", ranked)

        # Names behind the dialled code come first, unless a name elsewhere is clearly better.
        inside = [h for h in ranked if h.target.cbs_code in area.members]
        top = ranked[0]
        lead = self._rank(top, area)[0] - self._rank(inside[0], area)[0] if inside else 0.0
        if inside and top.target.cbs_code not in area.members and lead < OTHER_AREA_MARGIN:
            top = inside[0]
        order = [top, *(h for h in ranked if h is not top)]

        # The same name in several municipalities: the dialled code may settle it, then the weight of the
        # name (a municipality's own name, then a woonplaats, over a hamlet), then the exact spelling.
        same = [h for h in ranked if h.key == top.key and h.score == top.score]
        if len(same) > 1:
            in_area = [h for h in same if h.target.cbs_code in area.members]
            # behind the dialled code a municipality's own name beats a place; elsewhere both are real
            if in_area:
                own = [h for h in in_area if h.target.strength == 3]
                pool = own or in_area
            else:
                pool = _strongest(same, 2)
            if len(pool) > 1 and any(h.literal for h in pool):
                pool = [h for h in pool if h.literal]
            if len(pool) > 1:
                return res(
                    "ambiguous",
                    "place name exists in several municipalities",
                    order,
                    ambiguous_place=without_cbs_suffix(top.target.label),
                    ambiguous_between=tuple(h.target.cbs_code for h in pool),
                )
            if in_area and not pool[0].literal and any(h.literal and h.target.strength > 1 for h in same):
                # "Roosendaal" said on Rozendaal's code: alike, but the caller may mean the other one
                top = pool[0]
                return res(
                    "confirm", "sounds like a name elsewhere", [top, *(h for h in ranked if h is not top)]
                )
            top = pool[0]
            order = [top, *(h for h in ranked if h.target.cbs_code != top.target.cbs_code)]
            ranked = [h for h in ranked if h is top or h not in same]  # settled: no longer rivals

        m = self.plan.municipalities[top.target.cbs_code]
        if m.cbs_code not in area.members:
            if top.score >= OTHER_AREA_MIN:
                if m.status == "not_connected":
                    return res("not_connected", "municipality not connected to 14+", order)
                return res("other_area", "municipality is not behind the dialled area code", order)
            return res("confirm", "unsure, and not behind the dialled area code", order)

        rivals = [
            h
            for h in ranked
            if h is not top
            and h.target.cbs_code != m.cbs_code
            and (h.target.cbs_code in area.members or h.target.strength > 1)
        ]
        margin = self._rank(top, area)[0] - (self._rank(rivals[0], area)[0] if rivals else 0.0)
        if top.score >= ROUTE_MIN and margin >= MARGIN_MIN:
            if m.status == "not_connected":
                return res("not_connected", "municipality not connected to 14+", order)
            return res("route", "clear match", order)
        return res("confirm", "close call" if top.score >= ROUTE_MIN else "unsure match", order)


def _strongest(hits: list[_Hit], cap: int) -> list[_Hit]:
    best = max(min(h.target.strength, cap) for h in hits)
    return [h for h in hits if min(h.target.strength, cap) == best]


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


def _after_last_correction(hits: list[_Hit], words: tuple[str, ...]) -> tuple[list[_Hit], int]:
    """Keep only what was named after the last correction that is followed by a name.

    Returns the kept hits and the index of the first token that still counts.
    """
    if not hits:
        return hits, 0
    last_start = max(h.start for h in hits)
    markers = [i for i, t in enumerate(words) if t in CORRECTION_MARKERS and i < last_start]
    if not markers:
        return hits, 0
    kept = [h for h in hits if h.start > markers[-1]]
    return (kept, markers[-1] + 1) if kept else (hits, 0)
