"""Applying plans against the emulator over real sockets: exact, minimal, verified, recorded, reversible."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import SAMPLE, SECRET_MARK

from bridge.apply import load_plan
from bridge.cli import main
from bridge.config import Settings
from bridge.emulator import Emulator, Faults, generate_account
from bridge.http import RetryPolicy
from bridge.journal import load_backup, read_journal
from bridge.migrate import apply_plan_async, rollback_async
from bridge.models import Plan
from bridge.plan import build_plan
from bridge.snapshot import parse_snapshot
from bridge.tables import build_tables
from bridge.targets import V1

KEY = "test-key-APPLY-0123456789"


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def fast() -> RetryPolicy:
    """A retry policy that does not really wait."""
    return RetryPolicy(sleep=_no_sleep)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(SAMPLE, api_key=KEY) as emulator:
        yield emulator


def settings(emulator: Emulator, concurrency: int = 8) -> Settings:
    return Settings.resolve(environ={**emulator.env, "RUNPOD_API_KEY": KEY}, concurrency=concurrency)


def offline_plan(doc: dict[str, Any]) -> Plan:
    """Plan a snapshot document offline (no REST state, no fingerprints)."""
    snap = parse_snapshot(doc)
    return build_plan(snap.endpoints, build_tables(pools=snap.pools), generated_at="2026-11-22T10:00:00Z")


def apply(plan: Plan, emulator: Emulator, state_dir: Path, **kwargs: Any) -> Any:
    return asyncio.run(apply_plan_async(plan, settings(emulator), state_dir=state_dir, policy=fast(), **kwargs))


def assert_at_target(plan: Plan, emulator: Emulator) -> None:
    """Every unblocked endpoint's REST view equals its planned body (sets compared as sets)."""
    from bridge.targets.base import diff

    for ep in plan.endpoints:
        if ep.status != "blocked":
            view = V1.normalize_state(emulator.v1_view(ep.id))
            assert diff(ep.body, view, V1.set_fields) == [], ep.id


def cli(*args: str, env: dict[str, str], input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_apply_mixed_account_exactly_and_minimally(emu: Emulator, tmp_path: Path) -> None:
    """A mixed account reaches its planned bodies; blocked and already-at-target endpoints are never written."""
    plan = offline_plan(emu.snapshot())
    result = apply(plan, emu, tmp_path)
    counts = result.counts()
    assert counts["failed"] == 0 and counts["blocked"] == 7
    assert counts["updated"] + counts["unchanged"] == 9
    assert_at_target(plan, emu)
    written = emu.write_counts()
    assert set(written) == {o.id for o in result.outcomes if o.status == "updated"}
    assert all(n == 1 for n in written.values())
    blocked = {ep.id for ep in plan.endpoints if ep.status == "blocked"}
    assert not blocked & set(written)
    assert result.exit_code == 3


def test_second_apply_writes_nothing(emu: Emulator, tmp_path: Path) -> None:
    """Applying the same plan again finds every endpoint at its target and sends no write."""
    plan = offline_plan(emu.snapshot())
    apply(plan, emu, tmp_path)
    before = emu.write_counts()
    again = apply(plan, emu, tmp_path)
    assert emu.write_counts() == before
    assert again.counts()["updated"] == 0 and again.backup_path is None


def test_stale_endpoint_is_skipped_unless_forced(emu: Emulator, tmp_path: Path) -> None:
    """An endpoint changed after the plan was made is skipped as stale; --force writes it."""
    import httpx

    snap = parse_snapshot(emu.snapshot())
    ep_id = "i02xupws21hp6i"
    state = {ep_id: emu.v1_view(ep_id)}
    plan = build_plan(
        [e for e in snap.endpoints if e.id == ep_id], build_tables(pools=snap.pools), rest_state=state, generated_at="t"
    )
    assert plan.endpoints[0].status == "update" and plan.endpoints[0].fingerprint
    httpx.post(
        f"{emu.env['RUNPOD_REST_URL']}/endpoints/{ep_id}/update",
        json={"workersMax": 7},
        headers={"Authorization": f"Bearer {KEY}"},
    ).raise_for_status()
    result = apply(plan, emu, tmp_path)
    assert [o.status for o in result.outcomes] == ["stale"]
    assert emu.write_count(ep_id) == 1  # only our own change above
    forced = apply(plan, emu, tmp_path, force=True)
    assert [o.status for o in forced.outcomes] == ["updated"]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(fail_every=3),
        Faults(drop_every=2),
        Faults(rate_limit=40),
        Faults(fail_every=4, drop_every=3, latency_ms=2),
    ],
    ids=["503", "dropped-writes", "429", "all"],
)
def test_faults_end_exactly_as_planned(tmp_path: Path, faults: Faults) -> None:
    """Under 503s, applied-then-dropped writes and 429s every unblocked endpoint ends exactly at its body.

    A write that gets a 5xx three times, or a read that does five times, is given up (SPEC §8); running
    again finishes it, as a user would. No run writes an endpoint more than 3 times.
    """
    doc = generate_account(60, seed=7)
    with Emulator(doc, api_key=KEY, faults=faults) as emulator:
        plan = offline_plan(doc)
        for _ in range(4):
            before = emulator.write_counts()
            result = apply(plan, emulator, tmp_path)
            after = emulator.write_counts()
            assert all(after[i] - before.get(i, 0) <= 3 for i in after)
            failed = [o for o in result.outcomes if o.status == "failed"]
            given_up = ("gave up after 3 writes", "gave up after 5 attempts")
            assert all(any(g in o.detail for g in given_up) for o in failed), [o.detail for o in failed]
            if not failed:
                break
        assert result.counts()["failed"] == 0
        emulator.faults = Faults()
        assert_at_target(plan, emulator)


def test_dropped_write_is_confirmed_by_reading_not_rewritten(tmp_path: Path) -> None:
    """A write applied but unanswered is re-read and counted done: it is not written a second time."""
    doc = generate_account(10, seed=3)
    with Emulator(doc, api_key=KEY, faults=Faults(drop_every=1)) as emulator:
        plan = offline_plan(doc)
        result = apply(plan, emulator, tmp_path)
        updated = [o for o in result.outcomes if o.status == "updated"]
        assert updated and all(o.writes == 1 and "unknown" in o.detail for o in updated)
        assert all(n == 1 for n in emulator.write_counts().values())


def test_retired_v1_stops_the_run_with_pointer_to_v2(emu: Emulator, tmp_path: Path) -> None:
    """410 Gone on v1 stops the run and says to use --target v2; nothing is written."""
    emu.faults = Faults(retire_v1=True)
    result = apply(offline_plan(emu.snapshot()), emu, tmp_path)
    assert result.stopped and "--target v2" in result.stopped
    assert result.exit_code == 1 and emu.write_counts() == {}


def test_rejected_key_stops_the_run(emu: Emulator, tmp_path: Path) -> None:
    """401 stops the run: nothing is written and the key is not in the message."""
    bad = Settings.resolve(environ={**emu.env, "RUNPOD_API_KEY": "wrong-key-987654321"})
    result = asyncio.run(apply_plan_async(offline_plan(emu.snapshot()), bad, state_dir=tmp_path, policy=fast()))
    assert result.stopped and "rejected the API key" in result.stopped
    assert "wrong-key-987654321" not in json.dumps(result.to_dict())
    assert emu.write_counts() == {}


def test_backup_journal_and_rollback(emu: Emulator, tmp_path: Path) -> None:
    """The backup holds each written endpoint's prior state; rollback puts the changed fields back."""
    ids = [ep["id"] for ep in emu.snapshot()["data"]["myself"]["endpoints"]]
    before = {i: emu.v1_view(i) for i in ids}
    result = apply(offline_plan(emu.snapshot()), emu, tmp_path)
    assert result.backup_path is not None
    backup = load_backup(result.backup_path)
    assert {e.id for e in backup.entries} == {o.id for o in result.outcomes if o.status == "updated"}
    events = [e["event"] for e in read_journal(result.journal_path)]
    assert events[0] == "run-start" and events[-1] == "run-end" and "backup" in events
    assert events.index("backup") < events.index("attempt")
    undo = asyncio.run(rollback_async(backup, settings(emu), state_dir=tmp_path, policy=fast()))
    assert undo.counts()["failed"] == 0
    for entry in backup.entries:
        now = emu.v1_view(entry.id)
        for key in entry.body:
            if key in before[entry.id]:
                assert V1.normalize_state(now).get(key) == V1.normalize_state(before[entry.id]).get(key), key


def test_rollback_names_fields_it_cannot_restore(tmp_path: Path) -> None:
    """When the backup's read had no flashboot, rollback says it cannot restore it."""
    with Emulator(SAMPLE, api_key=KEY, omit_flashboot=True) as emulator:
        result = apply(offline_plan(emulator.snapshot()), emulator, tmp_path)
        assert result.backup_path is not None
        undo = asyncio.run(
            rollback_async(load_backup(result.backup_path), settings(emulator), state_dir=tmp_path, policy=fast())
        )
        assert any("flashboot" in note for note in undo.notes)


def test_state_files_are_private_and_secret_free(emu: Emulator, tmp_path: Path) -> None:
    """Backup and journal are mode 0600 and hold no secret value and no key."""
    result = apply(offline_plan(emu.snapshot()), emu, tmp_path)
    files = list(tmp_path.iterdir())
    assert files and result.backup_path in files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        text = path.read_text()
        assert SECRET_MARK not in text and KEY not in text, path
    backup = json.loads(result.backup_path.read_text())  # type: ignore[union-attr]
    assert any(e["legacy"] is None and e["rest"].get("env") for e in backup["endpoints"])


def test_cli_apply_needs_consent(emu: Emulator, tmp_path: Path) -> None:
    """Without a terminal and without --yes nothing is written and the exit code is 2."""
    env = {**emu.env, "RUNPOD_API_KEY": KEY}
    out = tmp_path / "out"
    cli("export", "--from", str(SAMPLE), "--out", str(out), env=env)
    result = cli("apply", str(out), "--state-dir", str(tmp_path / "state"), env=env)
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert emu.write_counts() == {}
    assert not list((tmp_path / "state").glob("*.json*"))  # no backup, no journal: only the lock


def test_cli_apply_yes_json_result(emu: Emulator, tmp_path: Path) -> None:
    """`apply DIR --yes --format json` writes, reports per endpoint, and exits 3 for the blocked ones."""
    env = {**emu.env, "RUNPOD_API_KEY": KEY}
    out = tmp_path / "out"
    cli("export", "--from", str(SAMPLE), "--out", str(out), env=env)
    result = cli("apply", str(out), "--yes", "--format", "json", "--state-dir", str(tmp_path / "s"), env=env)
    assert result.exit_code == 3, result.stderr
    doc = json.loads(result.stdout)
    assert doc["summary"]["failed"] == 0 and doc["summary"]["blocked"] == 7
    assert KEY not in result.stdout + result.stderr and SECRET_MARK not in result.stdout + result.stderr


def test_cli_apply_refuses_plan_for_other_target(emu: Emulator, tmp_path: Path) -> None:
    """A plan made for v1 is refused with --target v2 (exit 2)."""
    env = {**emu.env, "RUNPOD_API_KEY": KEY}
    out = tmp_path / "out"
    cli("export", "--from", str(SAMPLE), "--out", str(out), env=env)
    result = cli("apply", str(out), "--yes", "--target", "v2", env=env)
    assert result.exit_code == 2 and "made for REST v1" in result.stderr


def test_cli_apply_bad_plan_file(tmp_path: Path) -> None:
    """A file that is not a plan is an input error naming it."""
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": 2}')
    result = cli("apply", str(bad), "--yes", env={"RUNPOD_API_KEY": KEY})
    assert result.exit_code == 2 and "not a bridge plan" in result.stderr


def test_load_plan_reads_export_dir(tmp_path: Path) -> None:
    """load_plan accepts the export directory as well as plan.json."""
    from bridge.export import export_plan

    plan = offline_plan(json.loads(SAMPLE.read_text()))
    export_plan(plan, tmp_path)
    assert load_plan(tmp_path) == plan == load_plan(tmp_path / "plan.json")


def test_env_has_no_real_key() -> None:
    """The tests never see a real RunPod key."""
    assert not os.environ.get("RUNPOD_API_KEY", "").startswith("rpa_")
