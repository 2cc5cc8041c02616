"""Planning: statuses, changes against REST state or the legacy record, fingerprints, translate() per target."""

from __future__ import annotations

from helpers import endpoint, tables

from bridge.plan import plan_endpoint, translate
from bridge.snapshot import parse_snapshot
from bridge.targets import get_target


def test_empty_snapshot_pool_blocks_only_its_endpoints() -> None:
    """A pool the snapshot lists with no GPU type blocks the endpoints on it alone, not the whole run."""
    from bridge.plan import build_plan
    from bridge.tables import build_tables

    doc = {
        "data": {
            "myself": {"endpoints": [{"id": "empty", "gpuIds": "ADA_24"}, {"id": "full", "gpuIds": "AMPERE_48"}]},
            "serverlessGpuPools": [
                {"id": "ADA_24", "gpuTypeIds": []},
                {"id": "AMPERE_48", "gpuTypeIds": ["NVIDIA A40"]},
            ],
        }
    }
    snap = parse_snapshot(doc)
    plan = build_plan(snap.endpoints, build_tables(pools=snap.pools))
    status = {ep.id: (ep.status, [f.code for f in ep.findings]) for ep in plan.endpoints}
    assert status == {"empty": ("blocked", ["no-gpu-types"]), "full": ("update", [])}


def test_translate_builds_the_named_target() -> None:
    """translate() gives v1's flat body by default and v2's nested body with target="v2"."""
    ep = endpoint(gpuIds="AMPERE_48,-NVIDIA A40", flashBootType="PRIORITY_FLASHBOOT")
    v1 = translate(ep, tables())
    v2 = translate(ep, tables(), target="v2")
    assert v1.body["gpuTypeIds"] == ["NVIDIA RTX A6000"] and v1.body["flashboot"] is True
    assert v2.body["gpu"]["pools"] == ["AMPERE_48"] and v2.body["gpu"]["excludedTypes"] == ["NVIDIA A40"]
    assert v2.body["flashboot"] == "PRIORITY_FLASHBOOT"
    assert "flashboot-priority-lost" in {f.code for f in v1.findings}
    assert "flashboot-priority-lost" not in {f.code for f in v2.findings}


def test_without_state_changes_name_the_legacy_field_per_target() -> None:
    """Without REST state a change's from-value is the legacy field the target's body field came from."""
    ep = endpoint(gpuIds="AMPERE_48", locations="EU-RO-1", executionTimeoutMs=600000)
    for name, field_, before in (("v1", "gpuTypeIds", "AMPERE_48"), ("v2", "gpu", "AMPERE_48")):
        plan = plan_endpoint(ep, tables(), get_target(name))
        changes = {c.field: c.from_ for c in plan.changes}
        assert (plan.status, plan.fingerprint) == ("update", None)
        assert changes[field_] == before, name
        assert changes["dataCenterIds"] == "EU-RO-1", name
    v2 = plan_endpoint(ep, tables(), get_target("v2"))
    assert "timeout" not in {c.field for c in v2.changes}  # the same value as executionTimeoutMs: no change


def test_state_decides_update_or_unchanged_and_fingerprints_it() -> None:
    """With REST state equal to the body the endpoint is unchanged; one differing field makes it an update."""
    target = get_target("v1")
    ep = endpoint(gpuIds="AMPERE_48")
    body = translate(ep, tables()).body
    same = plan_endpoint(ep, tables(), target, state={"id": ep.id, **body})
    assert (same.status, same.changes) == ("unchanged", [])
    assert same.fingerprint is not None and same.fingerprint.startswith("sha256:")
    moved = plan_endpoint(ep, tables(), target, state={"id": ep.id, **body, "gpuTypeIds": ["NVIDIA A40"]})
    assert moved.status == "update"
    assert [c.field for c in moved.changes] == ["gpuTypeIds"]
    assert moved.fingerprint != same.fingerprint


def test_blocked_endpoint_has_no_body_but_keeps_its_fingerprint() -> None:
    """An error finding blocks the endpoint: empty body, no changes, the state's fingerprint still recorded."""
    ep = endpoint(gpuIds="NOT_A_POOL")
    plan = plan_endpoint(ep, tables(), get_target("v1"), state={"id": ep.id, "gpuTypeIds": ["NVIDIA A40"]})
    assert (plan.status, plan.body, plan.changes) == ("blocked", {}, [])
    assert plan.blocked and plan.fingerprint is not None
