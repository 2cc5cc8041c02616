"""Measure the equivalence check (issue 14) on a generated account: time per endpoint, per target.

    python benchmarks/equivalence.py              # 10,000 endpoints, best of 5 runs
    python benchmarks/equivalence.py --endpoints 100000 --runs 3

For each target the plan is built and timed (for scale), then ``legacy_selection`` + ``rest_selection`` +
``compare`` run over every unblocked endpoint with the garbage collector paused, as ``build_plan`` pauses it.
The two are timed interleaved, so that a busy machine slows both alike; the check's cost is also given as a
share of ``build_plan``'s. Also printed: how many endpoints were proved equivalent, equivalent with frozen
lists, differing but explained by a finding, and not equivalent.
"""

from __future__ import annotations

import argparse
import gc
import time

from bridge import build_plan
from bridge.emulator.generate import generate_account
from bridge.equivalence import compare, legacy_selection, rest_selection, unexplained
from bridge.snapshot import parse_snapshot
from bridge.tables import build_tables, bundled_tables


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the equivalence check on a generated account.")
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    snap = parse_snapshot(generate_account(args.endpoints, seed=args.seed))
    tables = build_tables(pools=snap.pools) if snap.pools else bundled_tables()
    print(f"{args.endpoints} endpoints, best of {args.runs} runs")
    for target in ("v1", "v2"):
        plan = build_plan(snap.endpoints, tables, target=target)
        pairs = [(ep, item) for ep, item in zip(snap.endpoints, plan.endpoints, strict=True) if not item.blocked]
        check_best = plan_best = float("inf")
        results = []
        for _ in range(args.runs):
            start = time.perf_counter()
            build_plan(snap.endpoints, tables, target=target, generated_at="2026-01-01T00:00:00Z")
            plan_best = min(plan_best, time.perf_counter() - start)
            gc.disable()
            start = time.perf_counter()
            results = [
                compare(legacy_selection(ep, tables), rest_selection(item.body, target, tables)) for ep, item in pairs
            ]
            check_best = min(check_best, time.perf_counter() - start)
            gc.enable()
        proved = sum(eq.equivalent and not eq.frozen for eq in results)
        frozen = sum(eq.equivalent and bool(eq.frozen) for eq in results)
        explained = sum(
            not eq.equivalent and not unexplained(eq, item.findings)
            for eq, (_, item) in zip(results, pairs, strict=True)
        )
        print(
            f"{target}: {len(pairs)} unblocked; check {check_best:.3f} s = "
            f"{check_best / len(pairs) * 1e6:.1f} us per endpoint, {check_best / plan_best:.0%} of build_plan "
            f"({plan_best:.3f} s); equivalent {proved}, with frozen lists {frozen}, differing but explained "
            f"{explained}, not equivalent {len(results) - proved - frozen - explained}"
        )


if __name__ == "__main__":
    main()
