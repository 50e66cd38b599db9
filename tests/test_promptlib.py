"""Prompt audio on demand with the real espeak-ng + sox (skipped when they are not installed)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from fourteen import audio, cli
from fourteen.promptlib import STOCK_FALLBACKS, PromptLibrary, PromptUnavailable, plan_prompts
from fourteen.prompts import PROMPTS, Prompt, prompt, static_prompts

MISSING = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{' and '.join(MISSING)} not installed")
# asterisk-core-sounds-en as installed in the sandbox chroot (sounds/en is an absolute symlink to this)
STOCK_SOUNDS = Path("/var/cache/fourteen/asterisk-chroot/usr/share/asterisk/sounds/en_US_f_Allison")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Texts passed to audio.synthesize: proof of whether a synthesis ran."""
    seen: list[str] = []
    real = audio.synthesize

    async def counting(text: str, lang: str, out: Any, rate: int = 8000, **kw: Any) -> Path:
        seen.append(text)
        return await real(text, lang, out, rate, **kw)

    monkeypatch.setattr(audio, "synthesize", counting)
    return seen


def wav_rate(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2) and w.getnframes() > 2000
        return w.getframerate()


async def test_first_use_synthesises_then_serves_from_cache(tmp_path: Path, calls: list[str]) -> None:
    lib = PromptLibrary(tmp_path, "/opt/fourteen/sounds/fourteen/")
    p = prompt("transferring", "nl", name="Goes")
    assert await lib.path(p) == "/opt/fourteen/sounds/fourteen/nl/transferring-goes"
    wav = tmp_path / "nl" / "transferring-goes.wav"
    assert wav_rate(wav) == 8000 and calls == [p.text]
    meta = json.loads((tmp_path / "nl" / "transferring-goes.wav.json").read_text())
    assert meta["text"] == "U wordt doorverbonden met gemeente Goes." and meta["voice"] == "nl"
    mtime = wav.stat().st_mtime_ns

    started = time.perf_counter()
    assert await lib.path(p) == "/opt/fourteen/sounds/fourteen/nl/transferring-goes"
    assert time.perf_counter() - started < 0.02
    assert wav.stat().st_mtime_ns == mtime and calls == [p.text]
    assert (lib.stats.synthesized, lib.stats.hits) == (1, 1)

    # another router process sharing the directory trusts the file through its sidecar
    other = PromptLibrary(tmp_path)
    assert await other.path(p) == f"{tmp_path}/nl/transferring-goes"
    assert wav.stat().st_mtime_ns == mtime and calls == [p.text] and other.stats.synthesized == 0
    assert not [f for f in (tmp_path / "nl").iterdir() if f.name.startswith(".")]  # no temporary files left


async def test_changed_text_or_damaged_file_is_made_again(tmp_path: Path, calls: list[str]) -> None:
    lib = PromptLibrary(tmp_path)
    await lib.path(prompt("greeting", "nl"))
    wav = tmp_path / "nl" / "greeting.wav"
    before = wav.read_bytes()

    changed = Prompt("greeting", "nl", "Goedemorgen, welkom bij uw gemeente.", "greeting")
    await lib.path(changed)
    assert calls[-1] == changed.text and wav.read_bytes() != before
    assert json.loads((tmp_path / "nl" / "greeting.wav.json").read_text())["text"] == changed.text

    wav.write_bytes(before)  # the old audio back, e.g. copied over by hand: its sidecar no longer matches
    await PromptLibrary(tmp_path).path(changed)
    assert len(calls) == 3 and wav.read_bytes() != before


async def test_concurrent_requests_share_one_synthesis(tmp_path: Path, calls: list[str]) -> None:
    lib = PromptLibrary(tmp_path)
    p = prompt("not_connected", "en", name="Haarlemmermeer", number="0900 1852")
    paths = await asyncio.gather(*(lib.path(p) for _ in range(10)))
    assert set(paths) == {f"{tmp_path}/en/{p.name}"} and calls == [p.text]
    assert lib.stats.synthesized == 1


async def test_a_caller_hanging_up_does_not_cancel_the_synthesis_for_others(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()
    counting = audio.synthesize

    async def slow(*args: Any, **kw: Any) -> Path:
        started.set()
        await asyncio.sleep(0.1)  # a synthesis surely still running when the first caller hangs up
        return await counting(*args, **kw)

    monkeypatch.setattr(audio, "synthesize", slow)
    lib = PromptLibrary(tmp_path)
    p = prompt("confirm", "fy", name="Súdwest-Fryslân")
    first = asyncio.create_task(lib.path(p))
    second = asyncio.create_task(lib.path(p))
    await started.wait()
    first.cancel()
    assert await second == f"{tmp_path}/fy/confirm-sudwest-fryslan"
    assert first.cancelled() and len(calls) == 1
    assert (tmp_path / "fy" / "confirm-sudwest-fryslan.wav").is_file()


async def test_missing_espeak_raises_prompt_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(audio, "_voice_cache", {})
    lib = PromptLibrary(tmp_path / "sounds", retry_after=60)
    for p in (prompt("greeting", "nl"), prompt("transferring", "fy", name="Goes")):
        with pytest.raises(PromptUnavailable, match="espeak-ng") as info:
            await lib.path(p)
        assert info.value.name == p.name and "apt-get install" in info.value.reason
        assert lib.stock_fallback(p.id) in {"hello", "pls-hold-while-try"}
    assert not list((tmp_path / "sounds").rglob("*.wav"))

    # the failure is remembered for a while: no new attempt (and no added latency) on every call
    monkeypatch.setenv("PATH", os.defpath)
    with pytest.raises(PromptUnavailable, match="espeak-ng"):
        await lib.path(prompt("greeting", "nl"))
    assert lib.stats.synthesized == 0


async def test_failed_synthesis_is_reported_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kw: Any) -> Path:
        raise audio.AudioError("sox failed: no space left on device")

    monkeypatch.setattr(audio, "synthesize", broken)
    lib = PromptLibrary(tmp_path, retry_after=0)
    with pytest.raises(PromptUnavailable, match="no space left") as info:
        await lib.path(prompt("busy", "nl"))
    assert info.value.reason == "sox failed: no space left on device" and lib.stats.failed == 1


def test_every_prompt_has_a_stock_stand_in() -> None:
    lib = PromptLibrary(Path("/nonexistent"))
    assert set(STOCK_FALLBACKS) <= set(PROMPTS)
    assert lib.stock_fallback("goodbye") == "vm-goodbye"
    assert lib.stock_fallback("transferring") == "pls-hold-while-try"
    assert lib.stock_fallback("menu_option") == "beep" and lib.stock_fallback("no_such_prompt") == "beep"
    if STOCK_SOUNDS.is_dir():  # the sandbox's asterisk-core-sounds-en: every stand-in really exists
        for pid in PROMPTS:
            sound = lib.stock_fallback(pid)
            assert list(STOCK_SOUNDS.glob(f"{sound}.*")), f"{pid}: no stock sound {sound}"


async def test_prebuild_then_path_is_a_hit(tmp_path: Path, calls: list[str]) -> None:
    lib = PromptLibrary(tmp_path, rate=16000)
    items = [*static_prompts(["nl"]), prompt("transferring", "nl", name="Goes")]
    first = await lib.prebuild(items, concurrency=4)
    assert (first.generated, first.skipped) == (len(items), 0) and len(calls) == len(items)
    assert wav_rate(tmp_path / "nl" / "greeting.wav16") == 16000  # Asterisk plays 16 kHz only as wav16
    again = await PromptLibrary(tmp_path, rate=16000).prebuild(items)
    assert (again.generated, again.skipped) == (0, len(items))
    await lib.path(prompt("transferring", "nl", name="Goes"))
    assert len(calls) == len(items)
    with pytest.raises(ValueError, match="two different texts"):
        await lib.prebuild([Prompt("busy", "nl", "Bezet.", "busy"), Prompt("busy", "nl", "Vol.", "busy")])


def test_plan_prompts_match_what_the_flow_asks_for(plan: Any) -> None:
    items = {p.name for p in plan_prompts(plan, ["nl"])}
    goes = next(m for m in plan.municipalities.values() if m.name == "Goes")
    assert prompt("transferring", "nl", name=goes.say_name).name in items
    digits = [
        mb.menu_digit for ac in plan.area_codes.values() for mb in ac.members if mb.cbs_code == goes.cbs_code
    ]
    for digit in digits:
        assert prompt("menu_option", "nl", name=goes.say_name, digit=digit).name in items
    assert len(items) < 13000 // 3


def test_cli_prompts_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sounds"
    assert cli.main(["prompts", "build", "--out", str(out), "--lang", "en", "-q"]) == 0
    assert (out / "en" / "greeting.wav").is_file() and (out / "en" / "language_choice-9.wav").is_file()
    assert not (out / "nl").exists()
    assert "0 unchanged" in capsys.readouterr().out
    assert cli.main(["prompts", "build", "--out", str(out), "--lang", "en", "-q"]) == 0
    assert " 0 generated" in capsys.readouterr().out
