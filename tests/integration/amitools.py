# ruff: noqa: ASYNC109  (a per-call ``timeout`` argument is this helper's API, as in asyncio.wait_for)
"""A small asyncio AMI client for integration tests.

Why not panoramisk's Manager: tests need one thing it does not give directly — "wait until an event matching
this predicate arrives, including one that arrived just *before* I started waiting". Events are recorded in
order, so a test originates a call with a unique ``ChannelId`` and then waits for the event carrying that
``Linkedid``, with no race between sending the action and listening.

    async with await AmiClient.connect(port=5038, username="fourteen", secret="fourteen") as ami:
        await ami.action("Originate", Channel="Local/GM0703@kcc", Context="fourteen-caller",
                         Exten="silent", Priority="1", Async="true", ChannelId=call_id)
        event = await ami.wait_event(user_event("KCCReached", linkedid=call_id), timeout=10)
        assert event["Municipality"] == "GM0703"
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Self

Predicate = Callable[["Message"], bool]


class AmiError(Exception):
    """AMI answered ``Response: Error`` or the connection failed."""


class Message:
    """One AMI message: ordered ``Key: value`` fields; a key may repeat (``Output``, ``ChanVariable``)."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields

    @classmethod
    def parse(cls, raw: str) -> Message:
        fields = []
        for line in raw.split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                fields.append((key.strip(), value.strip()))
            elif line:
                fields.append(("Output", line))  # Command responses may carry bare lines
        return cls(fields)

    def get(self, key: str, default: str | None = None) -> str | None:
        """First value of ``key`` (case-insensitive), like a dict."""
        lowered = key.lower()
        return next((v for k, v in self.fields if k.lower() == lowered), default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def getall(self, key: str) -> list[str]:
        lowered = key.lower()
        return [v for k, v in self.fields if k.lower() == lowered]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    def __repr__(self) -> str:
        return f"Message({dict(self.fields)!r})"


def event_named(name: str, **match: str) -> Predicate:
    """Predicate: ``Event: name`` and every given field equal (field names case-insensitive)."""
    return lambda m: m.event == name and all(m.get(k) == v for k, v in match.items())


def user_event(name: str, *, linkedid: str | None = None, **match: str) -> Predicate:
    """Predicate for ``UserEvent(name, ...)`` from the dialplan, optionally of one call (``Linkedid``)."""
    if linkedid is not None:
        match["Linkedid"] = linkedid
    return event_named("UserEvent", UserEvent=name, **match)


class AmiClient:
    """Connect, log in, send actions, and wait for events. Use as an async context manager."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, history: int = 20000):
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, list[Message]] = {}
        self.events: deque[Message] = deque(maxlen=history)
        self._dropped = 0  # events pushed out of the bounded history, so indexes stay absolute
        self._changed = asyncio.Condition()
        self._closed: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self.banner = ""

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "fourteen",
        secret: str = "fourteen",
        *,
        timeout: float = 5.0,
    ) -> Self:
        """Open the TCP connection, read the banner and log in (with all events on)."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=2**22), timeout)
            banner = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"cannot reach AMI at {host}:{port}: {exc!r}") from exc
        client = cls(reader, writer)
        client.banner = banner.decode(errors="replace").strip()
        client._task = asyncio.create_task(client._read_loop(), name="ami-reader")
        try:
            await client.action("Login", Username=username, Secret=secret, Events="on", timeout=timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None and not self._writer.is_closing():
            with contextlib.suppress(AmiError, TimeoutError):
                await self.action("Logoff", timeout=1.0)
        self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    # ---- actions

    def _send(self, name: str, fields: dict[str, object]) -> str:
        if self._closed is not None:
            raise AmiError(f"AMI connection closed: {self._closed!r}")
        action_id = str(fields.pop("ActionID", None) or f"t{next(self._ids)}")
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            values = value if isinstance(value, list | tuple) else [value]
            lines.extend(f"{key}: {v}" for v in values)  # a list repeats the key (Variable: a=1, ...)
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    async def action(
        self, name: str, *, timeout: float = 10.0, check: bool = True, **fields: object
    ) -> Message:
        """Send an action, return the response; ``Response: Error`` raises :class:`AmiError` if ``check``."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        action_id = self._send(name, fields)
        self._pending[action_id] = future
        try:
            response = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(action_id, None)
        if check and (response.get("Response") or "").lower() == "error":
            raise AmiError(f"{name} failed: {response.get('Message')}")
        return response

    async def action_list(self, name: str, *, timeout: float = 10.0, **fields: object) -> list[Message]:
        """Send an action answered by an event list (``EventList: start`` … ``Complete``): its events."""
        action_id = str(fields.pop("ActionID", None) or f"t{next(self._ids)}")
        self._lists[action_id] = []
        try:
            await self.action(name, ActionID=action_id, timeout=timeout, **fields)
            done = await self.wait_event(
                lambda m: m.get("ActionID") == action_id and m.get("EventList") == "Complete", timeout=timeout
            )
            return [m for m in self._lists[action_id] if m is not done]
        finally:
            self._lists.pop(action_id, None)

    async def originate(self, channel: str, *, timeout: float = 10.0, **fields: object) -> str:
        """Async Originate with a fresh ``ChannelId``; returns it (the ``Linkedid`` of the whole call)."""
        call_id = str(fields.pop("ChannelId", None) or f"fourteen-test-{uuid.uuid4().hex[:12]}")
        await self.action(
            "Originate", Channel=channel, Async="true", ChannelId=call_id, timeout=timeout, **fields
        )
        return call_id

    # ---- events

    def mark(self) -> int:
        """Index of the next event to arrive: pass as ``since`` to ignore everything earlier."""
        return self._dropped + len(self.events)

    def _since(self, since: int) -> Iterator[tuple[int, Message]]:
        start = max(since - self._dropped, 0)
        for offset, message in enumerate(itertools.islice(self.events, start, None)):
            yield self._dropped + start + offset, message

    async def wait_event(self, predicate: Predicate, timeout: float = 10.0, since: int = 0) -> Message:
        """The first event (at or after index ``since``, default: all recorded) matching ``predicate``.

        Raises ``TimeoutError`` with the recent events in the message, to make failures readable.
        """
        position = since

        def find() -> Message | None:
            nonlocal position
            for index, message in self._since(position):
                position = index + 1
                if predicate(message):
                    return message
            return None

        async def wait() -> Message:
            async with self._changed:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self._closed is not None:
                        raise AmiError(f"AMI connection closed: {self._closed!r}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            recent = "\n".join(repr(m) for m in list(self.events)[-15:])
            raise TimeoutError(f"no matching AMI event within {timeout}s; last events:\n{recent}") from None

    async def wait_events(
        self, predicate: Predicate, count: int, timeout: float = 10.0, since: int = 0
    ) -> list[Message]:
        """``count`` matching events, in order of arrival."""
        found: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        position = since
        while len(found) < count:
            remaining = max(deadline - loop.time(), 0.0)
            message = await self.wait_event(predicate, timeout=remaining, since=position)
            found.append(message)
            position = next(i for i, m in self._since(position) if m is message) + 1
        return found

    def call_events(self, linkedid: str) -> list[Message]:
        """Everything recorded so far about one call."""
        return [m for m in self.events if m.get("Linkedid") == linkedid]

    # ---- reading

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._reader.readuntil(b"\r\n\r\n")
                self._dispatch(Message.parse(raw.decode(errors="replace")))
                async with self._changed:
                    self._changed.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError) as exc:
            self._closed = exc
        finally:
            if self._closed is None:
                self._closed = ConnectionError("reader stopped")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(AmiError(f"AMI connection closed: {self._closed!r}"))
            async with self._changed:
                self._changed.notify_all()

    def _dispatch(self, message: Message) -> None:
        action_id = message.get("ActionID")
        if "Response" in message and message.event is None:
            future = self._pending.get(action_id or "")
            if future is not None and not future.done():
                future.set_result(message)
            return
        if action_id in self._lists:
            self._lists[action_id].append(message)
        if len(self.events) == self.events.maxlen:
            self._dropped += 1
        self.events.append(message)
