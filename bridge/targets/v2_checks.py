"""REST v2 body checks: the stored OpenAPI schema of ``UpdateEndpointRequest``, plus the rules it cannot say.

A body :mod:`bridge.targets.v2` builds always passes these; they matter for bodies custom rules changed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bridge._resources import package_path
from bridge.models import Finding
from bridge.tables import Tables

__all__ = ["SCHEMA_PATH", "pool_of", "power_of_two", "rule_findings", "schema_findings"]

SCHEMA_PATH: Path = package_path("emulator", "schemas", "runpod-rest-v2-openapi.json")
"""The stored v2 OpenAPI document (shipped in the package)."""

_SCHEMA_URI = "urn:bridge:runpod-rest-v2-openapi"
_UPDATE_SCHEMA = "#/components/schemas/UpdateEndpointRequest"


def power_of_two(value: int) -> bool:
    """Tell whether ``value`` is a positive power of two (v2 ``cpu[].vcpuCount``)."""
    return value > 0 and value & (value - 1) == 0


def pool_of(tables: Tables, gpu_type: str) -> str | None:
    """The first pool listing ``gpu_type``, read from ``tables.pools`` itself.

    ``Tables.pool_of`` is a cached property that ``model_copy`` carries over, so on tables built from
    other tables it can describe the old pools; a type token is rare, so a scan costs nothing.
    """
    return next((pool for pool, members in tables.pools.items() if gpu_type in members), None)


def _load_document(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            document: dict[str, Any] = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the stored REST v2 OpenAPI document is missing") from None
    return document


@functools.lru_cache(maxsize=4)
def _validator_for(path: Path) -> tuple[Draft202012Validator, Registry[Any]]:
    resource: Resource[Any] = DRAFT202012.create_resource(_load_document(path))
    registry: Registry[Any] = Registry().with_resource(_SCHEMA_URI, resource)
    validator = Draft202012Validator({"$ref": _SCHEMA_URI + _UPDATE_SCHEMA}, registry=registry)
    return validator, registry


def _validator() -> tuple[Draft202012Validator, Registry[Any]]:
    return _validator_for(SCHEMA_PATH)


def _known_properties(schema: Any, registry: Registry[Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Property names a schema declares through ``properties``, ``allOf`` and ``$ref``."""
    if not isinstance(schema, Mapping):
        return set()
    names = set(schema.get("properties", {}))
    for sub in schema.get("allOf", ()):
        names |= _known_properties(sub, registry, seen)
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        target = registry.resolver(_SCHEMA_URI).lookup(ref).contents
        names |= _known_properties(target, registry, seen | {ref})
    return names


def _where(path: Sequence[Any]) -> tuple[str, str]:
    """``(field, location)``: dotted names without list indices, and with them (``cpu[0].vcpuCount``)."""
    field_parts: list[str] = []
    location = ""
    for part in path:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            field_parts.append(str(part))
            location += f".{part}" if location else str(part)
    return ".".join(field_parts) or "(body)", location or "(body)"


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: a discriminated ``oneOf`` is narrowed to the branch it names."""
    schema = error.schema
    if error.validator == "oneOf" and error.context and isinstance(error.instance, Mapping):
        discriminator = schema.get("discriminator") if isinstance(schema, Mapping) else None
        if isinstance(schema, Mapping) and isinstance(discriminator, Mapping):
            mapping = discriminator.get("mapping", {})
            tag = error.instance.get(discriminator.get("propertyName", ""))
            branches = [sub.get("$ref") for sub in schema.get("oneOf", ())]
            if isinstance(tag, str) and mapping.get(tag) in branches:
                index = branches.index(mapping[tag])
                for sub in error.context:
                    if sub.relative_schema_path and sub.relative_schema_path[0] == index:
                        yield from _leaf_errors(sub)
                return
    yield error


def schema_findings(body: Mapping[str, Any]) -> list[Finding]:
    """Validate ``body`` against the v2 ``UpdateEndpointRequest`` schema: one error finding per field."""
    validator, registry = _validator()
    messages: dict[str, list[str]] = {}
    for top in validator.iter_errors(body):
        for error in _leaf_errors(top):
            if error.validator == "unevaluatedProperties" and isinstance(error.instance, Mapping):
                # A known property whose own value failed is reported by its own error, not as "unexpected".
                known = _known_properties(error.schema, registry)
                for key in error.instance:
                    if key not in known:
                        field_, location = _where([*error.absolute_path, key])
                        messages.setdefault(field_, []).append(f"{location} is not a REST v2 update field")
                continue
            field_, location = _where(list(error.absolute_path))
            messages.setdefault(field_, []).append(f"{location}: {error.message}")
    return [
        Finding(severity="error", code="field-out-of-range", field=field_, message="; ".join(dict.fromkeys(texts)))
        for field_, texts in messages.items()
    ]


def rule_findings(body: Mapping[str, Any], tables: Tables) -> list[Finding]:
    """v2 rules the schema cannot express (each a 400 from the server, or the exclusion-clearing edge)."""
    out: list[Finding] = []

    def error(code: str, field_: str, message: str) -> None:
        out.append(Finding(severity="error", code=code, field=field_, message=message))

    gpu, cpu = body.get("gpu"), body.get("cpu")
    if gpu is not None and cpu is not None:
        error("field-out-of-range", "gpu", "a REST v2 update takes gpu or cpu, never both (400)")
    if isinstance(gpu, Mapping):
        pools = gpu.get("pools")
        if isinstance(pools, list) and all(isinstance(p, str) for p in pools):
            unknown = [p for p in pools if p not in tables.pools]
            for pool in unknown:
                kind = "a GPU type, not a pool id" if pool_of(tables, pool) else "not a known GPU pool"
                error("unknown-gpu-pool", "gpu.pools", f"gpu.pools: {pool!r} is {kind}")
            if "excludedTypes" not in gpu:
                error(
                    "exclusions-not-restated",
                    "gpu.excludedTypes",
                    "gpu.pools is sent without gpu.excludedTypes: REST v2 would clear the endpoint's GPU "
                    "exclusions (send excludedTypes: [] to clear them on purpose)",
                )
            elif isinstance(gpu["excludedTypes"], list) and not unknown:
                members = {member for pool in pools for member in tables.pools[pool]}
                for gpu_type in gpu["excludedTypes"]:
                    if isinstance(gpu_type, str) and gpu_type.strip() not in members:
                        error(
                            "exclusion-not-in-pools",
                            "gpu.excludedTypes",
                            f"gpu.excludedTypes: {gpu_type!r} is in none of gpu.pools: REST v2 rejects it with 400",
                        )
        allowed, floor = gpu.get("allowedCudaVersions"), gpu.get("minCudaVersion")
        if allowed and floor:
            error(
                "cuda-versions-conflict",
                "gpu.minCudaVersion",
                "gpu.allowedCudaVersions (non-empty) and gpu.minCudaVersion are both set: REST v2 rejects "
                "the pair with 400",
            )
    if isinstance(cpu, list):
        for index, entry in enumerate(cpu):
            vcpus = entry.get("vcpuCount") if isinstance(entry, Mapping) else None
            if isinstance(vcpus, int) and not isinstance(vcpus, bool) and vcpus >= 2 and not power_of_two(vcpus):
                error("field-out-of-range", "cpu.vcpuCount", f"cpu[{index}].vcpuCount {vcpus} is not a power of two")
    return out
