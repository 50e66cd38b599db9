# ruff: noqa: ASYNC109  (the listen timeout is part of the Recognizer interface)
"""Listening to the caller: their voice streamed to Vosk while the prompt plays, keys accepted too.

Streaming (the normal path): the AGI flow runs ``EXEC Stasis <app>,<token>``; here a snoop channel on what
the caller sends is bridged with an externalMedia channel (chan_websocket, slin16 both ways), the prompt
plays on the caller's channel (and does not leak into what is streamed), and every 20 ms frame goes to the
call's Vosk stream. The
caller may speak during the prompt (an energy detector or a first partial result stops it: barge-in) or
press a key (ARI ``ChannelDtmfReceived``). Vosk's endpointing ends the utterance; the channel is then
``continue``d and the AGI session carries on with the result.

Recording (the fallback, when ARI is not connected): the prompt plays with keys as escape, ``RECORD FILE``
stops on silence, and the file is decoded. The log says so every time.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from .agi import AgiError, AgiSession, Hangup
from .ari import AriClient, AriError
from .logs import event
from .recognizer import Heard

log = logging.getLogger(__name__)

FRAME_BYTES = 640  # 20 ms of slin16
SPEECH_RMS = 500.0  # energy of a frame that counts as voice (s16 samples)
SPEECH_FRAMES = 5  # consecutive voiced frames (100 ms) that stop the prompt
MAX_UTTERANCE = 10.0  # seconds of speech before we stop listening anyway
END_SILENCE = 0.45  # seconds of quiet after speech that end it (Vosk's own endpoint comes later)
STASIS_WAIT = 3.0
RECORD_SILENCE = 2  # seconds of silence that end a recording (the record-then-decode fallback)


def frame_rms(pcm: bytes) -> float:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class StreamingRecognizer:
    """The Recognizer the call flow uses when a Vosk model is configured."""

    def __init__(
        self,
        engine: Any,
        ari: AriClient | None,
        recordings_dir: Path,
        asterisk_recordings_dir: str | None = None,
        on_reject: Any = None,
    ) -> None:
        self.engine = engine
        self.on_reject = on_reject
        self.ari = ari
        self.recordings_dir = recordings_dir
        self.asterisk_recordings_dir = asterisk_recordings_dir or str(recordings_dir)
        self.streamed = 0
        self.recorded = 0
        self.rejected = 0

    @property
    def available(self) -> bool:
        return bool(self.engine.available)

    @property
    def reason(self) -> str:
        return str(getattr(self.engine, "reason", "")) if not self.engine.available else ""

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
        stream = self.engine.open_stream(area_code, lang)
        if stream is None:
            self.rejected += 1
            if self.on_reject is not None:
                self.on_reject()
            event(log, "speech_pool_full", logging.WARNING, reason="no free recogniser")
            return Heard(reason="unavailable")
        try:
            if self.ari is not None and self.ari.connected:
                try:
                    self.streamed += 1
                    return await self._stream(session, stream, prompt, escape_digits, timeout)
                except AriError as exc:
                    event(log, "streaming_failed", logging.WARNING, error=str(exc)[:200])
                    return Heard(reason="error")
            self.recorded += 1
            event(log, "streaming_unavailable", logging.WARNING, fallback="record then decode")
            return await self._record(session, stream, prompt, escape_digits, timeout, area_code)
        finally:
            with contextlib.suppress(Exception):
                await stream.close()

    # -- streaming through ARI ---------------------------------------------------------------------
    async def _stream(
        self, session: AgiSession, stream: Any, prompt: str, escape: str, timeout: float
    ) -> Heard:
        ari = self.ari
        assert ari is not None
        token = uuid.uuid4().hex[:16]
        t0 = time.monotonic()
        started = ari.expect(token)
        stasis = asyncio.create_task(session.exec("Stasis", f"{ari.app},{token}", timeout=None))
        try:
            start = await asyncio.wait_for(asyncio.shield(started), STASIS_WAIT)
        except TimeoutError:
            started.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stasis, 1.0)  # a failed Stasis returns at once
            raise AriError("the channel did not enter Stasis") from None
        chan = start["channel"]["id"]
        em_id, pb_id, br_id, sn_id = f"{token}-em", f"{token}-pb", f"{token}-br", f"{token}-sn"
        events = ari.subscribe(chan, pb_id)
        mws: aiohttp.ClientWebSocketResponse | None = None
        ready = [ari.expect(sn_id), ari.expect(em_id)]  # a channel joins a bridge only once in Stasis
        try:
            # The caller's own audio, whatever plays to them: a snoop channel on what they send (a prompt
            # played on a bridged channel would stop its audio reaching the bridge until it ends).
            await ari.request("POST", f"/channels/{chan}/snoop", app=ari.app, spy="in", snoopId=sn_id)
            em_id, conn = await ari.external_media(em_id)
            mws = await ari.media_socket(conn)  # the externalMedia channel enters Stasis once connected
            try:
                await asyncio.wait_for(asyncio.gather(*ready), STASIS_WAIT)
            except TimeoutError:
                raise AriError("snoop or externalMedia channel did not enter Stasis") from None
            await ari.request("POST", "/bridges", type="mixing", bridgeId=br_id)
            await ari.request("POST", f"/bridges/{br_id}/addChannel", channel=f"{sn_id},{em_id}")
            await ari.request("POST", f"/channels/{chan}/play", media=f"sound:{prompt}", playbackId=pb_id)
            event(log, "streaming", setup_seconds=round(time.monotonic() - t0, 3))
            return await self._listen_loop(stream, mws, events, pb_id, escape, timeout)
        finally:
            for fut in ready:
                fut.cancel()
            ari.unsubscribe(events)
            if mws is not None:
                with contextlib.suppress(Exception):
                    await mws.close()
            await ari.quietly("DELETE", f"/playbacks/{pb_id}")
            await ari.quietly("DELETE", f"/channels/{em_id}")
            await ari.quietly("DELETE", f"/channels/{sn_id}")
            await ari.quietly("DELETE", f"/bridges/{br_id}")
            await ari.quietly("POST", f"/channels/{chan}/continue")
            with contextlib.suppress(TimeoutError, AgiError):
                await asyncio.wait_for(stasis, 5.0)

    async def _listen_loop(
        self,
        stream: Any,
        mws: aiohttp.ClientWebSocketResponse,
        events: asyncio.Queue[dict[str, Any]],
        pb_id: str,
        escape: str,
        timeout: float,
    ) -> Heard:
        ari = self.ari
        assert ari is not None
        playing = True
        prompt_done_at: float | None = None
        speech_at: float | None = None
        voiced = 0
        hung_up = False
        dtmf: str | None = None
        endpoint_at: float | None = None
        last_voice_at: float | None = None
        deadline_speech = time.monotonic() + 60.0  # the prompt itself may take a while

        barged_in = False

        async def stop_prompt() -> None:
            nonlocal playing, barged_in
            if playing:
                playing = False
                barged_in = prompt_done_at is None
                await ari.quietly("DELETE", f"/playbacks/{pb_id}")

        frames = 0
        loudest = 0.0

        async def media() -> None:
            nonlocal voiced, speech_at, endpoint_at, last_voice_at, frames, loudest
            async for msg in mws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                now = time.monotonic()
                frames += 1
                rms = frame_rms(msg.data)
                loudest = max(loudest, rms)
                if rms >= SPEECH_RMS:
                    voiced += 1
                    last_voice_at = now
                    if voiced >= SPEECH_FRAMES and speech_at is None:
                        speech_at = now - SPEECH_FRAMES * 0.02
                        await stop_prompt()  # barge-in
                else:
                    voiced = 0
                update = await stream.feed(msg.data)
                if update.speech_started and speech_at is None:
                    speech_at = now
                    await stop_prompt()
                if update.endpoint and speech_at is not None:
                    endpoint_at = now
                    return
                if speech_at is not None and last_voice_at is not None and now - last_voice_at >= END_SILENCE:
                    endpoint_at = now  # quiet long enough: decide now rather than wait for Vosk's endpoint
                    return
                if speech_at is not None and now - speech_at > MAX_UTTERANCE:
                    endpoint_at = now
                    return

        async def control() -> None:
            nonlocal playing, prompt_done_at, hung_up, dtmf
            while True:
                ev = await events.get()
                kind = ev.get("type")
                if kind == "ChannelDtmfReceived" and ev.get("digit") in escape:
                    dtmf = ev["digit"]
                    await stop_prompt()
                    return
                if kind in {"PlaybackFinished", "PlaybackFailed"}:  # ids are ours: the prompt's playback
                    playing = False
                    prompt_done_at = time.monotonic()
                if kind in {"StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"}:
                    hung_up = True
                    return

        async def silence_watch() -> None:
            while True:
                await asyncio.sleep(0.1)
                now = time.monotonic()
                if speech_at is None and prompt_done_at is not None and now - prompt_done_at > timeout:
                    return
                if speech_at is None and now > deadline_speech:
                    return

        tasks = {asyncio.create_task(c) for c in (media(), control(), silence_watch())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t.exception() is not None:
                    raise AriError(f"listening failed: {t.exception()!r}")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        event(
            log,
            "listened",
            frames=frames,
            loudest=round(loudest),
            speech=speech_at is not None,
            dtmf=dtmf,
            hung_up=hung_up,
        )
        if hung_up:
            await stop_prompt()
            raise Hangup("caller hung up while listening")
        if dtmf is not None:
            return Heard(dtmf=dtmf, reason="dtmf", barge_in=prompt_done_at is None)
        if speech_at is None:
            return Heard(reason="silence")
        decoded = await stream.finish()
        end_of_speech = last_voice_at or endpoint_at or time.monotonic()
        heard = Heard(
            transcript=decoded.transcript,
            alternatives=tuple(decoded.alternatives),
            reason="speech" if decoded.transcript else "silence",
            seconds_to_decision=round(time.monotonic() - end_of_speech, 3),
            barge_in=barged_in,
            decode_seconds=float(getattr(decoded, "decode_seconds", 0.0)),
        )
        event(
            log,
            "recognised",
            transcript=decoded.transcript,
            alternatives=list(decoded.alternatives)[:3],
            decode_seconds=round(getattr(decoded, "decode_seconds", 0.0), 3),
            end_of_speech_to_result=heard.seconds_to_decision,
            barge_in=barged_in,
        )
        return heard

    # -- recording fallback ------------------------------------------------------------------------
    async def _record(
        self, session: AgiSession, stream: Any, prompt: str, escape: str, timeout: float, area_code: str
    ) -> Heard:
        digit = await session.stream_file(prompt, escape)
        if digit:
            return Heard(dtmf=digit, reason="dtmf")
        name = f"rec-{uuid.uuid4().hex[:16]}"
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        inside = f"{self.asterisk_recordings_dir.rstrip('/')}/{name}"
        # RECORD FILE stops after RECORD_SILENCE s of silence — also before any speech, so the caller has
        # that long to start; the offset argument must precede it (res_agi reads them by position).
        r = await session.command(
            "RECORD FILE",
            inside,
            "wav",
            escape,
            int(timeout * 1000),
            "0",
            f"s={RECORD_SILENCE}",
            timeout=timeout + 20,
        )
        if r.result < 0:
            raise Hangup("RECORD FILE failed (channel gone)")
        if r.result > 0 and chr(r.result) in escape:
            return Heard(dtmf=chr(r.result), reason="dtmf")
        path = self.recordings_dir / f"{name}.wav"
        try:
            decoded = await self.engine.decode_file(path, area_code)
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        return Heard(
            transcript=decoded.transcript,
            alternatives=tuple(decoded.alternatives),
            reason="speech" if decoded.transcript else "silence",
        )
