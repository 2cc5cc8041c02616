"""Fault soak: `bridge migrate` over an account with 503s, dropped writes, a rate limit and latency, all at once.

The account is generated so that nearly every endpoint needs a write, with some blocked. `migrate --yes` is
run as a user would, again after any run that ends with failures (a read given up after 5 attempts, a write
after 3), until nothing fails. Then:

- every unblocked endpoint is exactly at the body the offline plan of the same account gives it;
- no endpoint was applied more than once over all runs (a dropped write is found applied by the re-read),
  no run sent an endpoint more than 3 write attempts, and no blocked endpoint was ever written;
- the journals account for every write attempt: per endpoint and run, the journal's ``attempt`` lines equal
  the writes the emulator received and answered with anything but 429 (a 429 is refused before anything
  is applied, and the HTTP layer sends it again within the same attempt), and every applied write is one
  of them.

Both targets: v1 (CI: 150 endpoints) against a limit no answer announces (``Faults.rate_headers=False``), so
that only 429s tell bridge the limit (when the v2 catalog answers announce the per-user windows, bridge stays
under them on v1 too); and v2 (CI: 60), where the RateLimit headers usually keep bridge under the limit without
a single 429. ``BRIDGE_FULL=1`` runs 1,000 endpoints on each and prints the figures quoted
in the README.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import run_bridge

from bridge.emulator import Emulator, Faults, generate_account
from bridge.journal import read_journal
from bridge.plan import build_plan
from bridge.snapshot import parse_snapshot
from bridge.tables import build_tables
from bridge.targets import get_target
from bridge.targets.base import diff

KEY = "test-key-SOAK-0123456789"
FULL = bool(os.environ.get("BRIDGE_FULL"))
ENDPOINTS = 1000 if FULL else 150
FAULTS = Faults(latency_ms=3, rate_limit=60, fail_every=7, drop_every=5)


def soak_account(n: int) -> dict[str, Any]:
    """A generated account where nearly every endpoint needs a write; 5% are blocked."""
    return generate_account(n, seed=2026, blocked_fraction=0.05, fb_suffix=True)


def is_write(entry: dict[str, Any]) -> bool:
    v1 = entry["api"] == "v1" and entry["method"] == "POST" and entry["path"].endswith("/update")
    return v1 or (entry["api"] == "v2" and entry["method"] == "PATCH")


def endpoint_of(entry: dict[str, Any]) -> str:
    return str(entry["path"].split("/")[3])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["v1", "v2"])
def test_fault_soak(tmp_path: Path, target: str) -> None:
    """Under 503s, dropped writes, 429s and latency at once, every endpoint ends exactly as planned, written once."""
    size = ENDPOINTS if target == "v1" or FULL else 60
    doc = soak_account(size)
    snap = parse_snapshot(doc)
    plan = build_plan(snap.endpoints, build_tables(pools=snap.pools), target=target, generated_at="soak")  # type: ignore[arg-type]
    unblocked = {ep.id: ep.body for ep in plan.endpoints if ep.status != "blocked"}
    blocked = {ep.id for ep in plan.endpoints if ep.status == "blocked"}
    assert len(unblocked) > 0.85 * size and blocked
    figures: Counter[str] = Counter()
    faults = FAULTS if target == "v2" else replace(FAULTS, rate_headers=False)
    with Emulator(doc, api_key=KEY, faults=faults, log_limit=None) as emu:
        applied_before: dict[str, int] = {}
        for _ in range(6):
            seen = len(emu.requests)
            args = ("migrate", "--yes", "--format", "json", "--concurrency", "8", "--target", target)
            proc = run_bridge(emu, tmp_path, *args, key=KEY, timeout=1800)
            assert proc.returncode in (1, 3), proc.stderr[-2000:]
            result = json.loads(proc.stdout)
            assert result["stopped"] is None, result["stopped"]
            log = emu.requests[seen:]
            applied = emu.write_counts()
            # The journal accounts for every write attempt of this run, endpoint by endpoint.
            events = list(read_journal(tmp_path / result["journal"]))
            attempts = Counter(e["endpoint"] for e in events if e["event"] == "attempt")
            answered = Counter(endpoint_of(e) for e in log if is_write(e) and e["status"] != 429)
            landed = Counter(endpoint_of(e) for e in log if is_write(e) and (e["status"] == 200 or e["dropped"]))
            assert attempts == answered
            for endpoint_id, n in applied.items():
                assert n - applied_before.get(endpoint_id, 0) == landed[endpoint_id], endpoint_id
            assert all(n <= 3 for n in attempts.values())
            outcomes = Counter(e["status"] for e in events if e["event"] == "outcome")
            assert outcomes["updated"] + outcomes["unchanged"] + outcomes["failed"] + outcomes["blocked"] == size
            applied_before = applied
            figures["runs"] += 1
            figures["requests"] += len(log)
            figures["503"] += sum(1 for e in log if e["status"] == 503)
            figures["429"] += sum(1 for e in log if e["status"] == 429)
            figures["dropped"] += sum(1 for e in log if e["dropped"])
            figures["failed in a run"] += result["summary"]["failed"]
            if result["summary"]["failed"] == 0:
                break
        assert result["summary"]["failed"] == 0, [e for e in result["endpoints"] if e["status"] == "failed"][:5]
        assert proc.returncode == 3  # the blocked endpoints remain, nothing else
        final = emu.write_counts()
        assert set(final) == set(unblocked) and not set(final) & blocked
        assert all(n == 1 for n in final.values()), {k: n for k, n in final.items() if n != 1}
        emu.faults = Faults()
        rest = get_target(target)
        for endpoint_id, body in unblocked.items():
            view = emu.v1_view(endpoint_id) if target == "v1" else emu.v2_view(endpoint_id)
            assert diff(body, rest.normalize_state(view), rest.set_fields) == [], endpoint_id
    assert figures["503"] > 0 and figures["dropped"] > 0
    # v2 announces its quota in RateLimit headers and bridge stays under it; here v1's limit is said only by 429s
    # (the short CI run on a busy machine may stay under 60 requests/s on its own).
    assert figures["429"] > 0 or target == "v2" or not FULL
    print(
        f"\nsoak ({target}): {size} endpoints ({len(unblocked)} written, {len(blocked)} blocked), "
        f"{figures['runs']} runs, "
        f"{figures['requests']} requests; faults: {figures['503']} x 503, {figures['dropped']} dropped writes, "
        f"{figures['429']} x 429, {FAULTS.latency_ms:.0f} ms latency on every request; "
        f"{figures['failed in a run']} endpoint failures finished by a later run; every endpoint written once"
    )
