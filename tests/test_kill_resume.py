"""SIGKILL `bridge migrate` at many points of a run; a second run always finishes the migration.

The kill points are reached deterministically by ``kill_harness.py``, which wraps bridge's library calls
from outside and SIGKILLs its own process (early requests, the GraphQL reads, before and after writes,
the read-back verification, halfway through the backup file, before its rename, and halfway through a
journal line). After every kill:

- the journal has at most one torn line, its last, and ``read_journal`` reads the rest;
- every ``backup-*.json`` is whole and loads; a half-written temporary backup is only ever a hidden
  ``.backup-*.tmp``, and the next run removes it;
- a second, normal ``migrate`` exits 0, writes no endpoint the first run confirmed, and no endpoint is
  written more than once over both runs (there are no faults: a write that landed is found by the re-read);
- ``plan --check`` then finds nothing left to do.

``BRIDGE_FULL=1`` sweeps many more points (every request up to the end of the run, every write, every
read-back and journal line in steps) and prints how many kills were survived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import BRIDGE, run_bridge

from bridge.emulator import Emulator, Faults, generate_account
from bridge.journal import load_backup, read_journal

KEY = "test-key-KILL-0123456789"
HARNESS = str(Path(__file__).resolve().parent / "kill_harness.py")
FULL = bool(os.environ.get("BRIDGE_FULL"))
ENDPOINTS = 40


def account() -> dict[str, Any]:
    """A generated account where every unblocked endpoint needs a write (a legacy `-fb` name to clean up)."""
    return generate_account(ENDPOINTS, seed=23, blocked_fraction=0.1, fb_suffix=True)


def migrate(emu: Emulator, cwd: Path, point: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `migrate --yes`, under the kill harness when a point is given."""
    head = [sys.executable, HARNESS, point] if point else [BRIDGE]
    return run_bridge(emu, cwd, "migrate", "--yes", "--quiet", "--concurrency", "4", *extra, key=KEY, command=head)


def confirmed(state_dir: Path) -> set[str]:
    """Endpoints a journal says were written and verified."""
    return {
        e["endpoint"]
        for path in state_dir.glob("journal-*.jsonl")
        for e in read_journal(path)
        if e["event"] == "outcome" and e["status"] == "updated"
    }


def check_state_files(state_dir: Path) -> int:
    """Journals: only a last line may be torn. Backups: whole. Returns the number of torn lines seen."""
    torn = 0
    for path in state_dir.glob("journal-*.jsonl"):
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        for line in lines[:-1]:
            json.loads(line)  # every finished line parses
        if lines[-1]:
            torn += 1  # the unfinished last line of a killed run
        list(read_journal(path))
    for path in state_dir.glob("backup-*.json"):
        load_backup(path)
    return torn


def kill_and_resume(tmp_path: Path, point: str, target: str = "v1") -> dict[str, Any]:
    """Kill a migration at ``point``, check its state, resume it, check the result."""
    doc = account()
    with Emulator(doc, api_key=KEY, faults=Faults(latency_ms=1)) as emu:
        first = migrate(emu, tmp_path, point, "--target", target)
        assert first.returncode == -9, f"{point} was never reached: exit {first.returncode} {first.stderr[-500:]}"
        after_kill = emu.write_counts()
        state_dir = tmp_path / "bridge-state"
        done = confirmed(state_dir) if state_dir.exists() else set()
        torn = check_state_files(state_dir) if state_dir.exists() else 0
        second = migrate(emu, tmp_path, None, "--format", "json", "--target", target)
        assert second.returncode == 3, second.stderr[-2000:]  # 3: the blocked endpoints remain
        result = json.loads(second.stdout)
        assert result["summary"]["failed"] == 0 and result["summary"]["not-attempted"] == 0
        final = emu.write_counts()
        for endpoint_id in done:
            assert final[endpoint_id] == after_kill[endpoint_id], f"{endpoint_id} was written again"
        assert all(n == 1 for n in final.values()), {k: n for k, n in final.items() if n != 1}
        assert not list(state_dir.glob(".*.tmp")), "a half-written temporary file was left behind"
        check_state_files(state_dir)
        env = {**os.environ, **emu.env, "RUNPOD_API_KEY": KEY}
        check = subprocess.run(
            [BRIDGE, "plan", "--check", "--target", target], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert check.returncode == 3 and "0 to update" in check.stdout.replace("update: 0", "0 to update"), check.stdout
        return {"writes_before_kill": sum(after_kill.values()), "confirmed": len(done), "torn": torn}


POINTS = [
    "request:1",  # before anything is read
    "request:3",  # during the live read
    "write-before:1",  # right after the backup, before the first write
    "write-after:1",  # the first write landed, its outcome not journaled
    "write-after:9",  # mid-flight: writes and read-backs in progress
    "verify:1",  # every write answered, before the run's final read-back
    "backup-partial",  # halfway through the backup file
    "backup-unrenamed",  # the backup complete but not yet in place
    "journal-torn:7",  # halfway through a journal line
]


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_kill_then_resume(tmp_path: Path, point: str) -> None:
    """SIGKILL at this point, then a normal run finishes; nothing confirmed is written again; files are whole."""
    kill_and_resume(tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["write-after:5", "verify:1", "backup-partial"])
def test_kill_then_resume_v2(tmp_path: Path, point: str) -> None:
    """The same on REST v2: SIGKILL, then a normal run finishes; nothing confirmed is written again."""
    kill_and_resume(tmp_path, point, target="v2")


def test_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    """A journal whose last line was cut by a kill is still read, without that line."""
    path = tmp_path / "journal-x.jsonl"
    path.write_text('{"event": "run-start"}\n{"event": "attempt", "endpoint": "a"}\n{"event": "outc')
    assert [e["event"] for e in read_journal(path)] == ["run-start", "attempt"]


def test_a_second_run_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    """While one run holds the state directory, another (another thread: another run) is refused (exit 2)
    rather than racing it; the same run entering it again (the lock taken before its live read) is not."""
    from concurrent.futures import ThreadPoolExecutor

    from bridge.errors import InputError
    from bridge.journal import StateLock

    def other_run() -> None:
        with StateLock(tmp_path):
            pass

    with StateLock(tmp_path), ThreadPoolExecutor(1) as pool:
        with pytest.raises(InputError, match="another bridge run") as info:
            pool.submit(other_run).result()
        assert info.value.exit_code == 2
        with StateLock(tmp_path):  # the same run: nested, takes nothing
            pass
        with pytest.raises(InputError, match="another bridge run"):  # still held after the nested exit
            pool.submit(other_run).result()
    with StateLock(tmp_path):  # released: usable again
        pass


def test_leftover_temporary_backup_is_removed(tmp_path: Path) -> None:
    """A `.backup-*.tmp` a killed run left behind is removed when the next run takes the state directory."""
    from bridge.journal import StateLock

    leftover = tmp_path / ".backup-20261124T000000.000000Z.json.abc123.tmp"
    leftover.write_text('{"format": "bridge-bac')
    with StateLock(tmp_path):
        assert not leftover.exists()


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full kill sweep runs with BRIDGE_FULL=1")
def test_kill_sweep(tmp_path: Path) -> None:
    """Kill at every other request of a run, before and after every write, before the run's read-back, journal
    lines in steps; v2 writes too."""
    probe = tmp_path / "probe"
    probe.mkdir()
    with Emulator(account(), api_key=KEY) as emu:
        assert migrate(emu, probe, None).returncode == 3
        total = len(emu.requests)
        writes = sum(emu.write_counts().values())
    points = [f"request:{n}" for n in range(1, total + 1, 2)]
    points += [f"write-before:{n}" for n in range(1, writes + 1)]
    points += [f"write-after:{n}" for n in range(1, writes + 1)]
    points += ["verify:1"]  # one list read-back verifies the whole run
    points += [f"journal-torn:{n}" for n in range(1, 2 * writes + 8, 3)]
    points += ["backup-partial", "backup-unrenamed"]
    cases = [(point, "v1") for point in points]
    cases += [(f"write-after:{n}", "v2") for n in range(1, writes + 1, 2)] + [("verify:1", "v2")]
    survived = 0
    for index, (point, target) in enumerate(cases):
        case = tmp_path / f"case{index}"
        case.mkdir()
        kill_and_resume(case, point, target)
        survived += 1
    print(
        f"\nkill sweep: {survived} kills survived ({len(points)} on v1, {len(cases) - len(points)} on v2; "
        f"{total} requests and {writes} writes per v1 run, {ENDPOINTS} endpoints)"
    )
    assert survived == len(cases)


def test_unusable_state_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    """A --state-dir that is a file (or cannot be created) is one line naming it, exit 2; nothing is written."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with Emulator(account(), api_key=KEY) as emu:
        env = {**os.environ, **emu.env, "RUNPOD_API_KEY": KEY}
        proc = subprocess.run(
            [BRIDGE, "migrate", "--yes", "--state-dir", str(blocker / "state")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("bridge: error:")]
        assert len(errors) == 1 and str(blocker) in errors[0] and "Traceback" not in proc.stderr
        assert emu.write_counts() == {}


def test_backup_that_cannot_be_written_stops_before_any_write(tmp_path: Path) -> None:
    """When the backup cannot be written, the run ends with one line naming it (exit 1) and sends no write."""
    import asyncio

    from bridge.apply import WorkItem, run_items
    from bridge.errors import BridgeError
    from bridge.targets import V1

    class Api:
        writes = 0

        async def list_endpoints(self) -> list[dict[str, Any]]:
            return [{"id": "ep1", "name": "old"}]

        async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
            return {"id": endpoint_id, "name": "old"}

        async def send_update(self, endpoint_id: str, body: Any) -> dict[str, Any]:
            Api.writes += 1
            return {}

    state = tmp_path / "state"
    state.mkdir()
    (state / "backup-20260101T000000.000000Z.json").mkdir()  # the backup's own path is taken by a directory

    from datetime import datetime, timezone

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(BridgeError, match=r"cannot write the backup .*nothing was sent"):
        asyncio.run(run_items(Api(), V1, [WorkItem(id="ep1", body={"name": "new"})], state_dir=state, now=lambda: when))
    assert Api.writes == 0


def test_short_writes_still_give_whole_journal_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the OS writes only a few bytes per call, each journal line is still finished before the next."""
    import bridge.journal
    from bridge.journal import Journal

    real_write = os.write

    def short_write(fd: int, data: Any) -> int:
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(bridge.journal.os, "write", short_write)
    with Journal(tmp_path / "journal.jsonl") as journal:
        journal.record("run-start", kind="test")
        journal.record("attempt", endpoint="ep1", body={"name": "é" * 20})
    monkeypatch.undo()
    assert [e["event"] for e in read_journal(tmp_path / "journal.jsonl")] == ["run-start", "attempt"]
