"""Vosk speech recognition for calls: one model per process, one recogniser per call, never on the loop.

Every Vosk call runs in a bounded thread pool: the binding releases the GIL, so two workers on two cores
decode two calls at once, and the event loop that carries the telephony keeps its latency. A
``KaldiRecognizer`` is not thread-safe, so each :class:`SpeechStream` serialises its own calls (one at a
time, whichever worker runs it); the shared ``Model`` is safe to use from several threads.

A stream decodes in grammar mode with its area code's phrases (:mod:`fourteen.grammar`), which makes a small
model accurate on the few names behind a code. When the grammar hears nothing (empty or only ``[unk]``),
:meth:`SpeechStream.finish` decodes the buffered audio again with the full language model, so a caller who
says something outside the grammar still reaches the resolver. The number of open streams is bounded:
when the pool is full :meth:`SpeechEngine.open_stream` returns None and that call uses the DTMF menu, so
load never turns into latency for every caller.

Pitfalls handled here (measured, see /work/shared/speech/NOTES.md): grammar JSON is written with
``ensure_ascii=False`` (Vosk 0.3.45 drops ``\\uXXXX``-escaped words), an empty grammar is never passed
(``KaldiRecognizer(model, rate, "[]")`` crashes the process), and grammar words are checked against the
model's vocabulary at start-up.
"""

from __future__ import annotations

import array
import asyncio
import json
import logging
import os
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .grammar import UNK, Grammar, Vocabulary, build_grammar, check_phrases, model_name, speech_area_codes
from .logs import event
from .numberplan import NumberPlan, default_data_dir, normalise_area_code

__all__ = [
    "Decoded",
    "EngineStats",
    "SpeechEngine",
    "SpeechStream",
    "SpeechUnavailable",
    "StreamUpdate",
    "Word",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_SECONDS = 0.1  # 20 ms telephony frames are batched to this before a worker round trip
BUFFER_SECONDS = 15.0  # audio kept for the second pass (a name is said within this)
MAX_ALTERNATIVES = 5
FILE_STEP_SECONDS = 0.5  # chunk size when decoding a whole buffer (endpointing works per chunk)
#: the second pass decodes only the loud part of the buffer (free decoding costs ~0.15 s per second even of
#: silence, and a stream's buffer may hold seconds of prompt time): frames louder than this share of the
#: loudest frame, and at least VOICED_FLOOR, plus margins
VOICED_SHARE = 0.1
VOICED_FLOOR = 300  # peak sample value; about -40 dBFS
VOICED_MARGIN = (0.3, 0.5)  # seconds kept before the first and after the last loud frame


class SpeechUnavailable(RuntimeError):
    """The engine has no model (see ``SpeechEngine.reason``)."""


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    #: a non-empty partial has appeared (barge-in: stop the prompt)
    speech_started: bool
    #: Vosk's endpointer saw the end of an utterance (after speech: trailing silence; before any speech:
    #: the long-silence rule, i.e. no input)
    endpoint: bool
    partial: str


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float | None = None  # None in n-best mode; unreliable in grammar mode anyway (vosk-api #2041)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One call's recognition result. ``transcript`` and ``alternatives`` have ``[unk]`` removed (``words``
    keeps it); ``alternatives`` is the n-best, best first, starting with the transcript."""

    transcript: str
    alternatives: tuple[str, ...]
    words: tuple[Word, ...]
    #: time spent inside Vosk for this call (both passes): the compute cost
    decode_seconds: float
    #: the transcript comes from grammar decoding
    grammar_used: bool
    #: the grammar heard nothing and the transcript comes from a free (full language model) decode
    second_pass: bool
    audio_seconds: float = 0.0
    #: wall time of finish()/decode_file(): what a caller waits after the end of the audio
    finish_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: Vosk time per second of audio."""
        return self.decode_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


@dataclass
class EngineStats:
    opened: int = 0
    rejected_full: int = 0  # open_stream with max_streams already open
    rejected_unavailable: int = 0
    peak_open: int = 0
    decodes: int = 0
    second_passes: int = 0
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return self.rejected_full + self.rejected_unavailable

    @property
    def rtf(self) -> float:
        return self.decode_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


# -- helpers that run in a worker thread -----------------------------------------------------------------
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _load_model(vosk: Any, path: str) -> tuple[Any, bool]:
    """The process's one model for ``path`` (~300 MB, seconds to load): (model, loaded just now)."""
    key = os.path.realpath(path)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model, False
        model = _models[key] = vosk.Model(key)
        return model, True


def _new_recognizer(vosk: Any, model: Any, rate: int, grammar_json: str | None, max_alt: int) -> Any:
    rec = (
        vosk.KaldiRecognizer(model, rate, grammar_json) if grammar_json else vosk.KaldiRecognizer(model, rate)
    )
    rec.SetMaxAlternatives(max_alt)
    rec.SetWords(True)
    return rec


def _recognise(rec: Any, pcm: bytes, step: int) -> list[dict[str, Any]]:
    """Feed a whole buffer; every endpointed segment's result, then the final one."""
    out = []
    for i in range(0, len(pcm), step):
        if rec.AcceptWaveform(pcm[i : i + step]):
            out.append(json.loads(rec.Result()))
    out.append(json.loads(rec.FinalResult()))
    return out


def _voiced(pcm: bytes, rate: int) -> bytes:
    """The part of ``pcm`` (s16le) around its loud frames, with margins; empty when it is all quiet."""
    samples = array.array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    frame = max(1, rate // 50)
    peaks = [max(map(abs, samples[i : i + frame])) for i in range(0, len(samples), frame)]
    if not peaks:
        return b""
    threshold = max(VOICED_FLOOR, VOICED_SHARE * max(peaks))
    loud = [i for i, p in enumerate(peaks) if p >= threshold]
    if not loud:
        return b""
    start = max(0, loud[0] * frame - int(VOICED_MARGIN[0] * rate))
    end = min(len(samples), (loud[-1] + 1) * frame + int(VOICED_MARGIN[1] * rate))
    return pcm[2 * start : 2 * end]


def _read_wav(path: Path) -> tuple[bytes, int]:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                raise ValueError(
                    f"{path}: need mono 16-bit PCM WAV, got {w.getnchannels()} channel(s), "
                    f"{8 * w.getsampwidth()}-bit, {w.getcomptype()}"
                )
            rate = w.getframerate()
            if not 8000 <= rate <= 48000:
                raise ValueError(f"{path}: unsupported sample rate {rate} Hz (8000 or 16000)")
            return w.readframes(w.getnframes()), rate
    except wave.Error as exc:
        raise ValueError(f"{path}: not a WAV file ({exc})") from exc


def _parse(segments: Iterable[dict[str, Any]]) -> tuple[str, tuple[str, ...], tuple[Word, ...]]:
    """Transcript, n-best and words from Vosk results (n-best or plain format), segments joined."""
    texts: list[str] = []
    words: list[Word] = []
    last_alts: list[str] = []
    for seg in segments:
        if "alternatives" in seg:
            alts = [a for a in seg["alternatives"] if isinstance(a, dict)]
            best = alts[0] if alts else {}
            alt_texts = [_clean(a.get("text", "")) for a in alts]
        else:
            best = seg
            alt_texts = [_clean(seg.get("text", ""))]
        for w in best.get("result", ()):
            words.append(Word(w.get("word", ""), w.get("start", 0.0), w.get("end", 0.0), w.get("conf")))
        text = _clean(best.get("text", ""))
        if text:
            texts.append(text)
            last_alts = alt_texts
    prefix = " ".join(texts[:-1])
    alternatives = [f"{prefix} {a}".strip() for a in last_alts if a]
    return " ".join(texts), tuple(dict.fromkeys(alternatives)), tuple(words)


def _clean(text: str) -> str:
    return " ".join(w for w in str(text).split() if w != UNK)


# -- engine ----------------------------------------------------------------------------------------------
class SpeechEngine:
    """The process's Vosk model, grammars per area code, and a bounded pool of streams.

    ``load()`` never raises: check ``available`` and ``reason``. Pass the live ``plan`` to rebuild grammars
    that are missing or were built for another model; without one the seed data is used for that.
    """

    def __init__(
        self,
        model_path: str,
        grammars_dir: Path,
        max_streams: int = 8,
        sample_rate: int = 16000,
        executor_workers: int | None = None,
        *,
        plan: NumberPlan | None = None,
        max_alternatives: int = MAX_ALTERNATIVES,
        buffer_seconds: float = BUFFER_SECONDS,
    ) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {max_streams}")
        self.model_path = model_path
        self.grammars_dir = Path(grammars_dir)
        self.max_streams = max_streams
        self.sample_rate = sample_rate
        self.max_alternatives = max_alternatives
        self.buffer_seconds = buffer_seconds
        self.plan = plan
        self.available = False
        self.reason = "not loaded yet"
        self.model_name = ""
        self.load_seconds = 0.0
        self.grammars: dict[str, Grammar] = {}
        self.stats = EngineStats()
        self.has_unk = False
        workers = executor_workers or max(1, min(max_streams, os.cpu_count() or 1))
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vosk")
        self._vosk: Any = None
        self._model: Any = None
        self._open: set[SpeechStream] = set()

    # -- start-up ----------------------------------------------------------------------------------------
    async def load(self) -> None:
        """Load the model and the grammars in a worker; sets ``available``/``reason``, never raises."""
        self.available = False
        if not self.model_path:
            self.reason = "no Vosk model configured (FOURTEEN_VOSK_MODEL)"
            event(log, "speech_unavailable", logging.WARNING, reason=self.reason)
            return
        try:
            import vosk
        except ImportError as exc:  # pragma: no cover - vosk is a dependency
            self.reason = f"the vosk package cannot be imported: {exc}"
            event(log, "speech_unavailable", logging.ERROR, reason=self.reason)
            return
        if not await self.run(os.path.isdir, self.model_path):
            self.reason = f"Vosk model directory {self.model_path} does not exist"
            event(log, "speech_unavailable", logging.ERROR, reason=self.reason)
            return
        # Kaldi logs go straight to stderr, bypassing logging: keep them for debugging only.
        vosk.SetLogLevel(0 if log.isEnabledFor(logging.DEBUG) else -1)
        started = time.monotonic()
        try:
            model, fresh = await self.run(_load_model, vosk, self.model_path)
        except Exception as exc:
            self.reason = f"cannot load the Vosk model at {self.model_path}: {exc}"
            event(log, "speech_unavailable", logging.ERROR, reason=self.reason)
            return
        self.load_seconds = time.monotonic() - started
        self._vosk, self._model = vosk, model
        self.model_name = model_name(self.model_path)
        event(
            log,
            "speech_model_loaded",
            model=self.model_name,
            seconds=round(self.load_seconds, 2),
            shared=not fresh,
        )
        try:
            self.grammars, self.has_unk = await self.run(self._load_grammars)
        except Exception as exc:  # a broken grammar set must not take speech down: decode without
            self.grammars = {}
            event(log, "speech_grammars_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
        self.available = True
        self.reason = "ok"

    async def update_plan(self, plan: NumberPlan) -> None:
        """Rebuild every area code's grammar from a new plan revision (live configuration changes).

        Built in the worker pool and swapped in at once: streams opened afterwards use the new grammars,
        streams in progress keep theirs. A failure keeps the old grammars and is logged.
        """
        if not self.available or self._model is None:
            return

        def build() -> dict[str, Grammar]:
            vocab = Vocabulary(self._model, self.model_name)
            out = {}
            for code in speech_area_codes(plan):
                g = build_grammar(plan, code, vocab, model_name=self.model_name)
                if g.phrases:  # an empty grammar crashes Vosk: such codes decode without one
                    out[code] = g
            return out

        try:
            grammars = await self.run(build)
        except Exception as exc:
            event(log, "speech_grammars_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return
        self.plan, self.grammars = plan, grammars
        event(log, "speech_grammars_rebuilt", revision=plan.revision, usable=len(grammars))

    def _load_grammars(self) -> tuple[dict[str, Grammar], bool]:
        """Grammar files for this model, checked word by word; missing or other-model ones rebuilt."""
        vocab = Vocabulary(self._model, self.model_name)
        grammars: dict[str, Grammar] = {}
        rebuild: set[str] = set()
        files = sorted(self.grammars_dir.glob("*.json")) if self.grammars_dir.is_dir() else []
        for f in files:
            try:
                g = Grammar.from_json(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                event(log, "speech_grammar_invalid", logging.WARNING, file=str(f), error=str(exc))
                continue
            if g.area_code != f.stem:
                event(log, "speech_grammar_invalid", logging.WARNING, file=str(f), error="area code mismatch")
                continue
            if g.model != self.model_name:
                rebuild.add(f.stem)
                continue
            keep, missing = check_phrases(g.phrases, vocab)
            if missing:
                event(
                    log, "speech_grammar_words_missing", logging.WARNING, area_code=f.stem, words=missing[:20]
                )
            grammars[f.stem] = replace(g, phrases=tuple(keep), has_unk=vocab.has_unk)
        plan = self.plan
        if plan is not None:
            rebuild |= set(speech_area_codes(plan)) - set(grammars)
        elif rebuild:
            plan = NumberPlan.from_csv(default_data_dir())
        if rebuild and plan is not None:
            for code in sorted(rebuild):
                if code in plan.area_codes:
                    grammars[code] = build_grammar(plan, code, vocab, model_name=self.model_name)
        empty = sorted(c for c, g in grammars.items() if not g.phrases)
        for code in empty:  # an empty grammar crashes Vosk; decode those codes without one
            del grammars[code]
        event(
            log,
            "speech_grammars_loaded",
            files=len(files),
            rebuilt=len(rebuild),
            usable=len(grammars),
            empty=len(empty),
            unk=vocab.has_unk,
        )
        return grammars, vocab.has_unk

    # -- streams -----------------------------------------------------------------------------------------
    def grammar_for(self, area_code: str | None) -> Grammar | None:
        code = normalise_area_code(area_code) if area_code else None
        return self.grammars.get(code) if code else None

    def open_stream(
        self, area_code: str | None, lang: str = "nl", *, sample_rate: int | None = None
    ) -> SpeechStream | None:
        """A recogniser for one call, or None when the engine is unavailable or ``max_streams`` are open
        (the call then uses the menu). Close it with :meth:`SpeechStream.close` (or ``async with``)."""
        if not self.available:
            self.stats.rejected_unavailable += 1
            return None
        if len(self._open) >= self.max_streams:
            self.stats.rejected_full += 1
            event(log, "speech_pool_full", logging.WARNING, open=len(self._open), max=self.max_streams)
            return None
        stream = SpeechStream(
            self, area_code, lang, sample_rate or self.sample_rate, self.grammar_for(area_code)
        )
        self._open.add(stream)
        self.stats.opened += 1
        self.stats.peak_open = max(self.stats.peak_open, len(self._open))
        return stream

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def _release(self, stream: SpeechStream) -> None:
        self._open.discard(stream)

    def _account(self, d: Decoded) -> None:
        self.stats.decodes += 1
        self.stats.second_passes += d.second_pass
        self.stats.audio_seconds += d.audio_seconds
        self.stats.decode_seconds += d.decode_seconds

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking function in the engine's worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _grammar_json(self, grammar: Grammar | None) -> str | None:
        if grammar is None or not grammar.phrases:
            return None
        return replace(grammar, has_unk=self.has_unk).recogniser_json()

    def _decode_sync(
        self, pcm: bytes, rate: int, grammar_json: str | None
    ) -> tuple[list[dict[str, Any]], float]:
        """A whole buffer with a fresh recogniser (files, second pass): results and seconds spent. The
        free second pass only gets the loud part, and nothing at all for a silent buffer."""
        started = time.monotonic()
        if grammar_json is None:
            pcm = _voiced(pcm, rate)
            if not pcm:
                return [], time.monotonic() - started
        rec = _new_recognizer(self._vosk, self._model, rate, grammar_json, self.max_alternatives)
        segments = _recognise(rec, pcm, int(rate * FILE_STEP_SECONDS) * 2)
        del rec
        return segments, time.monotonic() - started

    async def decode_file(self, path: Path, area_code: str | None) -> Decoded:
        """Decode a recorded WAV (mono 16-bit, 8 or 16 kHz): the record-then-decode fallback.

        Raises SpeechUnavailable without a model and ValueError for a file that is not such a WAV.
        """
        if not self.available:
            raise SpeechUnavailable(self.reason)
        started = time.monotonic()
        pcm, rate = await self.run(_read_wav, Path(path))
        grammar_json = self._grammar_json(self.grammar_for(area_code))
        segments, seconds = await self.run(self._decode_sync, pcm, rate, grammar_json)
        transcript, alternatives, words = _parse(segments)
        second = False
        if grammar_json is not None and not transcript:
            segments, more = await self.run(self._decode_sync, pcm, rate, None)
            seconds += more
            transcript, alternatives, words = _parse(segments)
            second = True
        d = Decoded(
            transcript,
            alternatives,
            words,
            decode_seconds=seconds,
            grammar_used=grammar_json is not None and not second,
            second_pass=second,
            audio_seconds=len(pcm) / (2 * rate),
            finish_seconds=time.monotonic() - started,
        )
        self._account(d)
        return d

    async def close(self) -> None:
        """Close open streams and stop the workers; the engine is unavailable afterwards."""
        for stream in list(self._open):
            await stream.close()
        self.available = False
        self.reason = "closed"
        self._model = None
        await asyncio.to_thread(self._executor.shutdown, True)


# -- one call ----------------------------------------------------------------------------------------------
@dataclass
class _State:
    segments: list[dict[str, Any]] = field(default_factory=list)
    decode_seconds: float = 0.0


class SpeechStream:
    """One call's recogniser: feed PCM (s16le at ``sample_rate``) as it arrives, then ``finish()``.

    The recogniser is created in a worker as soon as the stream opens (a free-mode recogniser takes ~80 ms),
    so that happens while the prompt plays.
    """

    def __init__(
        self,
        engine: SpeechEngine,
        area_code: str | None,
        lang: str,
        sample_rate: int,
        grammar: Grammar | None,
    ) -> None:
        self.engine = engine
        self.area_code = area_code
        self.lang = lang
        self.sample_rate = sample_rate
        self.grammar = grammar
        self.speech_started = False
        self.endpoint = False
        self.partial = ""
        self._grammar_json = engine._grammar_json(grammar)
        self._batch = max(2, int(sample_rate * BATCH_SECONDS) * 2)
        self._max_audio = int(sample_rate * engine.buffer_seconds) * 2
        self._pending = bytearray()
        self._audio = bytearray()
        self._fed = 0
        self._state = _State()
        self._rec: Any = None
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[Any] | None = None
        self._result: Decoded | None = None
        self._closed = False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._inflight = self._submit(self._ensure_recognizer)

    @property
    def grammar_mode(self) -> bool:
        return self._grammar_json is not None

    @property
    def audio_seconds(self) -> float:
        return self._fed / (2 * self.sample_rate)

    # worker side (serialised by _call) ------------------------------------------------------------------
    def _ensure_recognizer(self) -> Any:
        if self._rec is None:
            started = time.monotonic()
            self._rec = _new_recognizer(
                self.engine._vosk,
                self.engine._model,
                self.sample_rate,
                self._grammar_json,
                self.engine.max_alternatives,
            )
            self._state.decode_seconds += time.monotonic() - started
        return self._rec

    def _accept(self, chunk: bytes) -> tuple[bool, str]:
        rec = self._ensure_recognizer()
        started = time.monotonic()
        try:
            if rec.AcceptWaveform(chunk):
                self._state.segments.append(json.loads(rec.Result()))
                return True, ""
            return False, json.loads(rec.PartialResult()).get("partial", "")
        finally:
            self._state.decode_seconds += time.monotonic() - started

    def _final(self, chunk: bytes) -> None:
        rec = self._ensure_recognizer()
        started = time.monotonic()
        if chunk and rec.AcceptWaveform(chunk):
            self._state.segments.append(json.loads(rec.Result()))
        self._state.segments.append(json.loads(rec.FinalResult()))
        self._state.decode_seconds += time.monotonic() - started

    def _free(self) -> None:
        self._rec = None

    # loop side ------------------------------------------------------------------------------------------
    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        fut = asyncio.get_running_loop().run_in_executor(self.engine._executor, fn, *args)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if nobody awaits
        return fut

    async def _call(self, fn: Callable[..., T], *args: Any, take: bool | None = None) -> T:
        """Run ``fn`` on a worker after this stream's previous call has finished (a recogniser is not
        thread-safe). With ``take`` set, the pending audio is taken only once the worker is free, so a
        caller cancelled while waiting loses no audio; one cancelled mid-call leaves the worker running
        and the next call waits for it."""
        async with self._lock:
            if self._inflight is not None and not self._inflight.done():
                await asyncio.wait([self._inflight])
            if take is not None:
                args = (*args, self._take(everything=take))
            fut = self._inflight = self._submit(fn, *args)
        return await asyncio.shield(fut)

    def _take(self, everything: bool = False) -> bytes:
        n = len(self._pending) if everything else len(self._pending) - len(self._pending) % self._batch
        n -= n % 2
        chunk = bytes(self._pending[:n])
        del self._pending[:n]
        return chunk

    def _update(self, endpoint: bool = False) -> StreamUpdate:
        return StreamUpdate(self.speech_started, endpoint, self.partial)

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Add audio (any length; 20 ms frames are batched to ~100 ms per worker round trip)."""
        if self._closed or self._result is not None or not pcm:
            return self._update()
        self._pending += pcm
        self._fed += len(pcm)
        room = self._max_audio - len(self._audio)
        if room > 0:
            self._audio += pcm[:room]
        if len(self._pending) < self._batch:
            return self._update()
        ended, partial = await self._call(self._accept, take=False)
        if ended:
            self.endpoint = True
            self.partial = ""
            if _parse(self._state.segments[-1:])[0]:
                self.speech_started = True
        else:
            self.partial = _clean(partial)
            if self.partial:
                self.speech_started = True
        return self._update(ended)

    async def finish(self) -> Decoded:
        """The result for everything fed so far; a free second pass when the grammar heard nothing."""
        if self._result is not None:
            return self._result
        if self._closed:
            raise RuntimeError("the stream is closed")
        started = time.monotonic()
        await self._call(self._final, take=True)
        transcript, alternatives, words = _parse(self._state.segments)
        seconds = self._state.decode_seconds
        second = False
        if self.grammar_mode and not transcript and self._audio:
            segments, more = await self.engine.run(
                self.engine._decode_sync, bytes(self._audio), self.sample_rate, None
            )
            seconds += more
            transcript, alternatives, words = _parse(segments)
            second = True
        self._result = Decoded(
            transcript,
            alternatives,
            words,
            decode_seconds=seconds,
            grammar_used=self.grammar_mode and not second,
            second_pass=second,
            audio_seconds=self.audio_seconds,
            finish_seconds=time.monotonic() - started,
        )
        self.engine._account(self._result)
        event(
            log,
            "speech_decoded",
            area_code=self.area_code or "-",
            grammar=self._result.grammar_used,
            second_pass=second,
            audio_s=round(self.audio_seconds, 2),
            decode_s=round(seconds, 3),
            finish_s=round(self._result.finish_seconds, 3),
            rtf=round(self._result.rtf, 3),
        )
        return self._result

    async def close(self) -> None:
        """Free the recogniser and the pool slot (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.engine._release(self)
        try:
            await self._call(self._free)
        except RuntimeError:  # the engine's pool is shut down already
            self._rec = None

    async def __aenter__(self) -> SpeechStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
