"""The resolver against the evaluation set in tests/data/utterances.csv (see tests/data/README.md).

A row counts as right when the decision is the expected one and, where a municipality is expected, it is
the top candidate. The suite prints the accuracy per category and requires 97% overall.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from fourteen.resolver import Resolver

SET = Path(__file__).parent / "data" / "utterances.csv"
REQUIRED = 0.97


def rows() -> list[dict[str, str]]:
    with SET.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def is_right(resolver: Resolver, row: dict[str, str]) -> tuple[bool, str]:
    res = resolver.resolve(row["area_code"], row["utterance"])
    got = res.top.cbs_code if res.top and res.decision != "ambiguous" else ""
    want = row["expected_cbs_code"]
    ok = res.decision == row["expected_decision"] and (not want or got == want)
    return ok, f"{res.decision} {got} {[(c.name, round(c.score)) for c in res.candidates[:3]]}"


def test_set_is_big_and_varied() -> None:
    data = rows()
    assert len(data) >= 300
    cats = Counter(r["category"] for r in data)
    assert len(cats) >= 15
    assert {r["expected_decision"] for r in data} == {
        "route",
        "confirm",
        "retry",
        "not_connected",
        "other_area",
        "ambiguous",
        "operator",
    }


def test_top1_accuracy(resolver: Resolver, capsys: pytest.CaptureFixture[str]) -> None:
    data = rows()
    per_cat: dict[str, list[bool]] = {}
    wrong = []
    for r in data:
        ok, got = is_right(resolver, r)
        per_cat.setdefault(r["category"], []).append(ok)
        if not ok:
            wrong.append(
                f"  {r['area_code']:>6} {r['utterance'][:50]!r:52} want {r['expected_decision']} "
                f"{r['expected_cbs_code']:6} got {got}"
            )
    total = sum(sum(v) for v in per_cat.values()) / len(data)
    with capsys.disabled():
        print(f"\nresolver top-1 accuracy: {total:.1%} of {len(data)} utterances")
        for cat, oks in sorted(per_cat.items()):
            print(f"  {cat:<14} {sum(oks):>3}/{len(oks):<3} {sum(oks) / len(oks):.0%}")
        if wrong:
            print("misses:\n" + "\n".join(wrong))
    assert total >= REQUIRED
