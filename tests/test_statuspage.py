"""The router's HTTP side: health, metrics, the status page and reports (aiohttp test client)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from fourteen.router import Router, _ensure_embedded_db
from fourteen.settings import Settings


async def test_status_metrics_health_and_reports(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, agi_addr="127.0.0.1:0", http_addr="127.0.0.1:0")
    await _ensure_embedded_db(settings)
    router = Router(settings)
    await router.plans.get()
    async with TestClient(TestServer(router.http_app())) as client:
        r = await client.get("/health")
        assert r.status == 200 and (await r.json())["database"] == "up"
        r = await client.get("/metrics")
        assert r.status == 200
        assert "fourteen_active_calls 0.0" in await r.text()
        r = await client.get("/status")
        page = await r.text()
        assert r.status == 200 and "<h1>fourteen router</h1>" in page and "no calls right now" in page
        r = await client.get("/reports", params={"from": "2026-11-01", "to": "2026-12-01", "format": "md"})
        assert r.status == 200 and "| calls | 0 |" in await r.text()
        r = await client.get("/reports", params={"from": "yesterday", "to": "x"})
        assert r.status == 400
    await router.engine.dispose()
