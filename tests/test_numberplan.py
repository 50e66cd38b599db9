"""The number plan as data: complete, consistent, and every municipality reachable."""

from __future__ import annotations

import csv
import json

import pytest

from fourteen import cli
from fourteen.numberplan import NumberPlan, default_data_dir, normalise_area_code


def test_all_342_municipalities_each_behind_an_area_code(plan: NumberPlan) -> None:
    assert len(plan.municipalities) == 342
    unreachable = [m.name for m in plan.municipalities.values() if not plan.area_codes_of(m.cbs_code)]
    assert unreachable == []


def test_every_area_code_has_members_with_menu_keys(plan: NumberPlan) -> None:
    assert len(plan.area_codes) == 141
    for code, ac in plan.area_codes.items():
        assert ac.members, code
        digits = [m.menu_digit for m in ac.members]
        assert len(set(digits)) == len(digits), code
        assert all(d in "123456789" for d in digits), code
        assert plan.mode(code) in {"single", "speech", "menu"}


def test_shared_codes_list_every_evidenced_municipality(plan: NumberPlan) -> None:
    """Each municipality named for a code in the reference data, and each main area code, is a member."""
    with (default_data_dir() / "area_codes.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            members = {m.cbs_code for m in plan.area_codes[row["area_code"]].members}
            assert set(filter(None, row["municipalities"].split(";"))) == members
    for m in plan.municipalities.values():
        if m.main_area_code:
            assert m.cbs_code in {x.cbs_code for x in plan.area_codes[m.main_area_code].members}
    assert {m.name for m in plan.members("0113")} == {
        "Borsele",
        "Goes",
        "Kapelle",
        "Noord-Beveland",
        "Reimerswaal",
    }


def test_modes(plan: NumberPlan) -> None:
    assert plan.mode("0113") == "speech"
    assert plan.mode("0111") == "single"  # Schouwen-Duiveland alone
    assert plan.mode("0999") is None


def test_not_connected_municipality_from_the_user_study(plan: NumberPlan) -> None:
    hm = plan.municipalities["GM0394"]
    assert hm.name == "Haarlemmermeer" and hm.status == "not_connected"
    assert hm.public_number == "0900 1852"


def test_places_and_aliases_point_at_known_municipalities(plan: NumberPlan) -> None:
    assert len(plan.places) > 5000
    assert all(p.cbs_code in plan.municipalities for p in plan.places)
    assert all(a.cbs_code in plan.municipalities for a in plan.aliases)
    names = {a.alias for a in plan.aliases}
    assert {"Den Bosch", "Den Haag", "Snits", "Giessenlanden"} <= names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0113", "0113"),
        ("140113", "0113"),
        ("14 0113", "0113"),
        ("113", "0113"),
        ("14020", "020"),
        (b"0113", "0113"),
        ("", None),
        ("abc", None),
        ("14", None),
        ("00113", None),
        ("0113456", None),
        (None, None),
        (113, None),
        ("0\x00113", "0113"),
        ("١٢٣", None),
    ],
)
def test_normalise_area_code(raw: object, expected: str | None) -> None:
    assert normalise_area_code(raw) == expected


def test_fourteen_plan_works_for_every_area_code(
    plan: NumberPlan, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FOURTEEN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FOURTEEN_DATABASE_URL", raising=False)
    assert cli.main(["plan", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {d["area_code"] for d in out} == set(plan.area_codes)
    for d in out:
        assert d["mode"] in {"single", "speech", "menu"}
        assert d["municipalities"]
        for m in d["municipalities"]:
            assert {"cbs_code", "name", "status", "menu_digit"} <= set(m)
    for code in ("0113", "140111", "14 058"):
        assert cli.main(["plan", code]) == 0
    text = capsys.readouterr().out
    assert "Reimerswaal" in text and "Kruiningen" in text
