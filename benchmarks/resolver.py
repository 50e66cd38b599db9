#!/usr/bin/env python3
"""Resolver speed: time per utterance, within one area code and across all places in the country.

Prints p50/p90/p99/max per workload and the ratio to the targets (25 µs within an area code, 1 ms across
all places). Figures, not assertions: run it on the machine you care about.

    .venv/bin/python benchmarks/resolver.py [--seed 1] [--n 3000]
"""

from __future__ import annotations

import argparse
import csv
import gc
import random
import statistics
import time
from pathlib import Path

from fourteen.numberplan import NumberPlan, default_data_dir
from fourteen.resolver import Resolver

TARGET_AREA_US = 25.0
TARGET_ALL_US = 1000.0


def garble(name: str, rng: random.Random) -> str:
    """An ASR-like error: drop, double or swap one letter."""
    s = name.lower()
    if len(s) < 4:
        return s
    i = rng.randrange(1, len(s) - 1)
    op = rng.choice(("drop", "double", "swap"))
    if op == "drop":
        return s[:i] + s[i + 1 :]
    if op == "double":
        return s[:i] + s[i] + s[i:]
    return s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :]


def measure(resolver: Resolver, cases: list[tuple[str, str]], repeat: int = 3) -> list[float]:
    for code, said in cases[:200]:  # warm caches (per-area indexes, token folding)
        resolver.resolve(code, said)
    times = []
    gc.disable()
    try:
        for _ in range(repeat):
            for code, said in cases:
                t0 = time.perf_counter_ns()
                resolver.resolve(code, said)
                times.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return times


def pct(values: list[float], p: float) -> float:
    return (
        statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1] if len(values) > 1 else 0.0
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=3000, help="utterances per workload")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    t0 = time.perf_counter()
    plan = NumberPlan.from_csv(default_data_dir())
    resolver = Resolver(plan)
    build_ms = (time.perf_counter() - t0) * 1000

    within_exact, within_garbled, across_exact, across_garbled = [], [], [], []
    codes = sorted(plan.area_codes)
    for _ in range(args.n):
        code = rng.choice(codes)
        m = rng.choice(plan.members(code))
        names = [m.name_short] + [p.name for p in plan.places_of(m.cbs_code)]
        name = rng.choice(names)
        within_exact.append((code, rng.choice(("{}", "ik wil naar {}", "eh gemeente {}")).format(name)))
        within_garbled.append((code, garble(name, rng)))
        place = rng.choice(plan.places)
        other = rng.choice([c for c in codes if place.cbs_code not in {x.cbs_code for x in plan.members(c)}])
        across_exact.append((other, place.name))
        across_garbled.append((other, garble(place.name, rng)))
    evalset = []
    with (Path(__file__).resolve().parents[1] / "tests" / "data" / "utterances.csv").open(
        encoding="utf-8"
    ) as fh:
        evalset = [(r["area_code"], r["utterance"]) for r in csv.DictReader(fh)]

    print(
        f"resolver: {len(plan.municipalities)} municipalities, {len(plan.places)} places, "
        f"{len(plan.aliases)} aliases; index built in {build_ms:.0f} ms"
    )
    print(f"{'workload':<44} {'n':>6} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'max µs':>8}  target")
    rows = [
        ("within one area code: names/villages", within_exact, TARGET_AREA_US),
        ("within one area code: ASR-garbled", within_garbled, TARGET_AREA_US),
        ("across all places: named elsewhere", across_exact, TARGET_ALL_US),
        ("across all places: garbled, elsewhere", across_garbled, TARGET_ALL_US),
        ("evaluation set (tests/data/utterances.csv)", evalset, TARGET_ALL_US),
    ]
    for label, cases, target in rows:
        t = measure(resolver, cases)
        p50, p90, p99 = pct(t, 50), pct(t, 90), pct(t, 99)
        print(
            f"{label:<44} {len(t):>6} {p50:>8.1f} {p90:>8.1f} {p99:>8.1f} {max(t):>8.1f}  "
            f"{target:.0f} µs: p50 {p50 / target:.2f}×, p99 {p99 / target:.2f}×"
        )


if __name__ == "__main__":
    main()
