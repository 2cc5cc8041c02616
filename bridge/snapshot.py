"""Snapshot files: the GraphQL "view your endpoints" response document, saved (SPEC §3.1).

Accepted shapes: ``{"data": {"myself": {"endpoints": [...]}, "serverlessGpuPools": [...]}}``,
``{"endpoints": [...]}`` and a bare list of endpoint objects. Unknown fields are ignored. ``bridge fetch``
adds a top-level ``catalogs`` object: the v2 catalog answers as read (``gpus``, ``datacenters``, ``cpus``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bridge._gc import paused_gc
from bridge.catalogs import Catalogs, parse_catalogs
from bridge.errors import SnapshotError
from bridge.models import LegacyEndpoint, NetworkVolumeRef
from bridge.tables import member_problem, pool_id_problem

__all__ = ["Snapshot", "load_snapshot", "parse_snapshot"]

_ENDPOINTS: TypeAdapter[list[LegacyEndpoint]] = TypeAdapter(list[LegacyEndpoint])
# Error locations also name union branches ("scalerValue.int"): keep only the parts a user wrote.
_FIELD_NAMES = frozenset(LegacyEndpoint.model_fields) | frozenset(NetworkVolumeRef.model_fields)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Legacy endpoints and, when the document carried one, its pool table."""

    endpoints: list[LegacyEndpoint]
    pools: dict[str, list[str]] | None = None
    source: str = "snapshot"
    catalogs: Catalogs = field(default_factory=Catalogs)


def _shape(doc: Any, where: str) -> tuple[Any, Any]:
    if isinstance(doc, list):
        return doc, None
    if not isinstance(doc, Mapping):
        raise SnapshotError(f"{where}: expected a JSON object or list, got {type(doc).__name__}")
    other = _bridge_file(doc)
    if other:
        raise SnapshotError(f"{where}: this is {other}, not a snapshot")
    if doc.get("errors") and not isinstance(doc.get("data"), Mapping):
        raise SnapshotError(f"{where}: the document is a GraphQL error answer, not a snapshot")
    if "data" in doc:
        data = doc["data"]
        if not isinstance(data, Mapping):
            raise SnapshotError(f"{where}: data: expected an object")
        myself = data.get("myself")
        if not isinstance(myself, Mapping) or "endpoints" not in myself:
            raise SnapshotError(f"{where}: data.myself.endpoints: missing (not a GraphQL endpoints response)")
        return myself["endpoints"], data.get("serverlessGpuPools")
    if "endpoints" in doc:
        return doc["endpoints"], doc.get("serverlessGpuPools")
    raise SnapshotError(f"{where}: no endpoints found (expected data.myself.endpoints, endpoints, or a list)")


def _bridge_file(doc: Mapping[str, Any]) -> str | None:
    """Name a file bridge itself wrote (a plan, a backup) when one is given where a snapshot belongs."""
    if doc.get("format") == "bridge-backup":
        return "a bridge backup (give it to `bridge rollback`)"
    if "format_version" in doc and "generated_at" in doc and "tables" in doc:
        return "a bridge plan (give it to `bridge apply`)"
    return None


def _pools(raw: Any, where: str) -> dict[str, list[str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise SnapshotError(f"{where}: serverlessGpuPools: expected a list")
    pools: dict[str, list[str]] = {}
    for index, item in enumerate(raw):
        key = f"{where}: serverlessGpuPools[{index}]"
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("id"), str)
            or not isinstance(item.get("gpuTypeIds"), list)
            or not all(isinstance(t, str) for t in item["gpuTypeIds"])
        ):
            raise SnapshotError(f"{key}: expected {{id, gpuTypeIds: [string]}}")
        problem = pool_id_problem(item["id"]) or member_problem(item["gpuTypeIds"])
        if problem:
            raise SnapshotError(f"{key}: {problem}")
        if item["id"] in pools:
            raise SnapshotError(f"{key}: pool {item['id']} is listed twice")
        pools[item["id"]] = list(item["gpuTypeIds"])
    return pools or None


def parse_snapshot(doc: Any, where: str = "snapshot") -> Snapshot:
    """Validate a decoded snapshot document. ``where`` names it in error messages."""
    with paused_gc():
        return _parse(doc, where)


def _parse(doc: Any, where: str) -> Snapshot:
    raw, raw_pools = _shape(doc, where)
    if not isinstance(raw, list):
        raise SnapshotError(f"{where}: endpoints: expected a list")
    try:
        endpoints = _ENDPOINTS.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        index = loc[0] if loc and isinstance(loc[0], int) else None
        item = raw[index] if index is not None and index < len(raw) else None
        ident = item.get("id") if isinstance(item, Mapping) else None
        who = f"endpoint {ident}" if isinstance(ident, str) and ident else f"endpoints[{index}]"
        field_ = ".".join(str(p) for p in loc[1:] if isinstance(p, int) or p in _FIELD_NAMES) or "(the endpoint)"
        raise SnapshotError(f"{where}: {who}: {field_}: {err['msg']}") from None
    seen: set[str] = set()
    for ep in endpoints:
        if ep.id in seen:
            raise SnapshotError(f"{where}: endpoint {ep.id}: listed twice")
        seen.add(ep.id)
    return Snapshot(endpoints=endpoints, pools=_pools(raw_pools, where), catalogs=_catalogs(doc, where))


def _catalogs(doc: Any, where: str) -> Catalogs:
    raw = doc.get("catalogs") if isinstance(doc, Mapping) else None
    if raw is None:
        return Catalogs()
    if not isinstance(raw, Mapping):
        raise SnapshotError(f"{where}: catalogs: expected an object")
    try:
        return parse_catalogs(raw, "catalogs")
    except ValueError as exc:
        raise SnapshotError(f"{where}: {exc}") from None


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        with paused_gc():
            doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if text.lstrip()[:1] == b"<":
            raise SnapshotError(f"{path}: an HTML page, not a JSON snapshot (saved from an error page?)") from None
        if text.lstrip().startswith(b'{"event": '):
            raise SnapshotError(f"{path}: this is a bridge journal (a run's record), not a snapshot") from None
        raise SnapshotError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise SnapshotError(f"{path}: not valid JSON: nested too deeply") from None
    return parse_snapshot(doc, str(path))


def select(endpoints: Sequence[LegacyEndpoint], ids: Sequence[str], where: str) -> list[LegacyEndpoint]:
    """Keep the endpoints named in ``ids`` (all when empty); an unknown id is an input error."""
    if not ids:
        return list(endpoints)
    by_id = {ep.id: ep for ep in endpoints}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SnapshotError(f"{where}: endpoint {missing[0]} is not in the account")
    return [by_id[i] for i in dict.fromkeys(ids)]
