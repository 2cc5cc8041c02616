"""A smoke run of the benchmark command: it keeps working and its correctness checks pass (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_run_checks_every_result(tmp_path: Path) -> None:
    """`benchmarks/run.py --quick` runs every scenario, passes every correctness check and prints the table."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All correctness checks passed" in done.stdout
    assert "| scenario | target | median | min | max | baseline (median) | ratio | met |" in done.stdout
    for scenario in ("offline plan", "start-up", "live migrate", "rate limit", "CPU per request"):
        assert scenario in done.stdout
