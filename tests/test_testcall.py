"""The test-call tooling without Asterisk: steps from argv, event bookkeeping, results, the AMI client's
bounds (fed from an in-memory stream)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest

from fourteen.ami import AmiClient, Message
from fourteen.testcall import (
    CallLog,
    CallResult,
    Step,
    _Call,
    hangup,
    press,
    register_call_command,
    register_sandbox_command,
    say,
    steps_from_args,
    wait,
)

CALL = "fourteen-call-abc"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fourteen")
    sub = parser.add_subparsers(dest="command", required=True)
    register_call_command(sub)
    register_sandbox_command(sub)
    return parser.parse_args(list(argv))


def user(name: str, **fields: str) -> Message:
    return Message.of(Event="UserEvent", UserEvent=name, Linkedid=CALL, **fields)


def channel(event: str, uid: str, name: str) -> Message:
    return Message.of(Event=event, Uniqueid=uid, Channel=name, Linkedid=CALL)


# -- steps ---------------------------------------------------------------------------------------------
def test_steps_keep_command_line_order_and_take_the_language() -> None:
    args = parse(
        "call", "140113", "--say", "reimerswaal", "--press", "2", "--wait", "1.5", "--say", "ja",
        "--hangup", "--lang", "en",
    )  # fmt: skip
    assert steps_from_args(args) == [
        Step("say", "reimerswaal", "en"),
        Step("press", "2"),
        Step("wait", "1.5"),
        Step("say", "ja", "en"),
        Step("hangup"),
    ]
    assert args.number == "140113" and not args.json and args.timeout == 60.0


def test_no_steps_is_an_empty_script() -> None:
    args = parse("call", "140113", "--json", "--timeout", "20")
    assert steps_from_args(args) == [] and args.json and args.timeout == 20.0


@pytest.mark.parametrize(
    "argv", [("--press", "x"), ("--press", ""), ("--wait", "soon"), ("--wait", "0"), ("--say", " ")]
)
def test_bad_steps_are_usage_errors(argv: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("call", "140113", *argv)
    assert exc.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_step_constructors_and_text_form() -> None:
    assert press("12#") == Step.parse("press 12#")
    assert say("ik wil naar Goes", "nl") == Step.parse("say ik wil naar Goes")
    assert wait(2) == Step("wait", "2") and wait(2).seconds == 2.0
    assert hangup() == Step.parse("hangup")
    assert str(say("ja")) == "say 'ja' (nl)" and str(press("1")) == "press 1"
    with pytest.raises(ValueError, match="unknown step"):
        Step.parse("shout hello")


def test_sandbox_command_arguments() -> None:
    args = parse("sandbox", "rx", "core", "show", "channels")
    assert args.action == "rx" and args.cli == ["core", "show", "channels"]
    assert parse("sandbox", "status", "--json").json


# -- bookkeeping ---------------------------------------------------------------------------------------
def router_call() -> CallLog:
    """A routed call as the router and the test KCC report it."""
    log = CallLog(CALL, "140113")
    for m in [
        channel("Newchannel", CALL, "Local/140113@fourteen-incoming-0001;1"),
        channel("Newchannel", CALL + ";2", "Local/140113@fourteen-incoming-0001;2"),
        Message.of(Event="OriginateResponse", Response="Success", ActionID=CALL + "-originate"),
        user("FourteenPrompt", Stage="greeting", Prompt="welcome"),  # marks ride on the next event
        user("FourteenPrompt", Stage="menu", Listen="menu", Prompt="menu-0113"),
        user("FourteenListen", Listen="menu"),  # a mark on its own: the router waits for a key
        user("FourteenDecision", Decision="route", Municipality="GM0703", Utterance="2"),
        user(
            "FourteenDivert",
            Stage="transfer",
            Destination="Local/GM0703@kcc",
            Municipality="GM0703",
            Route="dtmf",
        ),
        channel("Newchannel", "kcc-1", "Local/GM0703@kcc-0002;1"),
        user("FourteenStage", Stage="connected"),
        user("KCCReached", Municipality="GM0703", FourteenDialled="140113", FourteenRoute="dtmf"),
    ]:
        log.feed(m, at=1.0)
    return log


def test_call_log_follows_the_router_events() -> None:
    log = router_call()
    assert log.stages == ["greeting", "menu", "transfer", "connected"]
    assert log.prompts == ["welcome", "menu-0113"]
    assert log.listens == ["menu", "menu"]
    assert log.decisions == [{"decision": "route", "municipality": "GM0703", "utterance": "2"}]
    assert log.diverts[0]["destination"] == "Local/GM0703@kcc" and log.diverts[0]["route"] == "dtmf"
    assert log.reached == "GM0703" and log.kcc_event["FourteenRoute"] == "dtmf" and log.kcc_at == 1.0
    assert log.caller_channel == "Local/140113@fourteen-incoming-0001;1"
    assert not log.fallback and not log.ended
    for uid in (CALL, CALL + ";2", "kcc-1"):
        log.feed(Message.of(Event="Hangup", Uniqueid=uid, Linkedid=CALL))
    assert log.ended
    assert len(log.events) == 14 and log.events[0]["Event"] == "Newchannel"


def test_only_the_first_kcc_counts_and_fallbacks_are_flagged() -> None:
    log = CallLog(CALL, "140113")
    log.feed(user("FourteenFallback", AGIStatus="FAILURE"))
    log.feed(user("KCCReached", Municipality="default"))
    log.feed(user("KCCReached", Municipality="operator"))
    assert log.fallback and not log.fallback_failed and log.reached == "default"
    failed = CallLog(CALL, "140113")
    failed.feed(user("FourteenFallbackFailed", DialStatus="BUSY"))
    assert failed.fallback and failed.fallback_failed and failed.reached is None


def test_a_call_that_never_started_has_ended() -> None:
    log = CallLog(CALL, "149999")
    assert not log.ended  # nothing seen yet: still waiting
    log.feed(Message.of(Event="OriginateResponse", Response="Failure", Reason="5"))
    assert log.ended and log.originate_failed == "5"


def test_a_hung_up_channel_is_not_revived_by_late_events() -> None:
    log = CallLog(CALL, "140113")
    log.feed(channel("Newchannel", CALL, "Local/x;1"))
    log.feed(Message.of(Event="Hangup", Uniqueid=CALL, Linkedid=CALL))
    log.feed(channel("VarSet", CALL, "Local/x;1"))
    assert log.ended


def test_unknown_number() -> None:
    log = CallLog(CALL, "0201234567")
    log.feed(user("FourteenUnknownNumber", Dialled="0201234567"))
    assert log.unknown_number and log.reached is None


def result_of(log: CallLog, **kw: Any) -> CallResult:
    defaults: dict[str, Any] = {"steps": [], "warnings": [], "timed_out": False, "seconds": 3.21456}
    return CallResult.from_log(log, **(defaults | kw))


def test_call_result_json() -> None:
    log = router_call()
    result = result_of(log, steps=[{"step": "press 2", "at": 0.5, "seconds": 0.3}])
    out = result.as_json()
    assert out == {
        "dialled": "140113",
        "reached": "GM0703",
        "prompts": ["welcome", "menu-0113"],
        "hangup_stage": "connected",
        "stages": ["greeting", "menu", "transfer", "connected"],
        "decisions": [{"decision": "route", "municipality": "GM0703", "utterance": "2"}],
        "fallback": False,
        "seconds": 3.215,
        "timed_out": False,
        "warnings": [],
    }
    json.dumps(out)  # serialisable as is
    assert result.kcc_seconds == 1.0 and len(result.events) == len(log.events)
    text = result.summary()
    assert text.startswith("140113 → KCC GM0703 reached after 1.0 s")
    assert "greeting → menu → transfer → connected" in text and "press 2" in text


def test_call_result_of_a_caller_who_hung_up() -> None:
    log = CallLog(CALL, "140113")
    log.feed(user("FourteenStage", Stage="greeting"))
    log.feed(user("FourteenStage", Stage="menu"))
    result = result_of(log)
    assert result.reached is None and result.hangup_stage == "menu"
    assert "call ended in stage menu" in result.summary()
    assert result_of(CallLog(CALL, "140113")).hangup_stage is None


# -- waiting for the router to listen ------------------------------------------------------------------
def make_call() -> _Call:
    return _Call(CallLog(CALL, "140113"), [], {}, listen_timeout=1.0, listen_delay=0.0)


def test_the_caller_answers_the_latest_listen_once() -> None:
    call = make_call()
    assert call.take_listen() is None
    call.feed(user("FourteenListen", Listen="menu"))
    call.feed(user("FourteenListen", Listen="menu"))  # a re-prompt while the caller was busy
    assert call.take_listen() == "listen" and call.listens_used == 2
    assert call.take_listen() is None  # nothing new
    call.feed(user("FourteenListen", Listen="confirm"))
    assert call.take_listen() == "listen"


def test_once_the_kcc_answered_the_caller_stops_waiting() -> None:
    call = make_call()
    call.feed(user("FourteenListen", Listen="menu"))
    call.feed(user("KCCReached", Municipality="default"))
    assert call.over and call.take_listen() == "over"


# -- the AMI client's bounds ---------------------------------------------------------------------------
class _Writer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _raw(**fields: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


async def test_ami_history_and_subscriptions_are_bounded() -> None:
    reader = asyncio.StreamReader()
    client = AmiClient(reader, _Writer(), history=5)  # type: ignore[arg-type]
    task = asyncio.create_task(client._read_loop())
    client._task = task
    sub = client.subscribe(lambda m: m.get("Linkedid") == "a", maxsize=3)
    for i in range(12):
        reader.feed_data(_raw(Event="Newexten", Linkedid="a" if i % 2 == 0 else "b", N=str(i)))
    await asyncio.sleep(0.01)
    assert len(client.events) == 5 and client.mark() == 12
    assert [m["N"] for m in client.events] == ["7", "8", "9", "10", "11"]
    assert sub.dropped == 3 and [(await sub.get(0.1))["N"] for _ in range(3)] == ["6", "8", "10"]
    # an index that fell out of the history is skipped, not an error
    found = await client.wait_event(lambda m: m["N"] in ("1", "9"), timeout=0.1, since=0)
    assert found["N"] == "9"
    reader.feed_eof()
    await asyncio.sleep(0.01)
    with pytest.raises(Exception, match="closed"):
        await sub.get(0.1)
    await client.close()


def test_message_parse_and_dict() -> None:
    m = Message.parse("Response: Success\r\nOutput: line 1\r\nOutput: line 2\r\nbare text: here\r\n")
    assert m["response"] == "Success" and m.getall("Output") == ["line 1", "line 2", "bare text: here"]
    assert m.as_dict() == {"Response": "Success", "Output": "line 1\nline 2\nbare text: here"}
