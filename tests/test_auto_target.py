"""The automatic target and the live v2 catalogs as table sources (issue 13), against the emulator."""

from __future__ import annotations

import functools
import gc
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE, run_bridge
from test_live import MakeEmulator, fast, settings

from bridge.catalogs import pool_disagreements
from bridge.emulator import Emulator, Faults, generate_account
from bridge.errors import RetiredError
from bridge.live import read_live_account
from bridge.pipeline import make_plan, read_account_for_plan

KEY = "test-key-AUTO-0123456789"
run = functools.partial(run_bridge, key=KEY)
MIG_24 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"


def test_auto_reads_v1_while_it_is_served(make_emulator: MakeEmulator) -> None:
    """With v1 serving, auto is v1 and says so; the tables come from the live v2 catalogs."""
    account = read_live_account(settings(make_emulator()), policy=fast())
    assert (account.target, account.target_reason) == ("v1", "auto: REST v1 is served")
    assert set(account.catalogs.raw) == {"gpus", "datacenters", "cpus"}


# A read stopped by an error cancels its sibling requests; httpcore can leave a socket cancelled mid-connect
# unclosed. Collected here so a ResourceWarning lands in this test, not in whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_auto_switches_to_v2_on_410_and_explicit_v1_stops(make_emulator: MakeEmulator) -> None:
    """A retired v1 makes auto plan v2 (the whole list and --endpoint reads alike); explicit v1 stops."""
    emu = make_emulator(faults=Faults(retire_v1=True))
    for ids in ((), ("i02xupws21hp6i",)):
        account = read_live_account(settings(emu), policy=fast(), endpoint_ids=ids)
        assert (account.target, account.target_reason) == ("v2", "auto: REST v1 answered 410 Gone")
        assert account.rest_state and all("workers" in s for s in account.rest_state.values())
    with pytest.raises(RetiredError, match="--target v2"):
        read_live_account(settings(emu), policy=fast(), target="v1")
    plan = make_plan(read_account_for_plan(settings=settings(emu)))
    doc = json.loads(plan.to_json())
    assert doc["target"] == "v2" and doc["target_reason"] == "auto: REST v1 answered 410 Gone"
    assert doc["tables"]["sources"]["pools"] == "live v2 catalog"
    gc.collect()


def test_offline_auto_is_v1_and_explicit_targets_are_kept() -> None:
    """--from with auto plans v1; an explicit target is kept and named as the reason."""
    auto = make_plan(read_account_for_plan(from_file=SAMPLE))
    assert auto.target == "v1" and auto.target_reason is not None and "offline" in auto.target_reason
    assert all("gpuTypeIds" in ep.body for ep in auto.endpoints if ep.status == "update" and "cpu" not in ep.id)
    v2 = make_plan(read_account_for_plan(from_file=SAMPLE, target="v2"))
    assert (v2.target, v2.target_reason) == ("v2", "--target v2")


def test_catalog_pools_win_and_disagreement_is_a_finding_on_affected_endpoints(make_emulator: MakeEmulator) -> None:
    """The GPU catalog's pools are used; an endpoint selecting a pool GraphQL lists differently gets a warning."""
    doc = json.loads(Path(SAMPLE).read_text())
    pools = {p["id"]: list(p["gpuTypeIds"]) for p in doc["data"]["serverlessGpuPools"]}
    catalog = {**pools, "AMPERE_24": [t for t in pools["AMPERE_24"] if t != MIG_24]}
    emu = make_emulator(catalog_pools=catalog)
    inputs = read_account_for_plan(settings=settings(emu))
    assert inputs.tables.pools["AMPERE_24"] == tuple(catalog["AMPERE_24"])
    plan = make_plan(inputs)
    flagged = {ep.id for ep in plan.endpoints if any(f.code == "pool-sources-disagree" for f in ep.findings)}
    selecting = {
        ep["id"]
        for ep in doc["data"]["myself"]["endpoints"]
        if not ep.get("instanceIds") and "AMPERE_24" in [t.strip() for t in (ep.get("gpuIds") or "").split(",")]
    }
    assert flagged == selecting and flagged
    message = next(f.message for ep in plan.endpoints for f in ep.findings if f.code == "pool-sources-disagree")
    assert MIG_24 in message and "GraphQL" in message
    assert pool_disagreements(pools, pools) == {}


def test_unreadable_catalogs_fall_back_with_one_warning_each(make_emulator: MakeEmulator) -> None:
    """A server without the catalogs (404): pools from GraphQL, the rest bundled, one note per catalog."""
    inputs = read_account_for_plan(settings=settings(make_emulator(catalogs=False)))
    catalog_notes = [note for note in inputs.notes if "catalog" in note]
    assert len(catalog_notes) == 3 and all("404" in note for note in catalog_notes)
    sources = inputs.tables.sources
    assert sources["pools"] == "live GraphQL serverlessGpuPools"
    assert (sources["data_centers"], sources["cpus"]) == ("bundled", "bundled")


def test_fetch_stores_the_catalogs_and_plan_from_uses_them(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    """The snapshot holds the catalogs; plan --from takes data centers from it, countries from the bundled table."""
    emu = make_emulator(generate_account(20, seed=5))
    account = read_live_account(settings(emu), policy=fast(), with_rest_state=False)
    from bridge.live import snapshot_document

    document = snapshot_document(account)
    rows = document["catalogs"]["datacenters"]["dataCenters"]
    rows[:] = [row for row in rows if row["id"] != "US-MO-2"] + [{"id": "XX-NEW-1", "name": "New", "region": "ASIA"}]
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(document))
    inputs = read_account_for_plan(from_file=path, mappings=[])
    assert inputs.tables.sources["data_centers"] == "snapshot" and inputs.tables.sources["pools"] == "snapshot"
    assert "US-MO-2" not in inputs.tables.countries["US"] and "US-MO-1" in inputs.tables.countries["US"]
    assert "XX-NEW-1" in inputs.tables.data_centers
    assert any("XX-NEW-1" in note for note in inputs.notes)


def test_migrate_without_target_on_retired_v1_writes_v2(tmp_path: Path) -> None:
    """End to end over real sockets: `bridge migrate --yes` with no --target migrates the sample on v2."""
    with Emulator(SAMPLE, api_key=KEY, faults=Faults(retire_v1=True)) as emu:
        first = run(emu, tmp_path, "migrate", "--yes", "--format", "json")
        assert first.returncode == 3, first.stderr  # the sample's deliberately broken endpoints stay blocked
        assert "target REST v2, auto: REST v1 answered 410 Gone" in first.stderr
        writes = [r for r in emu.requests if r["method"] in ("PATCH", "POST") and r["api"] != "graphql"]
        assert writes and all(r["api"] == "v2" and r["method"] == "PATCH" for r in writes)
        assert json.loads(first.stdout)["summary"]["failed"] == 0
        backup = json.loads(next(tmp_path.glob("bridge-state/backup-*.json")).read_text())
        assert backup["target"] == "v2"
        plan = run(emu, tmp_path, "plan", "--format", "json")
        doc: dict[str, Any] = json.loads(plan.stdout)
        assert doc["target"] == "v2" and doc["summary"]["update"] == 0
        offline = run(emu, tmp_path, "plan", "--from", str(SAMPLE), "--format", "json")
        assert json.loads(offline.stdout)["target"] == "v1"
