# ruff: noqa: ASYNC109  (the listen timeout is part of the interface: the recogniser owns the waiting)
"""What the call flow needs from speech recognition, and the stand-in when there is none.

The flow asks a :class:`Recognizer` to play a prompt and listen (speech or a key, barge-in allowed) and
gets back a :class:`Heard`. The Vosk implementation streams the caller's audio (speech issue); until a
model is configured, :class:`NoRecognizer` says it is unavailable and the flow uses the DTMF menu. No
transcript is ever made up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .agi import AgiSession


@dataclass(frozen=True, slots=True)
class Heard:
    transcript: str = ""
    alternatives: tuple[str, ...] = ()  # n-best, best first (the transcript is the first)
    dtmf: str | None = None  # a key pressed instead of speaking
    reason: str = "speech"  # speech | dtmf | silence | error | unavailable
    seconds_to_decision: float = 0.0  # end of speech → result
    barge_in: bool = False  # the caller spoke (or pressed) before the prompt ended
    decode_seconds: float = 0.0  # recogniser time spent on this utterance


class Recognizer(Protocol):
    available: bool
    reason: str

    async def listen(
        self,
        session: AgiSession,
        prompt: str,
        *,
        area_code: str,
        lang: str,
        escape_digits: str,
        timeout: float,
    ) -> Heard: ...


class NoRecognizer:
    """No speech recognition configured: speech-mode area codes fall back to the menu."""

    available = False

    def __init__(self, reason: str = "no Vosk model configured (FOURTEEN_VOSK_MODEL)") -> None:
        self.reason = reason

    async def listen(
        self,
        session: AgiSession,
        prompt: str,
        *,
        area_code: str,
        lang: str,
        escape_digits: str,
        timeout: float,
    ) -> Heard:
        return Heard(reason="unavailable")
