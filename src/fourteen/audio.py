"""Generating prompt audio with espeak-ng and sox, without blocking the event loop.

Every file is mono 16-bit signed PCM WAV at 8 kHz (Asterisk's native telephony rate) or 16 kHz. The
texts come from :mod:`fourteen.prompts`; :func:`build_prompts` writes ``<out_dir>/<lang>/<name>.wav`` and
keeps ``<out_dir>/index.json`` with a hash of each file's text and settings, so an unchanged prompt is
skipped and a changed one is regenerated.

Command line (``scripts/make-prompts``)::

    python -m fourteen.audio build [--out DIR] [--rate 8000] [--municipalities data/municipalities.csv]
    python -m fourteen.audio say --lang nl --out hello.wav "Gemeente Goes"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fourteen.prompts import LANGUAGES, Prompt, municipality_prompts, static_prompts

__all__ = [
    "DEFAULT_SPEED",
    "INSTALL_HINT",
    "AudioError",
    "AudioToolMissing",
    "BuildResult",
    "build_prompts",
    "espeak_voice",
    "main",
    "read_municipality_prompts",
    "require_tools",
    "silence",
    "synthesize",
    "synthesize_utterance",
]

INSTALL_HINT: Final = "apt-get install espeak-ng sox"
TOOLS: Final = ("espeak-ng", "sox")
#: espeak-ng speaking rate in words per minute (its default, 175, is a bit fast on the phone)
DEFAULT_SPEED: Final = 150
INDEX_FILE: Final = "index.json"
#: bump when the audio pipeline changes so that every file is regenerated
PIPELINE_VERSION: Final = 1

# Our language codes -> espeak-ng voices. Frisian has no espeak-ng voice (1.51): see espeak_voice().
_VOICES: Final = {"nl": "nl", "en": "en", "fy": "fy"}
_FALLBACK_VOICE: Final = {"fy": "nl"}
_voice_cache: dict[str, str] = {}


class AudioToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


class AudioError(RuntimeError):
    """espeak-ng or sox failed."""


def require_tools(tools: Sequence[str] = TOOLS) -> None:
    """Raise :class:`AudioToolMissing` unless every tool is on ``PATH``."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise AudioToolMissing(f"{' and '.join(missing)} not found on PATH; install with: {INSTALL_HINT}")


async def _run(argv: Sequence[str], stdin: bytes | None = None) -> bytes:
    """Run a tool as an asyncio subprocess; stdout on success, AudioError (with stderr) on failure."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise AudioToolMissing(f"{argv[0]} not found; install with: {INSTALL_HINT}") from exc
    try:
        out, err = await proc.communicate(stdin)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = err.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise AudioError(f"{argv[0]} failed: {message}")
    return out


async def espeak_voice(lang: str) -> str:
    """The espeak-ng voice for a language: ``nl``, ``en``; ``fy`` only if espeak-ng has a Frisian voice,
    otherwise ``nl`` (the Frisian texts spell numbers as Frisian words so the Dutch voice reads them).
    Any other value is passed to espeak-ng as a voice name (e.g. ``"de"``, ``"nl+f3"``)."""
    if lang in _voice_cache:
        return _voice_cache[lang]
    voice = _VOICES.get(lang, lang)
    if lang in _FALLBACK_VOICE:
        require_tools(("espeak-ng",))
        listing = (await _run(["espeak-ng", f"--voices={voice}"])).decode("utf-8", "replace")
        rows = [line.split() for line in listing.splitlines()[1:]]
        if not any(len(row) > 1 and row[1] == voice for row in rows):
            voice = _FALLBACK_VOICE[lang]
    _voice_cache[lang] = voice
    return voice


def _check_rate(rate: int) -> int:
    if not isinstance(rate, int) or isinstance(rate, bool) or not 4000 <= rate <= 48000:
        raise ValueError(f"sample rate must be an integer in 4000..48000 Hz (8000 or 16000), got {rate!r}")
    return rate


def _sox_output(rate: int, path: Path) -> list[str]:
    return ["-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav", str(path)]


def _tmp_path(out_path: Path) -> Path:
    return out_path.with_name(f".{out_path.name}.{os.getpid()}.{id(out_path):x}.tmp")


async def _speak(
    text: str,
    voice: str,
    out_path: str | os.PathLike[str],
    rate: int,
    speed: int,
    effects: Sequence[str],
) -> Path:
    if not text or not text.strip():
        raise ValueError("nothing to say: empty text")
    _check_rate(rate)
    require_tools()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Text goes in on stdin (-b 1: UTF-8) so that text starting with "-" is never taken for an option.
    wav = await _run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-b", "1", "--stdout"], text.encode("utf-8")
    )
    if not wav:
        raise AudioError(f"espeak-ng produced no audio for {text!r}")
    tmp = _tmp_path(out)
    try:
        await _run(["sox", "-q", "-t", "wav", "-", *_sox_output(rate, tmp), *effects], wav)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# Normalise to -3 dBFS and pad with a little silence so that playback does not clip the first syllable.
_PROMPT_EFFECTS: Final = ("gain", "-n", "-3", "pad", "0.1", "0.2")


async def synthesize(
    text: str,
    lang: str,
    out_path: str | os.PathLike[str],
    rate: int = 8000,
    *,
    speed: int = DEFAULT_SPEED,
) -> Path:
    """Speak ``text`` in ``lang`` into a mono 16-bit WAV at ``rate`` Hz (written atomically)."""
    return await _speak(text, await espeak_voice(lang), out_path, rate, speed, _PROMPT_EFFECTS)


async def synthesize_utterance(
    text: str,
    lang: str,
    out_path: str | os.PathLike[str],
    rate: int = 8000,
    *,
    speed: int = 165,
    variant: str | None = None,
) -> Path:
    """What a (test) caller says, e.g. ``"Súdwest-Fryslân"``, as a mono 16-bit WAV at ``rate`` Hz.

    Same mechanics as :func:`synthesize`; ``variant`` picks an espeak-ng voice variant (``"m3"``, ``"f2"``)
    so tests can sound like a different speaker than the prompts.
    """
    voice = await espeak_voice(lang)
    if variant:
        voice = f"{voice}+{variant}"
    return await _speak(text, voice, out_path, rate, speed, ("gain", "-n", "-6", "pad", "0.3", "0.5"))


async def silence(out_path: str | os.PathLike[str], seconds: float, rate: int = 8000) -> Path:
    """A WAV of ``seconds`` of digital silence (mono, 16-bit, ``rate`` Hz)."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    _check_rate(rate)
    require_tools(("sox",))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(out)
    try:
        await _run(["sox", "-q", "-D", "-n", *_sox_output(rate, tmp), "trim", "0", f"{seconds:.3f}"])
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ------------------------------------------------------------------------------------------------ build


@dataclass(frozen=True, slots=True)
class BuildResult:
    generated: int
    skipped: int
    seconds: float

    @property
    def total(self) -> int:
        return self.generated + self.skipped


def _digest(text: str, voice: str, rate: int, speed: int) -> str:
    key = json.dumps([PIPELINE_VERSION, text, voice, rate, speed], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _load_index(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {}


def _save_index(path: Path, files: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    data = {"version": PIPELINE_VERSION, "files": dict(sorted(files.items()))}
    tmp.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


async def build_prompts(
    out_dir: str | os.PathLike[str],
    prompts: Iterable[Prompt],
    rate: int = 8000,
    concurrency: int = 2,
    *,
    speed: int = DEFAULT_SPEED,
    progress: Callable[[int, int], None] | None = None,
) -> BuildResult:
    """Render prompts to ``out_dir/<lang>/<name>.wav``, skipping files whose text and settings are unchanged.

    Two prompts with the same file but different texts are an error (ValueError). ``progress(done, total)``
    is called after each file. The index is saved even when the build fails or is cancelled halfway.
    """
    started = time.monotonic()
    _check_rate(rate)
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    require_tools()
    root = Path(out_dir)

    unique: dict[str, Prompt] = {}
    for p in prompts:
        key = p.relpath()
        seen = unique.setdefault(key, p)
        if seen.text != p.text or seen.text_lang != p.text_lang:
            raise ValueError(f"two different texts for {key}: {seen.text!r} and {p.text!r}")

    index_path = root / INDEX_FILE
    voices = {lang: await espeak_voice(lang) for lang in {p.text_lang for p in unique.values()}}
    digests = {key: _digest(p.text, voices[p.text_lang], rate, speed) for key, p in unique.items()}

    def plan() -> tuple[dict[str, str], list[str]]:  # file system work, in a thread
        root.mkdir(parents=True, exist_ok=True)
        index = _load_index(index_path)
        stale = [k for k, d in digests.items() if index.get(k) != d or not (root / k).is_file()]
        return index, stale

    index, stale = await asyncio.to_thread(plan)
    todo = [(key, unique[key], digests[key]) for key in stale]
    skipped = len(unique) - len(todo)

    total = len(unique)
    done = skipped
    queue: asyncio.Queue[tuple[str, Prompt, str]] = asyncio.Queue()
    for job in todo:
        queue.put_nowait(job)

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                key, p, digest = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            index.pop(key, None)
            await _speak(p.text, voices[p.text_lang], root / key, rate, speed, _PROMPT_EFFECTS)
            index[key] = digest
            done += 1
            if progress is not None:
                progress(done, total)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, len(todo))):
                tg.create_task(worker())
    finally:
        if todo:
            await asyncio.to_thread(_save_index, index_path, dict(index))
    return BuildResult(generated=len(todo), skipped=skipped, seconds=time.monotonic() - started)


# -------------------------------------------------------------------------------------------------- CLI


def read_municipality_prompts(
    csv_path: str | os.PathLike[str], langs: Iterable[str] = LANGUAGES, *, numbers: bool = True
) -> Iterator[Prompt]:
    """Per-municipality prompts for every row of a municipalities CSV (columns ``name``, ``name_short``;
    with ``numbers``, also ``phone_general`` and ``fourteen_plus_number`` when present)."""
    langs = tuple(langs)
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if "name" not in (reader.fieldnames or ()):
            raise ValueError(f"{csv_path}: no 'name' column")
        for row in reader:
            name = (row.get("name") or "").strip()
            if not name:
                continue
            number = (row.get("phone_general") or "").strip() if numbers else ""
            fourteen = (row.get("fourteen_plus_number") or "").strip() if numbers else ""
            yield from municipality_prompts(
                name,
                spoken=(row.get("name_short") or "").strip() or None,
                langs=langs,
                number=number if number and not number.replace(" ", "").startswith("14") else None,
                area_code=fourteen or None,
            )


def _default_out_dir() -> Path:
    """``$FOURTEEN_DATA_DIR/sounds`` when FOURTEEN_DATA_DIR is set, else ``./var/sounds``."""
    from fourteen.settings import Settings

    configured = Settings.from_env().data_dir
    return configured / "sounds" if configured != Settings().data_dir else Path("var/sounds")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fourteen.audio", description=(__doc__ or "").split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="generate the prompt audio files")
    build.add_argument(
        "--out", type=Path, default=None, help="default: $FOURTEEN_DATA_DIR/sounds or ./var/sounds"
    )
    build.add_argument("--rate", type=int, default=8000, choices=(8000, 16000))
    build.add_argument(
        "--municipalities", type=Path, help="CSV with name,name_short: add per-municipality prompts"
    )
    build.add_argument(
        "--no-numbers",
        action="store_true",
        help="per municipality only transferring/confirm/menu_option (skip not_connected etc.)",
    )
    build.add_argument("--lang", default=",".join(LANGUAGES), help="comma-separated (default: %(default)s)")
    build.add_argument("--concurrency", type=int, default=max(2, os.cpu_count() or 2))
    build.add_argument("--speed", type=int, default=DEFAULT_SPEED, help="words per minute")
    build.add_argument("-q", "--quiet", action="store_true")

    say = sub.add_parser("say", help="speak one text into a WAV (e.g. a test caller's utterance)")
    say.add_argument("text")
    say.add_argument("--out", type=Path, required=True)
    say.add_argument("--lang", default="nl")
    say.add_argument("--rate", type=int, default=8000, choices=(8000, 16000))
    say.add_argument("--variant", help="espeak-ng voice variant, e.g. m3 or f2")
    return parser


async def _build(args: argparse.Namespace) -> int:
    langs = [lang.strip() for lang in args.lang.split(",") if lang.strip()]
    out = args.out or _default_out_dir()
    prompts: list[Prompt] = list(static_prompts(langs))
    if args.municipalities:
        prompts += read_municipality_prompts(args.municipalities, langs, numbers=not args.no_numbers)
    step = max(1, len(prompts) // 20)

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done % step == 0 or done == total):
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    result = await build_prompts(
        out, prompts, args.rate, args.concurrency, speed=args.speed, progress=progress
    )
    print(
        f"{out}: {result.total} prompts, {result.generated} generated, {result.skipped} unchanged, "
        f"{result.seconds:.1f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return asyncio.run(_build(args))
        asyncio.run(synthesize_utterance(args.text, args.lang, args.out, args.rate, variant=args.variant))
        print(args.out)
        return 0
    except AudioToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (AudioError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
