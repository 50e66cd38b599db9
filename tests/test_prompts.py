"""Unit tests for the prompt catalogue (fast: no audio tools needed)."""

from __future__ import annotations

import re
import string

import pytest

from fourteen import prompts as P
from fourteen.prompts import (
    LANGUAGE_DIGITS,
    LANGUAGES,
    MUNICIPALITY_PROMPT_IDS,
    PROMPTS,
    STATIC_PROMPT_IDS,
    Prompt,
    municipality_prompts,
    placeholders,
    prompt,
    prompt_name,
    render,
    slugify,
    speakable_area_code,
    speakable_number,
    spoken_name,
    static_prompts,
)

REQUIRED_IDS = {
    "greeting",
    "ask_municipality",
    "ask_municipality_menu_intro",
    "menu_option",
    "menu_more",
    "menu_repeat",
    "confirm",
    "retry",
    "fallback_to_menu",
    "transferring",
    "please_hold",
    "not_connected",
    "offer_transfer",
    "other_area",
    "ambiguous",
    "operator",
    "sorry_unavailable",
    "busy",
    "outside_hours",
    "unknown_number",
    "router_down",
    "language_choice",
    "language_switched",
    "goodbye",
    "no_input",
    "divert_failed_number",
    "not_connected_no_number",
    "ambiguous_choice",
}

SAMPLE_VALUES = {
    "name": "Goes",
    "digit": "1",
    "number": "(0297) 38 75 75",
    "area_code": "0113",
    "place": "Hengelo",
    "hours": "maandag tot en met vrijdag van 9 tot 17 uur",
}


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


# ------------------------------------------------------------------------------------------- catalogue


def test_required_prompt_ids_exist() -> None:
    assert set(PROMPTS) >= REQUIRED_IDS


@pytest.mark.parametrize("prompt_id", sorted(PROMPTS))
def test_every_prompt_has_text_in_every_language(prompt_id: str) -> None:
    for lang in LANGUAGES:
        text = PROMPTS[prompt_id].get(lang, "")
        assert text.strip(), f"{prompt_id} has no {lang} text"
        assert text == text.strip() and "  " not in text
        assert text[-1] in ".?!", f"{prompt_id}/{lang} should end like a sentence: {text!r}"


@pytest.mark.parametrize("prompt_id", sorted(PROMPTS))
def test_placeholders_consistent_across_languages(prompt_id: str) -> None:
    expected = _fields(PROMPTS[prompt_id]["nl"])
    for lang, text in PROMPTS[prompt_id].items():
        assert _fields(text) == expected, f"{prompt_id}/{lang}"
        # only plain {name} placeholders: no positional fields, conversions or format specs
        assert all(re.fullmatch(r"[a-z_]+", f) for f in _fields(text)), f"{prompt_id}/{lang}"
        assert not re.search(r"\{[^}]*[!:][^}]*\}", text)


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        PROMPTS["greeting"]["nl"] = "Hoi"  # type: ignore[index]
    with pytest.raises(TypeError):
        PROMPTS["new"] = {}  # type: ignore[index]


def test_dutch_texts_from_the_design() -> None:
    assert render("greeting", "nl") == "Welkom bij het telefoonnummer van uw gemeente."
    assert render("menu_more", "nl") == "Voor andere gemeenten, toets hekje."
    assert render("menu_repeat", "nl") == "Toets sterretje om de keuzes te herhalen."
    assert render("no_input", "nl") == "Ik hoorde niets."
    assert render("divert_failed_number", "nl", name="Goes", number="0113 249 600") == (
        "Het lukt nu niet om u door te verbinden met gemeente Goes. "
        "U kunt de gemeente zelf bellen op nul één één drie, twee vier negen, zes nul nul."
    )
    assert render("not_connected_no_number", "nl", name="Haarlemmermeer") == (
        "Gemeente Haarlemmermeer is niet bereikbaar via het 14-nummer."
    )
    assert render("ambiguous_choice", "nl", place="Hengelo").startswith(
        "Hengelo ligt in meerdere gemeenten. "
    )
    assert render("language_switched", "en") == "You can now continue in English."
    assert render("operator", "nl") == "U wordt doorverbonden met een medewerker."
    assert render("ambiguous", "nl", place="Hengelo") == "Hengelo ligt in meerdere gemeenten."
    assert render("transferring", "nl", name="Goes") == "U wordt doorverbonden met gemeente Goes."
    assert render("confirm", "nl", name="Goes") == (
        "Bedoelt u gemeente Goes? Zeg ja, of toets 1. Zeg nee, of toets 2."
    )


def test_static_and_municipality_ids() -> None:
    assert "greeting" in STATIC_PROMPT_IDS and "goodbye" in STATIC_PROMPT_IDS
    assert "transferring" not in STATIC_PROMPT_IDS
    for pid in STATIC_PROMPT_IDS:
        assert placeholders(pid) == ()
    assert set(MUNICIPALITY_PROMPT_IDS) == {"transferring", "confirm", "menu_option"}


def test_language_choice_offers_its_own_language_with_the_given_key() -> None:
    assert placeholders("language_choice") == ("digit",)
    assert render("language_choice", "en", digit=LANGUAGE_DIGITS["en"]) == "For English, press nine."
    assert render("language_choice", "en", digit="4") == "For English, press four."
    assert render("language_choice", "nl", digit="7") == "Voor Nederlands, toets zeven."
    assert render("language_choice", "fy", digit="8") == "Foar Frysk, druk acht."  # words for the nl voice
    assert LANGUAGE_DIGITS["en"] == "9" and LANGUAGE_DIGITS["fy"] == "8"
    assert len(set(LANGUAGE_DIGITS.values())) == len(LANGUAGE_DIGITS)
    for lang in LANGUAGES:  # one sentence each, so the flow can offer only the keys that are free
        assert render("language_choice", lang, digit="1").count(".") == 1


def test_menu_keys_are_not_digits() -> None:
    # up to 7 options a page and every digit 1-9 can be a municipality key: "more" is # and "repeat" is *
    for lang in LANGUAGES:
        assert not re.search(r"\d", render("menu_more", lang)) and "{" not in PROMPTS["menu_more"][lang]
        assert render("menu_more", lang).endswith(("hekje.", "hash."))
        assert {"sterretje", "star", "stjerke"} & set(render("menu_repeat", lang).split())


# ----------------------------------------------------------------------------------------------- render


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("prompt_id", sorted(PROMPTS))
def test_render_all(prompt_id: str, lang: str) -> None:
    text = render(prompt_id, lang, **SAMPLE_VALUES)
    assert "{" not in text and "}" not in text
    assert text.strip()


def test_render_unknown_id_is_keyerror() -> None:
    with pytest.raises(KeyError, match="no_such_prompt"):
        render("no_such_prompt", "nl")


def test_render_falls_back_to_dutch() -> None:
    assert render("greeting", "de") == render("greeting", "nl")
    p = prompt("transferring", "de", name="Goes")
    assert p.lang == "de" and p.text_lang == "nl" and p.text == render("transferring", "nl", name="Goes")


def test_render_missing_value_is_clear_valueerror() -> None:
    with pytest.raises(ValueError, match=r"'transferring'.*'name'"):
        render("transferring", "nl")
    with pytest.raises(ValueError, match=r"'number'"):
        render("not_connected", "en", name="Goes")
    with pytest.raises(ValueError, match=r"'name'"):
        render("transferring", "nl", name="  ")
    with pytest.raises(ValueError, match=r"'digit'"):
        prompt_name("menu_option", name="Goes")


def test_render_ignores_unused_values() -> None:
    assert render("greeting", "nl", name="Goes") == render("greeting", "nl")


def test_render_speaks_values() -> None:
    assert render("transferring", "nl", name="Bergen (NH.)") == "U wordt doorverbonden met gemeente Bergen."
    assert render("menu_option", "en", name="Súdwest-Fryslân", digit=3) == "For Súdwest-Fryslân, press three."
    assert render("menu_option", "nl", name="Goes", digit="*") == "Voor Goes, toets sterretje."
    assert render("not_connected", "nl", name="Aalsmeer", number="(0297) 38 75 75").endswith(
        "op nul twee negen zeven, drie acht, zeven vijf, zeven vijf."
    )
    assert render("other_area", "nl", name="Goes", area_code="0113") == (
        "Gemeente Goes heeft een eigen 14-nummer: 14 nul één één drie. We verbinden u nu door."
    )


def test_frisian_spells_out_numerals() -> None:
    # espeak-ng has no Frisian voice; the Dutch voice would read "1" as "één".
    assert render("confirm", "fy", name="Goes") == (
        "Bedoele jo gemeente Goes? Sis ja, of druk ien. Sis nee, of druk twa."
    )
    assert render("unknown_number", "fy") == "Dit fjirtjin-nûmer is net yn gebrûk."
    assert render("menu_option", "fy", name="Goes", digit=9) == "Foar Goes, druk njoggen."
    assert not re.search(r"\d", render("ask_municipality", "fy"))


# ----------------------------------------------------------------------------------------- names, slugs


@pytest.mark.parametrize(
    ("name", "spoken"),
    [
        ("Bergen (NH.)", "Bergen"),
        ("Bergen (L.)", "Bergen"),
        ("Hengelo (O.)", "Hengelo"),
        ("Rijswijk (ZH.)", "Rijswijk"),
        ("'s-Hertogenbosch", "'s-Hertogenbosch"),
        ("Súdwest-Fryslân", "Súdwest-Fryslân"),
        ("  Aa en  Hunze ", "Aa en Hunze"),
    ],
)
def test_spoken_name(name: str, spoken: str) -> None:
    assert spoken_name(name) == spoken


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("Goes", "goes"),
        ("Súdwest-Fryslân", "sudwest-fryslan"),
        ("'s-Hertogenbosch", "s-hertogenbosch"),
        ("Bergen (NH.)", "bergen-nh"),
        ("Aa en Hunze", "aa-en-hunze"),
        ("Nuenen, Gerwen en Nederwetten", "nuenen-gerwen-en-nederwetten"),
        (1, "1"),
    ],
)
def test_slugify(value: object, slug: str) -> None:
    assert slugify(value) == slug


def test_slugify_never_empty() -> None:
    assert re.fullmatch(r"x[0-9a-f]{8}", slugify("…"))
    assert slugify("…") == slugify("…") != slugify("—")


def test_prompt_names_are_stable() -> None:
    assert prompt_name("greeting") == "greeting"
    assert prompt_name("transferring", name="Goes") == "transferring-goes"
    assert prompt_name("menu_option", name="Goes", digit=1) == "menu_option-goes-1"
    assert prompt_name("menu_option", digit="1", name="Goes") == "menu_option-goes-1"
    assert prompt_name("confirm", name="Súdwest-Fryslân") == "confirm-sudwest-fryslan"
    assert prompt_name("transferring", name="Bergen (NH.)") != prompt_name("transferring", name="Bergen (L.)")
    for area_code in ("0113", "14 0113", "140113"):
        assert prompt_name("other_area", name="Goes", area_code=area_code) == "other_area-goes-0113"


def test_long_names_are_capped() -> None:
    name = prompt_name("outside_hours", name="Goes", hours="ma-vr 08:30-12:00,13:00-17:00; " * 5)
    assert len(name) <= 100 and re.fullmatch(r"[a-z0-9_-]+", name)


def test_prompt_object() -> None:
    p = prompt("menu_option", "en", name="Goes", digit=2)
    assert p == Prompt("menu_option", "en", "For Goes, press two.", "menu_option-goes-2", "en")
    assert p.filename == "menu_option-goes-2.wav"
    assert p.relpath() == "en/menu_option-goes-2.wav"
    assert p.relpath(None) == "en/menu_option-goes-2"
    assert Prompt("greeting", "nl", "x", "greeting").text_lang == "nl"


def test_static_prompts_cover_every_language() -> None:
    items = list(static_prompts())
    static = [p for p in items if p.id != "language_choice"]
    assert len(static) == len(STATIC_PROMPT_IDS) * len(LANGUAGES)
    assert {(p.id, p.lang) for p in static} == {(i, lang) for i in STATIC_PROMPT_IDS for lang in LANGUAGES}
    assert all(p.name == p.id for p in static)
    # plus each language's choice with its default key, played on many calls
    assert {p.name for p in items if p.id == "language_choice"} == {
        f"language_choice-{d}" for d in LANGUAGE_DIGITS.values()
    }
    assert len({p.relpath() for p in items}) == len(items)


def test_municipality_prompts() -> None:
    items = list(municipality_prompts("Bergen (NH.)", langs=["nl"]))
    assert [p.name for p in items] == [
        "transferring-bergen-nh",
        "confirm-bergen-nh",
        *(f"menu_option-bergen-nh-{d}" for d in range(1, 10)),
    ]
    assert items[0].text == "U wordt doorverbonden met gemeente Bergen."
    assert items[-1].text == "Voor Bergen, toets negen."
    assert len(list(municipality_prompts("Goes"))) == 11 * len(LANGUAGES)


def test_municipality_prompts_spoken_and_extras() -> None:
    items = {
        p.name: p
        for p in municipality_prompts(
            "'s-Gravenhage", spoken="Den Haag", langs=["nl"], number="(070) 353 30 00", area_code="14 070"
        )
    }
    assert items["transferring-s-gravenhage"].text == "U wordt doorverbonden met gemeente Den Haag."
    assert "not_connected-s-gravenhage-070-353-30-00" in items
    assert "sorry_unavailable-s-gravenhage-070-353-30-00" in items
    assert items["other_area-s-gravenhage-070"].text.startswith("Gemeente Den Haag heeft een eigen 14-nummer")
    # file names match what the router computes from the same raw values
    assert items["transferring-s-gravenhage"].name == prompt("transferring", "nl", name="'s-Gravenhage").name


# -------------------------------------------------------------------------------------- speakable numbers


@pytest.mark.parametrize(
    ("number", "lang", "spoken"),
    [
        ("0900 1852", "nl", "nul negen nul nul, één acht vijf twee"),
        ("(0297) 38 75 75", "nl", "nul twee negen zeven, drie acht, zeven vijf, zeven vijf"),
        ("0297387575", "nl", "nul twee negen zeven, drie acht, zeven vijf, zeven vijf"),
        ("14 0113", "nl", "veertien, nul één één drie"),
        ("140113", "nl", "veertien, nul één één drie"),
        ("14-024", "nl", "veertien, nul twee vier"),
        ("14 05 14", "nl", "veertien, nul vijf één vier"),
        ("14+ 0511", "nl", "veertien, nul vijf één één"),
        ("020 5552 3333", "nl", "nul twee nul, vijf vijf vijf twee, drie drie drie drie"),
        ("0205552333", "nl", "nul twee nul, vijf vijf vijf, twee drie, drie drie"),
        ("088 - 450 2000", "nl", "nul acht acht, vier vijf nul, twee nul nul nul"),
        ("0519 298888", "nl", "nul vijf één negen, twee negen, acht acht, acht acht"),
        ("0612345678", "nl", "nul zes, één twee, drie vier, vijf zes, zeven acht"),
        ("+31 297 38 75 75", "nl", "plus drie één, twee negen zeven, drie acht, zeven vijf, zeven vijf"),
        ("0900 1852", "en", "zero nine zero zero, one eight five two"),
        ("14 0113", "en", "fourteen, zero one one three"),
        ("0900 1852", "fy", "nul njoggen nul nul, ien acht fiif twa"),
        ("14 0513", "fy", "fjirtjin, nul fiif ien trije"),
        ("nul negen", "nl", "nul negen"),
    ],
)
def test_speakable_number(number: str, lang: str, spoken: str) -> None:
    assert speakable_number(number, lang) == spoken


def test_speakable_number_unknown_language_is_dutch() -> None:
    assert speakable_number("0900 1852", "xx") == speakable_number("0900 1852", "nl")


@pytest.mark.parametrize(
    ("area_code", "lang", "spoken"),
    [
        ("0113", "nl", "nul één één drie"),
        ("010", "en", "zero one zero"),
        ("14 0513", "fy", "nul fiif ien trije"),
        ("0597", "fy", "nul fiif njoggen sân"),
    ],
)
def test_speakable_area_code(area_code: str, lang: str, spoken: str) -> None:
    assert speakable_area_code(area_code, lang) == spoken


def test_speakable_area_code_rejects_non_numbers() -> None:
    with pytest.raises(ValueError, match="area code"):
        speakable_area_code("Goes")


def test_all_exports_exist() -> None:
    for name in P.__all__:
        assert hasattr(P, name), name
