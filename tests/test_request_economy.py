"""Requests spent on writes (issue 17): batched legacy reads, state from lists, writes verified from their
answers and one final read-back, against the emulator over real sockets."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import SAMPLE

from bridge.apply import FRESH_SECONDS
from bridge.config import Settings
from bridge.emulator import Emulator, Faults, generate_account, requests_by_kind
from bridge.http import RetryPolicy
from bridge.migrate import Migration, apply_plan_async, run_migration
from bridge.plan import build_plan
from bridge.snapshot import parse_snapshot
from bridge.tables import build_tables
from bridge.targets import V1, V2
from bridge.targets.base import diff

KEY = "test-key-ECONOMY-0123456789"


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def settings(emu: Emulator, concurrency: int = 8) -> Settings:
    return Settings.resolve(environ={**emu.env, "RUNPOD_API_KEY": KEY}, concurrency=concurrency)


def migrate(emu: Emulator, state_dir: Path, target: str = "v1") -> Migration:
    return run_migration(
        settings(emu),
        confirm=lambda plan, notes: True,
        target=target,  # type: ignore[arg-type]
        state_dir=state_dir,
        policy=RetryPolicy(sleep=_no_sleep),
    )


def kinds(emu: Emulator) -> dict[str, int]:
    """The emulator's log by kind: graphql, list (the endpoint list and its pages), read (one endpoint), write."""
    return requests_by_kind(emu.requests)


# A large account, as test_migrate_v2_large_account_past_the_400_cap: v2 (paged lists) in the fast lane.
@pytest.mark.parametrize("target", [pytest.param("v1", marks=pytest.mark.slow), "v2"])
def test_migration_past_the_cap_spends_about_one_request_per_write(tmp_path: Path, target: str) -> None:
    """450 endpoints, each needing a write: one write each, GraphQL in batches, the REST state from lists, no
    read per endpoint; every endpoint ends at its planned body, and a second run writes nothing."""
    n = 450
    with Emulator(generate_account(n, seed=21, fb_suffix=True), api_key=KEY) as emu:
        migration = migrate(emu, tmp_path / "state", target)
        assert migration.result is not None
        assert migration.result.counts()["updated"] == n, migration.result.counts()
        counts = kinds(emu)
        assert counts["write"] == n and counts["read"] == 0
        assert counts["graphql"] <= 4  # the capped list, the pools, one batch of 50
        pages = 1 if target == "v1" else -(-n // 100)
        assert counts["list"] == 2 * pages  # the plan's state, the final read-back
        total = sum(counts.values())
        assert total / n <= 1.10, counts
        target_api = V1 if target == "v1" else V2
        for ep in migration.plan.endpoints:
            view = emu.v1_view(ep.id) if target == "v1" else emu.v2_view(ep.id)
            assert diff(ep.body, target_api.normalize_state(view), target_api.set_fields) == []
        emu.clear_requests()
        again = migrate(emu, tmp_path / "state", target)
        assert again.result is not None and again.result.counts()["updated"] == 0
        assert kinds(emu)["write"] == 0


def _planned(emu: Emulator, ids: list[str]) -> Any:
    snap = parse_snapshot(emu.snapshot())
    state = {i: emu.v1_view(i) for i in ids}
    endpoints = [e for e in snap.endpoints if e.id in ids]
    return build_plan(endpoints, build_tables(pools=snap.pools), rest_state=state, generated_at="t"), state


def test_old_state_is_read_again_from_the_list_and_a_changed_endpoint_is_stale(tmp_path: Path) -> None:
    """State older than the window: one list read (no read per endpoint) finds the endpoint changed since the
    plan (stale, not written) and the other one still to write."""
    import httpx

    with Emulator(SAMPLE, api_key=KEY) as emu:
        ids = ["i02xupws21hp6i", "sdxl0worker0ab"]
        plan, state = _planned(emu, ids)
        assert [e.status for e in plan.endpoints] == ["update", "update"]
        url = f"{emu.env['RUNPOD_REST_URL']}/endpoints/{ids[0]}/update"
        httpx.post(url, json={"workersMax": 7}, headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()
        emu.clear_requests()
        old = -10 * FRESH_SECONDS
        result = asyncio.run(apply_plan_async(plan, settings(emu), state_dir=tmp_path, state=state, state_read_at=old))
        by_id = {o.id: o.status for o in result.outcomes}
        assert by_id == {ids[0]: "stale", ids[1]: "updated"}
        assert kinds(emu) == {"graphql": 0, "list": 2, "read": 0, "write": 1, "other": 0}


def test_fresh_state_is_not_read_again(tmp_path: Path) -> None:
    """State younger than the window is the starting point: the writes, then one list read-back, nothing else."""
    import time

    with Emulator(SAMPLE, api_key=KEY) as emu:
        ids = ["i02xupws21hp6i", "sdxl0worker0ab"]
        plan, state = _planned(emu, ids)
        emu.clear_requests()
        result = asyncio.run(
            apply_plan_async(plan, settings(emu), state_dir=tmp_path, state=state, state_read_at=time.monotonic())
        )
        assert [o.status for o in result.outcomes] == ["updated", "updated"]
        assert kinds(emu) == {"graphql": 0, "list": 1, "read": 0, "write": 2, "other": 0}
        journal = [json.loads(line) for line in result.journal_path.read_text().splitlines()]
        assert {"event": "state", "source": "plan"}.items() <= next(e for e in journal if e["event"] == "state").items()


def test_read_back_catches_exclusions_wiped_after_the_answer(tmp_path: Path) -> None:
    """RunPod's bug: the PATCH answers with the exclusions, then they are gone. The answer alone would pass;
    the run's final read-back fails the endpoint, naming the field."""
    with Emulator(SAMPLE, api_key=KEY, faults=Faults(wipe_v2_exclusions=True)) as emu:
        migration = migrate(emu, tmp_path, "v2")
        assert migration.result is not None
        outcome = next(o for o in migration.result.outcomes if o.id == "sdxl0worker0ab")
        assert outcome.status == "failed"
        assert "read-back differs in: gpu.excludedTypes" in outcome.detail
        assert migration.result.exit_code == 1


def test_a_field_neither_answer_nor_read_shows_is_named_unverified(tmp_path: Path) -> None:
    """REST v1 reads without flashboot: the written flashboot cannot be checked, and the result says so."""
    with Emulator(SAMPLE, api_key=KEY, omit_flashboot=True) as emu:
        migration = migrate(emu, tmp_path, "v1")
        assert migration.result is not None
        written = [o for o in migration.result.outcomes if o.status == "updated"]
        with_flashboot = [
            o for o in written if "flashboot" in next(e.body for e in migration.plan.endpoints if e.id == o.id)
        ]
        assert with_flashboot and all("unverified: flashboot" in o.detail for o in with_flashboot)
        assert any("unverified: flashboot" in note for note in migration.result.notes)


def test_quota_estimate_names_the_window_a_run_exceeds() -> None:
    """Requests over what the hour window has left: the note says how many, what is left, and how long."""
    from bridge.http import Pacer
    from bridge.quota import estimate

    pacer = Pacer(1)
    pacer.on_answer(
        200,
        {
            "ratelimit-policy": '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400',
            "ratelimit": '"minute";r=59;t=60, "hour";r=500;t=1800, "day";r=40000;t=80000',
        },
    )
    windows = pacer.quota_status()
    assert estimate(windows, 400).note() is None  # fits: no note
    result = estimate(windows, 1_000)
    assert [w.name for w in result.exceeds] == ["hour"]
    assert result.seconds == pytest.approx(1800, abs=1)  # the hour window resets, then 500 more fit at once
    note = result.note()
    assert note is not None and "about 1,000 requests" in note and "hour window has 500 of 3000 left" in note
    assert "run the same command again" in note
    assert estimate([], 10**6).note() is None  # no published quota: nothing to say


class _AnnouncesQuota(httpx.AsyncBaseTransport):
    """The emulator over real sockets, with the v2 spec's quota headers added to every v2 answer."""

    def __init__(self, remaining_hour: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.remaining = remaining_hour

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.startswith("/v2/"):
            response.headers["RateLimit-Policy"] = '"hour";q=360000;w=3600'  # 100/s: the pacing barely slows the test
            # a window that resets at once: the run is paced by it (10 at a time) without waiting long
            response.headers["RateLimit"] = f'"hour";r={self.remaining};t=2'
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_migrate_says_when_the_run_exceeds_the_remaining_quota(tmp_path: Path) -> None:
    """A v2 migration needing more requests than the hour has left says so with the plan, then still runs."""
    with Emulator(generate_account(30, seed=4, fb_suffix=True), api_key=KEY) as emu:
        seen: list[str] = []

        def confirm(plan: Any, notes: Any) -> bool:
            seen.extend(notes)
            return True

        migration = run_migration(
            settings(emu),
            confirm=confirm,
            target="v2",
            state_dir=tmp_path,
            transport=_AnnouncesQuota(remaining_hour=25),
            policy=RetryPolicy(),  # real sleeps: the pacer waits for the window's reset (1 s)
        )
        assert migration.result is not None and migration.result.counts()["updated"] == 30
        # what the hour had left when the plan was shown: the 25 announced, less the reads sent since
        assert any(re.search(r"quota has left \(the hour window has \d+ of 360000 left", n) for n in seen), seen
