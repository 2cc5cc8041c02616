"""REST targets: how a plan's body is built, checked and compared with REST state, per API version.

A :class:`Target` is the small protocol the plan, report and apply engine rely on, so that they stay
the same for REST v1 (the default) and v2. Writes and reads live in :mod:`bridge.rest`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from bridge.models import Change, Finding, Target
from bridge.tables import Tables
from bridge.translate import Intent, Translation, to_v1_body

__all__ = ["V1", "RestTarget", "get_target"]


class RestTarget(Protocol):
    """What the plan needs to know about one REST API version."""

    name: Target
    set_fields: frozenset[str]

    def build(self, intent: Intent, tables: Tables) -> Translation:
        """Encode a translated intent as this target's update body."""
        ...

    def check_body(self, body: Mapping[str, Any], tables: Tables) -> list[Finding]:
        """Return an error finding for every key or value the update schema does not allow."""
        ...

    def normalize_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Return the REST read of an endpoint in the body's vocabulary (only fields it can compare)."""
        ...


def diff(
    body: Mapping[str, Any], state: Mapping[str, Any], set_fields: frozenset[str], prefix: str = ""
) -> list[Change]:
    """Fields of ``body`` whose value differs from ``state``; a field the state lacks is skipped.

    Objects are compared key by key (v2's ``gpu``, ``workers``, ``scaling``) with dotted names
    (``gpu.excludedTypes``); a list whose dotted name is in ``set_fields`` is compared as a set.
    """
    changes: list[Change] = []
    for key, want in body.items():
        if key not in state:
            continue
        name = prefix + key
        have = state[key]
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            changes.extend(diff(want, have, set_fields, name + "."))
            continue
        if name in set_fields and isinstance(want, list) and isinstance(have, list):
            if set(map(_hashable, want)) == set(map(_hashable, have)):
                continue
        elif want == have:
            continue
        changes.append(Change(field=name, from_=have, to=want))
    return changes


def _hashable(value: Any) -> Any:
    # A REST read may hold anything (a list in a list, an object): compare those by their JSON text.
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def fingerprint(normalized: Mapping[str, Any], set_fields: frozenset[str]) -> str:
    """Return ``sha256:<hex>`` of a normalized REST state (set fields sorted, keys sorted)."""
    canonical = _canonical(normalized, set_fields, "")
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"sha256:{digest}"


def _canonical(value: Any, set_fields: frozenset[str], name: str) -> Any:
    if isinstance(value, Mapping):
        prefix = name + "." if name else ""
        return {key: _canonical(item, set_fields, prefix + key) for key, item in value.items()}
    if name in set_fields and isinstance(value, list):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_V1_FIELDS: dict[str, type] = {
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
_V1_RANGE: dict[str, tuple[int, int | None]] = {
    "gpuCount": (1, None),
    "idleTimeout": (1, 3600),
    "scalerValue": (1, None),
    "vcpuCount": (1, None),
    "workersMax": (0, None),
    "workersMin": (0, None),
}


def _v1_problem(key: str, value: Any, tables: Tables) -> str | None:
    """Say what is wrong with one v1 body field, or return None."""
    kind = _V1_FIELDS.get(key)
    if kind is None:
        return f"{key} is not a REST v1 update field"
    if value is None:
        return f"{key} is null"
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        return f"{key} {value!r} is not a {kind.__name__}"
    if isinstance(value, int) and key in _V1_RANGE:
        low, high = _V1_RANGE[key]
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


class _V1:
    """REST v1: ``POST /endpoints/{id}/update`` with an ``EndpointUpdateInput`` body."""

    name: Target = "v1"
    set_fields = frozenset({"gpuTypeIds", "dataCenterIds", "cpuFlavorIds", "allowedCudaVersions", "networkVolumeIds"})

    def build(self, intent: Intent, tables: Tables) -> Translation:
        return to_v1_body(intent, tables)

    def check_body(self, body: Mapping[str, Any], tables: Tables) -> list[Finding]:
        findings = []
        for key, value in body.items():
            problem = _v1_problem(key, value, tables)
            if problem is not None:
                findings.append(Finding(severity="error", code="field-out-of-range", field=key, message=problem))
        return findings

    def normalize_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        out = {key: state[key] for key in _V1_FIELDS if key in state and state[key] is not None}
        for key in ("dataCenterIds", "allowedCudaVersions", "gpuTypeIds", "cpuFlavorIds", "networkVolumeIds"):
            if key in out:
                out[key] = _split_list(out[key])
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


V1: RestTarget = _V1()

_TARGETS: dict[str, RestTarget] = {"v1": V1}


def register_target(target: RestTarget) -> None:
    """Make ``target`` available to :func:`get_target` under its name."""
    _TARGETS[target.name] = target


def get_target(name: str) -> RestTarget:
    """Return the target called ``name`` (``v1`` or ``v2``)."""
    if name == "v2" and "v2" not in _TARGETS:
        import bridge.target_v2  # noqa: F401  (registers itself)
    try:
        return _TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}: use v1 or v2") from None
