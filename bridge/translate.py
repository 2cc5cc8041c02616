"""Pure, target-neutral translation: a legacy endpoint and the tables in, an :class:`Intent` out (SPEC §4).

No network, no files, no clock. :func:`analyse` reads the legacy encodings into an :class:`Intent`: what the
endpoint means, with the findings every target agrees on. Facts whose severity depends on the target (a GPU
type given as a pool, an exclusion outside the selected pools) are kept as :class:`Observation` entries in
the same list, in legacy order; each target in :mod:`bridge.targets` judges them and encodes the body.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.models import Finding, LegacyEndpoint, Severity, has_errors, split_commas
from bridge.tables import Tables

__all__ = [
    "NOT_CARRIED",
    "Intent",
    "Observation",
    "Rule",
    "Translation",
    "analyse",
    "finding",
    "loose",
]

Rule = Callable[[LegacyEndpoint, dict[str, Any]], "tuple[dict[str, Any], Iterable[Finding]]"]
"""A custom rule: gets the legacy endpoint and the draft body, returns the new body and any findings."""

FLASHBOOT_MODES = ("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT")

# Legacy fields with no REST update field. They stay on the endpoint as they are (v1 updates are partial).
NOT_CARRIED = (
    "type",
    "workersStandby",
    "workersPFBTarget",
    "modelReferences",
    "compliance",
    "env",
    "aiKey",
    "hubReleaseId",
    "requestTTL",
    "flashEnvironmentId",
)

_FB_SUFFIX = re.compile(r"\s*-fb\s*\Z", re.IGNORECASE)
_CPU_INSTANCE = re.compile(r"([a-z][a-z0-9]*)-([1-9][0-9]*)-([1-9][0-9]*)\Z")
_NAME_MAX = 191
_IDLE_RANGE = (1, 3600)


@functools.lru_cache(maxsize=4096)
def finding(severity: Severity, code: str, field_: str, message: str) -> Finding:
    # Findings are frozen, and most repeat word for word across an account ("env is not part of the
    # update"): sharing one instance saves building and keeping hundreds of thousands of models.
    return Finding(severity=severity, code=code, field=field_, message=message)


@dataclass(frozen=True, slots=True)
class Observation:
    """A fact about the legacy form whose severity only a target can judge.

    ``code`` is ``gpu-type-as-pool`` (``subject`` is a GPU type given where a pool belongs) or
    ``exclusion-not-in-pools`` (``subject`` is an excluded GPU type in none of the selected pools).
    """

    code: str
    field: str
    subject: str


@dataclass(slots=True)
class Intent:
    """What a legacy endpoint means, before any REST encoding.

    ``findings`` holds neutral findings and :class:`Observation` entries in the order they were met.
    """

    findings: list[Finding | Observation] = field(default_factory=list)
    name: str | None = None
    flashboot: str = "OFF"
    cpu: list[tuple[str, int]] | None = None  # (flavor, vCPUs) per legacy instance id, in order
    pools: list[str] = field(default_factory=list)  # positive pool tokens, in order
    excluded: list[str] = field(default_factory=list)  # excluded GPU types, in order
    gpu_types: list[str] = field(default_factory=list)  # pools expanded, minus exclusions
    data_centers: list[str] | None = None  # None = anywhere
    endpoint_type: str | None = None  # legacy routing type: QB (queue), LB (load balancer), None = queue
    settings: dict[str, Any] = field(default_factory=dict)  # pass-through values, already checked

    def add(self, severity: Severity, code: str, field_: str, message: str) -> None:
        self.findings.append(finding(severity, code, field_, message))

    def observe(self, code: str, field_: str, subject: str) -> None:
        self.findings.append(Observation(code, field_, subject))


@dataclass(frozen=True, slots=True)
class Translation:
    """A REST update body and what translation found. ``blocked`` bodies are never sent."""

    body: dict[str, Any]
    findings: list[Finding]

    @property
    def blocked(self) -> bool:
        return has_errors(self.findings)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def loose(text: str) -> str:
    """``text`` with case and runs of whitespace ignored: how a console or a hand may misspell an id."""
    return " ".join(text.split()).casefold()


def _suggestion(token: str, tables: Tables) -> str:
    wanted = loose(token)
    for known in (*tables.pools, *tables.gpu_types_ordered, *tables.pool_of):
        if loose(known) == wanted:
            return f" (did you mean {known!r}? ids are matched exactly)"
    return ""


def _gpu(ep: LegacyEndpoint, tables: Tables, intent: Intent) -> None:
    candidates: list[str] = []
    excluded: list[str] = []
    for token in split_commas(ep.gpuIds or ""):
        if token.startswith("-"):
            if token[1:].strip():  # a lone "-" excludes nothing: an empty token (SPEC §4)
                excluded.append(token[1:].strip())
            continue
        intent.pools.append(token)
        members = tables.pools.get(token)
        if members is not None:
            candidates.extend(members)
        elif token in tables.gpu_types or token in tables.pool_of:
            intent.observe("gpu-type-as-pool", "gpuIds", token)
            candidates.append(token)
        else:
            hint = _suggestion(token, tables)
            intent.add("error", "unknown-gpu-pool", "gpuIds", f"{token!r} is not a known GPU pool{hint}")
    selected = set(candidates)
    by_loose = {loose(member): member for member in reversed(candidates)}  # the first spelling wins
    spelled: list[str] = []
    for gpu_type in excluded:
        member = by_loose.get(loose(gpu_type)) if gpu_type not in selected else None
        if member is not None:  # narrowing is the safe side: apply it, and say how it was read
            intent.add(
                "warning",
                "exclusion-spelling",
                "gpuIds",
                f"exclusion {gpu_type!r} matches pool member {member!r} only when case and spaces are ignored: "
                f"applied to {member!r}",
            )
            gpu_type = member
        spelled.append(gpu_type)
    intent.excluded = _dedupe(spelled)
    for gpu_type in intent.excluded:
        if gpu_type not in selected:
            intent.observe("exclusion-not-in-pools", "gpuIds", gpu_type)
    drop = set(intent.excluded)
    intent.gpu_types = _dedupe(t for t in candidates if t not in drop)
    if not intent.gpu_types:
        intent.add(
            "error",
            "no-gpu-types",
            "gpuIds",
            f"gpuIds {ep.gpuIds or ''!r} leaves no GPU type to run on",
        )


def _cpu(ep: LegacyEndpoint, tables: Tables, intent: Intent) -> None:
    instances: list[tuple[str, int]] = []
    for instance in ep.instanceIds or ():
        match = _CPU_INSTANCE.match(instance.strip())
        known = tables.cpu_flavor_table or dict.fromkeys(tables.cpu_flavors)
        if match is None or match.group(1) not in known:
            intent.add(
                "error",
                "unknown-cpu-instance",
                "instanceIds",
                f"{instance!r} is not a CPU instance FLAVOR-VCPU-MEMORY with a known flavor ({', '.join(known)})",
            )
            continue
        flavor, vcpus, memory = match.group(1), int(match.group(2)), int(match.group(3))
        ratio = tables.cpu_memory_per_vcpu.get(flavor)
        if ratio is not None and memory != vcpus * ratio:
            source = tables.sources.get("cpus", "bundled")
            intent.add(
                "warning",
                "cpu-memory-mismatch",
                "instanceIds",
                f"{instance!r} asks for {memory} GB, but {flavor} gives {ratio:g} GB per vCPU ({source} CPU table): "
                f"REST derives memory from the vCPU count, so it gets {vcpus * ratio:g} GB",
            )
        instances.append((flavor, vcpus))
    intent.cpu = list(dict.fromkeys(instances))
    if (ep.gpuIds or "").strip():
        intent.add(
            "warning",
            "gpu-ids-ignored",
            "gpuIds",
            f"CPU endpoint: gpuIds {ep.gpuIds!r} is ignored",
        )


def _locations(ep: LegacyEndpoint, tables: Tables, intent: Intent) -> None:
    raw = ep.locations
    if raw is None or not raw.strip():
        return
    found: list[str] = []
    for token in split_commas(raw):
        if token in tables.data_centers:
            found.append(token)
            continue
        expansion = tables.locations.get(token)
        if expansion is None:
            expansion = tables.countries.get(token)
            if expansion:
                source = tables.sources.get("data_centers", "bundled")
                intent.add(
                    "info",
                    "dynamic-location-frozen",
                    "locations",
                    f"country {token!r} is written as the {len(expansion)} data center"
                    f"{'' if len(expansion) == 1 else 's'} the {source} table knows in it today; a data center "
                    f"RunPod adds in {token!r} later will not be used (an explicit list does not grow)",
                )
        if expansion is None:
            intent.add("error", "unknown-location", "locations", f"{token!r} is not a known location")
        elif not expansion:
            intent.add(
                "warning",
                "location-without-data-center",
                "locations",
                f"{token!r} has no REST data center: it adds none",
            )
        found.extend(expansion or ())
    intent.data_centers = _dedupe(found)
    if not intent.data_centers:
        intent.add(
            "error",
            "no-data-centers",
            "locations",
            f"locations {raw!r} leaves no data center (an empty list would mean anywhere)",
        )


def _flashboot(ep: LegacyEndpoint, keep_fb_suffix: bool, intent: Intent) -> None:
    name = ep.name
    suffix = _FB_SUFFIX.search(name) if name else None
    mode = ep.flashBootType
    if mode is None:
        intent.flashboot = "FLASHBOOT" if suffix else "OFF"
    elif mode in FLASHBOOT_MODES:
        intent.flashboot = mode
        if suffix and mode == "OFF":
            intent.add(
                "warning",
                "flashboot-conflict",
                "flashBootType",
                "the name ends in -fb but flashBootType is OFF: flashBootType wins (FlashBoot off)",
            )
    else:
        intent.add(
            "error",
            "field-out-of-range",
            "flashBootType",
            f"flashBootType {mode!r} is not one of {', '.join(FLASHBOOT_MODES)}",
        )
    if name and suffix and not keep_fb_suffix:
        stripped = name[: suffix.start()]
        if stripped.strip():
            intent.add(
                "info",
                "fb-suffix-stripped",
                "name",
                f"the FlashBoot name suffix is removed: {name!r} -> {stripped!r}",
            )
            name = stripped
        else:
            intent.add(
                "warning",
                "fb-suffix-kept",
                "name",
                f"name {name!r} would be empty without its -fb suffix: kept as it is",
            )
    if name is not None and len(name) > _NAME_MAX:
        intent.add("error", "field-out-of-range", "name", f"name is {len(name)} characters, more than {_NAME_MAX}")
    intent.name = name or None


def _int_setting(intent: Intent, key: str, value: Any, low: int | None, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        intent.add(
            "error",
            "field-out-of-range",
            key,
            f"{key} {value!r} is out of range: it must be an integer {bounds}",
        )
        return
    intent.settings[key] = value


def _enum_setting(intent: Intent, key: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is None or value == "":
        return
    if value not in allowed:
        intent.add("error", "field-out-of-range", key, f"{key} {value!r} is not one of {', '.join(allowed)}")
        return
    intent.settings[key] = value


def _settings(ep: LegacyEndpoint, tables: Tables, intent: Intent) -> None:
    if ep.templateId:
        intent.settings["templateId"] = ep.templateId
    _int_setting(intent, "idleTimeout", ep.idleTimeout, *_IDLE_RANGE)
    _enum_setting(intent, "scalerType", ep.scalerType, tables.scaler_types)
    _int_setting(intent, "scalerValue", ep.scalerValue, 1)
    _int_setting(intent, "workersMin", ep.workersMin, 0)
    _int_setting(intent, "workersMax", ep.workersMax, 0)
    _int_setting(intent, "executionTimeoutMs", ep.executionTimeoutMs, None)
    _enum_setting(intent, "minCudaVersion", ep.minCudaVersion, tables.cuda_versions)
    if intent.cpu is None:
        _int_setting(intent, "gpuCount", ep.gpuCount, 1)
    cuda = ep.allowedCudaVersions
    versions = split_commas(cuda) if isinstance(cuda, str) else [v.strip() for v in cuda or () if v.strip()]
    bad = [v for v in versions if v not in tables.cuda_versions]
    if bad:
        intent.add(
            "error",
            "field-out-of-range",
            "allowedCudaVersions",
            f"allowedCudaVersions {', '.join(map(repr, bad))} not among {', '.join(tables.cuda_versions)}",
        )
    elif versions:
        intent.settings["allowedCudaVersions"] = _dedupe(versions)
    if ep.networkVolumeId:
        intent.settings["networkVolumeId"] = ep.networkVolumeId
    volumes = _dedupe(ref.networkVolumeId for ref in ep.networkVolumeIds or () if ref.networkVolumeId)
    if volumes:
        intent.settings["networkVolumeIds"] = volumes
    low, high = intent.settings.get("workersMin"), intent.settings.get("workersMax")
    if low is not None and high is not None and low > high:
        intent.add(
            "error",
            "workers-min-exceeds-max",
            "workersMin",
            f"workersMin {low} is greater than workersMax {high}",
        )


def _not_carried(ep: LegacyEndpoint, intent: Intent) -> None:
    for key in NOT_CARRIED:
        value = getattr(ep, key)
        if value is None or value == "" or value == [] or value == {}:
            continue
        intent.add(
            "info",
            "field-not-carried",
            key,
            f"{key} is not part of the update: it stays on the endpoint as it is",
        )


def _compute_type(ep: LegacyEndpoint, intent: Intent) -> None:
    kind = (ep.computeType or "").strip().upper()
    if kind == "CPU" and not ep.instanceIds:
        problem = "computeType is CPU but the endpoint has no instanceIds"
    elif kind == "GPU" and ep.instanceIds:
        problem = "computeType is GPU but the endpoint has CPU instanceIds"
    else:
        return
    intent.add(
        "error",
        "compute-type-mismatch",
        "computeType",
        f"{problem}: an update cannot change an endpoint's compute family, so the record cannot be carried as is",
    )


def analyse(ep: LegacyEndpoint, tables: Tables, *, keep_fb_suffix: bool = False) -> Intent:
    """Read a legacy endpoint's encodings into a target-neutral :class:`Intent` with its findings."""
    intent = Intent(endpoint_type=ep.type or None)
    _flashboot(ep, keep_fb_suffix, intent)
    _compute_type(ep, intent)
    if ep.instanceIds:
        _cpu(ep, tables, intent)
    else:
        _gpu(ep, tables, intent)
    _locations(ep, tables, intent)
    _settings(ep, tables, intent)
    _not_carried(ep, intent)
    return intent
