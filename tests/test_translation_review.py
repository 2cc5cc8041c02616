"""Wave-3 domain review: translations a hand-made account (not in fixtures/) showed wrong or wrongly blocked.

Each test names the RunPod fact it rests on; they plan through the public ``build_plan`` for both targets, so
the translator and the independent equivalence check (issue 14) are held to the same account.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge import build_plan
from bridge.equivalence import legacy_selection
from bridge.models import EndpointPlan, LegacyEndpoint
from bridge.tables import bundled_tables

TABLES = bundled_tables()


def plan(target: str, **fields: Any) -> EndpointPlan:
    ep = LegacyEndpoint.model_validate({"id": "ep1", "name": "svc", "templateId": "t1", **fields})
    return build_plan([ep], TABLES, target=target).endpoints[0]  # type: ignore[arg-type]


def codes(p: EndpointPlan) -> set[str]:
    return {f.code for f in p.findings}


@pytest.mark.parametrize("target", ["v1", "v2"])
@pytest.mark.parametrize(
    ("gpu_ids", "gone"),
    [
        ("AMPERE_16,-NVIDIA  RTX A4500", "NVIDIA RTX A4500"),  # the double-space spelling of the v1 enum
        ("AMPERE_48,-NVIDIA  RTX A6000", "NVIDIA RTX A6000"),
        ("AMPERE_24,-nvidia  l4", "NVIDIA L4"),
    ],
)
def test_a_whitespace_variant_exclusion_is_applied_and_proved_not_blocked(target: str, gpu_ids: str, gone: str) -> None:
    """Issue 13: an exclusion matching a pool member when case and runs of whitespace are ignored narrows.

    The equivalence check must read it the same way, or the narrowing the translator applies on purpose is a
    false ``not-equivalent`` that blocks the endpoint (the v1 enum itself spells ``NVIDIA  RTX A4500``).
    """
    p = plan(target, gpuIds=gpu_ids)
    assert "exclusion-spelling" in codes(p)
    assert p.status == "update", [f.message for f in p.findings]
    assert p.equivalence is not None and p.equivalence.gpu == "same"
    if target == "v1":
        assert gone not in p.body["gpuTypeIds"]
    else:
        assert gone in p.body["gpu"]["excludedTypes"]
    assert gone not in legacy_selection(LegacyEndpoint.model_validate({"id": "x", "gpuIds": gpu_ids}), TABLES).gpu_types


def test_an_exact_exclusion_wins_over_a_loose_one_in_the_evaluator() -> None:
    """Only a member no exclusion names exactly is matched loosely: two spellings, one member each."""
    sel = legacy_selection(
        LegacyEndpoint.model_validate({"id": "x", "gpuIds": "AMPERE_48,-NVIDIA A40,-nvidia  a40"}), TABLES
    )
    assert sel.gpu_types == ("NVIDIA RTX A6000",)


@pytest.mark.parametrize("instance", ["cpu3m-4-32", "cpu5m-2-16"])
def test_a_memory_optimized_cpu_endpoint_is_proved_on_v2(instance: str) -> None:
    """cpu3m/cpu5m are catalog flavors v2 takes (`cpu[].id` is "as returned by GET /v2/catalog/cpus"), not v1
    enum flavors: v2 carries them, v1 blocks them with its own finding, and neither is a false not-equivalent."""
    v2 = plan("v2", gpuIds="", instanceIds=[instance])
    assert v2.status == "update", [f.message for f in v2.findings]
    assert v2.equivalence is not None and v2.equivalence.cpu == "same"
    v1 = plan("v1", gpuIds="", instanceIds=[instance])
    assert v1.status == "blocked"
    assert "not-equivalent" not in codes(v1)
