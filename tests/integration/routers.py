"""Routers run in the test process against the sandbox: their settings, and pointing 14-calls at them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fourteen.ami import AmiClient
from fourteen.router import Router
from fourteen.sandbox import SandboxConfig
from fourteen.settings import Settings
from fourteen.testcall import route_calls_to


def router_settings(sandbox: SandboxConfig, data_dir: Path, **overrides: object) -> Settings:
    """Settings of a router run in the test process against the sandbox: loopback ports chosen by the OS,
    the sandbox's prompt directory (written on the host, played by Asterisk inside the chroot), and the
    sandbox's operator KCC."""
    sounds_inside = f"{sandbox.sounds_dir}/fourteen"
    values: dict[str, object] = {
        "data_dir": data_dir,
        "agi_addr": "127.0.0.1:0",
        "http_addr": "127.0.0.1:0",
        "operator_destination": "Local/operator@kcc",
        "sounds_dir_override": str(sandbox.host_path(sounds_inside)),
        "asterisk_sounds_dir": sounds_inside,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def route_url(port: int) -> str:
    return f"agi://127.0.0.1:{port}/route"


@contextlib.asynccontextmanager
async def running(router: Router, ami: AmiClient) -> AsyncIterator[Router]:
    """Start ``router``, send the sandbox's 14-calls to it, and stop it afterwards."""
    await router.start()
    try:
        with route_calls_to(route_url(router.agi.port)):
            yield router
    finally:
        await router.stop()
