"""Legacy endpoint records as the emulator stores them: the shared helpers, and seeding from a snapshot.

Each endpoint is stored once, in its legacy GraphQL form (``gpuIds``, ``locations``, ``flashBootType``,
``instanceIds``, ...); ``views.py`` computes the REST shapes from it and ``state.py`` holds the account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge._gc import paused_gc
from bridge._resources import data_path
from bridge.errors import SnapshotError

__all__ = [
    "Record",
    "RuleError",
    "UnknownEndpointError",
    "ViewOptions",
    "load_seed",
]


Record = dict[str, Any]

GRAPHQL_CAP = 400
USER_ID = "user_2emulatorAccount0000"

# vCPU -> GiB of memory, per CPU flavor (flash `CpuInstanceType`, runpod-domain.md §6).
RAM_MULTIPLIER: dict[str, int] = {"cpu3c": 2, "cpu5c": 2, "cpu3g": 4, "cpu5g": 4}

_FB_SUFFIX = re.compile(r"\s*-fb$", re.IGNORECASE)
_INSTANCE = re.compile(r"^(cpu[0-9a-z]+)-(\d+)-(\d+)$")


class UnknownEndpointError(LookupError):
    """No endpoint has this id."""


class RuleError(ValueError):
    """A write breaks a documented server rule (answered 400)."""


@dataclass(frozen=True)
class ViewOptions:
    """Switches for the REST v1 read shape, for the cases where RunPod's docs and servers disagree."""

    dc_ids_as_string: bool = False  # dataCenterIds as "EU-RO-1,US-TX-3", as the v1 docs example shows
    omit_flashboot: bool = False  # leave `flashboot` out of reads, as the v1 spec's Endpoint schema does


def tokens(value: str | None) -> list[str]:
    """Split a legacy comma list, trimming and skipping empty tokens."""
    if not value:
        return []
    return [token.strip() for token in value.split(",") if token.strip()]


def split_gpu_ids(gpu_ids: str | None) -> tuple[list[str], list[str]]:
    """Return the positive tokens and the excluded GPU types of a legacy ``gpuIds`` string."""
    positive: list[str] = []
    excluded: list[str] = []
    for token in tokens(gpu_ids):
        if token.startswith("-"):
            excluded.append(token[1:].strip())
        else:
            positive.append(token)
    return positive, excluded


def is_cpu(record: Mapping[str, Any]) -> bool:
    """Tell whether a legacy record is a CPU endpoint (a non-empty ``instanceIds``)."""
    return bool(record.get("instanceIds"))


def parse_instance(instance_id: str) -> tuple[str, int] | None:
    """Return (flavor, vCPU count) of a CPU instance id like ``cpu3c-8-16``, or None."""
    match = _INSTANCE.match(instance_id.strip())
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def instance_id(flavor: str, vcpu: int) -> str:
    """Build the legacy CPU instance id of a flavor and vCPU count."""
    return f"{flavor}-{vcpu}-{vcpu * RAM_MULTIPLIER.get(flavor, 2)}"


def flash_type(record: Mapping[str, Any]) -> str:
    """The effective FlashBoot mode: ``flashBootType`` when set, else the ``-fb`` name suffix."""
    value = record.get("flashBootType")
    if value in ("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"):
        return str(value)
    return "FLASHBOOT" if _FB_SUFFIX.search(str(record.get("name") or "")) else "OFF"


def dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def env_list(env: Any) -> list[dict[str, Any]]:
    if isinstance(env, Mapping):
        return [{"key": str(key), "value": value} for key, value in env.items()]
    if isinstance(env, list):
        return [dict(item) for item in env if isinstance(item, Mapping)]
    return []


def env_map(env: Any) -> dict[str, Any]:
    return {str(item.get("key")): item.get("value") for item in env_list(env)}


def template_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The endpoint's template: the seed's ``template`` object, or one made up from ``templateId``."""
    template = record.get("template")
    if isinstance(template, Mapping):
        out = dict(template)
        out.setdefault("id", record.get("templateId"))
        out.setdefault("name", f"template {record.get('templateId')}")
        out.setdefault("imageName", "runpod/worker-emulated:latest")
        return out
    return {
        "id": record.get("templateId"),
        "name": f"template {record.get('templateId')}",
        "imageName": "runpod/worker-emulated:latest",
        "dockerArgs": "",
        "containerDiskInGb": 20,
        "ports": None,
        "env": [],
    }


# ---------------------------------------------------------------------------------------------- seeding


def _read_snapshot(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: invalid JSON: {exc}") from exc


def load_seed(
    source: str | Path | Mapping[str, Any] | Sequence[Any] | None,
) -> tuple[list[Record], dict[str, tuple[str, ...]] | None]:
    """Read a snapshot (a file path, a parsed document or None for the bundled sample).

    Returns the endpoint records and the snapshot's pool table (``data.serverlessGpuPools``) if it has one.
    Accepts the three shapes of SPEC §3.1: ``{"data": {"myself": {"endpoints": [...]}}}``,
    ``{"endpoints": [...]}`` and a bare list.
    """
    with paused_gc():
        return _load_seed(source)


def _load_seed(
    source: str | Path | Mapping[str, Any] | Sequence[Any] | None,
) -> tuple[list[Record], dict[str, tuple[str, ...]] | None]:
    if source is None:
        source = data_path("sample-account.json")
    if isinstance(source, (str, Path)):
        where = str(source)
        doc: Any = _read_snapshot(Path(source))
    else:
        # Not copied (100,000 endpoints take seconds to copy): records are copy-on-write and the
        # emulator never mutates what it was given, so the caller's document stays as it was.
        where = "snapshot"
        doc = source
    pools_doc: Any = None
    endpoints: Any
    if isinstance(doc, Sequence) and not isinstance(doc, (str, bytes)):
        endpoints = doc
    elif isinstance(doc, Mapping) and isinstance(doc.get("data"), Mapping):
        data = doc["data"]
        pools_doc = data.get("serverlessGpuPools")
        myself = data.get("myself")
        endpoints = myself.get("endpoints") if isinstance(myself, Mapping) else None
    elif isinstance(doc, Mapping):
        endpoints = doc.get("endpoints")
        pools_doc = doc.get("serverlessGpuPools")
    else:
        endpoints = None
    if not isinstance(endpoints, Sequence) or isinstance(endpoints, (str, bytes)):
        raise SnapshotError(f"{where}: no endpoint list (expected data.myself.endpoints, endpoints or a list)")
    records: list[Record] = []
    seen: set[str] = set()
    for index, item in enumerate(endpoints):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
            raise SnapshotError(f"{where}: endpoints[{index}]: not an endpoint object with a string id")
        if item["id"] in seen:
            raise SnapshotError(f"{where}: endpoints[{index}]: duplicate id {item['id']!r}")
        seen.add(item["id"])
        records.append(_normalise(item))
    return records, _parse_pools(pools_doc, where)


def _parse_pools(pools_doc: Any, where: str) -> dict[str, tuple[str, ...]] | None:
    if pools_doc is None:
        return None
    if not isinstance(pools_doc, list):
        raise SnapshotError(f"{where}: serverlessGpuPools: not a list")
    pools: dict[str, tuple[str, ...]] = {}
    for index, pool in enumerate(pools_doc):
        if (
            not isinstance(pool, dict)
            or not isinstance(pool.get("id"), str)
            or not isinstance(pool.get("gpuTypeIds"), list)
            or not all(isinstance(t, str) for t in pool["gpuTypeIds"])
        ):
            raise SnapshotError(f"{where}: serverlessGpuPools[{index}]: expected {{id, gpuTypeIds: [...]}}")
        pools[pool["id"]] = tuple(pool["gpuTypeIds"])
    return pools


def _normalise(item: Mapping[str, Any]) -> Record:
    """Bring a seed record to the stored shape: env as a key/value list, CUDA versions as a comma string."""
    record = dict(item)
    if "env" in record and record["env"] is not None:
        record["env"] = env_list(record["env"])
    cuda = record.get("allowedCudaVersions")
    if isinstance(cuda, list):
        record["allowedCudaVersions"] = ",".join(str(v) for v in cuda) or None
    record.pop("computeType", None)  # derived from instanceIds on every read
    return record
