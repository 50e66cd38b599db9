"""The FastAGI protocol layer: result parsing, quoting, bounded environment reads, hang-up handling."""

from __future__ import annotations

import asyncio

import pytest

from fourteen.agi import (
    AgiProtocolError,
    AgiSession,
    Hangup,
    parse_result,
    quote,
    read_environment,
)


@pytest.mark.parametrize(
    ("line", "code", "result", "data"),
    [
        ("200 result=1", 200, 1, ""),
        ("200 result=0", 200, 0, ""),
        ("200 result=-1", 200, -1, ""),
        ("200 result=1 (some value)", 200, 1, "some value"),
        ("200 result=1 (value (with) parens)", 200, 1, "value (with) parens"),
        ("200 result=53 endpos=1234", 200, 53, ""),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, 0, ""),
        ("510 Invalid or unknown command", 510, 0, ""),
    ],
)
def test_parse_result(line: str, code: int, result: int, data: str) -> None:
    r = parse_result(line)
    assert (r.code, r.result, r.data) == (code, result, data)


def test_digit_of_a_result() -> None:
    assert parse_result("200 result=53 endpos=1").digit == "5"
    assert parse_result("200 result=0").digit is None


@pytest.mark.parametrize("line", ["", "hello", "2000", "OK result=1"])
def test_garbage_results_are_protocol_errors(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_result(line)


def test_quote_escapes_what_would_split_the_command() -> None:
    assert quote('a "b" c') == '"a \\"b\\" c"'
    assert quote("x\ny") == '"x y"'
    assert quote("back\\slash") == '"back\\\\slash"'


def _reader(data: bytes, limit: int = 8192) -> asyncio.StreamReader:
    r = asyncio.StreamReader(limit=limit)
    r.feed_data(data)
    r.feed_eof()
    return r


async def test_environment_is_read_up_to_the_blank_line() -> None:
    env = await read_environment(_reader(b"agi_network: yes\nagi_extension: 140113\n\nREST"))
    assert env == {"agi_network": "yes", "agi_extension": "140113"}


@pytest.mark.parametrize(
    "data",
    [
        b"agi_network: yes\n",  # closed before the blank line
        b"agi_network: yes",  # closed mid-line
        b"GET / HTTP/1.1\r\n\r\n",  # not AGI
        b"agi_x: " + b"A" * 20_000 + b"\n\n",  # longer than the reader's limit
        b"".join(b"agi_v%d: 1\n" % i for i in range(500)) + b"\n",  # too many variables
    ],
)
async def test_bad_environments_are_refused(data: bytes) -> None:
    with pytest.raises(AgiProtocolError):
        await read_environment(_reader(data))


async def test_a_stalled_peer_times_out() -> None:
    r = asyncio.StreamReader()
    r.feed_data(b"agi_network: yes\n")
    with pytest.raises(AgiProtocolError, match="timed out"):
        await read_environment(r, timeout=0.1)


class _Writer:
    def __init__(self) -> None:
        self.data = b""

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        return None


async def test_hangup_line_then_511_raises_hangup() -> None:
    s = AgiSession(_reader(b"HANGUP\n511 Command Not Permitted\n"), _Writer(), {})  # type: ignore[arg-type]
    with pytest.raises(Hangup):
        await s.command("STREAM FILE", "x", "")
    assert s.hung_up
    with pytest.raises(Hangup):
        await s.get_variable("X")


async def test_hangup_line_then_a_result_marks_the_session() -> None:
    s = AgiSession(_reader(b"HANGUP\n200 result=-1 endpos=0\n"), _Writer(), {})  # type: ignore[arg-type]
    with pytest.raises(Hangup):
        await s.stream_file("x")


async def test_eof_is_a_hangup() -> None:
    s = AgiSession(_reader(b""), _Writer(), {})  # type: ignore[arg-type]
    with pytest.raises(Hangup):
        await s.answer()


async def test_usage_error_is_a_protocol_error() -> None:
    data = b"520-Invalid command syntax.  Proper usage follows:\nUsage: ...\n520 End of proper usage.\n"
    s = AgiSession(_reader(data), _Writer(), {})  # type: ignore[arg-type]
    with pytest.raises(AgiProtocolError):
        await s.command("STREAM FILE")


async def test_get_variable() -> None:
    w = _Writer()
    s = AgiSession(_reader(b"200 result=1 (hello world)\n200 result=0\n"), w, {})  # type: ignore[arg-type]
    assert await s.get_variable("A") == "hello world"
    assert await s.get_variable("B") is None
    assert w.data == b'GET VARIABLE "A"\nGET VARIABLE "B"\n'
