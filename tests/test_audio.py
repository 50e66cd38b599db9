"""Audio generation with the real espeak-ng + sox (skipped when they are not installed)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from fourteen import audio
from fourteen.audio import (
    AudioToolMissing,
    build_prompts,
    espeak_voice,
    silence,
    synthesize,
    synthesize_utterance,
)
from fourteen.prompts import Prompt, municipality_prompts, prompt, static_prompts

REPO = Path(__file__).resolve().parents[1]
MISSING = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
needs_tools = pytest.mark.skipif(
    bool(MISSING), reason=f"{' and '.join(MISSING)} not installed (apt-get install espeak-ng sox)"
)


def wav_info(path: Path) -> tuple[int, int, int, float]:
    """(sample rate, channels, sample width in bytes, duration in seconds)"""
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


@needs_tools
@pytest.mark.parametrize("lang", ["nl", "en", "fy"])
async def test_synthesize_8k(tmp_path: Path, lang: str) -> None:
    p = prompt("transferring", lang, name="Súdwest-Fryslân")
    out = await synthesize(p.text, lang, tmp_path / p.relpath())
    assert out == tmp_path / lang / "transferring-sudwest-fryslan.wav"
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds > 0.5
    assert not list(out.parent.glob(".*.tmp")), "temporary files left behind"


@needs_tools
async def test_synthesize_16k(tmp_path: Path) -> None:
    out = await synthesize("Gemeente 's-Hertogenbosch.", "nl", tmp_path / "x.wav", rate=16000)
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (16000, 1, 2) and seconds > 0.5


@needs_tools
async def test_synthesize_utterance(tmp_path: Path) -> None:
    out = await synthesize_utterance("Súdwest-Fryslân", "nl", tmp_path / "caller.wav", 8000, variant="f2")
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (8000, 1, 2) and seconds > 0.5


@needs_tools
async def test_text_is_not_taken_for_an_option(tmp_path: Path) -> None:
    out = await synthesize("--help mij", "nl", tmp_path / "dash.wav")
    assert wav_info(out)[3] > 0.5


@needs_tools
async def test_silence(tmp_path: Path) -> None:
    out = await silence(tmp_path / "quiet.wav", 1.5)
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds == pytest.approx(1.5, abs=0.01)
    with wave.open(str(out), "rb") as w:
        assert set(w.readframes(w.getnframes())) == {0}


@needs_tools
async def test_frisian_voice_falls_back_to_dutch() -> None:
    proc = await asyncio.create_subprocess_exec("espeak-ng", "--voices=fy", stdout=asyncio.subprocess.PIPE)
    listing = (await proc.communicate())[0].decode()
    has_frisian = any(line.split()[1:2] == ["fy"] for line in listing.splitlines()[1:])
    assert await espeak_voice("fy") == ("fy" if has_frisian else "nl")
    assert await espeak_voice("en") == "en"


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        await synthesize("  ", "nl", tmp_path / "x.wav")
    with pytest.raises(ValueError, match="sample rate"):
        await synthesize("Hallo", "nl", tmp_path / "x.wav", rate=8)
    with pytest.raises(ValueError, match="positive"):
        await silence(tmp_path / "x.wav", 0)


async def test_missing_tools_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(audio, "_voice_cache", {})
    with pytest.raises(AudioToolMissing, match="apt-get install espeak-ng sox"):
        await synthesize("Hallo", "nl", tmp_path / "x.wav")
    with pytest.raises(AudioToolMissing, match="sox"):
        await silence(tmp_path / "x.wav", 1)
    with pytest.raises(AudioToolMissing):
        await build_prompts(tmp_path / "out", [prompt("greeting", "nl")])


@needs_tools
async def test_build_prompts_skips_unchanged_and_regenerates_changed(tmp_path: Path) -> None:
    out = tmp_path / "sounds"
    items = [prompt("greeting", "nl"), prompt("busy", "en"), *municipality_prompts("Goes", langs=["fy"])][:5]
    seen: list[tuple[int, int]] = []
    first = await build_prompts(out, items, progress=lambda done, total: seen.append((done, total)))
    assert (first.generated, first.skipped, first.total) == (5, 0, 5)
    assert seen[-1] == (5, 5)
    for p in items:
        rate, channels, width, seconds = wav_info(out / p.relpath())
        assert (rate, channels, width) == (8000, 1, 2) and seconds > 0.5
    index = json.loads((out / "index.json").read_text())
    assert set(index["files"]) == {p.relpath() for p in items}

    again = await build_prompts(out, items)
    assert (again.generated, again.skipped) == (0, 5)

    changed = [Prompt("greeting", "nl", "Goedemorgen, welkom.", "greeting"), *items[1:]]
    (out / items[1].relpath()).unlink()  # a deleted file is regenerated too
    third = await build_prompts(out, changed)
    assert (third.generated, third.skipped) == (2, 3)

    # another rate is another sound: everything is regenerated
    fourth = await build_prompts(out, changed, rate=16000)
    assert fourth.generated == 5
    assert wav_info(out / "nl" / "greeting.wav")[0] == 16000


async def test_build_prompts_rejects_conflicting_texts(tmp_path: Path) -> None:
    if MISSING:
        pytest.skip(f"{' and '.join(MISSING)} not installed")
    items = [Prompt("greeting", "nl", "Hallo.", "greeting"), Prompt("greeting", "nl", "Dag.", "greeting")]
    with pytest.raises(ValueError, match=r"nl/greeting\.wav"):
        await build_prompts(tmp_path, items)


@needs_tools
def test_make_prompts_script(tmp_path: Path) -> None:
    csv_path = tmp_path / "municipalities.csv"
    csv_path.write_text(
        "cbs_code,name,name_short,phone_general,fourteen_plus_number\n"
        "GM0373,Bergen (NH.),Bergen,(072) 888 00 00,\n",
        encoding="utf-8",
    )
    out = tmp_path / "sounds"
    result = subprocess.run(
        [
            str(REPO / "scripts" / "make-prompts"),
            "--out",
            str(out),
            "--lang",
            "nl",
            "--municipalities",
            str(csv_path),
            "-q",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    static = sum(1 for _ in static_prompts(["nl"]))
    assert (out / "nl" / "greeting.wav").is_file()
    assert (out / "nl" / "menu_option-bergen-nh-9.wav").is_file()
    assert (out / "nl" / "not_connected-bergen-nh-072-888-00-00.wav").is_file()
    assert len(list((out / "nl").glob("*.wav"))) == static + 11 + 2
    assert f"{static + 13} prompts" in result.stdout
