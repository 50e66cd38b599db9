"""Fixtures for the real-Asterisk suite: one sandbox for the whole session, an AMI client per test."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

import fourteen.sandbox as sb
from fourteen.ami import AmiClient
from fourteen.sandbox import SandboxConfig
from fourteen.testcall import route_calls_to

from .routers import route_url


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxConfig]:
    """A running sandbox (booted once per session: ≈0.5 s, a minute the first time ever).

    Stopped afterwards unless it was already running before, so a developer's sandbox is left alone.
    """
    cfg = SandboxConfig()
    was_running = sb.status(cfg)["running"]
    sb.up(cfg)  # when already running: re-render the config and reload, so the dialplan is current
    yield cfg
    if not was_running:
        sb.down(cfg)


@pytest.fixture
async def ami(sandbox: SandboxConfig) -> AsyncIterator[AmiClient]:
    async with await AmiClient.connect(
        sandbox.bind_host, sandbox.ami_port, sandbox.ami_user, sandbox.ami_secret
    ) as client:
        yield client


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A TCP port that refuses connections: bound (so nobody else takes it) but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def router_down(closed_port: int) -> Iterator[str]:
    """This test's 14-calls go to a closed port: every one falls back."""
    with route_calls_to(route_url(closed_port)) as url:
        yield url
