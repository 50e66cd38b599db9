"""The Asterisk sandbox and the dialplan the project ships, exercised with real calls (Local channels + AMI).

Needs root and, the first time, network access to Debian's archive (the chroot is provisioned and cached).
"""

from __future__ import annotations

import base64
import re
import urllib.request

import pytest

import fourteen.sandbox as sb
from fourteen.sandbox import SandboxConfig

from .amitools import AmiClient, event_named, user_event

pytestmark = pytest.mark.asterisk


async def set_global(ami: AmiClient, name: str, value: str) -> str:
    """Set a dialplan global for the rest of the test; returns the old value to restore."""
    old = (await ami.action("Getvar", Variable=name)).get("Value") or ""
    await ami.action("Setvar", Variable=name, Value=value)
    return old


def test_boots_fully_with_every_listed_module(sandbox: SandboxConfig) -> None:
    info = sb.status(sandbox)
    assert info["running"] and info["pid"]
    assert info["version"].startswith("Asterisk 22")
    sb.rx(sandbox, "core waitfullybooted")  # returns at once when booted, raises when not running
    listed = re.findall(r"^load => (\S+)", (sandbox.template_dir / "modules.conf").read_text(), re.M)
    shown = sb.rx(sandbox, "module show")
    loaded = {line.split()[0] for line in shown.splitlines() if line.endswith(".so") or ".so " in line}
    assert set(listed) <= loaded, f"not loaded: {sorted(set(listed) - loaded)}"


async def test_ami_login_and_core_settings(ami: AmiClient) -> None:
    assert ami.banner.startswith("Asterisk Call Manager/")
    settings = await ami.action("CoreSettings")
    assert settings["Response"] == "Success"
    assert settings["AsteriskVersion"].startswith("22.")


def test_ari_and_prometheus_over_http(sandbox: SandboxConfig) -> None:
    base = f"http://{sandbox.bind_host}:{sandbox.http_port}"
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        assert b"asterisk_core_uptime_seconds" in response.read()
    request = urllib.request.Request(f"{base}/ari/asterisk/info")
    token = base64.b64encode(f"{sandbox.ari_user}:{sandbox.ari_password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


async def test_test_kcc_reports_the_municipality_reached(ami: AmiClient) -> None:
    call = await ami.originate(
        "Local/GM0703@kcc",
        Context="fourteen-caller",
        Exten="silent",
        Priority="1",
        Variable="CALLER_SECONDS=5",
    )
    reached = await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=10)
    assert reached["Municipality"] == "GM0703"
    await ami.wait_event(event_named("Hangup", Linkedid=call), timeout=10)


async def test_event_filter_leaves_only_the_events_asked_for(sandbox: SandboxConfig, ami: AmiClient) -> None:
    """The router's AMI session asks for the few events call records need; a call's others stay away."""
    async with await AmiClient.connect(
        sandbox.bind_host, sandbox.ami_port, sandbox.ami_user, sandbox.ami_secret, events="call,user"
    ) as filtered:
        assert await filtered.only_events(["DialBegin", "Hangup"])
        call = await ami.originate(
            "Local/GM0703@kcc", Context="fourteen-caller", Exten="silent", Priority="1",
            Variable="CALLER_SECONDS=1",
        )  # fmt: skip
        await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=10)
        await ami.wait_event(event_named("Hangup", Linkedid=call), timeout=10)
        await filtered.wait_event(event_named("Hangup", Linkedid=call), timeout=5)
        names = {e.event for e in filtered.events if e.get("Linkedid") == call}
        assert names == {"Hangup"}, names  # the test KCC dials nobody: no DialBegin
        assert "Newchannel" in {e.event for e in ami.events if e.get("Linkedid") == call}


async def test_router_down_falls_back_to_the_default_kcc(
    sandbox: SandboxConfig, ami: AmiClient, closed_port: int
) -> None:
    rendered = (await ami.action("Getvar", Variable="FOURTEEN_AGI_URL"))["Value"]
    assert rendered == f"agi://{sandbox.agi_host}:{sandbox.agi_port}/route"
    # Whatever may listen on the configured AGI port on a developer's machine, this call's router is "down":
    # the call carries its own FOURTEEN_AGI_URL (a channel variable shadows the global; Local copies it).
    call = await ami.originate(
        "Local/140113@fourteen-incoming", Context="fourteen-caller", Exten="silent", Priority="1",
        Variable=[f"FOURTEEN_AGI_URL=agi://127.0.0.1:{closed_port}/route"],
    )  # fmt: skip
    fallback = await ami.wait_event(user_event("FourteenFallback", linkedid=call), timeout=15)
    assert fallback["AGIStatus"] == "FAILURE"
    assert fallback["Dialled"] == "140113"
    reached = await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=15)
    assert reached["Municipality"] == "default"
    assert reached["FourteenDialled"] == "140113"  # inherited through Dial → Local → kcc
    assert reached["FourteenRoute"] == "fallback"
    assert ami.events.index(fallback) < ami.events.index(reached)
    assert (await ami.getvar("FOURTEEN_AGI_URL")) == rendered  # the global was never touched


async def test_fallback_reports_a_failed_divert(ami: AmiClient, closed_port: int) -> None:
    call = await ami.originate(
        "Local/140113@fourteen-incoming", Context="fourteen-caller", Exten="silent", Priority="1",
        Variable=[
            f"FOURTEEN_AGI_URL=agi://127.0.0.1:{closed_port}/route",
            "FOURTEEN_DEFAULT_DESTINATION=Local/busy@kcc",
        ],
    )  # fmt: skip
    failed = await ami.wait_event(user_event("FourteenFallbackFailed", linkedid=call), timeout=15)
    assert failed["DialStatus"] == "BUSY"


async def test_unknown_number_is_refused_politely(ami: AmiClient) -> None:
    call = await ami.originate(
        "Local/0201234567@fourteen-incoming", Context="fourteen-caller", Exten="silent", Priority="1"
    )
    event = await ami.wait_event(user_event("FourteenUnknownNumber", linkedid=call), timeout=10)
    assert event["Dialled"] == "0201234567"
    await ami.wait_event(event_named("Hangup", Linkedid=call), timeout=15)


async def test_pure_dialplan_route_reaches_the_kcc(ami: AmiClient) -> None:
    call = await ami.originate(
        "Local/140113@fourteen-puredialplan", Context="fourteen-caller", Exten="silent", Priority="1"
    )
    reached = await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=15)
    assert reached["Municipality"] == "GM0000"
    assert reached["FourteenRoute"] == "puredialplan"


async def test_test_kcc_reports_the_context_the_router_passed(ami: AmiClient) -> None:
    # Globals stand in for the (inherited) channel variables a router sets; AMI Setvar keeps commas intact.
    passed = {
        "FOURTEEN_MUNICIPALITY": "GM0363",
        "FOURTEEN_UTTERANCE": "paspoort, verlengen",
        "FOURTEEN_ROUTE": "asr",
    }
    old = {name: await set_global(ami, name, value) for name, value in passed.items()}
    try:
        call = await ami.originate(
            "Local/GM0363@kcc", Context="fourteen-caller", Exten="silent", Priority="1"
        )
        reached = await ami.wait_event(user_event("KCCReached", linkedid=call), timeout=10)
    finally:
        for name, value in old.items():
            await set_global(ami, name, value)
    assert reached["FourteenMunicipality"] == "GM0363"
    assert reached["FourteenUtterance"] == "paspoort; verlengen"  # UserEvent would cut at the comma
    assert reached["FourteenRoute"] == "asr"
