"""Prompt audio on demand: the router asks for a prompt when it needs it and gets a path Asterisk can play.

Pre-generating every per-municipality sentence (13,000 files, 840 MB, minutes of CPU) is too much for a test
sandbox and for CI, and most of those files are never played. :class:`PromptLibrary` instead makes sure,
at the moment a prompt is needed, that ``<sounds_dir>/<lang>/<name>.wav`` exists and was made from the
same text, voice, rate and speed, and synthesises it with espeak-ng + sox (:func:`fourteen.audio.synthesize`,
typically 50-150 ms) when not. Static prompts can be pre-built (:meth:`PromptLibrary.prebuild`,
``fourteen prompts build``).

Each file has a sidecar ``<name>.wav.json`` with the hash of what it was made from and the SHA-256 of the
audio itself. Several router processes may share the directory: audio and sidecar are each written to a
temporary file and renamed into place, and a file only counts as current when the sidecar's audio hash
matches the audio, so a sidecar and a file written by two different processes are never taken for a pair
(the prompt is then simply made again). Within a process, concurrent requests for one prompt share one
synthesis, and a file checked once is afterwards trusted as long as its inode, size and mtime are unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from . import audio
from .audio import BuildResult
from .logs import event
from .prompts import LANGUAGES, Prompt, prompt, static_prompts

__all__ = [
    "STOCK_FALLBACKS",
    "LibraryStats",
    "PromptLibrary",
    "PromptUnavailable",
    "plan_prompts",
    "register_cli",
]

log = logging.getLogger(__name__)

#: Hash format of the sidecars; bump to remake every file (audio.PIPELINE_VERSION is part of the hash too).
SIDECAR_VERSION: Final = 1
#: Asterisk reads 8 kHz signed linear from ``.wav`` and 16 kHz only from ``.wav16``.
_EXTENSIONS: Final = {8000: "wav", 16000: "wav16"}

#: Stock sounds (asterisk-core-sounds-en) played when a prompt cannot be synthesised: the nearest meaning,
#: else a beep, so that a caller never hears silence. Keys are prompt ids.
STOCK_FALLBACKS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "greeting": "hello",
        "ask_municipality": "please-try-again",
        "retry": "please-try-again",
        "no_input": "please-try-again",
        "invalid_choice": "pm-invalid-option",
        "transferring": "pls-hold-while-try",
        "offer_transfer": "pls-hold-while-try",
        "other_area": "pls-hold-while-try",
        "operator": "pls-hold-while-try",
        "router_down": "pls-hold-while-try",
        "please_hold": "one-moment-please",
        "not_connected": "cannot-complete-as-dialed",
        "not_connected_no_number": "cannot-complete-as-dialed",
        "sorry_unavailable": "sorry-youre-having-problems",
        "divert_failed_number": "sorry-youre-having-problems",
        "busy": "all-circuits-busy-now",
        "outside_hours": "please-try-call-later",
        "unknown_number": "ss-noservice",
        "goodbye": "vm-goodbye",
    }
)
#: Menus, confirmations, language choices: no stock sound says what they say; a beep invites a key.
DEFAULT_STOCK: Final = "beep"


class PromptUnavailable(RuntimeError):
    """A prompt has no audio and none could be made; the caller should play :meth:`stock_fallback`."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"prompt {name} unavailable: {reason}")
        self.name = name
        self.reason = reason


@dataclass(slots=True)
class LibraryStats:
    """Counters for metrics: how often a prompt was served from disk, made, or could not be made."""

    hits: int = 0
    synthesized: int = 0
    failed: int = 0
    synth_seconds: float = 0.0


_Signature = tuple[int, int, int]  # inode, size, mtime_ns: cheap proof that a checked file is unchanged


def _signature(path: Path) -> _Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _fingerprint(text: str, voice: str, rate: int, speed: int) -> str:
    key = json.dumps([SIDECAR_VERSION, audio.PIPELINE_VERSION, text, voice, rate, speed], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PromptLibrary:
    """Prompt audio for the router: synthesised on first use, cached on disk, shared between processes."""

    def __init__(
        self,
        sounds_dir: Path,
        asterisk_dir: str | None = None,
        rate: int = 8000,
        *,
        speed: int = audio.DEFAULT_SPEED,
        retry_after: float = 30.0,
        max_parallel: int | None = None,
    ) -> None:
        """``asterisk_dir`` is ``sounds_dir`` as Asterisk sees it (a chroot or another container);
        ``retry_after``: seconds a failed synthesis is not retried, so a broken TTS costs no latency;
        ``max_parallel``: syntheses at once (default: CPUs), so a burst of new calls cannot fork-bomb."""
        if rate not in _EXTENSIONS:
            raise ValueError(f"rate must be 8000 or 16000 (what Asterisk plays from wav/wav16), got {rate!r}")
        self.sounds_dir = Path(sounds_dir)
        # absolute: Asterisk would take a relative path as relative to its own sounds directory
        self.asterisk_dir = (asterisk_dir or str(self.sounds_dir.absolute())).rstrip("/") or "/"
        self.rate = rate
        self.ext = _EXTENSIONS[rate]
        self.speed = speed
        self.retry_after = retry_after
        self.stats = LibraryStats()
        self._known: dict[str, tuple[str, _Signature]] = {}
        self._pending: dict[str, tuple[str, asyncio.Task[bool]]] = {}
        self._failed: dict[str, tuple[str, float, str]] = {}
        self._slots = asyncio.Semaphore(max_parallel or max(2, os.cpu_count() or 2))

    # -- public API ---------------------------------------------------------------------------------
    async def path(self, p: Prompt) -> str:
        """The path (without extension) Asterisk should play, after making sure the audio is current.

        Raises :class:`PromptUnavailable` (with the reason) when the audio cannot be made.
        """
        await self._ensure(p)
        return self.playback_path(p)

    def playback_path(self, p: Prompt) -> str:
        """Where Asterisk finds the prompt, without extension (``Playback()``/``STREAM FILE`` add it)."""
        return f"{self.asterisk_dir}/{p.relpath(None)}"

    def file(self, p: Prompt) -> Path:
        """The audio file the router writes for a prompt."""
        return self.sounds_dir / p.relpath(self.ext)

    def stock_fallback(self, prompt_id: str) -> str:
        """A stock Asterisk sound that stands in for a prompt when its audio cannot be made."""
        return STOCK_FALLBACKS.get(prompt_id, DEFAULT_STOCK)

    async def prebuild(
        self,
        prompts: Iterable[Prompt],
        concurrency: int = 2,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> BuildResult:
        """Make every prompt that is missing or stale, ``concurrency`` at a time (the same files and
        sidecars :meth:`path` uses, so a pre-built prompt is a cache hit at call time).

        Two prompts with the same file but different texts are a ValueError; the first failure is raised
        as :class:`PromptUnavailable` once the others are done.
        """
        started = time.monotonic()
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        unique: dict[str, Prompt] = {}
        for p in prompts:
            seen = unique.setdefault(p.relpath(self.ext), p)
            if (seen.text, seen.text_lang) != (p.text, p.text_lang):
                raise ValueError(f"two different texts for {p.relpath(self.ext)}: {seen.text!r}, {p.text!r}")
        try:
            audio.require_tools()
        except audio.AudioToolMissing as exc:
            raise PromptUnavailable("(all)", str(exc)) from exc
        gate = asyncio.Semaphore(concurrency)
        done = generated = 0

        async def one(p: Prompt) -> None:
            nonlocal done, generated
            async with gate:
                made = await self._ensure(p)
            generated += made  # not `generated += await …`: that reads the counter before awaiting
            done += 1
            if progress is not None:
                progress(done, len(unique))

        results = await asyncio.gather(*(one(p) for p in unique.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return BuildResult(generated, len(unique) - generated, time.monotonic() - started)

    # -- internals ----------------------------------------------------------------------------------
    async def _ensure(self, p: Prompt) -> bool:
        """Make sure the prompt's audio is current; True when it had to be synthesised."""
        key = p.relpath(self.ext)
        try:
            voice = await audio.espeak_voice(p.text_lang)
        except (audio.AudioToolMissing, audio.AudioError) as exc:
            self.stats.failed += 1
            raise PromptUnavailable(p.name, str(exc)) from exc
        digest = _fingerprint(p.text, voice, self.rate, self.speed)
        known = self._known.get(key)
        if known is not None and known[0] == digest and _signature(self.sounds_dir / key) == known[1]:
            self.stats.hits += 1
            return False
        while (pending := self._pending.get(key)) is not None:
            if pending[0] == digest:  # already being checked or made: share the result
                return await asyncio.shield(pending[1])
            await asyncio.wait({pending[1]})  # another text for the same file: let it finish first
        failed = self._failed.get(key)
        if failed is not None and failed[0] == digest and time.monotonic() < failed[1]:
            self.stats.failed += 1
            raise PromptUnavailable(p.name, failed[2])
        task = asyncio.create_task(self._make(p, key, voice, digest), name=f"prompt {key}")
        self._pending[key] = (digest, task)
        task.add_done_callback(lambda t: self._settled(key, t))
        return await asyncio.shield(task)  # a caller hanging up must not cancel it for the others

    def _settled(self, key: str, task: asyncio.Task[bool]) -> None:
        if self._pending.get(key, ("", None))[1] is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here so that a failure nobody waits for any more is not logged

    async def _make(self, p: Prompt, key: str, voice: str, digest: str) -> bool:
        target = self.sounds_dir / key
        sidecar = target.with_name(target.name + ".json")
        signature = await asyncio.to_thread(self._verify, target, sidecar, digest)
        if signature is not None:  # made earlier, by this or another process
            self._known[key] = (digest, signature)
            self.stats.hits += 1
            return False
        started = time.monotonic()
        part = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            async with self._slots:
                await audio.synthesize(p.text, p.text_lang, part, self.rate, speed=self.speed)
            meta = {"digest": digest, "text": p.text, "voice": voice, "rate": self.rate, "speed": self.speed}
            signature = await asyncio.to_thread(self._install, part, target, sidecar, meta)
        except (audio.AudioError, audio.AudioToolMissing, OSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            self._failed[key] = (digest, time.monotonic() + self.retry_after, reason)
            self.stats.failed += 1
            event(log, "prompt_synthesis_failed", logging.WARNING, prompt=key, error=reason[:200])
            raise PromptUnavailable(p.name, reason) from exc
        finally:
            part.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        self._known[key] = (digest, signature)
        self._failed.pop(key, None)
        self.stats.synthesized += 1
        self.stats.synth_seconds += seconds
        event(log, "prompt_synthesized", prompt=key, ms=round(seconds * 1000))
        return True

    @staticmethod
    def _verify(target: Path, sidecar: Path, digest: str) -> _Signature | None:
        """The file's signature when its sidecar says it was made from ``digest`` and matches its audio."""
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            with open(target, "rb") as fh:  # stat and read the same inode, even if it is replaced meanwhile
                st = os.fstat(fh.fileno())
                data = fh.read()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("digest") != digest:
            return None
        if meta.get("sha256") != hashlib.sha256(data).hexdigest():
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    @staticmethod
    def _install(part: Path, target: Path, sidecar: Path, meta: dict[str, Any]) -> _Signature:
        """Rename the new audio into place and write its sidecar (hash taken before the rename, so it is
        of our audio even if another process replaces the file a moment later)."""
        with open(part, "rb") as fh:
            st = os.fstat(fh.fileno())
            sha = hashlib.sha256(fh.read()).hexdigest()
        os.replace(part, target)
        _atomic_write(sidecar, json.dumps({**meta, "sha256": sha}, ensure_ascii=False).encode("utf-8"))
        return st.st_ino, st.st_size, st.st_mtime_ns


# ------------------------------------------------------------------------------------ what to pre-build


def plan_prompts(plan: Any, langs: Iterable[str] = LANGUAGES) -> Iterator[Prompt]:
    """Every per-municipality prompt the call flow can ask for on ``plan`` (a
    :class:`~fourteen.numberplan.NumberPlan`), with the values the flow passes, so the file names match:
    the real menu keys only, numbers only where a municipality has one."""
    langs = tuple(langs)
    for m in plan.municipalities.values():
        name = m.say_name
        jobs: list[tuple[str, dict[str, object]]] = [("transferring", {}), ("confirm", {})]
        for code in plan.area_codes_of(m.cbs_code):
            ac = plan.area_codes.get(code)
            jobs += [
                ("menu_option", {"digit": mb.menu_digit}) for mb in ac.members if mb.cbs_code == m.cbs_code
            ]
        if m.public_number:
            pids = ("not_connected", "sorry_unavailable", "divert_failed_number")
            jobs += [(pid, {"number": m.public_number}) for pid in pids]
        else:
            jobs.append(("not_connected_no_number", {}))
        if m.main_area_code:
            jobs.append(("other_area", {"area_code": m.main_area_code}))
        for lang in langs:
            for pid, extra in jobs:
                if all(str(v).strip() for v in extra.values()):
                    yield prompt(pid, lang, name=name, **extra)


# ------------------------------------------------------------------------------------------------ CLI


def register_cli(sub: Any) -> None:
    """Add ``fourteen prompts build`` to the ``fourteen`` command (see ``cli._EXTENSIONS``)."""
    pr = sub.add_parser("prompts", help="prompt audio (synthesised on demand by the router; pre-build here)")
    psub = pr.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    b = psub.add_parser(
        "build",
        help="pre-build prompt audio: the static prompts, optionally every per-municipality prompt",
        description="Unchanged prompts are skipped. Per-municipality prompts are normally synthesised by "
        "the router when first needed; --municipalities makes them all now (thousands of files).",
    )
    b.add_argument("--out", type=Path, help="default: $FOURTEEN_DATA_DIR/sounds/fourteen")
    b.add_argument("--municipalities", action="store_true", help="also every per-municipality prompt")
    b.add_argument(
        "--lang",
        action="append",
        help=f"language(s), repeatable or comma-separated (default: all: {','.join(LANGUAGES)})",
    )
    b.add_argument("--rate", type=int, default=8000, choices=sorted(_EXTENSIONS))
    b.add_argument("--concurrency", type=int, default=max(2, os.cpu_count() or 2))
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(handler=_cmd_build)


async def _load_plan(settings: Any) -> Any:
    """The configured number plan, or the seed data when the database is empty or unreachable (as the
    router does), so a build works on a fresh machine."""
    from . import store
    from .numberplan import NumberPlan, default_data_dir

    url: str = settings.effective_database_url
    if url.startswith("sqlite") and not await asyncio.to_thread(Path(url.split("///", 1)[-1]).is_file):
        return NumberPlan.from_csv(default_data_dir())  # no embedded database yet: do not create one here
    engine = store.make_engine(url)
    try:
        if await store.current_revision(engine) > 0:
            return await store.load_plan(engine)
    except Exception as exc:
        print(f"fourteen: database unavailable ({type(exc).__name__}); using the seed data", file=sys.stderr)
    finally:
        await engine.dispose()
    return NumberPlan.from_csv(default_data_dir())


async def _cmd_build(args: argparse.Namespace, settings: Any) -> int:
    langs = [x.strip() for item in (args.lang or [",".join(LANGUAGES)]) for x in item.split(",") if x.strip()]
    unknown = sorted(set(langs) - set(LANGUAGES))
    if unknown:
        print(
            f"fourteen: unknown language {', '.join(unknown)} (one of {', '.join(LANGUAGES)})",
            file=sys.stderr,
        )
        return 2
    # the router's directory (Settings.sounds_dir honours FOURTEEN_SOUNDS_DIR where that exists)
    out: Path = args.out or getattr(settings, "sounds_dir", None) or settings.data_dir / "sounds" / "fourteen"
    items = list(static_prompts(langs))
    if args.municipalities:
        items += plan_prompts(await _load_plan(settings), langs)
    step = max(1, len(items) // 20)

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done % step == 0 or done == total):
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    library = PromptLibrary(out, rate=args.rate)
    try:
        result = await library.prebuild(items, args.concurrency, progress=progress)
    except PromptUnavailable as exc:
        print(f"fourteen: {exc.reason}", file=sys.stderr)
        return 3 if exc.name == "(all)" else 1
    print(
        f"{out}: {result.total} prompts, {result.generated} generated, {result.skipped} unchanged, "
        f"{result.seconds:.1f} s"
    )
    return 0
