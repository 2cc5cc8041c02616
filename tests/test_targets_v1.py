"""REST v1 target: the v1-only findings of the flat body, its checks, read normalisation and addresses."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import endpoint, tables

from bridge.config import Settings
from bridge.plan import translate
from bridge.tables import build_tables
from bridge.targets import TARGETS, V1, get_target
from bridge.translate import analyse


def run(**fields: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Build the v1 body of an endpoint; return the body and {code: severity}."""
    result = V1.build(analyse(endpoint(**fields), tables()), tables())
    return result.body, {f.code: f.severity for f in result.findings if f.code != "field-not-carried"}


def test_gpu_type_as_pool_is_kept_with_warning() -> None:
    """A GPU type id given as a pool is a warning and kept as that one type."""
    body, found = run(gpuIds="NVIDIA GeForce RTX 4090,AMPERE_48")
    assert body["gpuTypeIds"] == ["NVIDIA GeForce RTX 4090", "NVIDIA A40", "NVIDIA RTX A6000"]
    assert found == {"gpu-type-as-pool": "warning"}


@pytest.mark.parametrize("gpu_type", ["NVIDIA GeForce RTX 3080", "NVIDIA RTX PRO 4500 Blackwell"])
def test_gpu_type_in_no_pool_is_blocked_as_on_v2(gpu_type: str) -> None:
    """A type in no serverless pool cannot be stored as pools and exclusions: v1 blocks it, as v2 does."""
    _, found = run(gpuIds=f"{gpu_type},AMPERE_48")
    assert found.get("gpu-type-as-pool") == "error" or found.get("unknown-gpu-pool") == "error"
    assert "warning" not in {found.get("gpu-type-as-pool")}


def test_exclusion_not_in_pools_warns() -> None:
    """Excluding a type that no selected pool has is a warning and changes nothing."""
    body, found = run(gpuIds="AMPERE_48,-NVIDIA H200")
    assert body["gpuTypeIds"] == ["NVIDIA A40", "NVIDIA RTX A6000"]
    assert found == {"exclusion-not-in-pools": "warning"}


def test_type_outside_rest_enum_is_kept_with_warning() -> None:
    """A live pool member outside the v1 enum (a MIG slice) is kept, with a warning."""
    mig = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb"
    custom = build_tables(pools={"ADA_48_PRO": ["NVIDIA L40", mig]})
    result = translate(endpoint(gpuIds="ADA_48_PRO"), custom)
    assert result.body["gpuTypeIds"] == ["NVIDIA L40", mig]
    assert [(f.code, f.severity) for f in result.findings] == [("gpu-type-not-in-rest-enum", "warning")]


def test_cpu_vcpu_mismatch_blocks_on_v1() -> None:
    """Different vCPU counts cannot be said on v1 (one vcpuCount): an error that points to --target v2."""
    result = V1.build(analyse(endpoint(gpuIds="", instanceIds=["cpu3g-4-16", "cpu3c-8-16"]), tables()), tables())
    mismatch = [f for f in result.findings if f.code == "cpu-vcpu-mismatch"]
    assert [f.severity for f in mismatch] == ["error"] and "--target v2" in mismatch[0].message
    assert result.blocked
    _, found = run(gpuIds="", instanceIds=["cpu3g-4-16", "cpu3c-4-8"])
    assert found == {}  # one vCPU count: fine


def test_body_has_only_update_input_keys() -> None:
    """No body ever has a key outside EndpointUpdateInput, or a null."""
    from helpers import v1_spec

    allowed = set(v1_spec()["components"]["schemas"]["EndpointUpdateInput"]["properties"])
    body, _ = run(locations="US", allowedCudaVersions="12.4", networkVolumeId="v", type="LB", env=[])
    assert set(body) <= allowed
    assert None not in body.values()


def test_targets_map_their_names() -> None:
    """TARGETS maps each name to the target of that name, and get_target names the choices on a typo."""
    assert {name: target.name for name, target in TARGETS.items()} == {"v1": "v1", "v2": "v2"}
    assert get_target("v1") is V1
    with pytest.raises(ValueError, match="unknown target 'v3': use v1 or v2"):
        get_target("v3")


def test_addresses_and_method() -> None:
    """v1 lists /endpoints in one answer and updates with POST /endpoints/{id}/update under the REST URL."""
    settings = Settings(api_key="k", rest_url="https://rest.test/v1/", rest_v2_url="https://rest.test/v2")
    assert V1.base_url(settings) == "https://rest.test/v1"
    assert (V1.list_path(), V1.read_path("a%2Fb"), V1.write_path("a%2Fb")) == (
        "endpoints",
        "endpoints/a%2Fb",
        "endpoints/a%2Fb/update",
    )
    assert (V1.write_method, V1.paged, V1.successor) == ("POST", False, "v2")


def test_check_body_names_each_bad_field() -> None:
    """check_body gives one field-out-of-range error per unknown key, wrong type, range or enum value."""
    body = {"bogus": 1, "workersMax": -1, "flashboot": "yes", "dataCenterIds": ["XX-1"], "name": "ok"}
    findings = V1.check_body(body, tables())
    assert {f.field: f.code for f in findings} == {
        "bogus": "field-out-of-range",
        "workersMax": "field-out-of-range",
        "flashboot": "field-out-of-range",
        "dataCenterIds": "field-out-of-range",
    }
    assert all(f.severity == "error" for f in findings)


def test_normalize_state_reads_cpu_instances_and_comma_lists() -> None:
    """A CPU read gives flavors and the largest vCPU count from instanceIds; comma strings become lists."""
    state = {
        "id": "e",
        "instanceIds": ["cpu3c-2-4", "cpu3c-8-16"],
        "dataCenterIds": "EU-RO-1, US-TX-3",
        "gpuTypeIds": ["NVIDIA A40"],
        "computeType": "CPU",
        "workersMax": None,
    }
    assert V1.normalize_state(state) == {
        "cpuFlavorIds": ["cpu3c"],
        "vcpuCount": 8,
        "dataCenterIds": ["EU-RO-1", "US-TX-3"],
    }
