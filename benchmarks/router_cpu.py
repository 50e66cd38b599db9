#!/usr/bin/env python3
"""The router's own CPU per call, without Asterisk: ``fourteen serve`` driven by the fake Asterisk.

``loadtests/calls.py`` measures the router against a real Asterisk, where its few ms per call sit in the
noise of Asterisk's own 60–80 ms. Here the caller side is ``tests/fakeasterisk.py`` (answers every AGI
command at once), so a call takes milliseconds and the router's CPU per call is read precisely from
``/proc/<pid>/stat`` over many calls. The same menu call as the load test: 140113, the caller presses 2
(Goes) during the menu intro, the router says "u wordt doorverbonden met Goes" and dials.

    .venv/bin/python benchmarks/router_cpu.py [--calls 2000] [--concurrency 20] [--rate R] [--ami]

``--ami`` also points the router at the sandbox's AMI (call-record enrichment, as in production; the
sandbox must be up); by default the router runs without AMI. Prints CPU per call and its parts' share
when run under py-spy (``--profile SECONDS``, py-spy on PATH or in PYSPY).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loadtests.common import free_port, http_get  # noqa: E402
from tests.fakeasterisk import FakeCall, run_call  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def menu_call() -> FakeCall:
    return FakeCall(dialled="140113", press_on=[("ask_municipality_menu_intro", "2")])


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fourteen-router-cpu-"))
    agi_port, http_port = free_port(), free_port()
    env = dict(os.environ)
    env.pop("FOURTEEN_DATABASE_URL", None)
    env.update(
        FOURTEEN_DATA_DIR=str(tmp),
        FOURTEEN_AGI_ADDR=f"127.0.0.1:{agi_port}",
        FOURTEEN_HTTP_ADDR=f"127.0.0.1:{http_port}",
        FOURTEEN_SOUNDS_DIR=str(tmp / "sounds"),
        FOURTEEN_LOG_LEVEL="WARNING",
        FOURTEEN_OPERATOR_DESTINATION="Local/operator@kcc",
    )
    if not args.ami:
        env["FOURTEEN_AMI_ADDR"] = f"127.0.0.1:{free_port()}"  # nobody listens: records without AMI
    exe = REPO / ".venv/bin/fourteen"
    log = (tmp / "router.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "serve", env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/health")
                break
            except OSError:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError((tmp / "router.log").read_text()[-2000:]) from None
                await asyncio.sleep(0.2)
        for _ in range(3):  # warm-up: prompts synthesised, caches filled
            c = await run_call(agi_port, menu_call())
            assert c.dials == ["Local/GM0664@kcc"], c.commands
        await asyncio.sleep(1.0)
        idle0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(3.0)
        idle = (cpu_seconds(proc.pid) - idle0) / (time.monotonic() - t0)

        profiler = None
        if args.profile:
            pyspy = os.environ.get("PYSPY") or shutil.which("py-spy") or "py-spy"
            out = tmp / "profile.txt"
            profiler = await asyncio.create_subprocess_exec(
                pyspy, "record", "-p", str(proc.pid), "-d", str(args.profile), "-r", "500", "--nonblocking",
                "-f", "raw", "-o", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1.0)

        sem = asyncio.Semaphore(args.concurrency)
        commands: list[int] = []

        async def one(i: int) -> None:
            if args.rate:
                await asyncio.sleep(i / args.rate)  # calls arriving at a steady rate, as in production
            async with sem:
                c = await run_call(agi_port, menu_call())
                commands.append(len(c.commands))
                if c.dials != ["Local/GM0664@kcc"]:
                    raise RuntimeError(f"call went wrong: {c.commands}")

        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.gather(*(one(i) for i in range(args.calls)))
        wall = time.monotonic() - w0
        used = cpu_seconds(proc.pid) - c0 - idle * wall
        pace = f"{args.rate:g} calls/s started" if args.rate else f"{args.concurrency} at once"
        print(f"router CPU per call, fake Asterisk ({args.calls} menu calls, {pace})")
        print(f"  AGI commands per call              {sum(commands) / len(commands):.1f}")
        print(f"  calls/s through the router          {args.calls / wall:.0f}")
        print(f"  router CPU per call                 {used / args.calls * 1000:.2f} ms")
        print(f"  router idle CPU                     {idle * 1000:.1f} ms/s")
        print(f"  AMI                                 {'sandbox (enrichment on)' if args.ami else 'none'}")
        if profiler is not None:
            await profiler.wait()
            print(f"  profile: {tmp / 'profile.txt'} (py-spy raw)")
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
        log.close()
        if not args.profile:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rate", type=float, default=0.0, help="calls started per second (0: at once)")
    ap.add_argument("--ami", action="store_true", help="use the sandbox's AMI (it must be up)")
    ap.add_argument("--profile", type=int, default=0, metavar="SECONDS", help="py-spy for that long")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
