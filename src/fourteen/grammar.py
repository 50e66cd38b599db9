"""Speech grammars per area code: what a caller may say, in words the Vosk model actually knows.

In grammar mode Vosk only hypothesises the listed phrases, which makes a small model accurate on the few
dozen names behind one area code. But Vosk silently drops every grammar word that is not in the model's
vocabulary (and, in 0.3.45, every non-ASCII word escaped as ``\\uXXXX``), so a name can vanish without an
error. Hence every word is checked with ``vosk_model_find_word`` here and a name whose words are missing
gets an in-vocabulary spoken form where one exists: without diacritics, hyphen parts, or a compound split
into at most three known words ("reimerswaal" → "reimers waal"). The resolver squashes word runs, so a split
form still maps back to its municipality. Names that cannot be covered are reported, not guessed.

Files are ``grammars/<area_code>.json`` (see :meth:`Grammar.to_json`); they are only valid for the model
they were built with, so the engine rebuilds in memory when the model differs.

    fourteen grammar build [--model PATH] [--out grammars/] [--area-code CODE] [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .normalise import spoken_forms
from .numberplan import NumberPlan, default_data_dir, normalise_area_code

__all__ = [
    "EXTRA_WORDS",
    "UNK",
    "Grammar",
    "Uncovered",
    "Vocabulary",
    "WordLookup",
    "build_grammar",
    "build_grammars",
    "default_grammars_dir",
    "model_name",
    "register_cli",
    "speech_area_codes",
]

log = logging.getLogger(__name__)

UNK = "[unk]"
#: What a caller says besides a name: asking for a person, answering "Bedoelt u …?", and the digits of
#: "toets 1" (both "één" and "een": which one a model spells depends on its lexicon).
EXTRA_WORDS: tuple[str, ...] = (
    "medewerker",
    "ja",
    "nee",
    "klopt",
    "nul",
    "één",
    "een",
    "twee",
    "drie",
    "vier",
    "vijf",
    "zes",
    "zeven",
    "acht",
    "negen",
)
MAX_PARTS = 3  # a compound is split into at most this many known words
MIN_PART = 2  # shorter parts ("s", "a") match almost anything and make nonsense splits
#: Clitics that may be left out when the model lacks them: "'s-hertogenbosch" is said "hertogenbosch" too.
OPTIONAL_WORDS = frozenset({"'s", "'t", "s", "t"})
_NOT_WORD = re.compile(r"[^\w'\-]+")


class WordLookup(Protocol):
    """What a vocabulary check needs from a model (``vosk.Model`` has it)."""

    def vosk_model_find_word(self, word: str) -> int: ...


class Vocabulary:
    """A model's vocabulary with cached look-ups (thousands of place names share their words)."""

    def __init__(self, model: WordLookup, name: str = "") -> None:
        self.model = model
        self.name = name
        self._known: dict[str, bool] = {}

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word:
            return False
        known = self._known.get(word)
        if known is None:
            known = self._known[word] = self.model.vosk_model_find_word(word) >= 0
        return known

    @property
    def has_unk(self) -> bool:
        return UNK in self


def model_name(path: str | os.PathLike[str]) -> str:
    """A model's name for grammar files: its directory name, or the package name for ``<pkg>/model``."""
    p = Path(path).resolve()
    return p.parent.name if p.name == "model" and p.parent.name else p.name


def default_grammars_dir() -> Path:
    """``grammars/`` of a source checkout."""
    return default_data_dir().parent / "grammars"


@dataclass(frozen=True, slots=True)
class Uncovered:
    name: str
    cbs_code: str
    missing_words: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cbs_code": self.cbs_code, "missing_words": list(self.missing_words)}


@dataclass(frozen=True)
class Grammar:
    """The phrases of one area code for one model, and what could not be covered."""

    area_code: str
    model: str
    phrases: tuple[str, ...]
    uncovered: tuple[Uncovered, ...] = ()
    names: int = 0
    covered: int = 0
    municipalities: int = 0
    municipalities_covered: int = 0
    missing_extras: tuple[str, ...] = ()
    has_unk: bool = False
    #: spoken form → CBS codes, for reports and debugging (the resolver does the real mapping)
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def recogniser_json(self) -> str:
        """The grammar as ``KaldiRecognizer`` wants it. ``ensure_ascii=False``: Vosk 0.3.45 does not
        unescape ``\\uXXXX`` and would drop "서울" or "súdwest" as missing words."""
        words = list(self.phrases) + ([UNK] if self.has_unk else [])
        return json.dumps(words, ensure_ascii=False)

    def to_json(self) -> str:
        data = {
            "area_code": self.area_code,
            "model": self.model,
            "phrases": list(self.phrases),
            "uncovered": [u.as_dict() for u in self.uncovered],
            "coverage": {
                "names": self.names,
                "covered": self.covered,
                "municipalities": self.municipalities,
                "municipalities_covered": self.municipalities_covered,
            },
            "missing_extras": list(self.missing_extras),
            "unk": self.has_unk,
        }
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Grammar:
        """Parse a grammar file; ValueError when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("phrases"), list):
            raise ValueError("not a grammar file: no phrases list")
        phrases = data["phrases"]
        if not all(isinstance(p, str) for p in phrases):
            raise ValueError("not a grammar file: phrases must be strings")
        cov = data.get("coverage") or {}
        return cls(
            area_code=str(data.get("area_code", "")),
            model=str(data.get("model", "")),
            phrases=tuple(phrases),
            uncovered=tuple(
                Uncovered(
                    str(u.get("name", "")), str(u.get("cbs_code", "")), tuple(u.get("missing_words", ()))
                )
                for u in data.get("uncovered", ())
                if isinstance(u, dict)
            ),
            names=int(cov.get("names", 0)),
            covered=int(cov.get("covered", 0)),
            municipalities=int(cov.get("municipalities", 0)),
            municipalities_covered=int(cov.get("municipalities_covered", 0)),
            missing_extras=tuple(data.get("missing_extras", ())),
            has_unk=bool(data.get("unk", False)),
        )

    def write(self, out_dir: Path) -> Path:
        """Write ``<out_dir>/<area_code>.json`` atomically."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.area_code}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path


# -- spoken forms in the model's words -----------------------------------------------------------------
def _strip_diacritics(word: str) -> str:
    """ "súdwest" → "sudwest", keeping Hangul syllables whole (NFKD alone would split them into jamo)."""
    decomposed = unicodedata.normalize("NFD", word)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def words_of(text: str) -> list[str]:
    """Lower-case words as a recogniser writes them: punctuation other than ' and - removed."""
    text = unicodedata.normalize("NFC", text).lower()
    return [w.strip("-") for w in _NOT_WORD.split(text) if w.strip("-'")]


def _split(word: str, vocab: Vocabulary) -> tuple[str, ...] | None:
    """The split of ``word`` into the fewest known parts (at most MAX_PARTS, each ≥ MIN_PART letters);
    among equally short splits the most balanced one (its shortest part longest)."""
    n = len(word)
    best: tuple[str, ...] | None = None
    for i in range(MIN_PART, n - MIN_PART + 1):
        a, b = word[:i], word[i:]
        if a in vocab and b in vocab and (best is None or min(len(a), len(b)) > min(map(len, best))):
            best = (a, b)
    if best is not None or MAX_PARTS < 3:
        return best
    for i in range(MIN_PART, n - 2 * MIN_PART + 1):
        a = word[:i]
        if a not in vocab:
            continue
        for j in range(i + MIN_PART, n - MIN_PART + 1):
            b, c = word[i:j], word[j:]
            if (
                b in vocab
                and c in vocab
                and (best is None or min(len(a), len(b), len(c)) > min(map(len, best)))
            ):
                best = (a, b, c)
    return best


def cover_word(word: str, vocab: Vocabulary) -> tuple[str, ...] | None:
    """In-vocabulary words for one written word, or None: as written, without diacritics, hyphen and
    apostrophe parts, then a compound split (each also without diacritics)."""
    for w in dict.fromkeys((word, _strip_diacritics(word))):
        if w in vocab:
            return (w,)
    parts = [p for p in re.split(r"[-]+", word) if p]
    if len(parts) > 1:
        out: list[str] = []
        for p in parts:
            covered = cover_word(p, vocab)
            if covered is None:
                if p in OPTIONAL_WORDS:
                    continue
                return None
            out.extend(covered)
        return tuple(out) or None
    for w in dict.fromkeys((word.replace("'", ""), _strip_diacritics(word).replace("'", ""))):
        if w != word and w in vocab:
            return (w,)
        split = _split(w, vocab)
        if split is not None:
            return split
    return None


def cover_phrase(text: str, vocab: Vocabulary) -> tuple[str | None, tuple[str, ...]]:
    """(the phrase in known words, or None; the words that could not be covered)."""
    out: list[str] = []
    missing: list[str] = []
    for w in words_of(text):
        covered = cover_word(w, vocab)
        if covered is None:
            if w in OPTIONAL_WORDS:
                continue
            parts = [p for p in w.split("-") if p and p not in OPTIONAL_WORDS]
            missing.extend(p for p in parts if cover_word(p, vocab) is None)
        else:
            out.extend(covered)
    if missing or not out:
        return None, tuple(missing)
    return " ".join(out), ()


# -- building ------------------------------------------------------------------------------------------
def speech_area_codes(plan: NumberPlan) -> list[str]:
    """Area codes that ask by speech (shared codes in speech mode)."""
    return sorted(c for c in plan.area_codes if plan.mode(c) == "speech")


def _names(plan: NumberPlan, area_code: str) -> Iterable[tuple[str, str, bool]]:
    """(name, cbs_code, is the municipality's own name or alias) for everything said behind a code."""
    for m in plan.members(area_code):
        for n in dict.fromkeys((m.name, m.name_short, m.spoken_name)):
            if n:
                yield n, m.cbs_code, True
        for a in plan.aliases:
            if a.cbs_code == m.cbs_code:
                yield a.alias, m.cbs_code, True
        for p in plan.places_of(m.cbs_code):
            yield p.name, m.cbs_code, False


def build_grammar(
    plan: NumberPlan, area_code: str, model: WordLookup | Vocabulary, *, model_name: str = ""
) -> Grammar:
    """The grammar of one area code for one model (pure: usable in tests with a custom plan and model).

    A name counts as covered when at least one of its spoken forms ("Katwijk NB" → "Katwijk") is; every
    covered form becomes a phrase. Extra words the model lacks are left out and listed in
    ``missing_extras``.
    """
    vocab = model if isinstance(model, Vocabulary) else Vocabulary(model, model_name)
    code = normalise_area_code(area_code) or area_code
    sources: dict[str, set[str]] = {}
    uncovered: list[tuple[bool, Uncovered]] = []  # municipality names and aliases first: they matter most
    seen: set[tuple[str, str]] = set()
    munis: dict[str, bool] = {}
    names = covered = 0
    for name, cbs, own in _names(plan, code):
        if (name, cbs) in seen:
            continue
        seen.add((name, cbs))
        names += 1
        munis.setdefault(cbs, False)
        ok = False
        missing: dict[str, None] = {}
        for form in sorted(spoken_forms(name)):
            phrase, miss = cover_phrase(form, vocab)
            if phrase is None:
                missing.update(dict.fromkeys(miss))
                continue
            ok = True
            sources.setdefault(phrase, set()).add(cbs)
        if ok:
            covered += 1
            munis[cbs] = munis[cbs] or own
        else:
            uncovered.append((not own, Uncovered(name, cbs, tuple(missing))))
    extras: list[str] = []
    missing_extras: list[str] = []
    for word in EXTRA_WORDS:
        phrase, _ = cover_phrase(word, vocab)
        (extras if phrase else missing_extras).append(phrase or word)
    phrases = tuple(sorted(sources)) + tuple(p for p in dict.fromkeys(extras) if p not in sources)
    return Grammar(
        area_code=code,
        model=model_name or vocab.name,
        phrases=phrases,
        uncovered=tuple(u for _, u in sorted(uncovered, key=lambda x: x[0])),
        names=names,
        covered=covered,
        municipalities=len(munis),
        municipalities_covered=sum(munis.values()),
        missing_extras=tuple(missing_extras),
        has_unk=vocab.has_unk,
        sources={k: tuple(sorted(v)) for k, v in sources.items()},
    )


def build_grammars(
    plan: NumberPlan,
    model: WordLookup | Vocabulary,
    area_codes: Iterable[str] | None = None,
    *,
    model_name: str = "",
) -> dict[str, Grammar]:
    """Grammars for the given (default: every speech-mode) area code, sharing one vocabulary cache."""
    vocab = model if isinstance(model, Vocabulary) else Vocabulary(model, model_name)
    codes = speech_area_codes(plan) if area_codes is None else list(area_codes)
    return {c: build_grammar(plan, c, vocab, model_name=model_name or vocab.name) for c in codes}


def check_phrases(phrases: Iterable[str], vocab: Vocabulary) -> tuple[list[str], list[str]]:
    """(phrases whose words are all known, words that are not): a file from another model version would
    otherwise lose words silently inside Vosk."""
    keep: list[str] = []
    missing: dict[str, None] = {}
    for p in phrases:
        bad = [w for w in p.split() if w not in vocab]
        if bad:
            missing.update(dict.fromkeys(bad))
        else:
            keep.append(p)
    return keep, list(missing)


# -- command line --------------------------------------------------------------------------------------
def coverage_report(grammars: dict[str, Grammar], out: Any = None) -> None:
    """One line per area code and a total: names covered, municipalities covered, what is missing."""
    out = out or sys.stdout
    names = covered = munis = munis_ok = 0
    for code, g in sorted(grammars.items()):
        names, covered = names + g.names, covered + g.covered
        munis, munis_ok = munis + g.municipalities, munis_ok + g.municipalities_covered
        pct = 100.0 * g.covered / g.names if g.names else 100.0
        print(
            f"14 {code:<5} names {g.covered:>4}/{g.names:<4} ({pct:5.1f}%)  municipalities "
            f"{g.municipalities_covered}/{g.municipalities}  phrases {len(g.phrases)}",
            file=out,
        )
        for u in g.uncovered[:8]:
            print(
                f"        uncovered: {u.name} ({u.cbs_code}; missing: {' '.join(u.missing_words)})", file=out
            )
        if len(g.uncovered) > 8:
            print(f"        … and {len(g.uncovered) - 8} more (see the JSON file)", file=out)
    pct = 100.0 * covered / names if names else 100.0
    print(
        f"total: {len(grammars)} area codes, names {covered}/{names} ({pct:.1f}%), municipalities "
        f"{munis_ok}/{munis}",
        file=out,
    )
    extras = sorted({w for g in grammars.values() for w in g.missing_extras})
    if extras:
        print(f"extra words not in the model (left out): {', '.join(extras)}", file=out)


async def _plan_for_cli(settings: Any, data: Path | None) -> NumberPlan:
    """--data CSVs, else the configured database when it exists (never created here), else the seed data."""
    if data is not None:
        return await asyncio.to_thread(NumberPlan.from_csv, data)
    from . import store

    url: str = settings.effective_database_url
    if not (url.startswith("sqlite") and not await asyncio.to_thread(Path(url.split("///", 1)[-1]).is_file)):
        engine = store.make_engine(url)
        try:
            if await store.current_revision(engine) > 0:
                return await store.load_plan(engine)
        except Exception as exc:
            print(
                f"fourteen: database unavailable ({type(exc).__name__}); using the seed data", file=sys.stderr
            )
        finally:
            await engine.dispose()
    return await asyncio.to_thread(NumberPlan.from_csv, default_data_dir())


async def _cmd_build(args: argparse.Namespace, settings: Any) -> int:
    model_path: str = args.model or getattr(settings, "vosk_model", "")
    if not model_path:
        print("fourteen: no model: give --model PATH or set FOURTEEN_VOSK_MODEL", file=sys.stderr)
        return 2
    if not await asyncio.to_thread(Path(model_path).is_dir):
        print(f"fourteen: model directory {model_path} does not exist", file=sys.stderr)
        return 2
    plan = await _plan_for_cli(settings, args.data)
    if args.area_code:
        code = normalise_area_code(args.area_code)
        if code is None or code not in plan.area_codes:
            print(f"fourteen: unknown area code {args.area_code!r}", file=sys.stderr)
            return 2
        codes = [code]
    else:
        codes = speech_area_codes(plan)

    import vosk

    vosk.SetLogLevel(-1)
    started = time.monotonic()
    try:
        model = await asyncio.to_thread(vosk.Model, str(model_path))
    except Exception as exc:
        print(f"fourteen: cannot load the model at {model_path}: {exc}", file=sys.stderr)
        return 1
    loaded = time.monotonic() - started
    name = model_name(model_path)
    grammars = await asyncio.to_thread(build_grammars, plan, model, codes, model_name=name)
    out: Path = args.out
    for g in grammars.values():
        await asyncio.to_thread(g.write, out)
    coverage_report(grammars)
    print(
        f"wrote {len(grammars)} grammars to {out} for model {name} (model load {loaded:.1f} s, "
        f"build {time.monotonic() - started - loaded:.1f} s)"
    )
    return 0


def register_cli(sub: Any) -> None:
    """Add ``fourteen grammar build`` to the ``fourteen`` command."""
    gr = sub.add_parser("grammar", help="speech grammars per area code (for the configured Vosk model)")
    gsub = gr.add_subparsers(dest="grammar_command", required=True, metavar="ACTION")
    b = gsub.add_parser(
        "build",
        help="write grammars/<area_code>.json for every speech-mode area code and print the coverage",
        description="Every word is checked against the model's vocabulary; names that cannot be said in "
        "known words are listed per area code. Grammars are only valid for the model they were built with.",
    )
    b.add_argument("--model", help="Vosk model directory (default: FOURTEEN_VOSK_MODEL)")
    b.add_argument("--out", type=Path, default=default_grammars_dir(), help="default: the repo's grammars/")
    b.add_argument("--area-code", help="only this area code")
    b.add_argument("--data", type=Path, help="build from these plan CSVs instead of the database")
    b.set_defaults(handler=_cmd_build)
