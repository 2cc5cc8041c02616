"""Translation to a REST v1 body: every rule and finding code of SPEC §4."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import endpoint, tables

from bridge.plan import translate
from bridge.tables import build_tables

A16 = [
    "NVIDIA RTX A4000",
    "NVIDIA RTX A4500",
    "NVIDIA RTX 4000 Ada Generation",
    "NVIDIA RTX 2000 Ada Generation",
]


def run(**fields: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Translate an endpoint; return the body and {code: severity}."""
    result = translate(endpoint(**fields), tables())
    return result.body, {f.code: f.severity for f in result.findings}


def codes(**fields: Any) -> list[str]:
    return [f.code for f in translate(endpoint(**fields), tables()).findings if f.code != "field-not-carried"]


# --- GPU -----------------------------------------------------------------------------------------


def test_pool_expands_to_members_in_table_order() -> None:
    """A pool becomes its members, in table order."""
    body, found = run(gpuIds="AMPERE_16")
    assert body["gpuTypeIds"] == A16
    assert "error" not in found.values()


def test_pools_in_token_order_with_exclusions_anywhere() -> None:
    """Pools keep token order; an exclusion applies wherever it stands, even before its pool."""
    body, _ = run(gpuIds="-NVIDIA RTX A4500, ADA_24 ,AMPERE_16")
    assert body["gpuTypeIds"] == ["NVIDIA GeForce RTX 4090", *[t for t in A16 if t != "NVIDIA RTX A4500"]]


def test_live_verified_exclusion_pins_a40() -> None:
    """'AMPERE_48,-NVIDIA RTX A6000' means exactly the A40 (runpodctl PR #340, production)."""
    body, found = run(gpuIds="AMPERE_48,-NVIDIA RTX A6000")
    assert body["gpuTypeIds"] == ["NVIDIA A40"]
    assert found == {}


def test_empty_tokens_are_ignored_and_duplicates_dropped() -> None:
    """Empty tokens are skipped and a type listed by two pools appears once, first occurrence kept."""
    custom = build_tables(pools={"P1": ["NVIDIA L4", "NVIDIA A40"], "P2": ["NVIDIA A40", "NVIDIA H200"]})
    result = translate(endpoint(gpuIds=" P2 ,, P1, ,P2, - "), custom)
    assert result.body["gpuTypeIds"] == ["NVIDIA A40", "NVIDIA H200", "NVIDIA L4"]
    assert result.findings == []  # a lone "-" is an empty exclusion: ignored, no warning


def test_unknown_pool_is_an_error() -> None:
    """An unknown pool id blocks the endpoint with unknown-gpu-pool."""
    result = translate(endpoint(gpuIds="AMPERE_16,AMPERE_20"), tables())
    assert result.blocked
    assert [f.code for f in result.findings if f.severity == "error"] == ["unknown-gpu-pool"]
    assert "'AMPERE_20'" in result.findings[0].message


def test_everything_excluded_is_an_error() -> None:
    """Excluding every member leaves no GPU type: no-gpu-types blocks the endpoint."""
    _, found = run(gpuIds="AMPERE_48,-NVIDIA A40,-NVIDIA RTX A6000")
    assert found == {"no-gpu-types": "error"}


@pytest.mark.parametrize("value", [None, "", " , "])
def test_no_gpu_ids_is_an_error(value: str | None) -> None:
    """A GPU endpoint without any pool has no GPU types: blocked."""
    _, found = run(gpuIds=value)
    assert found.get("no-gpu-types") == "error"


def test_gpu_count_passes_through() -> None:
    """gpuCount passes through for GPU endpoints; 0 is out of range."""
    assert run(gpuCount=2)[0]["gpuCount"] == 2
    assert run(gpuCount=0)[1] == {"field-out-of-range": "error"}


# --- CPU -----------------------------------------------------------------------------------------


def test_cpu_instances_become_flavors_and_vcpus() -> None:
    """instanceIds become distinct flavors in order and one vCPU count; no GPU keys."""
    body, found = run(gpuIds="", gpuCount=0, instanceIds=["cpu5c-4-8", "cpu3c-4-8", "cpu5c-4-8"])
    assert body["cpuFlavorIds"] == ["cpu5c", "cpu3c"]
    assert body["vcpuCount"] == 4
    assert "gpuTypeIds" not in body and "gpuCount" not in body
    assert found == {}


@pytest.mark.parametrize("bad", ["cpu9x-4-16", "cpu3c-4", "cpu3c-four-8", "CPU3C-4-8", "cpu3c-0-0", "gpu"])
def test_unknown_cpu_instance_is_an_error(bad: str) -> None:
    """An instance id of another shape or an unknown flavor blocks the endpoint."""
    _, found = run(gpuIds="", instanceIds=["cpu3c-2-4", bad])
    assert found["unknown-cpu-instance"] == "error"


def test_gpu_ids_beside_cpu_instances_are_ignored() -> None:
    """A non-empty gpuIds beside instanceIds is ignored with a warning."""
    body, found = run(gpuIds="AMPERE_16", instanceIds=["cpu3c-2-4"])
    assert found == {"gpu-ids-ignored": "warning"}
    assert "gpuTypeIds" not in body


# --- Locations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_locations_means_anywhere(value: str | None) -> None:
    """Null or empty locations leaves dataCenterIds out of the body."""
    assert "dataCenterIds" not in run(locations=value)[0]


def test_country_expands_and_ids_pass_through_in_order() -> None:
    """Tokens keep their legacy order; a country expands in table order; no duplicates."""
    body, found = run(locations="EU-CZ-1, NO,CZ,US-GA-1")
    assert body["dataCenterIds"] == ["EU-CZ-1", "EUR-NO-1", "EUR-NO-2", "US-GA-1"]
    # EUR-NO-2 is newer than the stored v1 enum: kept with a warning; each country expanded says it is frozen
    assert found == {"dynamic-location-frozen": "info", "data-center-not-in-rest-enum": "warning"}


def test_override_location_token() -> None:
    """A [locations] override token expands to its data centers."""
    custom = build_tables(overrides=[{"locations": {"EU": ["EU-RO-1", "EU-CZ-1"]}}])
    assert translate(endpoint(locations="EU,EU-RO-1"), custom).body["dataCenterIds"] == ["EU-RO-1", "EU-CZ-1"]


def test_unknown_location_is_an_error() -> None:
    """An unknown token blocks the endpoint."""
    assert run(locations="US,Mars")[1]["unknown-location"] == "error"
    assert run(locations="EU-RO-1,Mars")[1] == {"unknown-location": "error"}


def test_gb_alone_warns_and_blocks() -> None:
    """GB has no data center: a warning, and alone it leaves nothing (an error, never 'anywhere')."""
    assert run(locations="GB")[1] == {"location-without-data-center": "warning", "no-data-centers": "error"}
    body, found = run(locations="GB,FR")
    assert body["dataCenterIds"] == ["EU-FR-1"]
    assert found == {"location-without-data-center": "warning", "dynamic-location-frozen": "info"}


# --- FlashBoot and name --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Generated Endpoint -fb", "Generated Endpoint"),
        ("sdxl-fb", "sdxl"),
        ("whisper  \t-FB", "whisper"),
        ("svc -fb ", "svc"),
        ("my-fb-thing", None),
        ("fb", None),
    ],
)
def test_fb_suffix_means_flashboot_and_is_stripped(name: str, expected: str | None) -> None:
    """A name ending in -fb (any case, optional whitespace) means FlashBoot; the suffix is removed."""
    body, found = run(name=name)
    assert body["flashboot"] is (expected is not None)
    assert body["name"] == (expected or name)
    assert ("fb-suffix-stripped" in found) is (expected is not None)


def test_keep_fb_suffix() -> None:
    """--keep-fb-suffix keeps the name as it is, FlashBoot still on."""
    result = translate(endpoint(name="x -fb"), tables(), keep_fb_suffix=True)
    assert result.body["name"] == "x -fb" and result.body["flashboot"] is True
    assert not result.findings


def test_name_that_would_be_empty_keeps_suffix() -> None:
    """A name that is only the suffix keeps it, with a warning."""
    body, found = run(name=" -fb")
    assert body["name"] == " -fb"
    assert found == {"fb-suffix-kept": "warning"}


@pytest.mark.parametrize(
    ("mode", "flashboot", "expected"),
    [
        ("OFF", False, {}),
        ("FLASHBOOT", True, {}),
        ("PRIORITY_FLASHBOOT", True, {"flashboot-priority-lost": "warning"}),
        ("TURBO", None, {"field-out-of-range": "error"}),
    ],
)
def test_flashboot_type_wins(mode: str, flashboot: bool | None, expected: dict[str, str]) -> None:
    """flashBootType decides flashboot when present."""
    body, found = run(flashBootType=mode)
    assert found == expected
    if flashboot is not None:
        assert body["flashboot"] is flashboot


def test_flashboot_conflict() -> None:
    """A -fb name with flashBootType OFF warns; flashBootType wins and the suffix still goes."""
    body, found = run(name="w -fb", flashBootType="OFF")
    assert body == {**body, "flashboot": False, "name": "w"}
    assert found == {"flashboot-conflict": "warning", "fb-suffix-stripped": "info"}


def test_flashboot_always_in_body() -> None:
    """flashboot is in every body, false by default."""
    assert run(name="plain")[0]["flashboot"] is False


def test_long_name_is_out_of_range() -> None:
    """A name over 191 characters is an error."""
    assert run(name="x" * 192)[1] == {"field-out-of-range": "error"}


# --- Pass-through --------------------------------------------------------------------------------


def test_pass_through_fields() -> None:
    """Settings pass through; CUDA versions become a list; volumes become a list of ids."""
    body, found = run(
        templateId="tpl",
        idleTimeout=30,
        scalerType="REQUEST_COUNT",
        scalerValue=3,
        workersMin=1,
        workersMax=4,
        executionTimeoutMs=90000,
        minCudaVersion="12.4",
        allowedCudaVersions="12.4, 12.8,",
        networkVolumeId="vol1",
        networkVolumeIds=[
            {"networkVolumeId": "vol1", "dataCenterId": "EU-RO-1"},
            {"networkVolumeId": "vol2"},
        ],
    )
    assert found == {}
    assert body == {
        "name": "worker",
        "templateId": "tpl",
        "flashboot": False,
        "gpuTypeIds": A16,
        "allowedCudaVersions": ["12.4", "12.8"],
        "minCudaVersion": "12.4",
        "networkVolumeId": "vol1",
        "networkVolumeIds": ["vol1", "vol2"],
        "idleTimeout": 30,
        "scalerType": "REQUEST_COUNT",
        "scalerValue": 3,
        "workersMin": 1,
        "workersMax": 4,
        "executionTimeoutMs": 90000,
    }


def test_empty_network_volume_is_left_out() -> None:
    """An empty networkVolumeId and null fields never reach the body."""
    body, _ = run(networkVolumeId="", idleTimeout=None, allowedCudaVersions="")
    assert "networkVolumeId" not in body and "idleTimeout" not in body and "allowedCudaVersions" not in body
    assert None not in body.values()


@pytest.mark.parametrize(
    "fields",
    [
        {"idleTimeout": 0},
        {"idleTimeout": 3601},
        {"scalerValue": 0},
        {"scalerValue": 2.5},
        {"workersMin": -1},
        {"scalerType": "FASTEST"},
        {"minCudaVersion": "10.0"},
        {"allowedCudaVersions": "12.4,9.9"},
    ],
)
def test_values_outside_schema_are_errors(fields: dict[str, Any]) -> None:
    """A value outside the v1 schema's range or enum blocks the endpoint with field-out-of-range."""
    result = translate(endpoint(**fields), tables())
    assert [(f.code, f.field) for f in result.findings] == [("field-out-of-range", next(iter(fields)))]


def test_workers_min_above_max() -> None:
    """workersMin > workersMax blocks the endpoint."""
    assert run(workersMin=3, workersMax=1)[1] == {"workers-min-exceeds-max": "error"}


def test_fields_not_carried_once_each_without_values() -> None:
    """Legacy-only fields are reported once each, and secret values never appear in messages."""
    result = translate(
        endpoint(
            type="LB",
            workersStandby=2,
            modelReferences=["m"],
            compliance=["GDPR"],
            env=[{"key": "TOKEN", "value": "SECRET-xyz"}],
            aiKey="SECRET-ai",
        ),
        tables(),
    )
    carried = [f.field for f in result.findings if f.code == "field-not-carried"]
    assert carried == ["type", "workersStandby", "modelReferences", "compliance", "env", "aiKey"]
    assert all(f.severity == "info" for f in result.findings)
    assert "SECRET" not in repr(result)
