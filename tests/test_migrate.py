"""`bridge migrate` end to end against the emulator: one shot, resumable after SIGKILL, reversible."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import BRIDGE, SAMPLE, SECRET_MARK, run_bridge

from bridge.emulator import Emulator, Faults, generate_account
from bridge.journal import read_journal

KEY = "test-key-MIGRATE-0123456789"
run = functools.partial(run_bridge, key=KEY)


def journal_events(state_dir: Path) -> list[list[dict[str, Any]]]:
    return [list(read_journal(p)) for p in sorted(state_dir.glob("journal-*.jsonl"))]


def test_migrate_sample_then_nothing_left(tmp_path: Path) -> None:
    """migrate --yes brings the sample to its plan (blocked ones untouched, exit 3); a second run writes nothing."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        first = run(emu, tmp_path, "migrate", "--yes")
        assert first.returncode == 3, first.stderr
        writes = emu.write_counts()
        assert writes and all(n == 1 for n in writes.values())
        assert not {"typo0pool00007", "badcpu00000013"} & set(writes)
        second = run(emu, tmp_path, "migrate", "--yes", "--format", "json")
        assert second.returncode == 3
        assert emu.write_counts() == writes
        summary = json.loads(second.stdout)["summary"]
        assert summary["updated"] == 0 and summary["unchanged"] == 9
        check = run(emu, tmp_path, "plan", "--check", "--endpoint", "i02xupws21hp6i")
        assert check.returncode == 0, check.stdout
        for out in (first, second):
            assert KEY not in out.stdout + out.stderr and SECRET_MARK not in out.stdout + out.stderr


def test_migrate_without_consent_writes_nothing(tmp_path: Path) -> None:
    """Without --yes and without a terminal, migrate writes nothing and exits 2."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        proc = run(emu, tmp_path, "migrate")
        assert proc.returncode == 2 and "--yes" in proc.stderr
        assert emu.write_counts() == {}
        assert not list((tmp_path / "bridge-state").glob("*.json*"))  # no backup, no journal: only the lock


def test_migrate_dry_run(tmp_path: Path) -> None:
    """--dry-run prints the plan and writes nothing."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        proc = run(emu, tmp_path, "migrate", "--dry-run")
        assert proc.returncode == 3 and "to update" in proc.stdout
        assert emu.write_counts() == {}


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_writes", [0, 5, 40])
def test_sigkill_then_resume(tmp_path: Path, kill_after_writes: int) -> None:
    """SIGKILL mid-run, then a second run completes; no endpoint confirmed by the first is written again."""
    doc = generate_account(120, seed=11)
    with Emulator(doc, api_key=KEY, faults=Faults(latency_ms=15)) as emu:
        env = {**os.environ, **emu.env, "RUNPOD_API_KEY": KEY}
        proc = subprocess.Popen(
            [BRIDGE, "migrate", "--yes", "--concurrency", "2", "--quiet"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if kill_after_writes == 0 and emu.requests:
                break
            if kill_after_writes and sum(emu.write_counts().values()) >= kill_after_writes:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        after_kill = emu.write_counts()
        state_dir = tmp_path / "bridge-state"
        confirmed = {
            e["endpoint"]
            for events in journal_events(state_dir)
            if state_dir.exists()
            for e in events
            if e["event"] == "outcome" and e["status"] == "updated"
        }
        for backup in state_dir.glob("backup-*.json") if state_dir.exists() else ():
            json.loads(backup.read_text())  # never a half-written backup
        second = run(emu, tmp_path, "migrate", "--yes", "--concurrency", "8", "--format", "json")
        assert second.returncode == 0, second.stderr
        final = emu.write_counts()
        for endpoint_id in confirmed:
            assert final[endpoint_id] == after_kill[endpoint_id], endpoint_id
        assert all(n <= 2 for n in final.values())
        third = run(emu, tmp_path, "plan", "--check")
        assert third.returncode == 0, third.stdout[-2000:]


@pytest.mark.slow
def test_migrate_past_the_400_cap(tmp_path: Path) -> None:
    """An account of 450 endpoints is migrated whole (GraphQL returns only 400)."""
    doc = generate_account(450, seed=2)
    with Emulator(doc, api_key=KEY) as emu:
        proc = run(emu, tmp_path, "migrate", "--yes", "--concurrency", "16", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert len(result["endpoints"]) == 450 and result["summary"]["failed"] == 0
        assert run(emu, tmp_path, "plan", "--check").returncode == 0


def test_rollback_cli_restores(tmp_path: Path) -> None:
    """`bridge rollback BACKUP --yes` puts the names and settings back; plan then shows the work again."""
    with Emulator(SAMPLE, api_key=KEY) as emu:
        before = emu.v1_view("i02xupws21hp6i")["name"]
        assert run(emu, tmp_path, "migrate", "--yes").returncode == 3
        assert emu.v1_view("i02xupws21hp6i")["name"] == "Generated Endpoint"
        (backup,) = (tmp_path / "bridge-state").glob("backup-*.json")
        undo = run(emu, tmp_path, "rollback", str(backup), "--yes")
        assert undo.returncode == 0, undo.stdout + undo.stderr
        assert emu.v1_view("i02xupws21hp6i")["name"] == before
        again = run(emu, tmp_path, "rollback", str(backup), "--yes", "--format", "json")
        assert json.loads(again.stdout)["summary"]["updated"] == 0


def test_run_migration_asks_before_writing_and_stops_when_refused(tmp_path: Path) -> None:
    """The library migration hands the plan and notes to confirm; False writes nothing, True applies the plan."""
    from bridge.config import Settings
    from bridge.migrate import run_migration
    from bridge.models import Plan

    seen: list[Plan] = []

    def refuse(plan: Plan, notes: Any) -> bool:
        seen.append(plan)
        return False

    with Emulator(SAMPLE, api_key=KEY) as emu:
        settings = Settings.resolve(environ={**emu.env, "RUNPOD_API_KEY": KEY})
        dry = run_migration(settings, confirm=refuse, state_dir=tmp_path / "state")
        assert dry.result is None and seen == [dry.plan]
        assert emu.write_counts() == {} and not list((tmp_path / "state").glob("*.json*"))
        done = run_migration(settings, confirm=lambda plan, notes: True, state_dir=tmp_path / "state")
        assert done.result is not None
        counts = done.result.counts()
        assert counts["updated"] == dry.plan.summary.update == len(emu.write_counts())
        assert counts["blocked"] == dry.plan.summary.blocked
        assert done.result.journal_path.parent == tmp_path / "state"
