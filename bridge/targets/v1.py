"""REST v1: ``POST {rest}/endpoints/{id}/update`` with a flat ``EndpointUpdateInput`` body (SPEC §4).

v1 cannot say everything the legacy form says: "priority FlashBoot" becomes plain ``flashboot: true`` (a
warning), and CPU instance ids with different vCPU counts block the endpoint (v1 has one ``vcpuCount``;
``--target v2`` carries them). A GPU type given as a pool is kept as that one type, and an exclusion outside
the selected pools is dropped: both warnings, since v1 accepts the body.

Data centers: the stored v1 spec enumerates 26 ids, but the live v1 enum grew (a client generated from a later
live v1 spec lists ``AP-IN-1`` and ``US-MD-1`` too; runpod-domain.md §5.2) and the v1 spec does not forbid
other values. So v1 takes every data center bridge knows: the stored enum and ``_LATER_V1_DATA_CENTERS``
silently, any other known id (``US-MO-1``, ...) with one warning naming them, as for GPU types beyond the enum.
An unknown id is still an error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from bridge.config import Settings
from bridge.models import Finding, Target
from bridge.tables import Tables
from bridge.targets.base import RestTarget, as_list, dedupe, judge
from bridge.translate import Intent, Observation, Translation, finding

__all__ = ["V1"]

_FIELDS: dict[str, type] = {
    "allowedCudaVersions": list,
    "cpuFlavorIds": list,
    "dataCenterIds": list,
    "executionTimeoutMs": int,
    "flashboot": bool,
    "gpuCount": int,
    "gpuTypeIds": list,
    "idleTimeout": int,
    "minCudaVersion": str,
    "name": str,
    "networkVolumeId": str,
    "networkVolumeIds": list,
    "scalerType": str,
    "scalerValue": int,
    "templateId": str,
    "vcpuCount": int,
    "workersMax": int,
    "workersMin": int,
}
_RANGE: dict[str, tuple[int, int | None]] = {
    "gpuCount": (1, None),
    "idleTimeout": (1, 3600),
    "scalerValue": (1, None),
    "vcpuCount": (1, None),
    "workersMax": (0, None),
    "workersMin": (0, None),
}
_PASS_THROUGH = (
    "allowedCudaVersions",
    "minCudaVersion",
    "networkVolumeId",
    "networkVolumeIds",
    "idleTimeout",
    "scalerType",
    "scalerValue",
    "workersMin",
    "workersMax",
    "executionTimeoutMs",
)


_LATER_V1_DATA_CENTERS = ("AP-IN-1", "US-MD-1")  # seen in a later live v1 spec's dataCenterIds enum


def _data_center_finding(data_centers: list[str], tables: Tables) -> Finding | None:
    enum = {*tables.v1_data_centers, *_LATER_V1_DATA_CENTERS}
    newer = [dc for dc in data_centers if dc not in enum and dc in tables.data_centers]
    if not newer or not tables.v1_data_centers:
        return None
    return finding(
        "warning",
        "data-center-not-in-rest-enum",
        "dataCenterIds",
        f"{', '.join(newer)} not in the REST v1 data-center list (the live list grew past it): kept, the server "
        "may refuse them (--target v2 takes every data center of its catalog)",
    )


def _verdict(observation: Observation, tables: Tables) -> Finding:
    if observation.code == "gpu-type-as-pool":
        if not any(observation.subject in members for members in tables.pools.values()):
            # The server stores a v1 gpuTypeIds write as pools and exclusions (runpodctl #340): a type in no
            # serverless pool has no such form, and a live v1 update naming one did not converge
            # (runpod-domain.md §1.3). v2 blocks the same token; v1 must not send a body that cannot stick.
            return finding(
                "error",
                observation.code,
                observation.field,
                f"{observation.subject!r} is a GPU type in no known serverless pool: REST stores GPU selections "
                "as pools, so it cannot be sent (add it to a pool with --mappings if RunPod has one for it)",
            )
        message = f"{observation.subject!r} is a GPU type, not a pool: kept as that one GPU type"
    else:
        message = f"excluded GPU type {observation.subject!r} is in none of the selected pools"
    return finding("warning", observation.code, observation.field, message)


def build_v1_body(intent: Intent, tables: Tables) -> Translation:
    """Encode an :class:`Intent` as a REST v1 ``EndpointUpdateInput`` body, adding v1-only findings."""
    findings = judge(intent, lambda observation: _verdict(observation, tables))
    body: dict[str, Any] = {}
    if intent.name is not None:
        body["name"] = intent.name
    settings = intent.settings
    if "templateId" in settings:
        body["templateId"] = settings["templateId"]
    body["flashboot"] = intent.flashboot != "OFF"
    if intent.flashboot == "PRIORITY_FLASHBOOT":
        findings.append(
            finding(
                "warning",
                "flashboot-priority-lost",
                "flashBootType",
                "PRIORITY_FLASHBOOT has no REST v1 form: sent as flashboot true (use --target v2 to keep it)",
            )
        )
    if intent.cpu is not None:
        body["cpuFlavorIds"] = dedupe(flavor for flavor, _ in intent.cpu)
        for flavor in body["cpuFlavorIds"]:
            if flavor not in tables.cpu_flavors:
                findings.append(
                    finding(
                        "error",
                        "field-out-of-range",
                        "instanceIds",
                        f"CPU flavor {flavor!r} is not one of the REST v1 endpoint flavors "
                        f"({', '.join(tables.cpu_flavors)}): --target v2 can carry it",
                    )
                )
        counts = dedupe(str(vcpus) for _, vcpus in intent.cpu)
        if counts:
            body["vcpuCount"] = max(vcpus for _, vcpus in intent.cpu)
        if len(counts) > 1:
            findings.append(
                Finding(
                    severity="error",
                    code="cpu-vcpu-mismatch",
                    field="instanceIds",
                    message=f"instance ids ask for {', '.join(counts)} vCPUs; REST v1 takes one vcpuCount for all "
                    "flavors, so it cannot carry them without changing hardware (--target v2 can: one vCPU count "
                    "per flavor)",
                )
            )
    else:
        body["gpuTypeIds"] = intent.gpu_types
        for gpu_type in intent.gpu_types:
            if gpu_type not in tables.gpu_types:
                findings.append(
                    Finding(
                        severity="warning",
                        code="gpu-type-not-in-rest-enum",
                        field="gpuTypeIds",
                        message=f"{gpu_type!r} is not in the REST v1 GPU type list: kept, the server may refuse it",
                    )
                )
        if "gpuCount" in settings:
            body["gpuCount"] = settings["gpuCount"]
    if intent.data_centers is not None:
        body["dataCenterIds"] = intent.data_centers
        newer = _data_center_finding(intent.data_centers, tables)
        if newer is not None:
            findings.append(newer)
    for key in _PASS_THROUGH:
        if key in settings:
            body[key] = settings[key]
    return Translation(body=body, findings=findings)


def _problem(key: str, value: Any, tables: Tables) -> str | None:
    """Say what is wrong with one v1 body field, or return None."""
    kind = _FIELDS.get(key)
    if kind is None:
        return f"{key} is not a REST v1 update field"
    if value is None:
        return f"{key} is null"
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        return f"{key} {value!r} is not a {kind.__name__}"
    if isinstance(value, int) and key in _RANGE:
        low, high = _RANGE[key]
        if value < low or (high is not None and value > high):
            return f"{key} {value} is out of range"
    if key == "name" and len(value) > 191:
        return "name is longer than 191 characters"
    enums: dict[str, Collection[str]] = {
        "dataCenterIds": tables.data_centers,
        "cpuFlavorIds": tables.cpu_flavors,
        "allowedCudaVersions": tables.cuda_versions,
        "minCudaVersion": tables.cuda_versions,
        "scalerType": tables.scaler_types,
    }
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            return f"{key} must be a list of strings"
        allowed = enums.get(key)
        bad = [item for item in value if allowed is not None and item not in allowed]
        if bad:
            return f"{key} {bad[0]!r} is not in the REST v1 list"
    elif key in enums and value not in enums[key]:
        return f"{key} {value!r} is not one of {', '.join(enums[key])}"
    return None


def normalize_v1_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GET /endpoints/{id}`` read in the body's vocabulary (CPU flavors and vCPUs from instance ids)."""
    out = {key: state[key] for key in _FIELDS if key in state and state[key] is not None}
    for key in ("dataCenterIds", "allowedCudaVersions", "gpuTypeIds", "cpuFlavorIds", "networkVolumeIds"):
        if key in out:
            out[key] = as_list(out[key])
    instances = state.get("instanceIds")
    if instances and isinstance(instances, list) and "cpuFlavorIds" not in out:
        parsed = [str(i).split("-") for i in instances]
        out["cpuFlavorIds"] = list(dict.fromkeys(p[0] for p in parsed))
        vcpus = {int(p[1]) for p in parsed if len(p) == 3 and p[1].isdigit()}
        if vcpus and "vcpuCount" not in out:
            out["vcpuCount"] = max(vcpus)
    if state.get("computeType") == "CPU" or instances:
        out.pop("gpuTypeIds", None)
        out.pop("gpuCount", None)
    return out


class _V1:
    """REST v1: ``POST /endpoints/{id}/update`` with an ``EndpointUpdateInput`` body."""

    name: Target = "v1"
    set_fields = frozenset({"gpuTypeIds", "dataCenterIds", "cpuFlavorIds", "allowedCudaVersions", "networkVolumeIds"})
    paged = False
    write_method = "POST"
    successor: Target | None = "v2"
    legacy_fields: Mapping[str, str] = {
        "gpuTypeIds": "gpuIds",
        "cpuFlavorIds": "instanceIds",
        "vcpuCount": "instanceIds",
        "dataCenterIds": "locations",
        "flashboot": "flashBootType",
    }

    def build(self, intent: Intent, tables: Tables) -> Translation:
        return build_v1_body(intent, tables)

    def check_body(self, body: Mapping[str, Any], tables: Tables) -> list[Finding]:
        findings = []
        for key, value in body.items():
            problem = _problem(key, value, tables)
            if problem is not None:
                findings.append(Finding(severity="error", code="field-out-of-range", field=key, message=problem))
        return findings

    def normalize_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return normalize_v1_state(state)

    def base_url(self, settings: Settings) -> str:
        return settings.rest_url.rstrip("/")

    def list_path(self) -> str:
        return "endpoints"

    def read_path(self, quoted_id: str) -> str:
        return f"endpoints/{quoted_id}"

    def write_path(self, quoted_id: str) -> str:
        return f"endpoints/{quoted_id}/update"


V1: RestTarget = _V1()
