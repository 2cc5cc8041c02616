"""`bridge migrate --target v2` end to end against the emulator's REST v2: exact, minimal, paced, reversible."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE, SECRET_MARK, run_bridge

from bridge.emulator import Emulator, Faults, generate_account
from bridge.targets import V2
from bridge.targets.base import diff

KEY = "test-key-MIGRATE-V2-0123456789"
run = functools.partial(run_bridge, key=KEY)


def plan_of(emu: Emulator, cwd: Path) -> dict[str, Any]:
    proc = run(emu, cwd, "plan", "--target", "v2", "--format", "json")
    assert proc.returncode in (0, 3), proc.stderr
    plan: dict[str, Any] = json.loads(proc.stdout)
    return plan


def assert_at_target(plan: dict[str, Any], emu: Emulator) -> None:
    """Every unblocked endpoint's v2 view equals its planned body (nested, lists compared as sets)."""
    for ep in plan["endpoints"]:
        if ep["status"] != "blocked":
            view = V2.normalize_state(emu.v2_view(ep["id"]))
            assert diff(ep["body"], view, V2.set_fields) == [], ep["id"]


def v2_patches(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == "PATCH" and r["path"].startswith("/v2/serverless/")]


def test_migrate_v2_sample_exactly_then_nothing_left_then_rollback(tmp_path: Path) -> None:
    """The sample migrates over v2 to its plan, only blocked ones left; a re-run writes nothing; rollback undoes it."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        before = {ep_id: emu.v2_view(ep_id) for ep_id in emu.state}
        plan = plan_of(emu, tmp_path)
        to_update = {ep["id"] for ep in plan["endpoints"] if ep["status"] == "update"}
        first = run(emu, tmp_path, "migrate", "--target", "v2", "--yes")
        assert first.returncode == 3, first.stderr
        assert set(emu.write_counts()) == to_update and all(n == 1 for n in emu.write_counts().values())
        assert not any(r["path"].startswith("/v1/") and r["method"] != "GET" for r in emu.requests)
        assert_at_target(plan, emu)
        writes = emu.write_counts()
        second = run(emu, tmp_path, "migrate", "--target", "v2", "--yes", "--format", "json")
        assert second.returncode == 3 and emu.write_counts() == writes
        assert json.loads(second.stdout)["summary"]["updated"] == 0
        (backup,) = (tmp_path / "bridge-state").glob("backup-*.json")
        undo = run(emu, tmp_path, "rollback", str(backup), "--yes", "--target", "v2")
        assert undo.returncode == 0, undo.stdout + undo.stderr
        for ep_id in to_update:
            restored = V2.normalize_state(emu.v2_view(ep_id))
            assert diff(V2.normalize_state(before[ep_id]), restored, V2.set_fields) == [], ep_id
        for out in (first, second, undo):
            assert KEY not in out.stdout + out.stderr and SECRET_MARK not in out.stdout + out.stderr


def test_migrate_v2_keeps_exclusions(tmp_path: Path) -> None:
    """Every v2 PATCH that sends gpu.pools restates gpu.excludedTypes, so no exclusion is cleared."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        assert run(emu, tmp_path, "migrate", "--target", "v2", "--yes").returncode == 3
        patches = v2_patches(emu)
        gpu_patches = [p for p in patches if "pools" in (json.loads(p["body"]).get("gpu") or {})]
        assert gpu_patches and all("excludedTypes" in json.loads(p["body"])["gpu"] for p in gpu_patches)
        # sdxl-worker-fb selects "AMPERE_48,-NVIDIA RTX A6000"; its rename is written, its exclusion survives
        assert "sdxl0worker0ab" in emu.write_counts()
        assert emu.v2_view("sdxl0worker0ab")["gpu"]["excludedTypes"] == ["NVIDIA RTX A6000"]


@pytest.mark.slow
def test_migrate_v2_large_account_past_the_400_cap(tmp_path: Path) -> None:
    """A generated account of 450 endpoints is migrated whole over v2 and ends exactly at its plan."""
    doc = generate_account(450, seed=5)
    with Emulator(doc, api_key=KEY) as emu:
        plan = plan_of(emu, tmp_path)
        assert len(plan["endpoints"]) == 450
        proc = run(emu, tmp_path, "migrate", "--target", "v2", "--yes", "--concurrency", "16", "--format", "json")
        assert proc.returncode in (0, 3), proc.stderr
        assert json.loads(proc.stdout)["summary"]["failed"] == 0
        assert_at_target(plan, emu)
        assert all(n == 1 for n in emu.write_counts().values())
        assert run(emu, tmp_path, "plan", "--target", "v2", "--check").returncode in (0, 3)


def test_migrate_v2_under_rate_limit_paces_from_headers(tmp_path: Path) -> None:
    """Under a v2 rate limit every endpoint still lands once, and RateLimit headers keep 429s rare."""
    doc = generate_account(60, seed=9)
    with Emulator(doc, api_key=KEY, faults=Faults(rate_limit=40)) as emu:
        plan = plan_of(emu, tmp_path)
        proc = run(emu, tmp_path, "migrate", "--target", "v2", "--yes", "--concurrency", "16", "--format", "json")
        assert proc.returncode in (0, 3), proc.stderr
        assert json.loads(proc.stdout)["summary"]["failed"] == 0
        assert_at_target(plan, emu)
        v2 = [r for r in emu.requests if r["path"].startswith("/v2/")]
        limited = [r for r in v2 if r["status"] == 429]
        assert len(limited) <= len(v2) // 4, (len(limited), len(v2))


def test_migrate_dry_run_json_is_the_plan(tmp_path: Path) -> None:
    """migrate --dry-run --format json prints the plan as JSON (SPEC §6) and writes nothing."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        proc = run(emu, tmp_path, "migrate", "--dry-run", "--target", "v2", "--format", "json")
        assert proc.returncode == 3, proc.stderr
        plan = json.loads(proc.stdout)
        assert plan["format_version"] == 1 and plan["target"] == "v2" and len(plan["endpoints"]) == 16
        assert emu.write_counts() == {}
