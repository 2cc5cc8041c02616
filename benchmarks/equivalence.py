"""Measure the equivalence check (issue 14) on a generated account: time per endpoint, per target.

    python benchmarks/equivalence.py              # 10,000 endpoints, best of 5 runs
    python benchmarks/equivalence.py --endpoints 100000 --runs 3

For each target ``build_plan`` (which runs the check for every endpoint no other error blocks) is timed with
the check and without it (``bridge.plan.check_endpoint`` replaced by a no-op), interleaved, so that a busy
machine slows both alike; the difference is the check's cost. Also printed: the plan's equivalence counts
(proved equivalent, equivalent with frozen lists, differing as reported, not equivalent).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import bridge.plan
from bridge.emulator.generate import generate_account
from bridge.plan import build_plan
from bridge.snapshot import parse_snapshot
from bridge.tables import build_tables, bundled_tables


def _no_check(*_args: Any, **_kwargs: Any) -> tuple[None, list[Any]]:
    return None, []


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the equivalence check on a generated account.")
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    snap = parse_snapshot(generate_account(args.endpoints, seed=args.seed))
    tables = build_tables(pools=snap.pools) if snap.pools else bundled_tables()
    print(f"{args.endpoints} endpoints, best of {args.runs} runs")
    check = getattr(bridge.plan, "check_endpoint")  # noqa: B009 (replaced below, restored after)
    for target in ("v1", "v2"):
        with_best = without_best = float("inf")
        plan = None
        for _ in range(args.runs):
            start = time.perf_counter()
            plan = build_plan(snap.endpoints, tables, target=target, generated_at="2026-01-01T00:00:00Z")
            with_best = min(with_best, time.perf_counter() - start)
            setattr(bridge.plan, "check_endpoint", _no_check)  # noqa: B010
            try:
                start = time.perf_counter()
                build_plan(snap.endpoints, tables, target=target, generated_at="2026-01-01T00:00:00Z")
                without_best = min(without_best, time.perf_counter() - start)
            finally:
                setattr(bridge.plan, "check_endpoint", check)  # noqa: B010
        assert plan is not None
        s = plan.summary
        cost = max(with_best - without_best, 0.0)
        print(
            f"{target}: build_plan {with_best:.3f} s with the check, {without_best:.3f} s without: the check costs "
            f"{cost:.3f} s = {cost / max(s.endpoints, 1) * 1e6:.1f} us per endpoint; equivalent {s.equivalent}, "
            f"with frozen lists {s.equivalent_frozen}, differing as reported {s.explained}, "
            f"not equivalent {s.not_equivalent}, blocked by other errors {s.blocked - s.not_equivalent}"
        )


if __name__ == "__main__":
    main()
