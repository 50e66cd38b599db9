"""Resolver behaviour: the cases the user study complains about, bad input, DTMF, the batch command."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourteen import cli
from fourteen.resolver import DECISIONS, Resolver


def decide(resolver: Resolver, code: str, said: str) -> tuple[str, str | None]:
    res = resolver.resolve(code, said)
    return res.decision, (res.top.name if res.top and res.decision != "ambiguous" else None)


@pytest.mark.parametrize(
    ("code", "said", "decision", "name"),
    [
        ("0113", "goes", "route", "Goes"),
        ("0113", "ik wil naar rijmerswaal", "route", "Reimerswaal"),  # ij/ei and a single vowel
        ("0113", "eh uhm ja gemeente borsele", "route", "Borsele"),
        ("0113", "bor sele", "route", "Borsele"),  # split word
        ("0113", "nordbeveland", "route", "Noord-Beveland"),  # merged words, one vowel lost
        ("0113", "kruiningen", "route", "Reimerswaal"),  # a village
        ("0113", "nee niet goes maar kapelle", "route", "Kapelle"),  # self-correction: the last name counts
        ("0113", "kapelle nee sorry goes", "route", "Goes"),
        ("073", "s hertogenbosch", "route", "'s-Hertogenbosch"),
        ("073", "den bosch", "route", "'s-Hertogenbosch"),
        ("058", "ljouwert", "route", "Leeuwarden"),  # Frisian name
        ("0515", "snits", "route", "Súdwest-Fryslân"),
        ("0184", "giessenlanden", "route", "Molenlanden"),  # former municipality
        ("0113", "amsterdam", "other_area", "Amsterdam"),
        ("0252", "hoofddorp", "not_connected", "Haarlemmermeer"),  # not connected: say so, do not divert
        ("074", "hengelo", "route", "Hengelo (O.)"),  # the dialled code settles a shared place name
        ("0113", "i want to call the municipality of goes", "route", "Goes"),
        ("0113", "kapel", "route", "Kapelle"),  # a near miss behind the code beats hamlets elsewhere
        ("010", "capelle", "confirm", "Capelle aan den IJssel"),  # first word; Kapelle is elsewhere
        ("0184", "hardinxveld", "route", "Hardinxveld-Giessendam"),  # half of a double name
    ],
)
def test_decisions(resolver: Resolver, code: str, said: str, decision: str, name: str) -> None:
    assert decide(resolver, code, said) == (decision, name)


def test_same_name_place_asks_which(resolver: Resolver) -> None:
    res = resolver.resolve("020", "hengelo")
    assert res.decision == "ambiguous"
    assert set(res.ambiguous_between) == {"GM0164", "GM1876"}  # Hengelo (O.) and Hengelo in Bronckhorst


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("0318", "ik ben tevreden"),  # "ede" inside a word is not Ede
        ("0412", "we lopen door de bossen"),  # "oss" inside "bossen" is not Oss
        ("0113", "dat is het beste"),  # "best" as an ordinary word
        ("0113", ""),
        ("0113", "   "),
        ("0113", "eh uhm"),
        ("0113", "[unk]"),
        ("0113", "ja"),
    ],
)
def test_no_name_means_retry(resolver: Resolver, code: str, said: str) -> None:
    assert resolver.resolve(code, said).decision == "retry"


@pytest.mark.parametrize(
    "said", ["medewerker", "een medewerker alstublieft", "ik wil een mens spreken", "0", "nul", "operator"]
)
def test_asking_for_a_person(resolver: Resolver, said: str) -> None:
    assert resolver.resolve("0113", said).decision == "operator"


def test_a_clear_name_beats_asking_for_a_person(resolver: Resolver) -> None:
    assert decide(resolver, "0113", "een medewerker van gemeente goes") == ("route", "Goes")


def test_short_names_need_an_exact_word(resolver: Resolver) -> None:
    assert decide(resolver, "0318", "ede") == ("route", "Ede")
    assert decide(resolver, "0578", "epe") == ("route", "Epe")
    assert resolver.resolve("0578", "epen").top is None or resolver.resolve("0578", "epen").top.name != "Epe"


def test_dtmf(resolver: Resolver) -> None:
    assert resolver.resolve_dtmf("0113", "1").decision == "route"
    assert resolver.resolve_dtmf("0113", "1").top.name == "Borsele"
    assert resolver.resolve_dtmf("0113", "0").decision == "operator"
    for bad in ("8", "9", "#", "*", "", "12", "x", None, b"\xff"):
        assert resolver.resolve_dtmf("0113", bad).decision == "retry"
    assert resolver.resolve_dtmf("0252", "1").decision == "not_connected"  # Haarlemmermeer
    assert resolver.resolve_dtmf("nonsense", "1").decision == "retry"


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("", "goes"),
        ("abc", "goes"),
        ("99999", "goes"),
        ("14", "goes"),
        (None, "goes"),
        ("0113", None),
        ("0113", "x" * 10_000),
        ("0113", "goes " * 2_000),
        ("0113", "\x00\x01\x02goes\x7f"),
        ("0113", b"\xff\xfe\xfd goes"),
        ("0113", "💥🙂 goes"),
        ("0113", "'s-'s-'s-"),
        ("0113", "----"),
        ("0113", 12345),
        ("\x00", "\x00"),
    ],
)
def test_bad_input_gives_a_defined_decision(resolver: Resolver, code: object, said: object) -> None:
    res = resolver.resolve(code, said)
    assert res.decision in DECISIONS


def test_unknown_area_code_still_finds_a_named_municipality(resolver: Resolver) -> None:
    res = resolver.resolve("abc", "goes")
    assert (res.decision, res.area_code, res.top.name) == ("other_area", None, "Goes")


def test_ten_kilobytes_end_with_the_name(resolver: Resolver) -> None:
    assert decide(resolver, "0113", "bla " * 2500 + "kapelle") == ("route", "Kapelle")


@settings(max_examples=300, deadline=None)
@given(
    code=st.one_of(st.text(max_size=8), st.binary(max_size=8), st.none()),
    said=st.one_of(st.text(max_size=300), st.binary(max_size=300)),
)
def test_never_raises(resolver: Resolver, code: object, said: object) -> None:
    res = resolver.resolve(code, said)
    assert res.decision in DECISIONS
    assert all(0 <= c.score <= 100 for c in res.candidates)


def test_batch_command_prints_one_json_object_per_row_in_order(
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("FOURTEEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FOURTEEN_DATABASE_URL", raising=False)
    f = tmp_path / "in.csv"
    f.write_bytes(
        b"id,area_code,utterance,extra\n1,0113,ik wil naar rijmerswaal,x\n2,020,hengelo,y\n3,abc,,z\n"
        b'4,0113,"nee, niet goes maar kapelle",w\n' + b"5,0113,\xff\xfe,bad\n"
    )
    assert cli.main(["resolve", "--batch", str(f)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["utterance"] for x in lines][:4] == [
        "ik wil naar rijmerswaal",
        "hengelo",
        "",
        "nee, niet goes maar kapelle",
    ]
    assert [x["decision"] for x in lines] == ["route", "ambiguous", "retry", "route", "retry"]
    assert lines[0]["candidates"][0] == {"cbs_code": "GM0703", "name": "Reimerswaal", "score": 100.0}
    assert set(lines[0]) == {"area_code", "utterance", "decision", "candidates"}


def test_batch_command_rejects_a_csv_without_the_columns(
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("FOURTEEN_DATA_DIR", str(tmp_path / "data"))
    f = tmp_path / "in.csv"
    f.write_text("code,text\n0113,goes\n")
    assert cli.main(["resolve", "--batch", str(f)]) == 2
    assert "area_code and utterance" in capsys.readouterr().err
