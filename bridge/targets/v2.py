"""REST v2 target: ``PATCH /v2/serverless/{id}`` with a nested ``UpdateEndpointRequest`` body (SPEC §5).

The body says what the legacy endpoint means in v2's own words: ``gpu.pools`` plus ``gpu.excludedTypes``
(always restated next to ``pools``, because a PATCH that sends pools alone clears the exclusions),
``cpu: [{id, vcpuCount}]`` with one entry per legacy flavor and vCPU count, ``workers``, ``scaling``,
``dataCenterIds``, ``networkVolumes``, ``timeout`` and ``flashboot`` as the three-value enum. v2 can say
everything v1 loses (priority FlashBoot, per-flavor vCPU counts, MIG slices inside a pool), so the v1-only
warnings never appear here; v2 is stricter elsewhere, and those rules are checked before anything is sent.

Decisions, with their reasons:

* **A GPU type given as a pool** (``gpuIds: "NVIDIA GeForce RTX 4090"``) is mapped, not blocked: v2 pools
  must be pool ids, so the type becomes its pool (the first that lists it) and every other member of the pools
  sent that the legacy selection did not ask for is excluded. ``members(pools) - excludedTypes`` is then
  exactly the v1 ``gpuTypeIds`` of the same endpoint; it is also what runpodctl does and what the server
  itself stores for a v1 ``gpuTypeIds`` write (runpod-domain.md §2.1). It stays a warning, because a card
  RunPod later adds to that pool becomes eligible (v2 has no allow-list). A type in no known pool cannot be
  written as a pool at all: that is an error.
* **An exclusion in none of the selected pools** is an error on v2 (v1 keeps it a warning): v2 answers such
  an ``excludedTypes`` entry with 400, so the whole update would fail.
* **idleTimeout with REQUEST_COUNT scaling on a queue endpoint** (legacy ``type`` QB or unknown) is left out
  of the body with a warning, not an error: v2 rejects the combination, documents idleTimeout as "not
  applicable" to it and omits it from reads (runpod-domain.md §5.5), so there is no v2 setting to lose, and
  blocking would keep the endpoint on a retiring API for nothing. Likewise ``QUEUE_DELAY`` scaling on a
  load-balancer endpoint (v2: queue-based endpoints only) is not sent and keeps whatever scaling the server
  has, with a warning.
* **templateId is never sent**: in a v2 PATCH it re-applies the template's container settings and replaces
  the endpoint's env. It is reported as ``field-not-carried`` (info) instead.
* Values v2 would refuse are never put into the body: the error is reported and the offending value left
  out, so a built body always passes :meth:`V2.check_body` and a blocked endpoint never has a half-valid body.

The legacy routing ``type`` (QB/LB) is read from ``Intent.endpoint_type`` when :mod:`bridge.translate`
provides it; without it every endpoint counts as queue-based, the legacy default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bridge.config import Settings
from bridge.models import Finding, Severity, Target
from bridge.tables import Tables
from bridge.targets.base import RestTarget, as_list, dedupe, judge
from bridge.targets.v2_checks import pool_of, power_of_two, rule_findings, schema_findings
from bridge.translate import Intent, Translation

__all__ = ["V2", "build_v2_body", "normalize_v2_state"]

_EXCLUDED_TYPE = re.compile(r"^\s*[^-\s]")  # UpdateEndpointGpuConfig excludedTypes.items.pattern
_LOAD_BALANCER = frozenset({"LB", "LOAD_BALANCER"})

_Add = Callable[[Severity, str, str, str], None]


def _is_load_balancer(intent: Intent) -> bool:
    kind = getattr(intent, "endpoint_type", None)
    return isinstance(kind, str) and kind.strip().upper() in _LOAD_BALANCER


# --- build -------------------------------------------------------------------------------------------------


def _gpu(intent: Intent, tables: Tables, add: _Add) -> dict[str, Any]:
    pools: list[str] = []
    for token in intent.pools:
        if token in tables.pools:
            pools.append(token)
            continue
        owner = pool_of(tables, token)
        if owner is not None:
            pools.append(owner)
            add(
                "warning",
                "gpu-type-as-pool",
                "gpuIds",
                f"{token!r} is a GPU type, not a pool: v2 takes pool ids, so it is sent as pool {owner!r} "
                f"with that pool's other types excluded (a type RunPod later adds to {owner!r} becomes eligible)",
            )
        elif token in tables.gpu_types:
            add(
                "error",
                "gpu-type-as-pool",
                "gpuIds",
                f"{token!r} is a GPU type in no known pool: v2 takes pool ids only, so it cannot be sent",
            )
        # Anything else is an unknown pool, already reported by analyse() as unknown-gpu-pool.
    pools = dedupe(pools)
    members = dedupe(member for pool in pools for member in tables.pools[pool])
    in_pools = set(members)
    wanted = set(intent.gpu_types)
    excluded: list[str] = []
    for gpu_type in intent.excluded:
        if not _EXCLUDED_TYPE.match(gpu_type):
            add(
                "error",
                "field-out-of-range",
                "gpuIds",
                f"exclusion {gpu_type!r} is not a GPU type id: v2 excludedTypes entries must not be empty "
                "or start with '-'",
            )
        elif gpu_type not in in_pools:
            add(
                "error",
                "exclusion-not-in-pools",
                "gpuIds",
                f"excluded GPU type {gpu_type!r} is in none of the selected pools: REST v2 rejects such an "
                "exclusion with 400 (remove it from gpuIds, or use a custom rule)",
            )
        else:
            excluded.append(gpu_type)
    for member in members:  # types of a pool sent for a GPU type token that the legacy selection left out
        if member not in wanted and member not in excluded:
            excluded.append(member)
    _check_order(intent, tables, pools, excluded, add)

    gpu: dict[str, Any] = {}
    if pools:
        gpu["pools"] = pools
        gpu["excludedTypes"] = excluded  # always restated: pools without it clears the exclusions
    settings = intent.settings
    if "gpuCount" in settings:
        gpu["count"] = settings["gpuCount"]
    allowed = settings.get("allowedCudaVersions") or []
    floor = settings.get("minCudaVersion")
    if allowed:
        gpu["allowedCudaVersions"] = list(allowed)
    if floor:
        if allowed:
            add(
                "error",
                "cuda-versions-conflict",
                "minCudaVersion",
                f"allowedCudaVersions {', '.join(allowed)} and minCudaVersion {floor} are both set: REST v2 "
                "rejects the pair with 400 (keep one, e.g. only the allowed versions at or above the floor)",
            )
        else:
            gpu["minCudaVersion"] = floor
    return gpu


def _check_order(intent: Intent, tables: Tables, pools: list[str], excluded: list[str], add: _Add) -> None:
    """Warn when the pools, in order, rent the same GPU types as the legacy form in another priority order.

    v2 orders by pool: a GPU type sent as its pool takes that pool's place, so ``GPU T1,P_A`` with
    P_B = [T0, T1] and P_A = [T0] becomes pools [P_B, P_A], which may rent T0 before T1. No v2 body keeps
    that order (``excludedTypes`` applies to every pool), so the loss is reported instead (issue 14).
    """
    if not any(token not in tables.pools for token in intent.pools):
        return  # only pool tokens: the pools keep the legacy order
    drop = set(excluded)
    order = dedupe(member for pool in pools for member in tables.pools[pool] if member not in drop)
    if order != intent.gpu_types and set(order) == set(intent.gpu_types):
        add(
            "warning",
            "gpu-priority-order-changed",
            "gpuIds",
            f"REST v2 orders GPU types by pool: the legacy priority {', '.join(intent.gpu_types)} becomes "
            f"{', '.join(order)} (a GPU type sent as its pool takes that pool's place)",
        )


def _cpu(intent: Intent, add: _Add) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for flavor, vcpus in intent.cpu or ():
        if vcpus < 2 or not power_of_two(vcpus):
            add(
                "error",
                "field-out-of-range",
                "instanceIds",
                f"{flavor} with {vcpus} vCPU: REST v2 cpu[].vcpuCount must be 2 or more and a power of two",
            )
            continue
        entry = {"id": flavor, "vcpuCount": vcpus}
        if entry not in entries:
            entries.append(entry)
    return entries


def _workers_and_scaling(intent: Intent, body: dict[str, Any], add: _Add) -> None:
    settings = intent.settings
    scaler_type = settings.get("scalerType")
    scaler_value = settings.get("scalerValue")
    load_balancer = _is_load_balancer(intent)

    workers: dict[str, Any] = {}
    if "workersMin" in settings:
        workers["min"] = settings["workersMin"]
    if "workersMax" in settings:
        workers["max"] = settings["workersMax"]
    if "idleTimeout" in settings:
        if scaler_type == "REQUEST_COUNT" and not load_balancer:
            add(
                "warning",
                "idle-timeout-not-applicable",
                "idleTimeout",
                f"idleTimeout {settings['idleTimeout']} is not sent: REST v2 does not apply idleTimeout to "
                "queue endpoints scaling on REQUEST_COUNT and rejects it there",
            )
        else:
            workers["idleTimeout"] = settings["idleTimeout"]
    if workers:
        body["workers"] = workers

    if scaler_type is None or scaler_value is None:
        if scaler_type is not None or scaler_value is not None:
            present = "scalerType" if scaler_type is not None else "scalerValue"
            add(
                "info",
                "field-not-carried",
                present,
                "REST v2 scaling needs both scalerType and scalerValue: the endpoint's scaling stays as it is",
            )
    elif scaler_type == "QUEUE_DELAY":
        if load_balancer:
            add(
                "warning",
                "scaling-not-applicable",
                "scalerType",
                "QUEUE_DELAY scaling is for queue endpoints only on REST v2: not sent for this load-balancer "
                "endpoint, its scaling stays as it is",
            )
        else:
            body["scaling"] = {"type": "QUEUE_DELAY", "queueDelay": scaler_value}
    elif scaler_type == "REQUEST_COUNT":
        body["scaling"] = {"type": "REQUEST_COUNT", "requestCount": scaler_value}
    else:
        add("error", "field-out-of-range", "scalerType", f"scalerType {scaler_type!r} has no REST v2 form")


def build_v2_body(intent: Intent, tables: Tables) -> Translation:
    """Encode an :class:`Intent` as a REST v2 ``UpdateEndpointRequest`` body, with v2's own findings."""
    findings = judge(intent, lambda _observation: None)  # both kinds are judged again for v2 in _gpu

    def add(severity: Severity, code: str, field_: str, message: str) -> None:
        findings.append(Finding(severity=severity, code=code, field=field_, message=message))

    settings = intent.settings
    body: dict[str, Any] = {}
    if intent.name is not None:
        body["name"] = intent.name
    if intent.cpu is not None:
        cpu = _cpu(intent, add)
        if cpu:
            body["cpu"] = cpu
    else:
        gpu = _gpu(intent, tables, add)
        if gpu:
            body["gpu"] = gpu
    _workers_and_scaling(intent, body, add)
    if intent.data_centers is not None:
        body["dataCenterIds"] = list(intent.data_centers)
    # The primary volume first: v2 has no separate networkVolumeId, and the first entry is the primary one.
    volumes = dedupe([*filter(None, [settings.get("networkVolumeId")]), *settings.get("networkVolumeIds", ())])
    if volumes:
        body["networkVolumes"] = volumes
    if "executionTimeoutMs" in settings:
        body["timeout"] = settings["executionTimeoutMs"]
    body["flashboot"] = intent.flashboot
    if settings.get("templateId"):
        add(
            "info",
            "field-not-carried",
            "templateId",
            "templateId is not sent on REST v2: there a templateId re-applies the template's container "
            "settings and replaces the endpoint's env; the endpoint keeps its current image and env",
        )
    return Translation(body=body, findings=findings)


# --- read --------------------------------------------------------------------------------------------------


def normalize_v2_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GET /v2/serverless/{id}`` read in the body's vocabulary (only what a body can say)."""
    out: dict[str, Any] = {}
    for key in ("name", "flashboot", "timeout"):
        if state.get(key) is not None:
            out[key] = state[key]
    for key in ("dataCenterIds", "networkVolumes"):
        if state.get(key) is not None:
            out[key] = as_list(state[key])
    gpu = state.get("gpu")
    if isinstance(gpu, Mapping):
        have: dict[str, Any] = {}
        if gpu.get("pools") is not None:
            have["pools"] = as_list(gpu["pools"])
            # Reads leave excludedTypes out when there are none: with pools known, absent means empty.
            have["excludedTypes"] = as_list(gpu.get("excludedTypes") or [])
        if gpu.get("count") is not None:
            have["count"] = gpu["count"]
        if "allowedCudaVersions" in gpu:
            have["allowedCudaVersions"] = as_list(gpu["allowedCudaVersions"] or [])
        if "minCudaVersion" in gpu:
            have["minCudaVersion"] = gpu["minCudaVersion"] or ""  # null = no floor, "" in a PATCH
        out["gpu"] = have
    cpu = state.get("cpu")
    if isinstance(cpu, list):
        out["cpu"] = [
            {"id": entry.get("id"), "vcpuCount": entry.get("vcpuCount")} for entry in cpu if isinstance(entry, Mapping)
        ]
    workers = state.get("workers")
    if isinstance(workers, Mapping):
        out["workers"] = {key: workers[key] for key in ("min", "max", "idleTimeout") if workers.get(key) is not None}
    scaling = state.get("scaling")
    if isinstance(scaling, Mapping):
        out["scaling"] = {key: value for key, value in scaling.items() if value is not None}
    return out


# --- the target --------------------------------------------------------------------------------------------


class _V2:
    """REST v2: ``PATCH /v2/serverless/{id}`` with an ``UpdateEndpointRequest`` body."""

    name: Target = "v2"
    paged = True
    write_method = "PATCH"
    successor: Target | None = None
    legacy_fields: Mapping[str, str] = {
        "gpu": "gpuIds",
        "cpu": "instanceIds",
        "dataCenterIds": "locations",
        "flashboot": "flashBootType",
        "timeout": "executionTimeoutMs",
        "networkVolumes": "networkVolumeIds",
    }
    set_fields = frozenset(
        {"gpu.pools", "gpu.excludedTypes", "gpu.allowedCudaVersions", "cpu", "dataCenterIds", "networkVolumes"}
    )

    def build(self, intent: Intent, tables: Tables) -> Translation:
        return build_v2_body(intent, tables)

    def check_body(self, body: Mapping[str, Any], tables: Tables) -> list[Finding]:
        return [*schema_findings(body), *rule_findings(body, tables)]

    def normalize_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return normalize_v2_state(state)

    def base_url(self, settings: Settings) -> str:
        return settings.rest_v2_url.rstrip("/")

    def list_path(self) -> str:
        return "serverless"

    def read_path(self, quoted_id: str) -> str:
        return f"serverless/{quoted_id}"

    def write_path(self, quoted_id: str) -> str:
        return f"serverless/{quoted_id}"


V2: RestTarget = _V2()
