"""A fake Asterisk for fast call-flow tests: speaks FastAGI to the router like a channel would.

It answers the commands the call flow uses, plays the caller's part from a script (keys pressed during a
prompt or while waiting, a hang-up after some prompts) and records what the router did. The real-PBX tests
in tests/integration prove the same flows against a real Asterisk.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass, field


@dataclass
class FakeCall:
    dialled: str = "140113"
    keys: list[str] = field(default_factory=list)  # pressed in order: during the next prompt or wait
    # (prompt name prefix, key): press that key when that prompt plays (consumed in order)
    press_on: list[tuple[str, str]] = field(default_factory=list)
    dial_status: dict[str, str] = field(default_factory=dict)  # destination → DIALSTATUS (default ANSWER)
    hangup_after_prompts: int | None = None
    transfer_status: str = "UNSUPPORTED"  # what Transfer() reports (Local channels cannot REFER)
    script: str = "route"
    # recorded
    variables: dict[str, str] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dials: list[str] = field(default_factory=list)
    answered: bool = False
    commands: list[str] = field(default_factory=list)

    def user_events(self, name: str) -> list[dict[str, str]]:
        return [f for n, f in self.events if n == name]

    def marks(self, mark: str) -> list[str]:
        """The router's ``Stage``/``Listen`` marks, on whichever of its events they rode."""
        return [f[mark] for n, f in self.events if n.startswith("Fourteen") and mark in f]

    @property
    def stages(self) -> list[str]:
        return self.marks("Stage")

    @property
    def listens(self) -> list[str]:
        return self.marks("Listen")

    @property
    def prompt_names(self) -> list[str]:
        return [f["Prompt"] for f in self.user_events("FourteenPrompt")]


def _words(line: str) -> list[str]:
    return shlex.split(line, posix=True)


async def run_call(port: int, call: FakeCall, host: str = "127.0.0.1", limit: float = 20.0) -> FakeCall:
    reader, writer = await asyncio.open_connection(host, port)
    env = {
        "agi_network": "yes",
        "agi_network_script": call.script,
        "agi_request": f"agi://{host}:{port}/{call.script}",
        "agi_channel": "Local/140113@fourteen-incoming-0001;2",
        "agi_uniqueid": "1700000000.1",
        "agi_callerid": "0612345678",
        "agi_context": "fourteen-incoming",
        "agi_extension": call.dialled,
        "agi_priority": "3",
    }
    writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
    await writer.drain()
    hung_up = False

    def reply(text: str) -> None:
        writer.write(text.encode() + b"\n")

    async def loop() -> None:
        nonlocal hung_up
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode().strip()
            call.commands.append(line)
            if hung_up:
                reply("511 Command Not Permitted on a dead channel or intercept routine")
                await writer.drain()
                continue
            upper = line.upper()
            if upper.startswith("ANSWER"):
                call.answered = True
                reply("200 result=0")
            elif upper.startswith("SET VARIABLE"):
                w = _words(line)
                call.variables[w[2]] = w[3] if len(w) > 3 else ""
                reply("200 result=1")
            elif upper.startswith("GET VARIABLE"):
                name = _words(line)[2]
                if name in call.variables:
                    reply(f"200 result=1 ({call.variables[name]})")
                else:
                    reply("200 result=0")
            elif upper.startswith("STREAM FILE"):
                w = _words(line)
                call.prompts.append(w[2])
                escape = w[3] if len(w) > 3 else ""
                if call.hangup_after_prompts is not None and len(call.prompts) > call.hangup_after_prompts:
                    hung_up = True
                    reply("HANGUP")
                    reply("200 result=-1 endpos=0")
                elif call.press_on and w[2].rsplit("/", 1)[-1].startswith(call.press_on[0][0]) and escape:
                    reply(f"200 result={ord(call.press_on.pop(0)[1])} endpos=1000")
                elif call.keys and call.keys[0] == "":  # "" = the caller lets this prompt play
                    call.keys.pop(0)
                    reply("200 result=0 endpos=8000")
                elif call.keys and escape and call.keys[0] in escape:
                    reply(f"200 result={ord(call.keys.pop(0))} endpos=1000")
                else:
                    reply("200 result=0 endpos=8000")
            elif upper.startswith("WAIT FOR DIGIT"):
                key = call.keys.pop(0) if call.keys else ""
                reply(f"200 result={ord(key)}" if key else "200 result=0")
            elif upper.startswith("EXEC"):
                w = _words(line)
                app, args = w[1], (w[2] if len(w) > 2 else "")
                if app.lower() == "userevent":
                    name, _, rest = args.partition(",")
                    fields = dict(
                        (k.strip(), v.strip()) for k, _, v in (p.partition(":") for p in rest.split(",") if p)
                    )
                    call.events.append((name, fields))
                    reply("200 result=0")
                elif app.lower() == "transfer":
                    call.dials.append(f"transfer:{args}")
                    call.variables["TRANSFERSTATUS"] = call.transfer_status
                    reply("200 result=0")
                elif app.lower() == "mset":
                    for pair in args.split(","):
                        k, _, v = pair.partition("=")
                        call.variables[k] = v
                    reply("200 result=0")
                elif app.lower() == "dial":
                    dest = re.split(r",", args)[0]
                    call.dials.append(dest)
                    call.variables["DIALSTATUS"] = call.dial_status.get(dest, "ANSWER")
                    reply("200 result=-1" if call.variables["DIALSTATUS"] == "ANSWER" else "200 result=0")
                else:
                    reply("200 result=0")
            elif upper.startswith("HANGUP"):
                hung_up = True
                reply("200 result=1")
            else:
                reply("510 Invalid or unknown command")
            await writer.drain()

    try:
        await asyncio.wait_for(loop(), limit)
    finally:
        writer.close()
    return call


class FakePrompts:
    """Prompt paths without audio: the fast tests check which prompts play, not how they sound."""

    def __init__(self) -> None:
        self.requested: list[str] = []

    async def path(self, p) -> str:  # type: ignore[no-untyped-def]
        self.requested.append(p.name)
        return f"/sounds/{p.lang}/{p.name}"

    def stock_fallback(self, prompt_id: str) -> str:
        return "pls-hold-while-try"
