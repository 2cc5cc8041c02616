"""The equivalence check (issue 14): the two evaluators, compare(), and the check run against the translator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers import SAMPLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bridge.targets.v1
import bridge.targets.v2
import bridge.translate
from bridge import build_plan
from bridge.emulator.generate import generate_account
from bridge.equivalence import (
    ASPECTS,
    KEPT,
    Equivalence,
    Selection,
    compare,
    legacy_selection,
    rest_selection,
    unexplained,
)
from bridge.equivalence_plan import LEGACY_FIELD
from bridge.models import LegacyEndpoint, Plan
from bridge.snapshot import load_snapshot, parse_snapshot
from bridge.tables import Tables, build_tables, bundled_tables
from bridge.targets import get_target

TABLES = bundled_tables()
A16 = TABLES.pools["AMPERE_16"]
A48 = TABLES.pools["AMPERE_48"]  # NVIDIA A40, NVIDIA RTX A6000
US = TABLES.countries["US"]


def ep(**fields: Any) -> LegacyEndpoint:
    return LegacyEndpoint.model_validate({"id": "ep1", "name": "svc", **fields})


def legacy(**fields: Any) -> Selection:
    return legacy_selection(ep(**fields), TABLES)


def check(fields: dict[str, Any], body: dict[str, Any], target: str = "v1") -> Equivalence:
    return compare(legacy(**fields), rest_selection(body, target, TABLES))  # type: ignore[arg-type]


# --- the legacy evaluator ----------------------------------------------------------------------------------


def test_legacy_gpu_pools_in_order_minus_exclusions_wherever_they_stand() -> None:
    """Pools expand in token order, members in table order; an exclusion anywhere removes its type."""
    sel = legacy(gpuIds="-NVIDIA RTX A4500, AMPERE_48 ,AMPERE_16,,-NVIDIA A40")
    assert sel.gpu_types == ("NVIDIA RTX A6000", *[t for t in A16 if t != "NVIDIA RTX A4500"])
    assert sel.gpu_pools == ("AMPERE_48", "AMPERE_16")
    assert sel.compute == "gpu" and sel.problems == ()


def test_legacy_gpu_tokens_match_case_insensitively_and_type_tokens_are_one_type() -> None:
    """A pool or type in other case is the table's id; a GPU type where a pool belongs is that one type."""
    sel = legacy(gpuIds="ampere_48,- nvidia rtx a6000,NVIDIA GeForce RTX 4090,-")
    assert sel.gpu_types == ("NVIDIA A40", "NVIDIA GeForce RTX 4090")
    assert sel.gpu_pools == ("AMPERE_48",)


def test_legacy_unknown_gpu_token_is_a_problem() -> None:
    """A token that is no pool and no type is named as a problem of the gpu aspect."""
    sel = legacy(gpuIds="AMPERE_16,HOPPER_143")
    assert sel.gpu_types == A16
    assert sel.problems == (("gpu", "gpuIds token 'HOPPER_143' is not a known pool or GPU type"),)


def test_legacy_locations_expand_countries_and_override_tokens() -> None:
    """Data-center ids stay, countries expand in table order, the [locations] table wins, empty is anywhere."""
    tables = build_tables(overrides=[{"locations": {"US": ["US-TX-3"], "EU": ["EU-RO-1", "EU-CZ-1"]}}])
    sel = legacy_selection(ep(locations="eu-ro-1, EU ,US,CZ"), tables)
    assert sel.data_centers == ("EU-RO-1", "EU-CZ-1", "US-TX-3")
    assert sel.location_regions == ("EU", "US", "CZ")
    assert legacy(locations=" ").data_centers is None
    assert legacy(locations=None).data_centers is None
    assert legacy(locations="US").data_centers == US
    assert legacy(locations="XX").problems[0][0] == "locations"


@pytest.mark.parametrize(
    ("name", "mode", "expected", "from_name"),
    [
        ("svc", None, "OFF", False),
        ("svc -fb", None, "FLASHBOOT", True),
        ("svc-FB ", None, "FLASHBOOT", True),
        ("svc -fb", "OFF", "OFF", False),
        ("svc", "PRIORITY_FLASHBOOT", "PRIORITY_FLASHBOOT", False),
    ],
)
def test_legacy_flashboot_type_wins_over_the_name_suffix(
    name: str, mode: str | None, expected: str, from_name: bool
) -> None:
    """flashBootType decides; without it the -fb suffix (any case, optional space) means FLASHBOOT."""
    sel = legacy(name=name, flashBootType=mode)
    assert (sel.flashboot, sel.flashboot_from_name, sel.name) == (expected, from_name, "svc")


def test_legacy_cpu_instances_are_flavor_vcpu_pairs_and_ignore_gpu_ids() -> None:
    """instanceIds make a CPU endpoint: (flavor, vCPU) pairs with memory kept for reports; gpuIds is ignored."""
    sel = legacy(instanceIds=["cpu3c-8-16", "cpu5c-4-8", "cpu3c-8-16", "bogus"], gpuIds="AMPERE_16")
    assert sel.compute == "cpu" and sel.gpu_types == ()
    assert sel.cpu == frozenset({("cpu3c", 8), ("cpu5c", 4)})
    assert ("cpu3c", 8, 16) in sel.cpu_memory
    assert [aspect for aspect, _ in sel.problems] == ["cpu"]


def test_expansions_are_cached_per_tables_not_shared_between_them() -> None:
    """The same gpuIds string evaluates under each table's own pools (the caches are per Tables object)."""
    one = build_tables(pools={"P": ["GPU A", "GPU B"]})
    two = build_tables(pools={"P": ["GPU C"]})
    endpoint = ep(gpuIds="P,-GPU B")
    assert legacy_selection(endpoint, one).gpu_types == ("GPU A",)
    assert legacy_selection(endpoint, two).gpu_types == ("GPU C",)
    assert legacy_selection(endpoint, one).gpu_types == ("GPU A",)


def test_the_evaluators_do_not_use_the_translator() -> None:
    """Independence: the equivalence modules import neither bridge.translate nor a target module."""
    import ast
    from pathlib import Path

    import bridge.equivalence

    for path in Path(bridge.equivalence.__file__).parent.glob("equivalence*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {m for m in imported if m and ("translate" in m or "target" in m)}, path


# --- the REST evaluator ------------------------------------------------------------------------------------


def test_v2_pools_minus_excluded_types_through_the_pool_table() -> None:
    """v2 gpu.pools expand through the table; excludedTypes (trimmed, any case) are removed."""
    sel = rest_selection({"gpu": {"pools": ["AMPERE_48"], "excludedTypes": [" nvidia rtx a6000"]}}, "v2", TABLES)
    assert (sel.gpu_types, sel.gpu_pools) == (("NVIDIA A40",), ("AMPERE_48",))


def test_v2_pools_without_excluded_types_clear_the_exclusions() -> None:
    """Pools sent alone clear the exclusions on v2, so the legacy exclusion is lost: wider."""
    eq = check({"gpuIds": "AMPERE_48,-NVIDIA RTX A6000"}, {"gpu": {"pools": ["AMPERE_48"]}}, "v2")
    assert eq.gpu == "wider"
    assert eq.lines() == ["gpu: wider, gained NVIDIA RTX A6000"]


def test_absent_fields_are_kept_and_compare_as_same() -> None:
    """An update body that leaves a setting out keeps the endpoint's (legacy) value: same, on both targets."""
    fields = {"gpuIds": "AMPERE_16", "locations": "US", "workersMax": 3, "scalerType": "QUEUE_DELAY"}
    for target in ("v1", "v2"):
        sel = rest_selection({}, target, TABLES)  # type: ignore[arg-type]
        assert sel.gpu_types is KEPT and sel.data_centers is KEPT and sel.flashboot is KEPT
        eq = compare(legacy(**fields), sel)
        assert eq.equivalent and eq.frozen == ()


def test_v1_empty_data_center_list_is_anywhere() -> None:
    """dataCenterIds [] means anywhere: wider than a legacy country."""
    assert rest_selection({"dataCenterIds": []}, "v1", TABLES).data_centers is None
    eq = check({"gpuIds": "AMPERE_16", "locations": "CZ"}, {"gpuTypeIds": list(A16), "dataCenterIds": []})
    assert eq.locations == "wider"


# --- compare, aspect by aspect -----------------------------------------------------------------------------


def test_gpu_narrower_wider_different_and_order() -> None:
    """Set verdicts name the members lost and gained; the same set in another order is a priority change."""
    fields = {"gpuIds": "AMPERE_48"}
    assert check(fields, {"gpuTypeIds": ["NVIDIA A40"]}).lines() == ["gpu: narrower, lost NVIDIA RTX A6000"]
    assert check(fields, {"gpuTypeIds": [*A48, "NVIDIA L4"]}).gpu == "wider"
    assert check(fields, {"gpuTypeIds": ["NVIDIA A40", "NVIDIA L4"]}).gpu == "different"
    reordered = check(fields, {"gpuTypeIds": list(reversed(A48))})
    assert reordered.gpu == "different" and "priority order" in (reordered.detail("gpu") or "")
    assert check(fields, {"gpuTypeIds": list(A48)}).gpu == "same"
    assert check({**fields, "gpuCount": 2}, {"gpuTypeIds": list(A48), "gpuCount": 1}).gpu == "different"


def test_gpu_frozen_on_v1_not_on_v2_and_unpinned_type_token_on_v2() -> None:
    """A pool expanded into gpuTypeIds is frozen; v2 pools follow the table; a type sent as a pool is unpinned."""
    v1 = check({"gpuIds": "AMPERE_48"}, {"gpuTypeIds": list(A48)})
    assert v1.equivalent and v1.frozen == ("gpu",)
    v2 = check({"gpuIds": "AMPERE_48"}, {"gpu": {"pools": ["AMPERE_48"], "excludedTypes": []}}, "v2")
    assert v2.equivalent and v2.frozen == ()
    typed = check(
        {"gpuIds": "NVIDIA A40"}, {"gpu": {"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA RTX A6000"]}}, "v2"
    )
    assert typed.equivalent and typed.unpinned == ("gpu",)
    assert check({"gpuIds": "NVIDIA A40"}, {"gpuTypeIds": ["NVIDIA A40"]}).frozen == ()


def test_locations_verdicts_and_frozen_countries() -> None:
    """anywhere -> a list is narrower, a lost data center is narrower, a country expanded is frozen."""
    gpu = {"gpuIds": "AMPERE_16"}
    body = {"gpuTypeIds": list(A16)}
    assert check(gpu, {**body, "dataCenterIds": ["EU-RO-1"]}).locations == "narrower"
    dropped = check({**gpu, "locations": "US"}, {**body, "dataCenterIds": list(US[:-1])})
    assert dropped.lines() == [f"locations: narrower, lost {US[-1]}"]
    same = check({**gpu, "locations": "US"}, {**body, "dataCenterIds": list(reversed(US))})
    assert same.locations == "same" and same.frozen == ("gpu", "locations")
    pinned = check({**gpu, "locations": "EU-RO-1"}, {**body, "dataCenterIds": ["EU-RO-1"]})
    assert pinned.frozen == ("gpu",)


def test_flashboot_priority_lost_on_v1_is_explained_by_its_finding() -> None:
    """PRIORITY_FLASHBOOT as v1 true differs, and only the flashboot-priority-lost finding explains it."""
    from bridge.models import Finding

    eq = check({"gpuIds": "AMPERE_16", "flashBootType": "PRIORITY_FLASHBOOT"}, {"flashboot": True})
    assert eq.lines() == ["flashboot: different, PRIORITY_FLASHBOOT -> FLASHBOOT"]
    lost = Finding(severity="warning", code="flashboot-priority-lost", field="flashBootType", message="m")
    other = Finding(severity="info", code="fb-suffix-stripped", field="name", message="m")
    assert unexplained(eq, [other]) == ("flashboot",)
    assert unexplained(eq, [other, lost]) == ()
    v2 = check(
        {"gpuIds": "AMPERE_16", "flashBootType": "PRIORITY_FLASHBOOT"}, {"flashboot": "PRIORITY_FLASHBOOT"}, "v2"
    )
    assert v2.flashboot == "same"


def test_flashboot_from_the_suffix_is_lost_when_the_body_strips_it_without_flashboot() -> None:
    """A -fb name without flashBootType: a body that renames it and says nothing about FlashBoot differs."""
    assert check({"name": "svc -fb"}, {"name": "svc"}).flashboot == "different"
    assert check({"name": "svc -fb"}, {"name": "svc", "flashboot": True}).flashboot == "same"
    assert check({"name": "svc -fb"}, {"name": "svc -fb"}).flashboot == "same"


def test_cpu_pairs_vcpu_mismatch_and_gpu_cpu_crossing() -> None:
    """v1 flavors x vcpuCount are pairs; a lost vCPU count differs; a GPU body for a CPU endpoint differs."""
    cpu = {"instanceIds": ["cpu3c-2-4", "cpu5c-4-8"]}
    eq = check(cpu, {"cpuFlavorIds": ["cpu3c", "cpu5c"], "vcpuCount": 4})
    assert eq.cpu == "different" and eq.gpu == "not-applicable"
    assert eq.detail("cpu") == "lost cpu3c 2 vCPU; gained cpu3c 4 vCPU"
    same = check(cpu, {"cpu": [{"id": "cpu3c", "vcpuCount": 2}, {"id": "cpu5c", "vcpuCount": 4}]}, "v2")
    assert same.equivalent
    assert check(cpu, {"cpuFlavorIds": ["cpu3c"]}).cpu == "narrower"  # vCPUs kept, one flavor lost
    crossed = check(cpu, {"gpuTypeIds": list(A16)})
    assert crossed.gpu == "different" and crossed.cpu == "different"
    gpu_side = check({"gpuIds": "AMPERE_16"}, {"gpuTypeIds": list(A16)})
    assert gpu_side.cpu == "not-applicable"


def test_scaling_workers_and_other_name_the_changed_values() -> None:
    """Each changed setting is named with its old and new value; v2 names map onto the legacy ones."""
    fields = {
        "gpuIds": "AMPERE_16",
        "scalerType": "QUEUE_DELAY",
        "scalerValue": 4,
        "idleTimeout": 5,
        "workersMin": 0,
        "workersMax": 3,
        "executionTimeoutMs": 600000,
        "allowedCudaVersions": "12.4,12.8",
        "networkVolumeIds": [{"networkVolumeId": "vol1", "dataCenterId": "EU-RO-1"}],
        "templateId": "tpl",
    }
    v2 = {
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": 0, "max": 3, "idleTimeout": 5},
        "timeout": 600000,
        "gpu": {"allowedCudaVersions": ["12.8", "12.4"]},
        "networkVolumes": ["vol1"],
    }
    assert check(fields, v2, "v2").equivalent
    bad = check(fields, {**v2, "scaling": {"type": "REQUEST_COUNT", "requestCount": 4}, "workers": {"max": 2}}, "v2")
    assert bad.lines() == [
        "scaling: different, scalerType 'QUEUE_DELAY' -> 'REQUEST_COUNT'",
        "workers: different, workersMax 3 -> 2",
    ]
    assert check(fields, {"allowedCudaVersions": ["12.4"], "templateId": "other"}).lines() == [
        "other: different, allowedCudaVersions lost 12.8; templateId 'tpl' -> 'other'"
    ]


def test_an_unresolved_legacy_token_is_never_same() -> None:
    """A legacy token the evaluator cannot resolve makes the aspect differ, naming the token."""
    eq = check({"gpuIds": "AMPERE_16,HOPPER_143"}, {"gpuTypeIds": list(A16)})
    assert eq.gpu == "different"
    assert eq.detail("gpu") == "legacy: gpuIds token 'HOPPER_143' is not a known pool or GPU type"
    assert check({"gpuIds": "AMPERE_16", "locations": "US,XX"}, {"dataCenterIds": list(US)}).locations == "different"


def test_to_dict_and_describe() -> None:
    """to_dict is the plan-JSON shape of SPEC §6 plus details; describe is one line."""
    ok = check({"gpuIds": "AMPERE_48", "locations": "US"}, {"gpuTypeIds": list(A48), "dataCenterIds": list(US)})
    assert ok.to_dict() == {
        "gpu": "same",
        "locations": "same",
        "flashboot": "same",
        "cpu": "not-applicable",
        "scaling": "same",
        "workers": "same",
        "other": "same",
        "frozen": ["gpu", "locations"],
    }
    assert list(ok.to_dict())[: len(ASPECTS)] == list(ASPECTS)
    assert ok.describe() == "equivalent; frozen: gpu, locations"
    bad = check({"gpuIds": "AMPERE_48"}, {"gpuTypeIds": ["NVIDIA A40"], "flashboot": True})
    assert bad.to_dict()["details"] == {"gpu": "lost NVIDIA RTX A6000", "flashboot": "OFF -> FLASHBOOT"}
    assert (
        bad.describe() == "not equivalent: gpu: narrower, lost NVIDIA RTX A6000; flashboot: different, OFF -> FLASHBOOT"
    )
    json.dumps(bad.to_dict())


# --- against the translator --------------------------------------------------------------------------------


def plan_problems(plan: Plan, endpoints: list[LegacyEndpoint], tables: Tables) -> list[str]:
    """Each endpoint the plan blocked as not equivalent, and each unblocked endpoint whose body differs from its
    legacy form without a finding that explains it (evaluated here again, not read from the plan)."""
    by_id = {e.id: e for e in endpoints}
    out = []
    for item in plan.endpoints:
        gaps = [f.message for f in item.findings if f.code == "not-equivalent"]
        if gaps:  # the plan's own check found a translator gap: the property must see it too
            out.append(f"{item.id} {by_id[item.id].gpuIds!r}: blocked: {'; '.join(gaps)}")
        if item.blocked:
            continue
        assert item.equivalence is not None and item.equivalence.describe()
        eq = compare(legacy_selection(by_id[item.id], tables), rest_selection(item.body, plan.target, tables))
        if unexplained(eq, item.findings):
            out.append(f"{item.id} {by_id[item.id].gpuIds!r}: {eq.describe()}")
    return out


@pytest.mark.parametrize("target", ["v1", "v2"])
def test_sample_and_generated_accounts_are_equivalent(target: str) -> None:
    """Every unblocked endpoint of the sample and a generated account is proved equivalent (or explained)."""
    snap = load_snapshot(SAMPLE)
    tables = build_tables(pools=snap.pools) if snap.pools else TABLES
    plan = build_plan(snap.endpoints, tables, target=target)  # type: ignore[arg-type]
    assert plan_problems(plan, snap.endpoints, tables) == []
    generated = parse_snapshot(generate_account(400, seed=7, blocked_fraction=0.1))
    tables = build_tables(pools=generated.pools) if generated.pools else TABLES
    plan = build_plan(generated.endpoints, tables, target=target)  # type: ignore[arg-type]
    assert sum(not p.blocked for p in plan.endpoints) > 300
    assert plan_problems(plan, generated.endpoints, tables) == []


TYPE_NAMES = [f"GPU T{i}" for i in range(8)]
POOL_NAMES = ["P_A", "P_B", "P_C", "P_D"]


@st.composite
def tables_and_endpoints(draw: st.DrawFn) -> tuple[Tables, list[LegacyEndpoint]]:
    """Random pool tables (members may overlap between pools), [locations] overrides and legacy endpoints."""
    pools = {
        pool: draw(st.lists(st.sampled_from(TYPE_NAMES), min_size=1, max_size=4, unique=True))
        for pool in draw(st.lists(st.sampled_from(POOL_NAMES), min_size=1, max_size=4, unique=True))
    }
    dcs = sorted(TABLES.data_centers)
    override = {"locations": {"EU": draw(st.lists(st.sampled_from(dcs), min_size=1, max_size=3, unique=True))}}
    tables = build_tables(pools=pools, overrides=[override])
    members = sorted({m for ms in pools.values() for m in ms})
    token = st.one_of(
        st.sampled_from(sorted(pools)),
        st.sampled_from(members).map(lambda t: "-" + t),
        # spelling variants a console or a hand writes (issue 13: such an exclusion narrows, both sides agree)
        st.sampled_from(members).map(lambda t: "-" + t.lower().replace(" ", "  ")),
        st.sampled_from(members),
        st.just(""),
    )
    gpu_ids = st.lists(st.tuples(st.sampled_from(["", " "]), token).map("".join), max_size=5).map(",".join)
    location = st.one_of(
        st.none(),
        st.just(""),
        st.lists(st.sampled_from(["US", "CZ", "GB", "SE", "EU", *dcs[:6]]), min_size=1, max_size=3).map(",".join),
    )
    flavors = ["cpu3c", "cpu3g", "cpu5c", "cpu3m"]  # cpu3m: a catalog flavor v2 takes and v1 does not
    instance = st.tuples(st.sampled_from(flavors), st.sampled_from([1, 2, 4, 8])).map(
        lambda t: f"{t[0]}-{t[1]}-{t[1] * 2}"
    )
    endpoints = []
    for index in range(draw(st.integers(1, 6))):
        scaler = draw(st.sampled_from([None, "QUEUE_DELAY", "REQUEST_COUNT"]))
        raw = {
            "id": f"ep{index}",
            "name": draw(st.sampled_from(["svc", "svc -fb", "svc-FB", "-fb", None])),
            "type": draw(st.sampled_from([None, "QB", "LB"])),
            "gpuIds": draw(gpu_ids),
            "gpuCount": draw(st.sampled_from([None, 1, 2])),
            "instanceIds": draw(st.one_of(st.none(), st.lists(instance, min_size=1, max_size=3))),
            "locations": draw(location),
            "flashBootType": draw(st.sampled_from([None, "OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"])),
            "scalerType": scaler,
            "scalerValue": draw(st.sampled_from([None, 1, 4])) if scaler else None,
            "idleTimeout": draw(st.sampled_from([None, 5, 60])),
            "workersMin": draw(st.sampled_from([None, 0, 1])),
            "workersMax": draw(st.sampled_from([None, 1, 3])),
            "executionTimeoutMs": draw(st.sampled_from([None, 600000])),
            "allowedCudaVersions": draw(st.sampled_from([None, "", "12.4", "12.4,12.8"])),
            "minCudaVersion": draw(st.sampled_from([None, "12.1"])),
            "networkVolumeId": draw(st.sampled_from([None, "vol1"])),
            "templateId": draw(st.sampled_from([None, "tpl"])),
        }
        endpoints.append(LegacyEndpoint.model_validate(raw))
    return tables, endpoints


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables_and_endpoints(), st.sampled_from(["v1", "v2"]))
def test_every_unblocked_endpoint_is_equivalent_under_generated_tables(
    case: tuple[Tables, list[LegacyEndpoint]], target: str
) -> None:
    """Under random tables and legacy forms, every unblocked body keeps every aspect, or a finding explains it."""
    tables, endpoints = case
    plan = build_plan(endpoints, tables, target=target)  # type: ignore[arg-type]
    assert plan_problems(plan, endpoints, tables) == []


def test_v2_type_token_that_changes_the_priority_order_is_reported_and_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gap 1: a GPU type sent as its v2 pool can change the priority order; the v2 target says so.

    No v2 body keeps the order (excludedTypes applies to every pool), so the warning explains the order
    change, and only that: without the warning the plan blocks the endpoint as not equivalent.
    """
    tables = build_tables(pools={"P_A": ["GPU T0"], "P_B": ["GPU T0", "GPU T1"]})
    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "GPU T1,P_A"})
    item = build_plan([endpoint], tables, target="v2").endpoints[0]
    assert item.body["gpu"]["pools"] == ["P_B", "P_A"] and not item.blocked
    codes = [f.code for f in item.findings]
    assert "gpu-priority-order-changed" in codes and "not-equivalent" not in codes
    assert item.equivalence is not None and item.equivalence.gpu == "different"
    assert item.equivalence.explained == {"gpu": "gpu-priority-order-changed"}
    assert plan_problems(build_plan([endpoint], tables, target="v2"), [endpoint], tables) == []
    # The order survives when the type's pool brings nothing a later token selects: no warning.
    other = build_tables(pools={"P_A": ["GPU T0"], "P_B": ["GPU T1", "GPU T2"]})
    kept = build_plan([endpoint], other, target="v2").endpoints[0]
    assert kept.body["gpu"] == {"pools": ["P_B", "P_A"], "excludedTypes": ["GPU T2"]}
    assert "gpu-priority-order-changed" not in [f.code for f in kept.findings]
    assert kept.equivalence is not None and kept.equivalence.gpu == "same"
    # Without the warning the check blocks it.
    monkeypatch.setattr(bridge.targets.v2, "_check_order", lambda *args: None)
    blocked = build_plan([endpoint], tables, target="v2").endpoints[0]
    assert blocked.blocked and blocked.body == {}
    (gap,) = [f for f in blocked.findings if f.code == "not-equivalent"]
    assert gap.field == "gpuIds" and "priority order changed: GPU T1, GPU T0 -> GPU T0, GPU T1" in gap.message


def test_an_order_explanation_does_not_cover_a_changed_set() -> None:
    """gpu-priority-order-changed explains a reordering only: a lost or gained type stays unexplained."""
    from bridge.models import Finding

    warning = Finding(severity="warning", code="gpu-priority-order-changed", field="gpuIds", message="m")
    reordered = check({"gpuIds": "AMPERE_48"}, {"gpuTypeIds": ["NVIDIA RTX A6000", "NVIDIA A40"]})
    assert reordered.reordered == ("gpu",) and unexplained(reordered, [warning]) == ()
    narrowed = check({"gpuIds": "AMPERE_48"}, {"gpuTypeIds": ["NVIDIA A40"]})
    assert narrowed.reordered == () and unexplained(narrowed, [warning]) == ("gpu",)


def test_case_variant_exclusion_left_in_a_v1_body_is_never_sent() -> None:
    """Gap 2 (issue 13 fixes the translator): a lower-case exclusion the v1 body ignores is blocked meanwhile.

    Either the translator drops NVIDIA RTX A6000 (fixed) and the endpoint is equivalent, or the body keeps it
    and the check blocks the endpoint: an unblocked body that rents the excluded card is the bug.
    """
    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "AMPERE_48,-nvidia rtx a6000"})
    item = build_plan([endpoint], TABLES, target="v1").endpoints[0]
    draft = bridge.targets.v1.build_v1_body(bridge.translate.analyse(endpoint, TABLES), TABLES).body
    if "NVIDIA RTX A6000" in draft["gpuTypeIds"]:
        assert item.blocked and item.equivalence is not None and item.equivalence.gpu == "wider"
        (gap,) = [f for f in item.findings if f.code == "not-equivalent"]
        assert gap.field == "gpuIds" and "gpu: wider, gained NVIDIA RTX A6000" in gap.message
    else:
        assert not item.blocked and item.equivalence is not None and item.equivalence.equivalent


# --- mutation tests: break one translator rule at a time, the check must notice -----------------------------
# Patch points are the rule functions of bridge.translate and the v2 body builder; when those move (the
# bridge/targets/ package), only the names in these wrappers change.

_Rule = Callable[..., None]


def _gpu_ids_rewritten(rewrite: Callable[[list[str]], list[str]]) -> Callable[[_Rule], _Rule]:
    def wrap(original: _Rule) -> _Rule:
        def mutated(endpoint: LegacyEndpoint, tables: Tables, intent: Any) -> None:
            tokens = [t.strip() for t in (endpoint.gpuIds or "").split(",") if t.strip()]
            original(endpoint.model_copy(update={"gpuIds": ",".join(rewrite(tokens))}), tables, intent)

        return mutated

    return wrap


def _drop_exclusions(tokens: list[str]) -> list[str]:
    return [t for t in tokens if not t.startswith("-")]


def _drop_last_pool(tokens: list[str]) -> list[str]:
    positive = [t for t in tokens if not t.startswith("-")]
    return [t for t in tokens if t != positive[-1]] if len(set(positive)) > 1 else tokens


def _reverse_pools(tokens: list[str]) -> list[str]:
    return [*reversed([t for t in tokens if not t.startswith("-")]), *[t for t in tokens if t.startswith("-")]]


def _after(change: Callable[[Any], None]) -> Callable[[_Rule], _Rule]:
    def wrap(original: _Rule) -> _Rule:
        def mutated(*args: Any) -> None:
            original(*args)
            change(args[-1])

        return mutated

    return wrap


def _flip_flashboot(intent: Any) -> None:
    intent.flashboot = "FLASHBOOT" if intent.flashboot == "OFF" else "OFF"


def _drop_data_center(intent: Any) -> None:
    if intent.data_centers and len(intent.data_centers) > 1:
        intent.data_centers = intent.data_centers[:-1]


def _double_vcpus(intent: Any) -> None:
    intent.cpu = [(flavor, vcpus * 2) for flavor, vcpus in intent.cpu or ()]


def _raise_workers_max(intent: Any) -> None:
    if "workersMax" in intent.settings:
        intent.settings["workersMax"] += 1


def _no_excluded_types(original: Callable[..., Any]) -> Callable[..., Any]:
    def mutated(intent: Any, tables: Tables) -> Any:
        translation = original(intent, tables)
        translation.body.get("gpu", {}).pop("excludedTypes", None)
        return translation

    return mutated


MUTATIONS: list[tuple[str, Any, str, Callable[[Any], Any], str, tuple[str, ...]]] = [
    # (name, module, attribute, wrapper, aspect the check must report, targets)
    ("drop exclusions", bridge.translate, "_gpu", _gpu_ids_rewritten(_drop_exclusions), "gpu", ("v1", "v2")),
    ("drop a pool", bridge.translate, "_gpu", _gpu_ids_rewritten(_drop_last_pool), "gpu", ("v1", "v2")),
    ("reorder pools", bridge.translate, "_gpu", _gpu_ids_rewritten(_reverse_pools), "gpu", ("v1", "v2")),
    ("flip flashboot", bridge.translate, "_flashboot", _after(_flip_flashboot), "flashboot", ("v1", "v2")),
    ("drop a data center", bridge.translate, "_locations", _after(_drop_data_center), "locations", ("v1", "v2")),
    ("double vCPUs", bridge.translate, "_cpu", _after(_double_vcpus), "cpu", ("v1", "v2")),
    ("raise workersMax", bridge.translate, "_settings", _after(_raise_workers_max), "workers", ("v1", "v2")),
    ("v2 pools without excludedTypes", bridge.targets.v2, "build_v2_body", _no_excluded_types, "gpu", ("v2",)),
]
CASES = [(name, target) for name, *_, targets in MUTATIONS for target in targets]


@pytest.fixture(scope="module")
def account() -> tuple[list[LegacyEndpoint], Tables]:
    snap = parse_snapshot(generate_account(300, seed=11, cpu_fraction=0.2))
    return snap.endpoints, build_tables(pools=snap.pools) if snap.pools else TABLES


def _break(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Patch the translator with mutation ``name``; return the aspect it breaks."""
    _, module, attribute, wrapper, aspect, _ = next(m for m in MUTATIONS if m[0] == name)
    monkeypatch.setattr(module, attribute, wrapper(getattr(module, attribute)))
    return aspect


@pytest.mark.parametrize(("name", "target"), CASES)
def test_a_broken_translator_rule_is_caught(
    name: str, target: str, account: tuple[list[LegacyEndpoint], Tables], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan blocks every endpoint whose selection the broken rule changed, naming the rule's aspect.

    "Changed" compares what the correct and the broken draft body select (a body that only lost an empty
    ``excludedTypes`` selects the same), so a mutation that changes nothing for an endpoint is not counted.
    An endpoint the plan leaves unblocked must select what its correct body selects.
    """
    endpoints, tables = account
    good = {p.id: p for p in build_plan(endpoints, tables, target=target).endpoints}  # type: ignore[arg-type]
    aspect = _break(name, monkeypatch)
    bad = build_plan(endpoints, tables, target=target)  # type: ignore[arg-type]
    spec = get_target(target)
    by_id = {e.id: e for e in endpoints}
    field = LEGACY_FIELD[aspect]  # type: ignore[index]
    caught = 0
    for item in bad.endpoints:
        if good[item.id].blocked:
            continue
        legacy = legacy_selection(by_id[item.id], tables)
        before = compare(legacy, rest_selection(good[item.id].body, target, tables))  # type: ignore[arg-type]
        if not item.blocked:
            after = compare(legacy, rest_selection(item.body, target, tables))  # type: ignore[arg-type]
            assert after == before, (name, item.id, item.body, after.describe())
            continue
        draft = spec.build(bridge.translate.analyse(by_id[item.id], tables), tables).body
        assert compare(legacy, rest_selection(draft, target, tables)) != before, (name, item.id)  # type: ignore[arg-type]
        gaps = [f for f in item.findings if f.code == "not-equivalent"]
        assert any(f.field == field for f in gaps), (name, item.id, item.findings)
        assert item.equivalence is not None and aspect in item.equivalence.differing
        caught += 1
    assert caught >= 3, f"{name} blocked only {caught} endpoints: the mutation tests nothing"
    assert bad.summary.not_equivalent == caught


def test_a_custom_rule_that_changes_the_selection_is_reported() -> None:
    """A rule that narrows the data centers on purpose shows up as a difference (the plan labels it)."""

    def only_first_dc(endpoint: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        if body.get("dataCenterIds"):
            body["dataCenterIds"] = body["dataCenterIds"][:1]
        return body, []

    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "AMPERE_16", "locations": "US"})
    plan = build_plan([endpoint], TABLES, rules=[only_first_dc])
    eq = compare(legacy_selection(endpoint, TABLES), rest_selection(plan.endpoints[0].body, "v1", TABLES))
    assert eq.locations == "narrower"
    assert (eq.detail("locations") or "").startswith(f"lost {sorted(US[1:])[0]}, ")


def test_a_custom_rule_change_is_named_and_not_blocked() -> None:
    """The plan reports a rule's deliberate change with the rule's name; a rule that changes nothing is not named."""

    def only_first_dc(endpoint: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        if body.get("dataCenterIds"):
            body["dataCenterIds"] = body["dataCenterIds"][:1]
        return body, []

    def no_op(endpoint: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        return body, []

    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "AMPERE_16", "locations": "US"})
    plan = build_plan([endpoint], TABLES, rules=[no_op, only_first_dc])
    item = plan.endpoints[0]
    assert not item.blocked and "not-equivalent" not in [f.code for f in item.findings]
    assert item.equivalence is not None and item.equivalence.locations == "narrower"
    assert item.equivalence.rules == ["only_first_dc"]
    assert "changed by rule only_first_dc" in item.equivalence.describe()
    assert (plan.summary.explained, plan.summary.not_equivalent) == (1, 0)
    assert json.loads(plan.to_json())["endpoints"][0]["equivalence"]["rules"] == ["only_first_dc"]
    # A rule that leaves the body as it is changes nothing and is not named.
    flip = build_plan([endpoint], TABLES, rules=[no_op]).endpoints[0]
    assert flip.equivalence is not None and flip.equivalence.equivalent and flip.equivalence.rules == []


def test_a_rule_does_not_hide_a_translator_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A difference the draft body already had is the translator's, blocked even when a rule changed the body."""

    def rename(endpoint: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        return {**body, "workersMax": 5}, []

    _break("drop a data center", monkeypatch)
    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "AMPERE_16", "locations": "US"})
    item = build_plan([endpoint], TABLES, rules=[rename]).endpoints[0]
    assert item.blocked
    assert [f.field for f in item.findings if f.code == "not-equivalent"] == ["locations"]
    assert item.equivalence is not None and item.equivalence.workers == "different"
    assert item.equivalence.rules == ["rename"]


def test_not_equivalent_blocks_plan_check_and_migrate(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """plan --check and migrate treat not-equivalent like any other blocking error: reported, never written."""
    from click.testing import CliRunner

    from bridge.cli import main
    from bridge.emulator import Emulator

    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    one = ("--endpoint", "i02xupws21hp6i")  # locations "US": a dozen data centers
    assert invoke("plan", "--from", str(SAMPLE), *one, "--check").exit_code == 4
    _break("drop a data center", monkeypatch)
    checked = invoke("plan", "--from", str(SAMPLE), *one, "--check")
    assert checked.exit_code == 3
    assert "error: not-equivalent (locations)" in checked.stdout
    assert "0 proved equivalent, 0 equivalent with frozen lists, 0 differing as reported, 1 not equivalent" in (
        checked.stdout
    )
    doc = json.loads(invoke("plan", "--from", str(SAMPLE), *one, "--format", "json").stdout)
    assert doc["summary"]["not_equivalent"] == 1 and doc["endpoints"][0]["equivalence"]["locations"] == "narrower"
    key = "test-key-EQUIV-0123456789"
    with Emulator(SAMPLE, api_key=key) as emu:
        env = {**emu.env, "RUNPOD_API_KEY": key}
        migrated = invoke("migrate", "--yes", "--state-dir", str(tmp_path / "state"), *one, env=env)
        assert migrated.exit_code == 3, migrated.stderr
        assert "blocked i02xupws21hp6i: not-equivalent" in migrated.stderr
        assert emu.write_counts() == {}


def test_a_plan_written_before_the_check_still_loads() -> None:
    """plan.json files exported before issue 14 have no equivalence and no equivalence counts: they still load."""
    endpoint = LegacyEndpoint.model_validate({"id": "e", "name": "svc", "gpuIds": "AMPERE_16"})
    doc = json.loads(build_plan([endpoint], TABLES).to_json())
    assert doc["endpoints"][0]["equivalence"]["frozen"] == ["gpu"] and doc["summary"]["equivalent_frozen"] == 1
    del doc["endpoints"][0]["equivalence"]
    doc["summary"] = {k: doc["summary"][k] for k in ("endpoints", "update", "unchanged", "blocked")}
    old = Plan.model_validate(doc)
    assert old.endpoints[0].equivalence is None and old.summary.equivalent_frozen == 0
