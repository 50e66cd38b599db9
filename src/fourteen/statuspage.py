"""The operator status page and the report endpoint: server-rendered HTML, no build step.

``/status`` shows what an operator on duty needs at a glance: live calls per area code, whether the
database, Asterisk (ARI) and the recogniser are there, and the last warnings; it refreshes itself.
``/reports?from=YYYY-MM-DD&to=YYYY-MM-DD[&municipality=GMxxxx][&format=md|csv|json]`` serves the same
reports as ``fourteen report``.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from typing import Any

from aiohttp import web

from . import reports


def add_routes(app: web.Application, router: Any) -> None:
    async def status(_request: web.Request) -> web.Response:
        return web.Response(text=await render_status(router), content_type="text/html")

    async def report(request: web.Request) -> web.Response:
        q = request.query
        try:
            start, end = reports.parse_day(q.get("from", "")), reports.parse_day(q.get("to", ""))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}; give from= and to= as YYYY-MM-DD") from exc
        fmt = q.get("format", "json")
        if fmt not in {"md", "csv", "json"}:
            raise web.HTTPBadRequest(text="format must be md, csv or json")
        rep = await reports.build_report(router.engine, start, end, q.get("municipality") or None)
        ctype = {"md": "text/markdown", "csv": "text/csv", "json": "application/json"}[fmt]
        return web.Response(text=reports.render(rep, fmt), content_type=ctype, charset="utf-8")

    app.router.add_get("/status", status)
    app.router.add_get("/reports", report)


def _state(ok: bool | None, up: str = "up", down: str = "down") -> str:
    if ok is None:
        return '<span class="na">not configured</span>'
    return f'<span class="{"ok" if ok else "bad"}">{up if ok else down}</span>'


async def render_status(router: Any) -> str:
    snap = await router.plans.get()
    live = list(router.live.values())
    per_code = Counter(st.area_code or "unknown" for st in live)
    stages = {
        code: ", ".join(sorted({st.stage.value for st in live if st.area_code == code})) for code in per_code
    }
    rows = (
        "".join(
            f"<tr><td>14 {html.escape(code)}</td><td>{html.escape(str(snap.plan.mode(code) or '-'))}</td>"
            f"<td>{n}</td><td>{html.escape(stages[code])}</td></tr>"
            for code, n in sorted(per_code.items())
        )
        or '<tr><td colspan="4">no calls right now</td></tr>'
    )
    ari = getattr(router, "_ari", None)
    recent_handler = getattr(router, "recent", None)
    recent = list(recent_handler.events)[::-1] if recent_handler is not None else []
    errors = (
        "".join(
            f"<tr><td>{html.escape(e['ts'])}</td><td>{html.escape(e['level'])}</td><td>{html.escape(e['event'])}</td>"
            f"<td>{html.escape(str(e['call']))}</td><td>{html.escape(str(e['fields'])[:200])}</td></tr>"
            for e in recent[:20]
        )
        or '<tr><td colspan="5">none</td></tr>'
    )
    uptime = int(time.monotonic() - router.started)
    return f"""<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>fourteen — status</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:left}} th{{background:#f2f2f2}}
.ok{{color:#176b1e;font-weight:bold}} .bad{{color:#b00020;font-weight:bold}} .na{{color:#777}}
</style></head><body>
<h1>fourteen router</h1>
<table>
<tr><th>database</th><td>{_state(router.plans.db_ok)} ({html.escape(snap.source)}, plan revision {
        snap.plan.revision
    })</td></tr>
<tr><th>Asterisk (ARI)</th><td>{
        _state(ari.connected if ari is not None else None, "connected", "disconnected")
    }</td></tr>
<tr><th>speech recogniser</th><td>{
        _state(
            bool(router.recognizer.available),
            "available",
            html.escape(getattr(router.recognizer, "reason", "") or "unavailable"),
        )
    }</td></tr>
<tr><th>live calls</th><td>{len(live)}</td></tr>
<tr><th>calls since start</th><td>{router.calls_total}</td></tr>
<tr><th>uptime</th><td>{uptime // 3600} h {uptime % 3600 // 60} min</td></tr>
</table>
<h2>Live calls per area code</h2>
<table><tr><th>number</th><th>mode</th><th>calls</th><th>stages</th></tr>{rows}</table>
<h2>Last warnings and errors</h2>
<table><tr><th>time</th><th>level</th><th>event</th><th>call</th><th>details</th></tr>{errors}</table>
</body></html>
"""
