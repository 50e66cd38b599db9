"""Dutch text normalisation for matching spoken place names against the number plan.

Names and transcripts go through the same folding, so spelling the recogniser (or a caller's accent) can
vary without changing the match: case, diacritics (Súdwest-Fryslân), the ``'s-`` prefix ('s-Hertogenbosch),
ij/y/ei, dt/t, doubled letters, voiced/voiceless pairs (v/f, z/s) and other sound-alike spellings.
Folding works per token and is cached: transcripts repeat the same few words endlessly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Transcripts longer than this are cut to their tail: callers end with the name they mean, and the
#: resolver's time must stay bounded whatever the recogniser hands over.
MAX_CHARS = 400

_CONTROL = {c: " " for c in range(32)} | {127: " "}
_PREFIX = re.compile(r"(?<![\w])'([st])[-\s]+")
_NON_WORD = re.compile(r"[\W_]+")  # Unicode-aware: names in any script survive (the tests use Korean)
_DOUBLE = re.compile(r"(.)\1+")
_SOUND_ALIKE = (
    ("sch", "sg"),
    ("ch", "g"),
    ("gh", "g"),
    ("ij", "ei"),
    ("ey", "ei"),
    ("y", "i"),
    ("ie", "i"),
    ("ou", "au"),
    ("dt", "t"),
    ("th", "t"),
    ("ph", "f"),
    ("ck", "k"),
    ("qu", "kw"),
    ("x", "ks"),
    ("ce", "se"),
    ("ci", "si"),
    ("c", "k"),
    ("z", "s"),
    ("v", "f"),
    ("w", "w"),
)


def clean(text: object) -> str:
    """Make any input safe to match: str or bytes (non-UTF-8 replaced), no control characters, bounded."""
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        text = str(text)
    if len(text) > MAX_CHARS:
        text = text[-MAX_CHARS:]
        text = text.split(" ", 1)[-1] if " " in text else text
    return text.translate(_CONTROL).strip()


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def fold_token(token: str) -> str:
    """Fold one lower-case ASCII token to its sound-alike key ("rijmerswaal" → "reimerswal")."""
    t = token
    for old, new in _SOUND_ALIKE:
        if old in t:
            t = t.replace(old, new)
    t = _DOUBLE.sub(r"\1", t)
    if len(t) > 2 and t.endswith("d"):
        t = t[:-1] + "t"
    return t


@lru_cache(maxsize=16384)
def _tokens_cached(text: str) -> tuple[str, ...]:
    t = strip_diacritics(text.lower())
    t = _PREFIX.sub(lambda m: " " + m.group(1), t)
    t = t.replace("'", "")
    raw = _NON_WORD.split(t)
    return tuple(fold_token(w) for w in raw if w)


def tokens(text: object) -> tuple[str, ...]:
    """Folded tokens of a name or transcript."""
    return _tokens_cached(clean(text))


#: For text that already went through :func:`clean` (the resolver's hot path cleans once).
tokens_of_clean = _tokens_cached


@lru_cache(maxsize=16384)
def _literal_tokens_cached(text: str) -> tuple[str, ...]:
    t = strip_diacritics(text.lower())
    t = _PREFIX.sub(lambda m: " " + m.group(1), t)
    t = t.replace("'", "")
    return tuple(w for w in _NON_WORD.split(t) if w)


def literal_tokens(text: object) -> tuple[str, ...]:
    """The same tokens as :func:`tokens`, unfolded: to tell "Ede" from "Eede" when both fold alike."""
    return _literal_tokens_cached(clean(text))


literal_tokens_of_clean = _literal_tokens_cached


def literal_key(text: object) -> str:
    return "".join(literal_tokens(text))


def key(text: object) -> str:
    """The match key of a name: folded tokens squashed together ("Noord-Beveland" → "nordbefelant")."""
    return "".join(tokens(text))


_STRIP_SUFFIX = re.compile(r"\s*\((?:[A-Za-z]{1,3}\.?)+\)\s*$")
_SUFFIX = re.compile(
    r"\s*(?:\(([A-Za-z]{1,3})\.?\)|\s(ca|c\.a\.|gem\.?\s*\w+|NB|L|Gld|GLD|NH|ZH|O|U|Ov|Fr|Gr|Dr)\.?)\s*$"
)
PROVINCES = {
    "nh": "Noord-Holland",
    "zh": "Zuid-Holland",
    "l": "Limburg",
    "o": "Overijssel",
    "ov": "Overijssel",
    "gld": "Gelderland",
    "nb": "Noord-Brabant",
    "u": "Utrecht",
    "z": "Zeeland",
    "fr": "Friesland",
    "gr": "Groningen",
    "dr": "Drenthe",
}
_ARTICLE = re.compile(r"^(?:de|het|'t|t)\s+(?=\S{4,})", re.IGNORECASE)


def without_cbs_suffix(name: str) -> str:
    """'Bergen (NH.)' → 'Bergen', 'Katwijk NB' → 'Katwijk': the part of a name a caller actually says."""
    return _SUFFIX.sub("", name).strip() or name


def spoken_forms(name: str) -> set[str]:
    """The ways a caller says an official name: without the CBS/BAG disambiguator, with the province
    spelled out ("Bergen Noord-Holland"), and without a leading article ("Meije" for "De Meije")."""
    forms = {name}
    m = _SUFFIX.search(name)
    base = without_cbs_suffix(name)
    forms.add(base)
    if m:
        abbr = (m.group(1) or m.group(2) or "").lower().rstrip(".")
        if abbr in PROVINCES:
            forms.add(f"{base} {PROVINCES[abbr]}")
    for f in list(forms):
        stripped = _ARTICLE.sub("", f)
        if stripped != f:
            forms.add(stripped)
    return {f for f in forms if f}


def fold_words(words: str) -> frozenset[str]:
    """Folded forms, to compare with name keys."""
    return frozenset(fold_token(strip_diacritics(w.lower())) for w in words.split())


def word_set(words: str) -> frozenset[str]:
    """Literal forms, to compare with what was said: folding would make "mij" and "Meije" one word."""
    return frozenset(strip_diacritics(w.lower()) for w in words.split())


#: Words that carry no place information: fillers, politeness, the frame around a name
#: ("eh, ik wil graag de gemeente ... bellen"), in Dutch and English.
STOPWORDS = word_set(
    """
    eh ehm euh eeh uh uhm um hm hmm mm ah oh ok oke okay nou zo
    ik wil wilde wou graag naar met de het een gemeente gemeentehuis stadhuis bellen bel belde gebeld spreken
    praten van voor in uit woon wonen woonachtig ben is dat dit die deze er hier daar ja u je jij mij mijn me
    we wij zou zouden kan kunt kun moet moeten mag even nog nu alstublieft alsjeblieft asjeblieft dank
    bedankt goedemorgen goedemiddag goedenavond hallo hoi dag plaats woonplaats dorp stad bij op aan te en of
    om over heb hebt heeft vraag vragen waar wat hoe wie waarom wanneer doorverbonden doorverbinden
    verbinden verbonden worden word wordt
    gaarne zeg zeggen weet niet nee maar bedoel bedoelde sorry pardon toch juist klopt wel al ook dus
    i want to call the of please city town hall municipality council speak talk with my is it a an hello hi
    live living in for would like connect me get through am from yes no sorry mean
    """
)

#: The frame around a name: what a caller says besides the name when there is nothing else to say
#: ("eh, ik wil graag de gemeente Goes bellen"). Any other word makes the utterance a sentence.
FRAME_WORDS = word_set(
    """
    eh ehm euh eeh uh uhm um hm hmm mm ah oh nou ok oke okay ja
    ik wil wilde wou graag naar met de het een gemeente gemeentehuis stadhuis bellen bel spreken praten van
    voor in uit woon wonen woonachtig ben is dat u me mij mijn alstublieft alsjeblieft asjeblieft dank bedankt
    goedemorgen goedemiddag goedenavond hallo hoi dag plaats woonplaats dorp stad doorverbonden verbinden
    worden zeg bedoel nee niet maar sorry pardon toch
    i want to call the of please city town hall municipality council speak talk with my is it a an hello hi
    live in for would like connect me yes no sorry mean
    """
)

#: Words after which the caller's last-named place counts ("nee, niet Goes maar Kapelle").
CORRECTION_MARKERS = word_set("nee niet maar bedoel bedoelde sorry pardon toch liever no not mean")

#: Asking for a person. A single token suffices; the resolver still routes when a name is also clear.
OPERATOR_WORDS = word_set(
    """
    medewerker medewerkster medewerkers mens persoon iemand operator operateur telefoniste telefonist
    receptie receptionist balie nul 0 human person agent representative operator someone somebody
    """
)

#: Everyday Dutch words that happen to be names in the plan. A hit on one of them alone is taken at face
#: value ("Best"), but inside a longer sentence it is only a guess ("dat is het best geregeld").
ORDINARY_WORDS = fold_words(
    """
    best beste buren putten sluis beek hoek haven kamp veen meer made heide eind berg bos
    dijk dam brug weg kerk zand wal horst zijl mark rijn maas hoorn heer boer boeren broek gracht riet
    ven kade markt bergen vaart echt drie twee vier vijf zes zeven acht negen tien elf twaalf
    huis huizen school kampen
    """
)
