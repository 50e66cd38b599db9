"""A small ARI client: REST calls, the Stasis event stream, and chan_websocket media connections.

The router uses ARI only where streaming helps: a call in the FastAGI flow enters ``Stasis`` for one
listening step, the router bridges it with an externalMedia channel (chan_websocket, slin16, both
directions), and ``continue``s it afterwards — the AGI session then carries on. The event stream
reconnects by itself; while it is down ``connected`` is False and the flow records instead of streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

import aiohttp

from .logs import event

log = logging.getLogger(__name__)

REST_TIMEOUT = 3.0


class AriError(Exception):
    pass


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, app: str = "fourteen") -> None:
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self.app = app
        self.connected = False
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._ready = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, wait: float = 2.0) -> None:
        """Connect the event stream in the background; wait up to ``wait`` s for the first connection."""
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=None))
        self._task = asyncio.create_task(self._events_forever(), name="ari-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._session is not None:
            await self._session.close()
        self.connected = False

    async def _events_forever(self) -> None:
        assert self._session is not None
        url = self.base.replace("http", "ws", 1) + f"/events?app={self.app}&subscribeAll=false"
        delay = 0.5
        while True:
            try:
                async with self._session.ws_connect(url, heartbeat=20) as ws:
                    self.connected = True
                    self._ready.set()
                    delay = 0.5
                    event(log, "ari_connected", app=self.app)
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self._dispatch(json.loads(msg.data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected or delay == 0.5:
                    event(log, "ari_unavailable", logging.WARNING, error=repr(exc)[:200])
            self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _dispatch(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        chan = (ev.get("channel") or {}).get("id", "")
        if kind == "StasisStart":
            for arg in ev.get("args") or [chan]:
                fut = self._waiting.pop(arg, None)
                if fut is not None and not fut.done():
                    fut.set_result(ev)
        ids = {chan, (ev.get("playback") or {}).get("id", ""), (ev.get("bridge") or {}).get("id", "")}
        for key in ids - {""}:
            for q in list(self._subscribers.get(key, ())):
                if q.qsize() < 1000:
                    q.put_nowait(ev)

    # -- waiting for channels and events -----------------------------------------------------------
    def expect(self, token: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the StasisStart whose first argument (or channel id) is ``token``."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        fut.add_done_callback(lambda _f: self._waiting.pop(token, None))
        return fut

    def subscribe(self, *ids: str) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for i in ids:
            self._subscribers[i].add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        for key in [k for k, qs in self._subscribers.items() if q in qs]:
            self._subscribers[key].discard(q)
            if not self._subscribers[key]:
                del self._subscribers[key]

    # -- REST --------------------------------------------------------------------------------------
    async def request(self, method: str, path: str, **params: str) -> Any:
        if self._session is None:
            raise AriError("ARI client not started")
        try:
            async with self._session.request(
                method, self.base + path, params=params, timeout=aiohttp.ClientTimeout(total=REST_TIMEOUT)
            ) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise AriError(f"{method} {path}: {resp.status} {text[:200]}")
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AriError(f"{method} {path}: {exc!r}") from exc

    async def external_media(self, channel_id: str, fmt: str = "slin16") -> tuple[str, str]:
        """An externalMedia channel over chan_websocket that we connect to; returns (id, connection id)."""
        ch = await self.request(
            "POST",
            "/channels/externalMedia",
            app=self.app,
            channelId=channel_id,
            external_host="INCOMING",
            transport="websocket",
            encapsulation="none",
            connection_type="server",
            format=fmt,
            direction="both",
        )
        conn = (ch.get("channelvars") or {}).get("MEDIA_WEBSOCKET_CONNECTION_ID", "")
        if not conn:
            raise AriError("externalMedia returned no MEDIA_WEBSOCKET_CONNECTION_ID")
        return ch["id"], conn

    async def media_socket(self, connection_id: str) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        url = self.base.replace("http", "ws", 1).removesuffix("/ari") + f"/media/{connection_id}"
        return await self._session.ws_connect(url, protocols=("media",))

    async def quietly(self, method: str, path: str, **params: str) -> None:
        """Clean-up calls: the thing may already be gone (caller hung up), which is fine."""
        with contextlib.suppress(AriError):
            await self.request(method, path, **params)
