"""The router process: FastAGI server, plan cache, prompt library, HTTP health — wired from Settings.

``fourteen serve`` runs :func:`serve`. Several router processes may share one PostgreSQL database and sit
behind one or more Asterisks: each keeps only per-call state in memory, and configuration changes reach
every one of them through the plan revision (see :mod:`fourteen.plancache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import logs, statuspage, store
from .agi import AgiSession
from .agiserver import AgiServer
from .callflow import CallFlow, FlowConfig
from .callrecords import CallRecorder
from .logs import event
from .metrics import CONTENT_TYPE, Metrics
from .numberplan import default_data_dir
from .plancache import PlanCache
from .recognizer import NoRecognizer, Recognizer
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Router:
    settings: Settings
    recognizer: Recognizer = field(default_factory=NoRecognizer)
    prompts: Any = None
    started: float = field(default_factory=time.monotonic)
    calls_total: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.engine = store.make_engine(s.effective_database_url)
        self.plans = PlanCache(self.engine, default_data_dir())
        host, port = s.agi_host_port
        self.metrics = Metrics()
        self.agi = AgiServer(host, port, on_protocol_error=self.metrics.agi_protocol_errors.inc)
        self.agi.route("route")(self.handle_call)
        self.flow_config = FlowConfig(
            default_destination=s.default_destination, operator_destination=s.operator_destination
        )
        if self.prompts is None:
            from .promptlib import PromptLibrary

            self.prompts = PromptLibrary(s.sounds_dir, s.asterisk_sounds_dir or None)
        self.records = CallRecorder(
            self.engine,
            s.data_dir / "spool",
            salt=s.caller_hash_salt,
            retention_days=s.retention_days,
            backlog_gauge=self.metrics.record_backlog,
            ami_connect=self._ami_connect,
        )
        self._http: web.AppRunner | None = None
        self.live: dict[int, Any] = {}  # calls in progress (for the status page)
        self.recent = logs.RecentEvents()
        logging.getLogger("fourteen").addHandler(self.recent)
        self._ari: Any = None
        self.speech_engine: Any = None
        self._grammar_revision: int | None = None
        self._grammar_task: asyncio.Task[None] | None = None

    async def handle_call(self, session: AgiSession) -> None:
        self.calls_total += 1
        snapshot = await self.plans.get()
        self._follow_plan(snapshot.plan)
        flow = CallFlow(session, snapshot, self.prompts, self.recognizer, self.flow_config, self.metrics)
        self.live[id(flow)] = flow.state
        try:
            await flow.run()
        finally:
            self.live.pop(id(flow), None)
            self.records.submit(flow.state, session.env)  # one record per call, also when cancelled

    def _follow_plan(self, plan: Any) -> None:
        """A new plan revision rebuilds the speech grammars in the background (one rebuild at a time)."""
        engine = self.speech_engine
        if engine is None or plan.revision == self._grammar_revision:
            return
        if self._grammar_task is not None and not self._grammar_task.done():
            return
        self._grammar_revision = plan.revision
        self._grammar_task = asyncio.create_task(engine.update_plan(plan), name="grammar-rebuild")

    async def _ami_connect(self) -> Any:
        """AMI for call-record enrichment (optional: records are written without it)."""
        from .ami import AmiClient

        host, port = self.settings.ami_host_port
        s = self.settings
        return await AmiClient.connect(
            host, port, s.ami_user, s.ami_secret, timeout=2.0, events="call", history=1
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.settings.database_url:
            await _ensure_embedded_db(self.settings)
        await self.plans.get()
        await self.records.start()
        if self.settings.vosk_model and isinstance(self.recognizer, NoRecognizer):
            self.recognizer = await self._speech()
        await self.agi.start()
        self._http = web.AppRunner(self.http_app(), access_log=None)
        await self._http.setup()
        host, port = self.settings.http_host_port
        await web.TCPSite(self._http, host, port).start()
        event(
            log,
            "router_started",
            agi=f"{self.agi.host}:{self.agi.port}",
            http=f"{host}:{port}",
            recognizer=self.recognizer.available,
            recognizer_reason=getattr(self.recognizer, "reason", ""),
        )

    async def _speech(self) -> Recognizer:
        """Vosk + ARI streaming; anything missing leaves the menu in charge, with the reason logged."""
        from .ari import AriClient
        from .speech import StreamingRecognizer
        from .speechengine import SpeechEngine

        s = self.settings
        plan = (await self.plans.get()).plan
        engine = SpeechEngine(s.vosk_model, s.grammars_path, max_streams=s.max_speech_streams, plan=plan)
        await engine.load()
        if not engine.available:
            event(log, "speech_disabled", logging.WARNING, reason=engine.reason)
            return NoRecognizer(engine.reason)
        self._ari = AriClient(s.ari_url, s.ari_user, s.ari_password, s.ari_app)
        await self._ari.start()
        self.speech_engine = engine
        self._grammar_revision = plan.revision
        return StreamingRecognizer(
            engine,
            self._ari,
            s.recordings_dir,
            s.asterisk_recordings_dir,
            on_reject=self.metrics.recogniser_rejected.inc,
        )

    async def stop(self) -> None:
        if self._ari is not None:
            await self._ari.stop()
        await self.agi.stop()
        if self._http is not None:
            await self._http.cleanup()
        await self.records.stop()
        await self.engine.dispose()
        logging.getLogger("fourteen").removeHandler(self.recent)
        event(log, "router_stopped")

    # -- HTTP --------------------------------------------------------------------------------------
    def http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        statuspage.add_routes(app, self)
        return app

    async def _metrics(self, _request: web.Request) -> web.Response:
        m = self.metrics
        snap = await self.plans.get()
        m.database_up.set(1 if self.plans.db_ok else 0)
        m.plan_revision.set(snap.plan.revision)
        if self.speech_engine is not None:
            m.recogniser_streams.set(getattr(self.speech_engine, "open_streams", 0))
        return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, _request: web.Request) -> web.Response:
        snap = await self.plans.get()
        body = {
            "status": "ok",
            "database": "up" if self.plans.db_ok else "down",
            "plan_revision": snap.plan.revision,
            "plan_source": snap.source,
            "active_calls": len(self.agi.active),
            "calls_total": self.calls_total,
            "agi_protocol_errors": self.agi.protocol_errors,
            "recognizer": "available"
            if self.recognizer.available
            else getattr(self.recognizer, "reason", ""),
            "uptime_seconds": round(time.monotonic() - self.started, 1),
        }
        return web.json_response(body)


async def _ensure_embedded_db(settings: Settings) -> None:
    """The embedded default creates, upgrades and seeds itself, like the CLI does."""
    await store.prepare_embedded(settings.effective_database_url, default_data_dir())


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    logs.setup(settings.log_level)
    router = Router(settings)
    await router.start()
    print(
        f"fourteen router: FastAGI on {router.agi.host}:{router.agi.port}, "
        f"HTTP on http://{settings.http_addr}/health",
        flush=True,
    )
    if ready is not None:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await router.stop()


def register_cli(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the router (FastAGI server, HTTP health endpoint)")

    async def run(_args: Any, settings: Settings) -> int:
        await serve(settings)
        return 0

    p.set_defaults(handler=run)
