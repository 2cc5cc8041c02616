"""Property-based invariants of translation over generated legacy endpoints (hypothesis)."""

from __future__ import annotations

import io
from typing import Any

import jsonschema
from helpers import tables, v1_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.models import LegacyEndpoint
from bridge.plan import build_plan, translate
from bridge.report import render

TABLES = tables()
POOLS = sorted(TABLES.pools)
TYPES = sorted({t for members in TABLES.pools.values() for t in members})
SCHEMA = v1_spec()["components"]["schemas"]["EndpointUpdateInput"]
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)
COUNTRIES = sorted(TABLES.countries)
DCS = sorted(TABLES.data_centers)

gpu_token = st.one_of(
    st.sampled_from(POOLS),
    st.sampled_from(TYPES).map(lambda t: "-" + t),
    st.sampled_from(TYPES),
    st.just(""),
    st.sampled_from(["AMPERE_20", "-", "HOPPER_143"]),
)
space = st.sampled_from(["", " ", "  "])
gpu_ids = st.lists(st.tuples(space, gpu_token, space).map("".join), max_size=6).map(",".join)
locations = st.one_of(
    st.none(),
    st.lists(st.sampled_from([*COUNTRIES, *DCS, "XX"]), max_size=4).map(",".join),
)
secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=20).map(lambda s: "zz" + s)


@st.composite
def legacy(draw: st.DrawFn) -> dict[str, Any]:
    cpu = draw(st.booleans()) and draw(st.integers(0, 3)) == 0
    flavors = st.sampled_from(["cpu3c", "cpu3g", "cpu5c", "cpu5g"])
    instances = (
        draw(
            st.lists(
                st.tuples(flavors, st.sampled_from([1, 2, 4, 8])).map(lambda t: f"{t[0]}-{t[1]}-{t[1] * 2}"),
                min_size=1,
                max_size=3,
            )
        )
        if cpu
        else None
    )
    return {
        "id": "ep" + draw(st.text(alphabet="abcdefghij0123456789", min_size=12, max_size=12)),
        "name": draw(st.sampled_from(["svc", "svc -fb", "svc-FB", "-fb", "x" * 10])),
        "gpuIds": draw(gpu_ids),
        "instanceIds": instances,
        "locations": draw(locations),
        "flashBootType": draw(st.sampled_from([None, "OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"])),
        "idleTimeout": draw(st.one_of(st.none(), st.integers(-5, 4000))),
        "workersMin": draw(st.integers(0, 5)),
        "workersMax": draw(st.integers(0, 5)),
        "scalerValue": draw(st.integers(0, 10)),
        "gpuCount": draw(st.integers(1, 8)),
        "allowedCudaVersions": draw(st.sampled_from([None, "", "12.4", "12.4,12.8", "11.8, 13.0"])),
        "aiKey": draw(secret),
        "env": [{"key": "TOKEN", "value": draw(secret)}],
    }


def expected_candidates(gpu: str) -> tuple[set[str], set[str]]:
    tokens = [t.strip() for t in gpu.split(",") if t.strip()]
    positives = [t for t in tokens if not t.startswith("-")]
    excluded = {t[1:].strip() for t in tokens if t.startswith("-")}
    allowed: set[str] = set()
    for token in positives:
        known = token in TABLES.gpu_types or token in TABLES.pool_of
        allowed.update(TABLES.pools.get(token, (token,) if known else ()))
    return allowed, excluded


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(legacy())
def test_gpu_types_only_from_selected_pools_never_excluded_never_twice(raw: dict[str, Any]) -> None:
    """No GPU type outside the selected pools, no excluded type, no duplicates, in every body."""
    result = translate(LegacyEndpoint.model_validate(raw), TABLES)
    types = result.body.get("gpuTypeIds")
    if types is None:
        assert raw["instanceIds"]
        return
    allowed, excluded = expected_candidates(raw["gpuIds"])
    assert set(types) <= allowed
    assert not set(types) & excluded
    assert len(types) == len(set(types))
    if not result.blocked:
        assert types


@settings(max_examples=400, deadline=None)
@given(legacy())
def test_unblocked_bodies_are_valid_v1_update_input(raw: dict[str, Any]) -> None:
    """Every unblocked body validates against the stored v1 EndpointUpdateInput schema and has only its keys."""
    result = translate(LegacyEndpoint.model_validate(raw), TABLES)
    if result.blocked:
        return
    # The stored v1 enums are a snapshot: a body may name the newer data centers and pool members (MIG
    # slices) the tables know; a GPU type outside the enum always comes with a warning.
    known = set(TABLES.data_centers) | set(TABLES.pool_of)
    errors = [e for e in VALIDATOR.iter_errors(result.body) if not (e.validator == "enum" and e.instance in known)]
    assert not errors, errors[0].message
    for gpu_type in result.body.get("gpuTypeIds", ()):
        if gpu_type not in TABLES.gpu_types:
            assert any(f.code == "gpu-type-not-in-rest-enum" for f in result.findings), gpu_type
    assert set(result.body) <= set(SCHEMA["properties"])
    assert None not in result.body.values()
    for key in ("dataCenterIds", "cpuFlavorIds", "allowedCudaVersions"):
        if key in result.body:
            assert result.body[key], key  # never an empty list (it would mean 'anywhere')


@settings(max_examples=100, deadline=None)
@given(st.lists(legacy(), min_size=1, max_size=5, unique_by=lambda r: r["id"]))
def test_no_secret_in_any_output(raws: list[dict[str, Any]]) -> None:
    """No aiKey or env value appears in the plan JSON, text or Markdown report."""
    endpoints = [LegacyEndpoint.model_validate(r) for r in raws]
    plan = build_plan(endpoints, TABLES, generated_at="2026-01-01T00:00:00Z")
    outputs = [plan.to_json()]
    for fmt in ("text", "markdown"):
        buffer = io.StringIO()
        render(plan, buffer, fmt)
        outputs.append(buffer.getvalue())
    for raw in raws:
        for value in (raw["aiKey"], raw["env"][0]["value"]):
            assert all(value not in out for out in outputs)


@settings(max_examples=200, deadline=None)
@given(legacy())
def test_blocked_iff_error_and_plan_never_sends_blocked(raw: dict[str, Any]) -> None:
    """An endpoint is blocked exactly when it has an error finding, and then its plan body is empty."""
    ep = LegacyEndpoint.model_validate(raw)
    result = translate(ep, TABLES)
    (planned,) = build_plan([ep], TABLES, generated_at="2026-01-01T00:00:00Z").endpoints
    assert result.blocked == any(f.severity == "error" for f in result.findings)
    assert (planned.status == "blocked") == result.blocked
    if planned.status == "blocked":
        assert planned.body == {} and planned.changes == []
