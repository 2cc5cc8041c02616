"""The rules issue 13's audit found wrong; each test here fails on the code before the fix."""

from __future__ import annotations

from typing import Any

from helpers import endpoint

from bridge.plan import translate
from bridge.tables import Tables, bundled_tables
from bridge.translate import Translation


def tables() -> Tables:
    return bundled_tables()


def both(**fields: Any) -> dict[str, Translation]:
    ep = endpoint(**fields)
    return {target: translate(ep, tables(), target=target) for target in ("v1", "v2")}  # type: ignore[arg-type]


def codes(result: Translation) -> dict[str, str]:
    return {f.code: f.severity for f in result.findings if f.code != "field-not-carried"}


CONSOLE = "AMPERE_24,-nvidia  rtx a5000,-NVIDIA L4"


def test_loosely_spelled_exclusion_is_applied_with_a_warning() -> None:
    """An exclusion matching a selected pool member only ignoring case and spaces narrows, on both targets."""
    for target, result in both(gpuIds=CONSOLE).items():
        assert not result.blocked, target
        spelling = [f for f in result.findings if f.code == "exclusion-spelling"]
        assert len(spelling) == 1 and spelling[0].severity == "warning"
        assert "'nvidia  rtx a5000'" in spelling[0].message and "'NVIDIA RTX A5000'" in spelling[0].message
    v1, v2 = both(gpuIds=CONSOLE).values()
    assert "NVIDIA RTX A5000" not in v1.body["gpuTypeIds"] and "NVIDIA L4" not in v1.body["gpuTypeIds"]
    assert v2.body["gpu"]["excludedTypes"] == ["NVIDIA RTX A5000", "NVIDIA L4"]


def test_loosely_spelled_positive_token_stays_an_error_with_a_suggestion() -> None:
    """A pool or GPU type given with other case or spacing is not guessed: an error naming the right id."""
    for result in both(gpuIds="ampere_24").values():
        errors = [f for f in result.findings if f.code == "unknown-gpu-pool"]
        assert errors and "did you mean 'AMPERE_24'" in errors[0].message and result.blocked
    result = translate(endpoint(gpuIds="nvidia l4"), tables())
    assert "did you mean 'NVIDIA L4'" in next(f.message for f in result.findings if f.code == "unknown-gpu-pool")


def test_mig_slice_exclusion_as_the_console_writes_it_is_accepted() -> None:
    """The console's AMPERE_24 exclusions, MIG slice included, are in the pool on v2 (not blocked)."""
    gpu_ids = "AMPERE_24,-NVIDIA L4,-NVIDIA RTX A5000,-NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"
    v2 = both(gpuIds=gpu_ids)["v2"]
    assert not v2.blocked
    assert v2.body["gpu"]["pools"] == ["AMPERE_24"]


def test_cpu_memory_disagreeing_with_the_flavor_warns() -> None:
    """cpu3g gives 4 GB per vCPU: cpu3g-4-20 asks for 20 GB, REST gives 16: a warning on both targets."""
    for result in both(gpuIds="", instanceIds=["cpu3g-4-20"]).values():
        assert codes(result).get("cpu-memory-mismatch") == "warning"
        assert "16 GB" in next(f.message for f in result.findings if f.code == "cpu-memory-mismatch")
    for result in both(gpuIds="", instanceIds=["cpu3g-4-16"]).values():
        assert "cpu-memory-mismatch" not in codes(result)


def test_compute_type_mismatch_is_an_error() -> None:
    """computeType CPU without instanceIds, or GPU with them, cannot be carried: compute-type-mismatch."""
    for result in both(computeType="CPU", gpuIds="AMPERE_24").values():
        assert codes(result).get("compute-type-mismatch") == "error" and result.blocked
    for result in both(computeType="GPU", gpuIds="", instanceIds=["cpu3c-2-4"]).values():
        assert codes(result).get("compute-type-mismatch") == "error" and result.blocked
    for result in both(computeType="CPU", gpuIds="", instanceIds=["cpu3c-2-4"]).values():
        assert "compute-type-mismatch" not in codes(result)


def test_newer_legacy_fields_are_reported_not_carried() -> None:
    """requestTTL (newer saveEndpoint field) is reported as field-not-carried on both targets."""
    for result in both(requestTTL=600000).values():
        assert any(f.code == "field-not-carried" and f.field == "requestTTL" for f in result.findings)


def test_country_expansion_says_it_is_frozen() -> None:
    """A country code is written as today's data centers, with an info finding; a data center id is not."""
    for result in both(locations="US").values():
        frozen = [f for f in result.findings if f.code == "dynamic-location-frozen"]
        assert [f.severity for f in frozen] == ["info"] and "'US'" in frozen[0].message
        assert "US-MO-1" in result.body["dataCenterIds"]
    for result in both(locations="US-TX-3").values():
        assert "dynamic-location-frozen" not in codes(result)


def test_v1_keeps_newer_data_centers_with_one_warning() -> None:
    """v1 takes known data centers past its stored enum (the live enum grew), naming them once; v2 silently."""
    v1, v2 = both(locations="US-MO-1,AP-IN-1,US-TX-3").values()
    assert v1.body["dataCenterIds"] == ["US-MO-1", "AP-IN-1", "US-TX-3"] and not v1.blocked
    warning = [f for f in v1.findings if f.code == "data-center-not-in-rest-enum"]
    assert len(warning) == 1 and "US-MO-1" in warning[0].message and "AP-IN-1" not in warning[0].message
    assert "data-center-not-in-rest-enum" not in codes(v2) and not v2.blocked


def test_cpu_flavor_known_beyond_the_v1_enum_is_v2_only() -> None:
    """cpu3m is a known flavor (CPU table) that v1 endpoints cannot take: blocked on v1 with a pointer, fine on v2."""
    v1, v2 = both(gpuIds="", instanceIds=["cpu3m-2-16"]).values()
    assert v1.blocked and "--target v2" in next(f.message for f in v1.findings if f.severity == "error")
    assert not v2.blocked and v2.body["cpu"] == [{"id": "cpu3m", "vcpuCount": 2}]
