"""REST v2 target: body building (SPEC §5), v2 rules, schema checks and read-back comparison."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from bridge.models import LegacyEndpoint
from bridge.plan import build_plan, plan_endpoint
from bridge.snapshot import load_snapshot
from bridge.tables import Tables, build_tables, bundled_tables
from bridge.targets import V2, get_target, v2_checks
from bridge.targets.base import diff, fingerprint
from bridge.translate import Intent, Translation, analyse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "fixtures" / "sample-account.json"
SHARED_SPEC = ROOT.parent / "shared" / "reference" / "runpod-rest-v2-openapi.json"
V1_ONLY = {"flashboot-priority-lost", "cpu-vcpu-mismatch", "gpu-type-not-in-rest-enum"}
BODY_KEYS = {"name", "gpu", "cpu", "workers", "scaling", "dataCenterIds", "networkVolumes", "timeout", "flashboot"}
MIG = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb"


@pytest.fixture(scope="module", autouse=True)
def _spec_path() -> Iterator[None]:
    """Use the shared copy of the v2 spec when the package copy is not there yet."""
    with pytest.MonkeyPatch.context() as mp:
        if not v2_checks.SCHEMA_PATH.exists():
            mp.setattr(v2_checks, "SCHEMA_PATH", SHARED_SPEC)
        yield


@pytest.fixture(scope="module")
def snapshot() -> Any:
    return load_snapshot(SAMPLE)


@pytest.fixture(scope="module")
def tables(snapshot: Any) -> Tables:
    return build_tables(pools=snapshot.pools)


def _validator(schema: str) -> Draft202012Validator:
    doc = json.loads(v2_checks.SCHEMA_PATH.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry().with_resource("urn:test-v2", DRAFT202012.create_resource(doc))
    return Draft202012Validator({"$ref": f"urn:test-v2#/components/schemas/{schema}"}, registry=registry)


@pytest.fixture(scope="module")
def update_schema() -> Draft202012Validator:
    return _validator("UpdateEndpointRequest")


@pytest.fixture(scope="module")
def endpoint_schema() -> Draft202012Validator:
    return _validator("Endpoint")


def endpoint(**fields: Any) -> LegacyEndpoint:
    base: dict[str, Any] = {"id": "ep1", "name": "worker", "gpuIds": "AMPERE_16"}
    base.update(fields)
    return LegacyEndpoint.model_validate(base)


def with_type(intent: Intent, kind: str) -> Intent:
    """The intent with a legacy routing type (``Intent.endpoint_type``, or a stand-in until it exists)."""
    if any(f.name == "endpoint_type" for f in dataclasses.fields(Intent)):
        return dataclasses.replace(intent, endpoint_type=kind)  # type: ignore[call-arg]

    class _Typed(Intent):
        pass

    typed = _Typed(**{f.name: getattr(intent, f.name) for f in dataclasses.fields(Intent)})
    typed.endpoint_type = kind  # type: ignore[attr-defined]
    return typed


def v2(ep: LegacyEndpoint, tables: Tables, kind: str | None = None) -> Translation:
    intent = analyse(ep, tables)
    return V2.build(with_type(intent, kind) if kind else intent, tables)


def codes(translation: Translation) -> dict[str, str]:
    return {f.code: f.severity for f in translation.findings}


def members(tables: Tables, pools: list[str]) -> list[str]:
    return list(dict.fromkeys(m for p in pools for m in tables.pools[p]))


def effective(tables: Tables, gpu: dict[str, Any]) -> set[str]:
    return set(members(tables, gpu["pools"])) - set(gpu["excludedTypes"])


# --- registration --------------------------------------------------------------------------------------


def test_registered_as_v2() -> None:
    """get_target("v2") returns this module's target, named v2."""
    assert get_target("v2") is V2
    assert V2.name == "v2"


# --- GPU -----------------------------------------------------------------------------------------------


def test_pools_and_exclusions(tables: Tables) -> None:
    """Positive tokens become gpu.pools unchanged and in order; -TYPE tokens become gpu.excludedTypes."""
    t = v2(endpoint(gpuIds="AMPERE_24, AMPERE_16,-NVIDIA RTX A4500,-NVIDIA L4", gpuCount=2), tables)
    assert t.body["gpu"] == {
        "pools": ["AMPERE_24", "AMPERE_16"],
        "excludedTypes": ["NVIDIA RTX A4500", "NVIDIA L4"],
        "count": 2,
    }
    assert not t.blocked


def test_exclusions_restated_when_empty(tables: Tables) -> None:
    """excludedTypes is sent even when empty, because pools alone would clear the endpoint's exclusions."""
    t = v2(endpoint(gpuIds="AMPERE_16"), tables)
    assert t.body["gpu"]["pools"] == ["AMPERE_16"]
    assert t.body["gpu"]["excludedTypes"] == []


def test_gpu_type_as_pool_maps_to_its_pool(tables: Tables) -> None:
    """A GPU type token becomes its pool minus the pool's other types: exactly the v1 selection, with a warning."""
    t = v2(endpoint(gpuIds="NVIDIA RTX A4000"), tables)
    gpu = t.body["gpu"]
    assert gpu["pools"] == ["AMPERE_16"]
    assert effective(tables, gpu) == {"NVIDIA RTX A4000"}
    assert codes(t)["gpu-type-as-pool"] == "warning"
    assert not t.blocked
    message = next(f.message for f in t.findings if f.code == "gpu-type-as-pool")
    assert "AMPERE_16" in message


def test_gpu_type_next_to_pools(tables: Tables) -> None:
    """A type token beside real pools adds its pool and excludes only that pool's unrequested types."""
    t = v2(endpoint(gpuIds="ADA_24,NVIDIA L4,-NVIDIA GeForce RTX 4090,AMPERE_48"), tables)
    gpu = t.body["gpu"]
    assert gpu["pools"] == ["ADA_24", "AMPERE_24", "AMPERE_48"]
    assert gpu["excludedTypes"][0] == "NVIDIA GeForce RTX 4090"
    assert effective(tables, gpu) == {"NVIDIA L4", "NVIDIA A40", "NVIDIA RTX A6000"}
    assert effective(tables, gpu) == set(
        get_target("v1")
        .build(analyse(endpoint(gpuIds="ADA_24,NVIDIA L4,-NVIDIA GeForce RTX 4090,AMPERE_48"), tables), tables)
        .body["gpuTypeIds"]
    )


def test_gpu_type_in_no_pool_is_blocked(tables: Tables) -> None:
    """A GPU type that no known pool lists cannot be written as a v2 pool: error, never sent as a pool."""
    assert bundled_tables().pool_of["NVIDIA H200"] == "HOPPER_141"  # a cache model_copy carries over
    small = build_tables(pools={"AMPERE_16": ["NVIDIA RTX A4000"]})
    t = v2(endpoint(gpuIds="NVIDIA H200"), small)
    assert codes(t)["gpu-type-as-pool"] == "error"
    assert "gpu" not in t.body or "NVIDIA H200" not in t.body["gpu"].get("pools", [])


def test_unknown_pool_blocked(tables: Tables) -> None:
    """An unknown pool stays the target-neutral unknown-gpu-pool error and is not put into pools."""
    t = v2(endpoint(gpuIds="AMPERE_20"), tables)
    assert codes(t)["unknown-gpu-pool"] == "error"
    assert "AMPERE_20" not in t.body.get("gpu", {}).get("pools", [])


def test_exclusion_not_in_pools_is_an_error_on_v2_only(tables: Tables) -> None:
    """An exclusion outside the selected pools blocks on v2 (400 there) and stays a warning on v1."""
    ep = endpoint(gpuIds="AMPERE_16,-NVIDIA H200")
    t = v2(ep, tables)
    assert codes(t)["exclusion-not-in-pools"] == "error"
    assert "400" in next(f.message for f in t.findings if f.code == "exclusion-not-in-pools")
    assert "NVIDIA H200" not in t.body["gpu"]["excludedTypes"]
    assert [f.severity for f in t.findings if f.code == "exclusion-not-in-pools"] == ["error"]
    v1 = get_target("v1").build(analyse(ep, tables), tables)
    assert codes(v1)["exclusion-not-in-pools"] == "warning"


def test_exclusion_made_valid_by_a_type_token(tables: Tables) -> None:
    """An exclusion that only the mapped pool of a type token contains is fine on v2: no finding."""
    t = v2(endpoint(gpuIds="NVIDIA RTX A4000,-NVIDIA RTX A4500"), tables)
    assert "exclusion-not-in-pools" not in codes(t)
    assert not t.blocked
    assert t.body["gpu"]["excludedTypes"][0] == "NVIDIA RTX A4500"


def test_exclusion_starting_with_dash_blocked(tables: Tables) -> None:
    """An exclusion v2's pattern refuses ("--TYPE" or a bare "-") is an error and is not sent."""
    t = v2(endpoint(gpuIds="AMPERE_16,--NVIDIA RTX A4000,-"), tables)
    assert codes(t)["field-out-of-range"] == "error"
    assert t.body["gpu"]["excludedTypes"] == []


def test_everything_excluded_blocked(tables: Tables) -> None:
    """A pool minus all its types is still the target-neutral no-gpu-types error."""
    t = v2(endpoint(gpuIds="AMPERE_48,-NVIDIA A40,-NVIDIA RTX A6000"), tables)
    assert codes(t)["no-gpu-types"] == "error"


def test_mig_slice_kept_without_v1_warnings(tables: Tables) -> None:
    """A pool with a MIG slice is sent as the pool: no gpu-type-not-in-rest-enum on v2 (v1 warns)."""
    ep = endpoint(gpuIds="ADA_48_PRO")
    t = v2(ep, tables)
    assert t.body["gpu"]["pools"] == ["ADA_48_PRO"]
    assert MIG in tables.pools["ADA_48_PRO"]
    assert not V1_ONLY & set(codes(t))
    assert "gpu-type-not-in-rest-enum" in codes(get_target("v1").build(analyse(ep, tables), tables))


# --- CPU -----------------------------------------------------------------------------------------------


def test_cpu_multi_flavor(tables: Tables) -> None:
    """Each (flavor, vCPU) becomes its own cpu entry: no cpu-vcpu-mismatch, no gpu key, gpuIds ignored."""
    t = v2(endpoint(gpuIds="AMPERE_16", gpuCount=1, instanceIds=["cpu3g-4-16", "cpu3c-8-16", "cpu3g-4-16"]), tables)
    assert t.body["cpu"] == [{"id": "cpu3g", "vcpuCount": 4}, {"id": "cpu3c", "vcpuCount": 8}]
    assert "gpu" not in t.body
    assert codes(t) == {"gpu-ids-ignored": "warning"}


@pytest.mark.parametrize("instance", ["cpu3c-1-2", "cpu3c-6-12"])
def test_cpu_vcpu_rules(tables: Tables, instance: str) -> None:
    """vcpuCount below 2 or not a power of two is a field-out-of-range error, and the entry is not sent."""
    t = v2(endpoint(gpuIds="", instanceIds=[instance, "cpu5c-2-4"]), tables)
    assert codes(t)["field-out-of-range"] == "error"
    assert t.body["cpu"] == [{"id": "cpu5c", "vcpuCount": 2}]


def test_cpu_unknown_instance_blocked(tables: Tables) -> None:
    """An unknown CPU instance stays the target-neutral unknown-cpu-instance error."""
    t = v2(endpoint(gpuIds="", instanceIds=["cpu9x-4-16"]), tables)
    assert codes(t)["unknown-cpu-instance"] == "error"
    assert "cpu" not in t.body and "gpu" not in t.body


# --- FlashBoot and name --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "want"),
    [
        ("a", "OFF", "OFF"),
        ("a", "FLASHBOOT", "FLASHBOOT"),
        ("a", "PRIORITY_FLASHBOOT", "PRIORITY_FLASHBOOT"),
        ("a -fb", None, "FLASHBOOT"),
        ("a-FB", None, "FLASHBOOT"),
        ("a", None, "OFF"),
    ],
)
def test_flashboot_enum(tables: Tables, name: str, mode: str | None, want: str) -> None:
    """flashboot is the v2 enum, PRIORITY_FLASHBOOT kept, never flashboot-priority-lost; the suffix is stripped."""
    t = v2(endpoint(name=name, flashBootType=mode), tables)
    assert t.body["flashboot"] == want
    assert t.body["name"] == "a"
    assert not V1_ONLY & set(codes(t))


def test_flashboot_conflict_and_bad_mode(tables: Tables) -> None:
    """flashboot-conflict stays a warning; an unknown flashBootType stays an error."""
    assert codes(v2(endpoint(name="a-fb", flashBootType="OFF"), tables))["flashboot-conflict"] == "warning"
    assert codes(v2(endpoint(flashBootType="TURBO"), tables))["field-out-of-range"] == "error"


def test_name_rules(tables: Tables) -> None:
    """A name that is only the suffix is kept (warning); an over-long name is blocked."""
    assert v2(endpoint(name="-fb"), tables).body["name"] == "-fb"
    assert v2(endpoint(name="x" * 192), tables).blocked


# --- locations -----------------------------------------------------------------------------------------


def test_locations(tables: Tables) -> None:
    """Country codes expand to data centers, ids stay, empty means no key; unknown or empty results block."""
    assert v2(endpoint(locations="EU-RO-1, CZ"), tables).body["dataCenterIds"] == ["EU-RO-1", "EU-CZ-1"]
    assert "dataCenterIds" not in v2(endpoint(locations=""), tables).body
    assert "dataCenterIds" not in v2(endpoint(locations=None), tables).body
    assert codes(v2(endpoint(locations="XX,US"), tables))["unknown-location"] == "error"
    gb = v2(endpoint(locations="GB"), tables)
    assert codes(gb) == {"location-without-data-center": "warning", "no-data-centers": "error"}


# --- CUDA ----------------------------------------------------------------------------------------------


def test_cuda_settings(tables: Tables) -> None:
    """allowedCudaVersions (comma string) and minCudaVersion go into gpu; both together block (v2 400)."""
    assert v2(endpoint(allowedCudaVersions="12.4, 12.8"), tables).body["gpu"]["allowedCudaVersions"] == ["12.4", "12.8"]
    assert v2(endpoint(minCudaVersion="12.8"), tables).body["gpu"]["minCudaVersion"] == "12.8"
    both = v2(endpoint(allowedCudaVersions="12.4", minCudaVersion="12.8"), tables)
    assert codes(both)["cuda-versions-conflict"] == "error"
    assert "minCudaVersion" not in both.body["gpu"]
    assert codes(v2(endpoint(allowedCudaVersions="10.1"), tables))["field-out-of-range"] == "error"


# --- workers, scaling, timeout, volumes, template --------------------------------------------------------


def test_workers_scaling_timeout(tables: Tables) -> None:
    """workersMin/Max/idleTimeout nest into workers, scaler into scaling, executionTimeoutMs into timeout."""
    t = v2(
        endpoint(
            workersMin=1,
            workersMax=4,
            idleTimeout=30,
            scalerType="QUEUE_DELAY",
            scalerValue=6,
            executionTimeoutMs=90000,
        ),
        tables,
    )
    assert t.body["workers"] == {"min": 1, "max": 4, "idleTimeout": 30}
    assert t.body["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 6}
    assert t.body["timeout"] == 90000
    assert not t.findings


@pytest.mark.parametrize("kind", [None, "QB"])
def test_request_count_on_queue_endpoint_drops_idle_timeout(tables: Tables, kind: str | None) -> None:
    """REQUEST_COUNT on a queue endpoint: idleTimeout is not sent (v2 rejects it) and a warning says so."""
    t = v2(endpoint(workersMax=3, idleTimeout=5, scalerType="REQUEST_COUNT", scalerValue=2), tables, kind)
    assert t.body["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}
    assert t.body["workers"] == {"max": 3}
    assert codes(t)["idle-timeout-not-applicable"] == "warning"
    assert not t.blocked


def test_request_count_on_load_balancer_keeps_idle_timeout(tables: Tables) -> None:
    """A load-balancer endpoint scaling on REQUEST_COUNT keeps its idleTimeout."""
    t = v2(endpoint(idleTimeout=5, scalerType="REQUEST_COUNT", scalerValue=2), tables, "LB")
    assert t.body["workers"] == {"idleTimeout": 5}
    assert "idle-timeout-not-applicable" not in codes(t)


def test_queue_delay_on_load_balancer_not_sent(tables: Tables) -> None:
    """QUEUE_DELAY (queue endpoints only on v2) is not sent for a load balancer: warning, scaling untouched."""
    t = v2(endpoint(scalerType="QUEUE_DELAY", scalerValue=4), tables, "LB")
    assert "scaling" not in t.body
    assert codes(t)["scaling-not-applicable"] == "warning"


def test_half_a_scaler_is_not_sent(tables: Tables) -> None:
    """A scalerType without scalerValue cannot make a v2 scaling object: left alone, with an info finding."""
    t = v2(endpoint(scalerType="REQUEST_COUNT"), tables)
    assert "scaling" not in t.body
    assert codes(t)["field-not-carried"] == "info"


def test_workers_and_idle_out_of_range_blocked(tables: Tables) -> None:
    """workersMin > workersMax and idleTimeout 0 stay target-neutral errors."""
    t = v2(endpoint(workersMin=4, workersMax=2, idleTimeout=0), tables)
    assert codes(t) == {"workers-min-exceeds-max": "error", "field-out-of-range": "error"}


def test_network_volumes(tables: Tables) -> None:
    """networkVolumeIds and networkVolumeId become one networkVolumes list of ids, the primary first, no duplicates."""
    t = v2(
        endpoint(
            networkVolumeId="vol-b",
            networkVolumeIds=[{"networkVolumeId": "vol-a", "dataCenterId": "EU-RO-1"}, {"networkVolumeId": "vol-b"}],
        ),
        tables,
    )
    assert t.body["networkVolumes"] == ["vol-b", "vol-a"]
    assert "networkVolumes" not in v2(endpoint(), tables).body


def test_template_id_not_sent(tables: Tables) -> None:
    """templateId is never sent on v2 (it would replace env); an info finding explains why, only when set."""
    t = v2(endpoint(templateId="tpl1"), tables)
    assert "templateId" not in t.body
    finding = next(f for f in t.findings if f.field == "templateId")
    assert (finding.severity, finding.code) == ("info", "field-not-carried")
    assert "env" in finding.message
    assert not any(f.field == "templateId" for f in v2(endpoint(), tables).findings)


def test_not_carried_findings_kept(tables: Tables) -> None:
    """Target-neutral findings from analyse() (here field-not-carried for type and env) are kept as they are."""
    ep = endpoint(type="QB", env=[{"key": "A", "value": "b"}])
    intent = analyse(ep, tables)
    t = V2.build(intent, tables)
    assert [f for f in t.findings if f.field in ("type", "env")] == [
        f for f in intent.findings if f.field in ("type", "env")
    ]


def test_body_shape(tables: Tables) -> None:
    """A full body has only UpdateEndpointRequest keys, never a null, never templateId."""
    t = v2(
        endpoint(
            gpuIds="AMPERE_16,-NVIDIA RTX A4500",
            gpuCount=1,
            locations="US",
            idleTimeout=5,
            scalerType="QUEUE_DELAY",
            scalerValue=4,
            workersMin=0,
            workersMax=3,
            templateId="t",
            executionTimeoutMs=1,
            minCudaVersion="12.8",
        ),
        tables,
    )
    assert set(t.body) <= BODY_KEYS
    assert "null" not in json.dumps(t.body)


# --- schema validity -----------------------------------------------------------------------------------


def test_sample_account_bodies_valid(snapshot: Any, tables: Tables, update_schema: Draft202012Validator) -> None:
    """Every unblocked v2 body of the sample account validates against UpdateEndpointRequest (jsonschema)."""
    plan = build_plan(snapshot.endpoints, tables, target="v2", generated_at="2026-01-01T00:00:00Z")
    assert plan.target == "v2"
    unblocked = [e for e in plan.endpoints if e.status != "blocked"]
    assert len(unblocked) >= 8
    for ep in unblocked:
        errors = [e.message for e in update_schema.iter_errors(ep.body)]
        assert errors == [], (ep.id, errors)
        assert V2.check_body(ep.body, tables) == []
        assert not V1_ONLY & {f.code for f in ep.findings}
        if "gpu" in ep.body:
            assert "excludedTypes" in ep.body["gpu"]


def test_sample_account_v2_specifics(snapshot: Any, tables: Tables) -> None:
    """The sample account on v2: priority FlashBoot kept, CPU vCPUs per flavor, idleTimeout dropped, H200 blocks."""
    plan = {e.id: e for e in build_plan(snapshot.endpoints, tables, target="v2", generated_at="x").endpoints}
    assert plan["llm70b0prod0a1"].body["flashboot"] == "PRIORITY_FLASHBOOT"
    assert "idleTimeout" not in plan["llm70b0prod0a1"].body["workers"]
    assert plan["cpu0mixed0x002"].body["cpu"] == [{"id": "cpu3g", "vcpuCount": 4}, {"id": "cpu3c", "vcpuCount": 8}]
    assert plan["gputype0asid08"].body["gpu"]["pools"] == ["ADA_24"]
    assert plan["whisper00asr01"].status == "blocked"
    assert plan["sdxl0worker0ab"].body["gpu"]["excludedTypes"] == ["NVIDIA RTX A6000"]


# --- check_body ----------------------------------------------------------------------------------------


GOOD = {"name": "a", "gpu": {"pools": ["AMPERE_16"], "excludedTypes": []}, "flashboot": "OFF"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"templateID": "x"}, "templateID"),
        ({"timeout": None}, "timeout"),
        ({"flashboot": True}, "flashboot"),
        ({"name": ""}, "name"),
        ({"gpu": {"pools": ["AMPERE_16"], "excludedTypes": ["-NVIDIA RTX A4000"]}}, "gpu.excludedTypes"),
        ({"gpu": {"pools": ["AMPERE_16"], "excludedTypes": [], "gpuTypeIds": []}}, "gpu.gpuTypeIds"),
        ({"gpu": {"excludedTypes": []}}, "gpu"),
        ({"scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.1}}, "scaling.queueDelay"),
        ({"scaling": {"type": "REQUEST_COUNT", "queueDelay": 3}}, "scaling"),
        ({"workers": {"idleTimeout": 4000}}, "workers.idleTimeout"),
        ({"gpu": None, "cpu": [{"id": "cpu3c", "vcpuCount": 1}]}, "cpu.vcpuCount"),
    ],
)
def test_check_body_schema_errors(tables: Tables, change: dict[str, Any], field: str) -> None:
    """A body a custom rule broke gets a field-out-of-range error naming the offending field."""
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if not (k == "gpu" and v is None)}
    findings = V2.check_body(body, tables)
    assert findings, body
    assert all(f.severity == "error" for f in findings)
    assert (field, "field-out-of-range") in {(f.field, f.code) for f in findings}, findings


def test_check_body_reports_only_the_bad_key(tables: Tables) -> None:
    """A wrong value inside gpu is not also reported as gpu/pools being "unexpected" properties."""
    body = {**GOOD, "gpu": {"pools": ["AMPERE_16"], "excludedTypes": ["-x"]}}
    assert {f.field for f in V2.check_body(body, tables)} == {"gpu.excludedTypes"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"gpu": {"pools": ["AMPERE_16"]}}, "exclusions-not-restated"),
        ({"gpu": {"pools": ["AMPERE_16"], "excludedTypes": ["NVIDIA H200"]}}, "exclusion-not-in-pools"),
        ({"gpu": {"pools": ["NVIDIA H200"], "excludedTypes": []}}, "unknown-gpu-pool"),
        ({"gpu": {"allowedCudaVersions": ["12.4"], "minCudaVersion": "12.8"}}, "cuda-versions-conflict"),
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 6}]}, "field-out-of-range"),
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 2}], "gpu": {"count": 1}}, "field-out-of-range"),
    ],
)
def test_check_body_v2_rules(tables: Tables, body: dict[str, Any], code: str) -> None:
    """Rules the schema cannot express (each a v2 400, or the exclusion-clearing edge) are errors."""
    assert code in {f.code for f in V2.check_body(body, tables) if f.severity == "error"}


def test_custom_rule_checked_against_v2(snapshot: Any, tables: Tables) -> None:
    """A custom rule that drops excludedTypes on v2 blocks the endpoint instead of clearing exclusions."""

    def drop_exclusions(ep: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        if "gpu" in body:
            body["gpu"] = {k: v for k, v in body["gpu"].items() if k != "excludedTypes"}
        return body, []

    eps = [e for e in snapshot.endpoints if e.id == "sdxl0worker0ab"]
    plan = build_plan(eps, tables, target="v2", rules=[drop_exclusions], generated_at="x")
    assert plan.endpoints[0].status == "blocked"
    assert "exclusions-not-restated" in {f.code for f in plan.endpoints[0].findings}


# --- property ------------------------------------------------------------------------------------------

_SAMPLE = json.loads(SAMPLE.read_text(encoding="utf-8"))["data"]["serverlessGpuPools"]
_POOLS = [p["id"] for p in _SAMPLE]
_TYPES = sorted({t for p in _SAMPLE for t in p["gpuTypeIds"]})
_TOKEN = st.one_of(
    st.sampled_from(_POOLS),
    st.sampled_from(_TYPES),
    st.sampled_from(_TYPES).map(lambda t: "-" + t),
    st.sampled_from(["-NVIDIA B300", "AMPERE_20", "-", "--NVIDIA L4", " "]),
)
_GPU_IDS = st.tuples(st.lists(_TOKEN, max_size=7), st.sampled_from([",", ", ", " ,"])).map(lambda x: x[1].join(x[0]))


@settings(max_examples=150, deadline=None)
@given(gpu_ids=_GPU_IDS)
def test_property_exclusions_always_restated(tables: Tables, gpu_ids: str) -> None:
    """For any gpuIds: pools always come with excludedTypes, pools are pool ids only, the body passes
    check_body, and an unblocked body selects exactly the v1 gpuTypeIds."""
    ep = endpoint(gpuIds=gpu_ids)
    intent = analyse(ep, tables)
    t = V2.build(intent, tables)
    gpu = t.body.get("gpu", {})
    if "pools" in gpu:
        assert "excludedTypes" in gpu
        assert all(p in tables.pools for p in gpu["pools"])
        assert not set(gpu["pools"]) & set(_TYPES)
        assert set(gpu["excludedTypes"]) <= set(members(tables, gpu["pools"]))
        assert len(set(gpu["excludedTypes"])) == len(gpu["excludedTypes"])
    assert "excludedTypes" not in gpu or "pools" in gpu
    assert V2.check_body(t.body, tables) == []
    assert not V1_ONLY & set(codes(t))
    if not t.blocked:
        v1_types = get_target("v1").build(intent, tables).body["gpuTypeIds"]
        assert effective(tables, gpu) == set(v1_types)


# --- normalize_state and comparison --------------------------------------------------------------------


def v2_read(body: dict[str, Any]) -> dict[str, Any]:
    """What GET /v2/serverless/{id} returns after ``body`` was applied: server order, extra fields."""
    gpu = body.get("gpu")
    read: dict[str, Any] = {
        "id": "ep1",
        "name": body.get("name", "x"),
        "type": "QUEUE",
        "image": "img:1",
        "env": {"A": "b"},
        "registry": None,
        "workers": {"min": 0, "max": 3, **body.get("workers", {})},
        "scaling": {
            k: float(v) if k == "queueDelay" else v
            for k, v in body.get("scaling", {"type": "QUEUE_DELAY", "queueDelay": 4}).items()
        },
        "dataCenterIds": list(reversed(body.get("dataCenterIds", []))),
        "networkVolumes": list(reversed(body.get("networkVolumes", []))),
        "timeout": body.get("timeout", 300000),
        "flashboot": body.get("flashboot", "OFF"),
        "createdAt": "2026-06-01T12:00:00Z",
    }
    if gpu is not None:
        read["gpu"] = {
            "pools": list(reversed(gpu["pools"])),
            "count": gpu.get("count", 1),
            "allowedCudaVersions": gpu.get("allowedCudaVersions", []),
            "minCudaVersion": gpu.get("minCudaVersion"),
        }
        if gpu["excludedTypes"]:
            read["gpu"]["excludedTypes"] = list(reversed(gpu["excludedTypes"]))
    if "cpu" in body:
        read["cpu"] = [{**entry, "memory": entry["vcpuCount"] * 2} for entry in reversed(body["cpu"])]
    return read


def test_read_equal_to_body_has_no_changes(
    snapshot: Any, tables: Tables, endpoint_schema: Draft202012Validator
) -> None:
    """A v2 read equal to each sample body (reordered, with server-only fields) normalizes to no changes."""
    plan = build_plan(snapshot.endpoints, tables, target="v2", generated_at="x")
    for ep in plan.endpoints:
        if ep.status == "blocked":
            continue
        read = v2_read(ep.body)
        assert [e.message for e in endpoint_schema.iter_errors(read)] == [], ep.id
        assert diff(ep.body, V2.normalize_state(read), V2.set_fields) == [], ep.id


def test_plan_unchanged_with_nested_diff(snapshot: Any, tables: Tables) -> None:
    """A matching v2 read gives status unchanged; one lost exclusion, update."""
    ep = next(e for e in snapshot.endpoints if e.id == "llm70b0prod0a1")
    body = V2.build(analyse(ep, tables), tables).body
    same = plan_endpoint(ep, tables, V2, state=v2_read(body))
    assert (same.status, same.changes) == ("unchanged", [])
    read = v2_read(body)
    del read["gpu"]["excludedTypes"]  # the exclusion-clearing edge: the read shows none left
    changed = plan_endpoint(ep, tables, V2, state=read)
    assert changed.status == "update"
    assert [(c.field, c.from_, c.to) for c in changed.changes] == [("gpu.excludedTypes", [], ["NVIDIA H100 NVL"])]


def test_one_exclusion_missing_is_a_change(tables: Tables) -> None:
    """A read that lost one of two exclusions differs in gpu.excludedTypes, compared as a set."""
    body = v2(endpoint(gpuIds="AMPERE_16,-NVIDIA RTX A4500,-NVIDIA RTX A4000"), tables).body
    read = v2_read(body)
    read["gpu"]["excludedTypes"] = ["NVIDIA RTX A4000"]
    changes = diff(body, V2.normalize_state(read), V2.set_fields)
    assert [c.field for c in changes] == ["gpu.excludedTypes"]


def test_normalize_state_details(tables: Tables) -> None:
    """null minCudaVersion reads as "" (a floor to set is a change); fields the read omits are skipped."""
    body = v2(
        endpoint(minCudaVersion="12.8", idleTimeout=5, scalerType="REQUEST_COUNT", scalerValue=2, workersMax=3), tables
    ).body
    read = v2_read(body)
    read["gpu"]["minCudaVersion"] = None
    normalized = V2.normalize_state(read)
    assert normalized["gpu"]["minCudaVersion"] == ""
    assert "createdAt" not in normalized and "env" not in normalized and "type" not in normalized
    assert [c.field for c in diff(body, normalized, V2.set_fields)] == ["gpu.minCudaVersion"]
    cpu = V2.normalize_state(
        {"cpu": [{"id": "cpu3c", "vcpuCount": 4, "memory": 8}], "gpu": None, "dataCenterIds": "EU-RO-1, EU-CZ-1"}
    )
    assert cpu == {"cpu": [{"id": "cpu3c", "vcpuCount": 4}], "dataCenterIds": ["EU-RO-1", "EU-CZ-1"]}


def test_fingerprint_ignores_server_order(tables: Tables) -> None:
    """fingerprint is the same for reads that differ only in the order of set fields."""
    body = v2(endpoint(gpuIds="AMPERE_16,AMPERE_24,-NVIDIA L4,-NVIDIA RTX A4000", locations="US"), tables).body
    a = V2.normalize_state(v2_read(body))
    b = json.loads(json.dumps(a))
    b["gpu"]["pools"].reverse()
    b["gpu"]["excludedTypes"].reverse()
    b["dataCenterIds"].reverse()
    assert fingerprint(a, V2.set_fields) == fingerprint(b, V2.set_fields)
    b["gpu"]["excludedTypes"].pop()
    assert fingerprint(a, V2.set_fields) != fingerprint(b, V2.set_fields)
