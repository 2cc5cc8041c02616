"""Request-body validation against the stored RunPod OpenAPI specs (copies kept in ``schemas/``).

v1 (OpenAPI 3.0) has no ``additionalProperties: false``, so unknown keys pass, as they do live; v2
(OpenAPI 3.1) closes its bodies with ``unevaluatedProperties: false`` and is checked with a Draft 2020-12
validator. ``$ref``s resolve inside the spec document through a ``referencing`` registry.

The live v1 enums grew past the stored copy (runpod-domain.md §1.4: a later live spec adds ``AP-IN-1``,
``US-MD-1`` and MIG slices), so a v1 body may also name the data centers and GPU types the emulator's own
tables know (``known``): the stored enum is a snapshot, not the server's whole list.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from jsonschema import Draft4Validator, Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from bridge._resources import package_path

__all__ = ["V1_SPEC", "V2_SPEC", "load_spec", "v1_update_errors", "v2_update_errors"]

V1_SPEC = "runpod-rest-openapi.json"
V2_SPEC = "runpod-rest-v2-openapi.json"

_QUOTED = re.compile(r"'([^']*)'")


@functools.lru_cache(maxsize=2)
def load_spec(name: str) -> dict[str, Any]:
    """Return a stored OpenAPI document (``V1_SPEC`` or ``V2_SPEC``)."""
    with package_path("emulator", "schemas", name).open("rb") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec


_V1_URI = "urn:runpod:rest-v1"
_V2_URI = "urn:runpod:rest-v2"


@functools.lru_cache(maxsize=2)
def _registry(uri: str) -> Registry[Any]:
    resource: Resource[Any]
    if uri == _V1_URI:
        resource = DRAFT4.create_resource(load_spec(V1_SPEC))
    else:
        resource = DRAFT202012.create_resource(load_spec(V2_SPEC))
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return registry


@functools.lru_cache(maxsize=1)
def _v1_validator() -> Validator:
    ref = {"$ref": f"{_V1_URI}#/components/schemas/EndpointUpdateInput"}
    return Draft4Validator(ref, registry=_registry(_V1_URI))


@functools.lru_cache(maxsize=1)
def _v2_validator() -> Validator:
    ref = {"$ref": f"{_V2_URI}#/components/schemas/UpdateEndpointRequest"}
    return Draft202012Validator(ref, registry=_registry(_V2_URI))


def _declared(schema: Any, uri: str, depth: int = 0) -> set[str]:
    """Property names a schema declares, through allOf/anyOf/oneOf and $ref."""
    if not isinstance(schema, dict) or depth > 20:
        return set()
    names = set(schema.get("properties") or {})
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            names |= _declared(sub, uri, depth + 1)
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = ref if ref.startswith("urn:") else uri + ref
        names |= _declared(_registry(uri).resolver().lookup(target).contents, uri, depth + 1)
    return names


def _leaf(error: ValidationError) -> ValidationError:
    """For a oneOf/anyOf failure, the error of the branch the body meant (its ``type`` matched)."""
    if not error.context:
        return error
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    meant = [
        errs
        for errs in branches.values()
        if not any(list(e.relative_path) == ["type"] and e.validator == "enum" for e in errs)
    ]
    if len(meant) == 1:
        return _leaf(sorted(meant[0], key=lambda e: e.message)[0])
    if not meant:  # no branch's discriminator matched: report the discriminator
        for errs in branches.values():
            for sub in errs:
                if list(sub.relative_path) == ["type"]:
                    return sub
    deepest = best_match(error.context)
    return error if deepest is None else _leaf(deepest)


def _message(error: ValidationError, uri: str) -> str | None:
    if error.validator in ("unevaluatedProperties", "additionalProperties"):
        # JSON Schema drops the annotations of a failed branch, so a declared key whose value failed
        # shows up as "unevaluated" too: report only keys the schema does not declare at all.
        declared = _declared(error.schema, uri)
        names = [n for n in _QUOTED.findall(error.message) if n not in declared]
        if not names:
            return None  # only keys whose own value failed: reported at their own path
        return "additional properties " + ", ".join(f"'{n}'" for n in names) + " not allowed"
    if error.validator == "enum":
        return f"{json.dumps(error.instance)} is not an allowed value"
    return error.message


def _path(error: ValidationError, root: str) -> str:
    out = root
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _known(error: ValidationError, known: Mapping[str, Collection[str]]) -> bool:
    """An enum miss on a value the emulator's tables know (``known[field]``), at ``field`` or ``field[i]``."""
    path = list(error.absolute_path)
    if error.validator != "enum" or not path or not isinstance(path[0], str):
        return False
    allowed = known.get(path[0])
    return allowed is not None and isinstance(error.instance, str) and error.instance in allowed


def _errors(
    validator: Validator, body: Any, root: str, uri: str, known: Mapping[str, Collection[str]] | None = None
) -> list[str]:
    found: Iterable[ValidationError] = validator.iter_errors(body)
    if known:
        found = [err for err in found if not _known(err, known)]
    leaves = sorted((_leaf(e) for e in found), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    out: list[str] = []
    for err in leaves:
        message = _message(err, uri)
        if message is not None:
            out.append(f"{_path(err, root)}: {message}")
    return list(dict.fromkeys(out))


def v1_update_errors(body: Any, known: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """Reasons a v1 ``EndpointUpdateInput`` body is invalid (empty when it is valid).

    ``known`` maps a field (``dataCenterIds``, ``gpuTypeIds``) to values accepted beyond the stored enum.
    """
    return _errors(_v1_validator(), body, "", _V1_URI, known)


def v2_update_errors(body: Any) -> list[str]:
    """Reasons a v2 ``UpdateEndpointRequest`` body is invalid, in RunPod's ``$.field: ...`` form."""
    return _errors(_v2_validator(), body, "$", _V2_URI)
