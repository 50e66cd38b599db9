# ruff: noqa: ASYNC109  (a per-call ``timeout`` argument is this module's API, as in asyncio.wait_for)
"""A small asyncio client for the Asterisk Manager Interface (AMI).

Why not panoramisk's Manager: what the test caller and the router need is "wait until an event matching this
predicate arrives, including one that arrived just *before* I started waiting". Events are recorded in
order, so a caller originates a call with a unique ``ChannelId`` and then waits for the event carrying that
``Linkedid``, with no race between sending the action and listening. A long-running process uses
:meth:`AmiClient.subscribe` instead, which hands over only the events it asked for.

Everything is bounded: the event history keeps the last ``history`` events (10,000 by default), a
subscription the last ``maxsize`` unread ones, one message at most :data:`MAX_MESSAGE` bytes. Failures are
:class:`AmiError` with a message that says what to check; there is no reconnect (callers reconnect).

    async with await AmiClient.connect(port=5038, username="fourteen", secret="fourteen") as ami:
        call = await ami.originate("Local/GM0703@kcc", Context="fourteen-caller", Exten="silent",
                                   Priority="1")
        event = await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=10)
        assert event["Municipality"] == "GM0703"
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Self

__all__ = [
    "DEFAULT_HISTORY",
    "MAX_MESSAGE",
    "AmiClient",
    "AmiError",
    "AmiTimeout",
    "Message",
    "Predicate",
    "Subscription",
    "event_named",
    "linked_to",
    "user_event",
]

DEFAULT_HISTORY = 10_000  # events kept for wait_event(); older ones are dropped
MAX_MESSAGE = 4 * 1024 * 1024  # bytes in one AMI message (``Command`` output can be long)

Predicate = Callable[["Message"], bool]


class AmiError(Exception):
    """AMI answered ``Response: Error``, could not be reached, or the connection was lost."""


class AmiTimeout(AmiError, TimeoutError):
    """No response or no matching event in time (also a ``TimeoutError``, as asyncio.wait_for raises)."""


class Message:
    """One AMI message: ordered ``Key: value`` fields; a key may repeat (``Output``, ``ChanVariable``)."""

    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields

    @classmethod
    def parse(cls, raw: str) -> Message:
        fields = []
        for line in raw.split("\r\n"):
            key, sep, value = line.partition(":")
            if sep and key and " " not in key.strip():
                fields.append((key.strip(), value.strip()))
            elif line:
                fields.append(("Output", line))  # Command responses may carry bare lines
        return cls(fields)

    @classmethod
    def of(cls, **fields: str) -> Message:
        """Build a message from keyword fields (tests, synthetic events)."""
        return cls(list(fields.items()))

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

    def as_dict(self) -> dict[str, str]:
        """Fields as a dict (JSON-ready); repeated keys are joined with newlines."""
        out: dict[str, str] = {}
        for key, value in self.fields:
            out[key] = f"{out[key]}\n{value}" if key in out else value
        return out

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


def linked_to(linkedid: str) -> Predicate:
    """Predicate: any event of one call (every channel of it carries the originate's ``ChannelId``)."""
    return lambda m: m.get("Linkedid") == linkedid


class Subscription:
    """The events matching one predicate from the moment of subscribing, in order; bounded.

    When the reader is faster than the consumer the oldest unread events are dropped (``dropped`` counts
    them), so a stalled consumer cannot make a long-running process grow without bound.
    """

    def __init__(self, client: AmiClient, predicate: Predicate, maxsize: int) -> None:
        self._client = client
        self.predicate = predicate
        self._queue: deque[Message] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.dropped = 0

    def _offer(self, message: Message) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(message)
        self._ready.set()

    def _wake(self) -> None:
        self._ready.set()

    def pending(self) -> int:
        return len(self._queue)

    async def get(self, timeout: float | None = None) -> Message:
        """The next event; :class:`AmiTimeout` after ``timeout`` s, :class:`AmiError` once disconnected."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._queue:
            if self._client.closed_reason is not None:
                raise AmiError(f"AMI connection closed: {self._client.closed_reason!r}")
            self._ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise AmiTimeout(f"no matching AMI event within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), remaining)
        return self._queue.popleft()

    def close(self) -> None:
        self._client._subscriptions.discard(self)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.get()
        except AmiError:
            raise StopAsyncIteration from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AmiClient:
    """Connect, log in, send actions, and wait for events. Use as an async context manager."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, history: int = DEFAULT_HISTORY
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, list[Message]] = {}
        self._subscriptions: set[Subscription] = set()
        self.events: deque[Message] = deque(maxlen=history)
        self._dropped = 0  # events pushed out of the bounded history, so indexes stay absolute
        self._changed = asyncio.Condition()
        self.closed_reason: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self.banner = ""
        self.address = ""

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "fourteen",
        secret: str = "fourteen",
        *,
        timeout: float = 5.0,
        events: str = "on",
        history: int = DEFAULT_HISTORY,
    ) -> Self:
        """Open the TCP connection, read the banner and log in (``events``: AMI's Events filter)."""
        address = f"{host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_MESSAGE), timeout
            )
        except TimeoutError as exc:
            raise AmiTimeout(f"AMI at {address} did not accept a connection within {timeout} s") from exc
        except OSError as exc:
            reason = exc.strerror or exc
            raise AmiError(f"cannot reach AMI at {address} ({reason}): is Asterisk running?") from exc
        try:
            banner = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, TimeoutError) as exc:
            writer.close()
            raise AmiError(f"{address} sent no AMI banner within {timeout} s: is it Asterisk's AMI?") from exc
        client = cls(reader, writer, history)
        client.address = address
        client.banner = banner.decode(errors="replace").strip()
        if not client.banner.startswith("Asterisk Call Manager"):
            writer.close()
            raise AmiError(f"{address} is not Asterisk's AMI (banner {client.banner[:60]!r})")
        client._task = asyncio.create_task(client._read_loop(), name=f"ami-reader-{address}")
        try:
            response = await client.action(
                "Login", Username=username, Secret=secret, Events=events, timeout=timeout, check=False
            )
            if (response.get("Response") or "").lower() != "success":
                raise AmiError(
                    f"AMI login as {username!r} at {address} failed: {response.get('Message') or response}"
                )
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._task is not None and self.closed_reason is None

    async def close(self) -> None:
        """Log off (briefly) and close; safe to call twice."""
        if self.connected and not self._writer.is_closing():
            with contextlib.suppress(AmiError, OSError):
                await self.action("Logoff", timeout=1.0)
        self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    # ---- actions

    def _send(self, name: str, fields: dict[str, object]) -> str:
        if self.closed_reason is not None:
            raise AmiError(f"AMI connection to {self.address} closed: {self.closed_reason!r}")
        action_id = str(fields.pop("ActionID", None) or f"f{next(self._ids)}")
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:  # a list repeats the key (Variable: a=1, Variable: b=2)
                text = str(v)
                if "\r" in text or "\n" in text:
                    raise AmiError(f"{name}: field {key} must not contain a line break")
                lines.append(f"{key}: {text}")
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
        except TimeoutError:
            raise AmiTimeout(f"AMI action {name} got no response within {timeout} s") from None
        finally:
            self._pending.pop(action_id, None)
        if check and (response.get("Response") or "").lower() == "error":
            raise AmiError(f"AMI action {name} failed: {response.get('Message') or 'no reason given'}")
        return response

    async def only_events(self, names: Iterable[str], *, timeout: float = 5.0) -> bool:
        """Ask Asterisk to send this session only the events named (AMI ``Filter``), so a busy PBX's other
        events cost neither side anything. Needs the ``system`` write permission; Asterisk 21+ matches by
        name (``MatchCriteria: name(…)``), older ones by a regular expression on the event. False when
        Asterisk refused: then every event of the login's classes keeps coming, which is merely slower."""
        wanted = sorted(set(names))
        if not wanted:
            return True
        try:
            for name in wanted:
                r = await self.action(
                    "Filter", Operation="Add", MatchCriteria=f"name({name})", timeout=timeout, check=False
                )
                if (r.get("Response") or "").lower() != "success":
                    break
            else:
                return True
            legacy = "Event: (" + "|".join(wanted) + ")[[:space:]]"
            r = await self.action("Filter", Operation="Add", Filter=legacy, timeout=timeout, check=False)
            return (r.get("Response") or "").lower() == "success"
        except AmiError:
            return False

    async def action_list(self, name: str, *, timeout: float = 10.0, **fields: object) -> list[Message]:
        """Send an action answered by an event list (``EventList: start`` … ``Complete``): its events."""
        action_id = str(fields.pop("ActionID", None) or f"f{next(self._ids)}")
        self._lists[action_id] = []
        try:
            since = self.mark()
            await self.action(name, ActionID=action_id, timeout=timeout, **fields)
            done = await self.wait_event(
                lambda m: m.get("ActionID") == action_id and m.get("EventList") == "Complete",
                timeout=timeout,
                since=since,
            )
            return [m for m in self._lists[action_id] if m is not done]
        finally:
            self._lists.pop(action_id, None)

    async def originate(self, channel: str, *, timeout: float = 10.0, **fields: object) -> str:
        """Async Originate with a fresh ``ChannelId`` (or the one given); returns it: the call's Linkedid.

        Pass several variables as a list (``Variable=["A=1", "B=2"]``): Asterisk splits one ``Variable``
        value on commas, so a value containing a comma would be cut silently.
        """
        call_id = str(fields.pop("ChannelId", None) or f"fourteen-{uuid.uuid4().hex[:12]}")
        await self.action(
            "Originate", Channel=channel, Async="true", ChannelId=call_id, timeout=timeout, **fields
        )
        return call_id

    async def getvar(self, name: str, channel: str | None = None) -> str:
        """A channel variable, or a dialplan global when ``channel`` is None ('' when unset)."""
        fields: dict[str, object] = {"Variable": name}
        if channel:
            fields["Channel"] = channel
        return (await self.action("Getvar", **fields)).get("Value") or ""

    async def setvar(self, name: str, value: str, channel: str | None = None) -> None:
        """Set a channel variable, or a dialplan global (commas are kept, unlike Originate's Variable)."""
        fields: dict[str, object] = {"Variable": name, "Value": value}
        if channel:
            fields["Channel"] = channel
        await self.action("Setvar", **fields)

    async def hangup(self, channel: str, cause: int = 16) -> bool:
        """Hang a channel up; False when it no longer exists."""
        response = await self.action("Hangup", Channel=channel, Cause=cause, check=False)
        return (response.get("Response") or "").lower() == "success"

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

        Raises :class:`AmiTimeout` (a ``TimeoutError``) with the recent events in the message, to make
        failures readable; :class:`AmiError` when the connection is lost while waiting.
        """
        return (await self.wait_event_at(predicate, timeout=timeout, since=since))[1]

    async def wait_event_at(
        self, predicate: Predicate, timeout: float = 10.0, since: int = 0
    ) -> tuple[int, Message]:
        """Like :meth:`wait_event`, also returning the event's index (continue with ``since=index + 1``)."""
        position = since

        def find() -> tuple[int, Message] | None:
            nonlocal position
            for index, message in self._since(position):
                position = index + 1
                if predicate(message):
                    return index, message
            return None

        async def wait() -> tuple[int, Message]:
            async with self._changed:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self.closed_reason is not None:
                        raise AmiError(f"AMI connection to {self.address} closed: {self.closed_reason!r}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            recent = "\n".join(repr(m) for m in list(self.events)[-15:])
            raise AmiTimeout(f"no matching AMI event within {timeout} s; last events:\n{recent}") from None

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
            index, message = await self.wait_event_at(predicate, timeout=remaining, since=position)
            found.append(message)
            position = index + 1
        return found

    def call_events(self, linkedid: str) -> list[Message]:
        """Everything still recorded about one call."""
        return [m for m in self.events if m.get("Linkedid") == linkedid]

    def subscribe(self, predicate: Predicate, maxsize: int = 1000) -> Subscription:
        """Receive every event matching ``predicate`` from now on (close it, or use ``with``)."""
        subscription = Subscription(self, predicate, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    # ---- reading

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._reader.readuntil(b"\r\n\r\n")
                self._dispatch(Message.parse(raw.decode(errors="replace")))
                async with self._changed:
                    self._changed.notify_all()
        except asyncio.IncompleteReadError as exc:
            self.closed_reason = ConnectionResetError(
                f"Asterisk closed the connection ({len(exc.partial)} bytes unread)"
            )
        except asyncio.LimitOverrunError as exc:
            self.closed_reason = exc  # a message over MAX_MESSAGE: the stream cannot be resynchronised
        except OSError as exc:
            self.closed_reason = exc
        finally:
            if self.closed_reason is None:
                self.closed_reason = ConnectionError("reader stopped")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        AmiError(f"AMI connection to {self.address} closed: {self.closed_reason!r}")
                    )
            for subscription in list(self._subscriptions):
                subscription._wake()
            async with self._changed:
                self._changed.notify_all()

    def _dispatch(self, message: Message) -> None:
        action_id = message.get("ActionID")
        if "Response" in message and message.event is None:
            future = self._pending.get(action_id or "")
            if future is not None and not future.done():
                future.set_result(message)
            return
        if action_id is not None and action_id in self._lists:
            self._lists[action_id].append(message)
        if len(self.events) == self.events.maxlen:
            self._dropped += 1
        self.events.append(message)
        for subscription in list(self._subscriptions):
            try:
                matched = subscription.predicate(message)
            except Exception:  # a broken predicate must not stop the reader for everyone
                matched = False
            if matched:
                subscription._offer(message)
