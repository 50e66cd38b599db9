"""The prompt catalogue: the single place where the text of every spoken prompt lives.

Every prompt has a Dutch (``nl``) text, an English (``en``) text and a Frisian (``fy``) text; Frisian is
offered for Frisian area codes. Texts are :meth:`str.format` templates with ``{placeholders}``.

:func:`render` turns a template into the text a TTS engine (or a voice actor) speaks. It normalises the
well-known placeholders so callers can pass raw data:

* ``name`` / ``place`` - the CBS suffix is dropped: ``"Bergen (NH.)"`` is spoken as ``"Bergen"``;
* ``number`` - a phone number is spoken digit by digit in groups (:func:`speakable_number`);
* ``area_code`` - spoken digit by digit (:func:`speakable_area_code`);
* ``digit`` - a key (``1``, ``0``, ``*``) is spoken as a word in the prompt's language.

:class:`Prompt` is one concrete rendered prompt with a stable file name, so that the router can refer to
pre-generated audio (``<lang>/<name>.wav``) and a build script can pre-generate it
(:func:`static_prompts`, :func:`municipality_prompts`; see :mod:`fourteen.audio`).
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from . import openinghours

__all__ = [
    "DEFAULT_LANG",
    "LANGUAGES",
    "LANGUAGE_DIGITS",
    "MUNICIPALITY_PROMPT_IDS",
    "PROMPTS",
    "STATIC_PROMPT_IDS",
    "Lang",
    "Prompt",
    "municipality_prompts",
    "placeholders",
    "prompt",
    "prompt_name",
    "render",
    "slugify",
    "speakable_area_code",
    "speakable_number",
    "spoken_name",
    "static_prompts",
]

Lang = Literal["nl", "en", "fy"]

LANGUAGES: Final[tuple[Lang, ...]] = ("nl", "en", "fy")
DEFAULT_LANG: Final[Lang] = "nl"

#: The key that switches to a language; the ``language_choice`` prompt of language X offers X, spoken in X.
#: The call flow offers a language only where its key is not also a menu key of the dialled area code.
LANGUAGE_DIGITS: Final[Mapping[str, str]] = MappingProxyType({"nl": "7", "fy": "8", "en": "9"})

_CATALOGUE: dict[str, dict[str, str]] = {
    "greeting": {
        "nl": "Welkom bij het telefoonnummer van uw gemeente.",
        "en": "Welcome to the telephone number of your municipality.",
        "fy": "Wolkom by it telefoannûmer fan jo gemeente.",
    },
    # One sentence per language, spoken in that language; the flow passes the key (LANGUAGE_DIGITS by
    # default) and offers a language only when its key is not a menu key of the dialled area code.
    "language_choice": {
        "nl": "Voor Nederlands, toets {digit}.",
        "en": "For English, press {digit}.",
        "fy": "Foar Frysk, druk {digit}.",
    },
    "language_switched": {
        "nl": "U kunt nu verder in het Nederlands.",
        "en": "You can now continue in English.",
        "fy": "Jo kinne no fierder yn it Frysk.",
    },
    "ask_municipality": {
        "nl": "Zeg de naam van uw gemeente of woonplaats, of toets 0 voor een medewerker.",
        "en": "Please say the name of your municipality or town, or press 0 for an operator.",
        "fy": "Sis de namme fan jo gemeente of wenplak, of druk 0 foar in meiwurker.",
    },
    "ask_municipality_menu_intro": {
        "nl": "Kies uw gemeente met de toetsen van uw telefoon.",
        "en": "Please choose your municipality with the keys of your phone.",
        "fy": "Kies jo gemeente mei de toetsen fan jo telefoan.",
    },
    "menu_option": {
        "nl": "Voor {name}, toets {digit}.",
        "en": "For {name}, press {digit}.",
        "fy": "Foar {name}, druk {digit}.",
    },
    # "#", not a digit: menus read at most 7 options a page and every digit 1-9 can be a municipality key.
    "menu_more": {
        "nl": "Voor andere gemeenten, toets hekje.",
        "en": "For other municipalities, press hash.",
        "fy": "Foar oare gemeenten, druk hekje.",
    },
    "menu_repeat": {
        "nl": "Toets sterretje om de keuzes te herhalen.",
        "en": "Press star to hear the choices again.",
        "fy": "Druk stjerke om de karren nochris te hearren.",
    },
    "invalid_choice": {
        "nl": "Die keuze is niet geldig.",
        "en": "That is not a valid choice.",
        "fy": "Dy kar is net jildich.",
    },
    "no_input": {
        "nl": "Ik hoorde niets.",
        "en": "I did not hear anything.",
        "fy": "Ik hearde neat.",
    },
    "confirm": {
        "nl": "Bedoelt u gemeente {name}? Zeg ja, of toets 1. Zeg nee, of toets 2.",
        "en": "Did you mean the municipality of {name}? Say yes, or press 1. Say no, or press 2.",
        "fy": "Bedoele jo gemeente {name}? Sis ja, of druk 1. Sis nee, of druk 2.",
    },
    "retry": {
        "nl": "Sorry, dat verstond ik niet. Zeg alleen de naam van uw gemeente of woonplaats.",
        "en": "Sorry, I did not understand that. Please say only the name of your municipality or town.",
        "fy": "Sorry, dat ferstie ik net. Sis allinnich de namme fan jo gemeente of wenplak.",
    },
    "fallback_to_menu": {
        "nl": "We gaan verder met een keuzemenu.",
        "en": "Let us continue with a menu.",
        "fy": "Wy geane fierder mei in karmenu.",
    },
    "transferring": {
        "nl": "U wordt doorverbonden met gemeente {name}.",
        "en": "You are being transferred to the municipality of {name}.",
        "fy": "Jo wurde trochferbûn mei gemeente {name}.",
    },
    "please_hold": {
        "nl": "Een ogenblik geduld alstublieft.",
        "en": "One moment please.",
        "fy": "Efkes geduld asjebleaft.",
    },
    "not_connected": {
        "nl": (
            "Gemeente {name} is niet bereikbaar via het 14-nummer. "
            "U kunt de gemeente zelf bellen op {number}."
        ),
        "en": (
            "The municipality of {name} cannot be reached through the 14 number. "
            "You can call the municipality yourself on {number}."
        ),
        "fy": (
            "Gemeente {name} is net te berikken fia it 14-nûmer. "
            "Jo kinne de gemeente sels skilje op {number}."
        ),
    },
    # for a municipality that is not connected and has no public number to announce
    "not_connected_no_number": {
        "nl": "Gemeente {name} is niet bereikbaar via het 14-nummer.",
        "en": "The municipality of {name} cannot be reached through the 14 number.",
        "fy": "Gemeente {name} is net te berikken fia it 14-nûmer.",
    },
    "offer_transfer": {
        "nl": "Blijf aan de lijn om doorverbonden te worden.",
        "en": "Stay on the line to be transferred.",
        "fy": "Bliuw oan 'e line om trochferbûn te wurden.",
    },
    "other_area": {
        "nl": "Gemeente {name} heeft een eigen 14-nummer: 14 {area_code}. We verbinden u nu door.",
        "en": (
            "The municipality of {name} has its own 14 number: 14 {area_code}. We are transferring you now."
        ),
        "fy": "Gemeente {name} hat in eigen 14-nûmer: 14 {area_code}. Wy ferbine jo no troch.",
    },
    "ambiguous": {
        "nl": "{place} ligt in meerdere gemeenten.",
        "en": "{place} is in more than one municipality.",
        "fy": "{place} leit yn mear as ien gemeente.",
    },
    # followed by a menu of the municipalities the place lies in
    "ambiguous_choice": {
        "nl": "{place} ligt in meerdere gemeenten. Kies de gemeente die u bedoelt.",
        "en": "{place} is in more than one municipality. Please choose the one you mean.",
        "fy": "{place} leit yn mear as ien gemeente. Kies de gemeente dy't jo bedoele.",
    },
    "operator": {
        "nl": "U wordt doorverbonden met een medewerker.",
        "en": "You are being transferred to an operator.",
        "fy": "Jo wurde trochferbûn mei in meiwurker.",
    },
    "sorry_unavailable": {
        "nl": "Het lukt nu niet om u door te verbinden. Bel gemeente {name} zelf op {number}.",
        "en": (
            "We cannot transfer you right now. Please call the municipality of {name} yourself on {number}."
        ),
        "fy": "It slagget no net om jo troch te ferbinen. Skilje gemeente {name} sels op {number}.",
    },
    # after a failed divert (and overflow) to a municipality that has a public number
    "divert_failed_number": {
        "nl": (
            "Het lukt nu niet om u door te verbinden met gemeente {name}. "
            "U kunt de gemeente zelf bellen op {number}."
        ),
        "en": (
            "We cannot transfer you to the municipality of {name} right now. "
            "You can call the municipality yourself on {number}."
        ),
        "fy": (
            "It slagget no net om jo troch te ferbinen mei gemeente {name}. "
            "Jo kinne de gemeente sels skilje op {number}."
        ),
    },
    "busy": {
        "nl": "Alle medewerkers zijn in gesprek.",
        "en": "All operators are busy.",
        "fy": "Alle meiwurkers binne yn petear.",
    },
    "outside_hours": {
        "nl": "Gemeente {name} is nu gesloten. De openingstijden zijn: {hours}.",
        "en": "The municipality of {name} is closed now. The opening hours are: {hours}.",
        "fy": "Gemeente {name} is no ticht. De iepeningstiden binne: {hours}.",
    },
    "unknown_number": {
        "nl": "Dit 14-nummer is niet in gebruik.",
        "en": "This 14 number is not in use.",
        "fy": "Dit 14-nûmer is net yn gebrûk.",
    },
    "router_down": {
        "nl": "Excuses, er is een storing. U wordt doorverbonden met een medewerker.",
        "en": "Sorry, there is a technical problem. You are being transferred to an operator.",
        "fy": "Excuses, der is in steuring. Jo wurde trochferbûn mei in meiwurker.",
    },
    "goodbye": {
        "nl": "Bedankt voor het bellen. Tot ziens.",
        "en": "Thank you for calling. Goodbye.",
        "fy": "Tank foar it skiljen. Oant sjen.",
    },
}

#: prompt id -> language -> template. Read-only.
PROMPTS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {pid: MappingProxyType(dict(texts)) for pid, texts in _CATALOGUE.items()}
)

#: Prompts rendered once per municipality by :func:`municipality_prompts` (always; more on request).
MUNICIPALITY_PROMPT_IDS: Final[tuple[str, ...]] = ("transferring", "confirm", "menu_option")


def placeholders(prompt_id: str, lang: str = DEFAULT_LANG) -> tuple[str, ...]:
    """The placeholder names of a prompt, in the order they appear in the template (KeyError if unknown)."""
    template = _template(prompt_id, lang)[0]
    names: list[str] = []
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None and field not in names:
            names.append(field)
    return tuple(names)


# --------------------------------------------------------------------------------------------- numbers

_DIGIT_WORDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "nl": ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"),
        "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        "fy": ("nul", "ien", "twa", "trije", "fjouwer", "fiif", "seis", "sân", "acht", "njoggen"),
    }
)
_FOURTEEN: Final[Mapping[str, str]] = MappingProxyType({"nl": "veertien", "en": "fourteen", "fy": "fjirtjin"})
_STAR: Final[Mapping[str, str]] = MappingProxyType({"nl": "sterretje", "en": "star", "fy": "stjerke"})
_HASH: Final[Mapping[str, str]] = MappingProxyType({"nl": "hekje", "en": "hash", "fy": "hekje"})
_PLUS: Final[Mapping[str, str]] = MappingProxyType({"nl": "plus", "en": "plus", "fy": "plus"})

# Dutch area codes with two digits after the 0; all other geographic codes have three (0113, 0297, ...).
_SHORT_AREA_CODES: Final[frozenset[str]] = frozenset(
    [
        "010",
        "013",
        "015",
        "020",
        "023",
        "024",
        "026",
        "030",
        "033",
        "035",
        "036",
        "038",
        "040",
        "043",
        "045",
        "046",
        "050",
        "053",
        "055",
        "058",
        "070",
        "071",
        "072",
        "073",
        "074",
        "075",
        "076",
        "077",
        "078",
        "079",
        "085",
        "088",
        "084",
        "087",
        "091",
        "097",
    ]
)
_SERVICE_PREFIXES: Final[tuple[str, ...]] = ("0800", "0900", "0906", "0909")


def _lang(lang: str) -> str:
    return lang if lang in _DIGIT_WORDS else DEFAULT_LANG


def _say_digits(digits: str, lang: str) -> str:
    words = _DIGIT_WORDS[_lang(lang)]
    return " ".join(words[int(d)] for d in digits)


def _split_long(group: str) -> list[str]:
    """Split a long run of subscriber digits into groups that are easy to write down."""
    n = len(group)
    if n <= 4:
        return [group]
    if n == 5:
        return [group[:3], group[3:]]
    if n == 6:
        return [group[:2], group[2:4], group[4:]]
    if n == 7:
        return [group[:3], group[3:5], group[5:]]
    if n == 8:
        return [group[i : i + 2] for i in range(0, 8, 2)]
    return [group[:3], *_split_long(group[3:])]


def _split_national(digits: str) -> list[str]:
    """Group a national number written without separators: prefix/area code first, then the rest."""
    if digits.startswith(_SERVICE_PREFIXES):
        head = digits[:4]
    elif digits.startswith("06"):
        head = digits[:2]
    elif digits[:3] in _SHORT_AREA_CODES:
        head = digits[:3]
    elif digits.startswith("0") and len(digits) >= 8:
        head = digits[:4]
    else:
        return _split_long(digits)
    return [head, *_split_long(digits[len(head) :])]


def _fourteen_area_code(digits: str) -> str | None:
    """The area code of a 14+area code number ("140113", "14 05 14", "14-024"), else None."""
    if digits.startswith("140") and len(digits) in (5, 6):
        return digits[2:]
    return None


def speakable_number(number: str, lang: str = DEFAULT_LANG) -> str:
    """A phone number as words that a TTS engine reads digit by digit, in groups separated by commas.

    ``"0900 1852"`` → ``"nul negen nul nul, één acht vijf twee"``; ``"(0297) 38 75 75"`` →
    ``"nul twee negen zeven, drie acht, zeven vijf, zeven vijf"``; ``"14 0113"`` →
    ``"veertien, nul één één drie"`` (the 14 prefix is said as a number, the way it is advertised).
    Text without digits is returned unchanged, so already-speakable text passes through.
    """
    text = str(number).strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return text
    lang = _lang(lang)
    groups = re.findall(r"\d+", text)
    parts: list[str] = []
    if text.startswith("+"):
        if len(groups) == 1:  # +31297387575: assume a two-digit country code
            groups = [digits[:2], digits[2:]]
        parts.append(f"{_PLUS[lang]} {_say_digits(groups[0], lang)}")
        spoken = [g for rest in groups[1:] for g in _split_long(rest)]
    else:
        area_code = _fourteen_area_code(digits)
        if area_code is not None:
            return f"{_FOURTEEN[lang]}, {_say_digits(area_code, lang)}"
        first, rest = groups[0], groups[1:]
        spoken = (_split_national(first) if len(first) > 4 else [first]) + [
            g for group in rest for g in _split_long(group)
        ]
    parts.extend(_say_digits(g, lang) for g in spoken)
    return ", ".join(parts)


def speakable_area_code(area_code: str, lang: str = DEFAULT_LANG) -> str:
    """An area code as digit words: ``"0113"`` → ``"nul één één drie"`` (a leading ``14`` is dropped)."""
    digits = re.sub(r"\D", "", str(area_code))
    if not digits:
        raise ValueError(f"not an area code: {area_code!r}")
    digits = _fourteen_area_code(digits) or digits
    return _say_digits(digits, lang)


def _speakable_key(key: object, lang: str) -> str:
    text = str(key).strip()
    lang = _lang(lang)
    if text.isdigit() and len(text) == 1:
        return _DIGIT_WORDS[lang][int(text)]
    if text == "*":
        return _STAR[lang]
    if text == "#":
        return _HASH[lang]
    return text


# ----------------------------------------------------------------------------------------------- names

_CBS_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")


def spoken_name(name: str) -> str:
    """The name as spoken: without the CBS disambiguation suffix (``"Bergen (NH.)"`` → ``"Bergen"``)."""
    text = " ".join(str(name).split())
    stripped = _CBS_SUFFIX.sub("", text)
    return stripped or text


def slugify(value: object) -> str:
    """ASCII slug for file names: ``"Súdwest-Fryslân"`` → ``"sudwest-fryslan"``, ``"Bergen (NH.)"`` →
    ``"bergen-nh"``. Values without any ASCII letter or digit get a short hash instead."""
    text = str(value)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


_MAX_NAME = 100


def _slug_value(field: str, value: object) -> object:
    if field == "area_code":  # "14 0113", "140113" and "0113" are the same area code
        digits = re.sub(r"\D", "", str(value))
        return (_fourteen_area_code(digits) or digits) if digits else value
    return value


def prompt_name(prompt_id: str, /, **values: object) -> str:
    """The stable file name (no extension) of a prompt: ``<id>`` or ``<id>-<slug of the values>``.

    The slug is built from the raw values (e.g. the CBS name ``"Bergen (NH.)"`` → ``bergen-nh``) in the
    order the placeholders appear in the Dutch template, so it is the same for every language.
    """
    fields = placeholders(prompt_id)
    _check_values(prompt_id, fields, values)
    if not fields:
        return prompt_id
    name = "-".join([prompt_id, *(slugify(_slug_value(f, values[f])) for f in fields)])
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 11].rstrip('-')}-{digest}"
    return name


# ----------------------------------------------------------------------------------------------- render


def _template(prompt_id: str, lang: str) -> tuple[str, str]:
    """(template, language of the template); falls back to Dutch. KeyError for an unknown prompt id."""
    try:
        texts = PROMPTS[prompt_id]
    except KeyError:
        raise KeyError(f"unknown prompt id {prompt_id!r}") from None
    if texts.get(lang):
        return texts[lang], lang
    return texts[DEFAULT_LANG], DEFAULT_LANG


def _check_values(prompt_id: str, fields: Iterable[str], values: Mapping[str, object]) -> None:
    missing = [f for f in fields if values.get(f) is None or str(values[f]).strip() == ""]
    if missing:
        raise ValueError(
            f"prompt {prompt_id!r} needs a value for {', '.join(repr(m) for m in missing)}"
            f" (got {', '.join(sorted(values)) or 'no values'})"
        )


#: Prompts that need no values: pre-generated once per language.
STATIC_PROMPT_IDS: Final[tuple[str, ...]] = tuple(pid for pid in PROMPTS if not placeholders(pid))


def _speakable_value(field: str, value: object, lang: str) -> str:
    if field in ("name", "place"):
        return spoken_name(str(value))
    if field == "number":
        return speakable_number(str(value), lang)
    if field == "area_code":
        return speakable_area_code(str(value), lang)
    if field == "digit":
        return _speakable_key(value, lang)
    if field == "hours":  # the municipality's opening hours as stored ("ma-vr 08:30-17:00"), said in words
        try:
            return openinghours.parse(str(value)).spoken(lang)
        except openinghours.OpeningHoursError:
            return str(value).strip()
    return str(value).strip()


_LONE_DIGIT = re.compile(r"(?<![\w.,])\d(?![\w.,]\d|\w)")
_LONE_FOURTEEN = re.compile(r"(?<![\w.,])14(?![\w.,]\d|\d)")


def _frisian_numerals(text: str) -> str:
    """espeak-ng has no Frisian voice and reads digits in Dutch: write lone digits and "14" as words."""
    text = _LONE_FOURTEEN.sub(_FOURTEEN["fy"], text)
    return _LONE_DIGIT.sub(lambda m: _DIGIT_WORDS["fy"][int(m.group())], text)


def _render(prompt_id: str, lang: str, values: Mapping[str, object]) -> tuple[str, str]:
    template, text_lang = _template(prompt_id, lang)
    fields = placeholders(prompt_id, text_lang)
    _check_values(prompt_id, fields, values)
    if text_lang == "fy":
        template = _frisian_numerals(template)
    text = template.format_map({f: _speakable_value(f, values[f], text_lang) for f in fields})
    return text, text_lang


def render(prompt_id: str, lang: str = DEFAULT_LANG, /, **values: object) -> str:
    """The text of a prompt in a language, ready for TTS.

    Falls back to Dutch when ``lang`` has no text. Raises KeyError for an unknown prompt id and
    ValueError when a placeholder has no (or an empty) value; values the template does not use are ignored.
    """
    return _render(prompt_id, lang, values)[0]


@dataclass(frozen=True, slots=True)
class Prompt:
    """One concrete prompt: what to say, in which language, and the file its audio lives in."""

    id: str
    lang: str
    text: str
    name: str
    #: the language the text is actually in (differs from ``lang`` only when it fell back to Dutch)
    text_lang: str = ""

    def __post_init__(self) -> None:
        if not self.text_lang:
            object.__setattr__(self, "text_lang", self.lang)

    @property
    def filename(self) -> str:
        return f"{self.name}.wav"

    def relpath(self, ext: str | None = "wav") -> str:
        """``<lang>/<name>.<ext>`` relative to the sounds directory; ``ext=None`` gives the form Asterisk's
        ``Playback()`` wants (no extension)."""
        return f"{self.lang}/{self.name}" + (f".{ext}" if ext else "")


def prompt(prompt_id: str, lang: str = DEFAULT_LANG, /, **values: object) -> Prompt:
    """Render a prompt into a :class:`Prompt` with its stable file name."""
    text, text_lang = _render(prompt_id, lang, values)
    return Prompt(prompt_id, lang, text, prompt_name(prompt_id, **values), text_lang)


def static_prompts(langs: Iterable[str] = LANGUAGES) -> Iterator[Prompt]:
    """Every prompt that needs no values, in every language, plus each ``language_choice`` with its
    default key (played on many calls, so worth pre-building rather than synthesising on first use)."""
    for lang in langs:
        for pid in STATIC_PROMPT_IDS:
            yield prompt(pid, lang)
        if lang in LANGUAGE_DIGITS:
            yield prompt("language_choice", lang, digit=LANGUAGE_DIGITS[lang])


def municipality_prompts(
    name: str,
    *,
    spoken: str | None = None,
    langs: Iterable[str] = LANGUAGES,
    digits: Iterable[int | str] = range(1, 10),
    number: str | None = None,
    area_code: str | None = None,
) -> Iterator[Prompt]:
    """The per-municipality prompts: ``transferring``, ``confirm`` and ``menu_option`` for each digit.

    ``name`` is the official (CBS) name and determines the file names; ``spoken`` is what is said
    (default: the name without its CBS suffix). With ``number`` (the municipality's own phone number)
    ``not_connected`` and ``sorry_unavailable`` are added, with ``area_code`` (of its own 14+number)
    ``other_area``. (The router synthesises any other prompt on demand: :mod:`fourteen.promptlib`.)
    """
    say = spoken_name(spoken if spoken else name)
    keys = [str(d) for d in digits]
    for lang in langs:
        jobs: list[tuple[str, dict[str, object]]] = [("transferring", {}), ("confirm", {})]
        jobs += [("menu_option", {"digit": d}) for d in keys]
        if number:
            jobs += [("not_connected", {"number": number}), ("sorry_unavailable", {"number": number})]
        if area_code:
            jobs.append(("other_area", {"area_code": area_code}))
        for pid, extra in jobs:
            text, text_lang = _render(pid, lang, {"name": say, **extra})
            yield Prompt(pid, lang, text, prompt_name(pid, name=name, **extra), text_lang)
