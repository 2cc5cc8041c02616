"""The emulated account: legacy endpoint records (the truth) and the REST v1 and v2 views of them.

Each endpoint is stored once, in its legacy GraphQL form (``gpuIds``, ``locations``, ``flashBootType``,
``instanceIds``, ...). The REST views are computed from it on every read, and REST writes are turned
back into the legacy form, the way RunPod's servers do it (``reference/runpod-domain.md`` §2.1, §5.3):
``{"gpuTypeIds": ["NVIDIA A40"]}`` is stored as ``gpuIds: "AMPERE_48,-NVIDIA RTX A6000"``.

Records are copy-on-write: a write builds a new dict and swaps it in under the lock, so a reader may use
a record it got under the lock without holding the lock.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge._gc import paused_gc
from bridge._resources import data_path
from bridge.errors import SnapshotError
from bridge.tables import bundled_tables

__all__ = [
    "Account",
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

# Fields a v1 update copies onto the legacy record unchanged.
_V1_COPIED = (
    "name",
    "templateId",
    "idleTimeout",
    "scalerType",
    "scalerValue",
    "workersMin",
    "workersMax",
    "executionTimeoutMs",
    "gpuCount",
    "minCudaVersion",
    "networkVolumeId",
)


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


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _env_list(env: Any) -> list[dict[str, Any]]:
    if isinstance(env, Mapping):
        return [{"key": str(key), "value": value} for key, value in env.items()]
    if isinstance(env, list):
        return [dict(item) for item in env if isinstance(item, Mapping)]
    return []


def _env_map(env: Any) -> dict[str, Any]:
    return {str(item.get("key")): item.get("value") for item in _env_list(env)}


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
        record["env"] = _env_list(record["env"])
    cuda = record.get("allowedCudaVersions")
    if isinstance(cuda, list):
        record["allowedCudaVersions"] = ",".join(str(v) for v in cuda) or None
    record.pop("computeType", None)  # derived from instanceIds on every read
    return record


# ---------------------------------------------------------------------------------------------- account


class Account:
    """The endpoints of one emulated user, with one lock around all of them."""

    def __init__(
        self,
        records: Iterable[Record],
        pools: Mapping[str, Sequence[str]] | None = None,
        *,
        options: ViewOptions | None = None,
    ) -> None:
        with paused_gc():
            self._setup(records, pools, options)

    def _setup(
        self,
        records: Iterable[Record],
        pools: Mapping[str, Sequence[str]] | None,
        options: ViewOptions | None,
    ) -> None:
        tables = bundled_tables()
        self.lock = threading.Lock()
        self.options = options or ViewOptions()
        self.pools: dict[str, tuple[str, ...]] = {
            pool: tuple(members) for pool, members in (pools if pools is not None else tables.pools).items()
        }
        self._pool_of: dict[str, str] = {}
        for pool, members in self.pools.items():
            for member in members:
                self._pool_of.setdefault(member, pool)
        self.known_types = frozenset(self._pool_of) | tables.gpu_types
        self.dc_order: tuple[str, ...] = tuple(tables.data_centers)
        self.dc_ids = frozenset(self.dc_order)
        self._countries = dict(tables.countries)
        indexed = list(enumerate(records))
        indexed.sort(key=lambda pair: (str(pair[1].get("createdAt") or ""), pair[0]))
        self._records: dict[str, Record] = {rec["id"]: rec for _, rec in indexed}
        self._order: list[str] = list(self._records)
        self._writes: dict[str, int] = {}

    # -- reading ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._order)

    def get(self, endpoint_id: str) -> Record:
        """Return the stored record (do not mutate it). Raises UnknownEndpointError."""
        with self.lock:
            record = self._records.get(endpoint_id)
        if record is None:
            raise UnknownEndpointError(endpoint_id)
        return record

    def find(self, endpoint_id: str) -> Record | None:
        """Return the stored record or None."""
        with self.lock:
            return self._records.get(endpoint_id)

    def ordered(self, start: int = 0, stop: int | None = None) -> list[Record]:
        """Return stored records, oldest ``createdAt`` first, sliced like a list."""
        with self.lock:
            ids = self._order[start:stop]
            return [self._records[i] for i in ids]

    def copy_records(self) -> dict[str, Record]:
        """Return a deep copy of every record, oldest first."""
        with self.lock:
            records = [self._records[i] for i in self._order]
        return {rec["id"]: copy.deepcopy(rec) for rec in records}

    def write_count(self, endpoint_id: str | None = None) -> int:
        """Writes applied to one endpoint, or to all endpoints when no id is given."""
        with self.lock:
            if endpoint_id is None:
                return sum(self._writes.values())
            return self._writes.get(endpoint_id, 0)

    def write_counts(self) -> dict[str, int]:
        """Writes applied per endpoint (endpoints never written are left out)."""
        with self.lock:
            return dict(self._writes)

    def delete(self, endpoint_id: str) -> None:
        """Remove an endpoint, as a user deleting it in the console would. Raises UnknownEndpointError."""
        with self.lock:
            if self._records.pop(endpoint_id, None) is None:
                raise UnknownEndpointError(endpoint_id)
            self._order.remove(endpoint_id)

    def pool_list(self) -> list[dict[str, Any]]:
        """The pool table in the ``serverlessGpuPools`` shape."""
        return [{"id": pool, "gpuTypeIds": list(members)} for pool, members in self.pools.items()]

    # -- legacy -> REST ---------------------------------------------------------------------------

    def gpu_types(self, gpu_ids: str | None) -> list[str]:
        """Expand ``gpuIds`` as REST v1 reports it: pool members in order, minus exclusions, no duplicates."""
        positive, excluded = split_gpu_ids(gpu_ids)
        out: list[str] = []
        for token in positive:
            members = self.pools.get(token)
            if members is not None:
                out.extend(members)
            elif token in self.known_types:  # a GPU type written where a pool belongs counts as that type
                out.append(token)
        drop = set(excluded)
        return _dedupe(t for t in out if t not in drop)

    def data_centers(self, locations: str | None) -> list[str]:
        """Expand ``locations`` to data-center ids; an empty value means every data center."""
        toks = tokens(locations)
        if not toks:
            return list(self.dc_order)
        out: list[str] = []
        for token in toks:
            if token in self.dc_ids:
                out.append(token)
            else:
                out.extend(self._countries.get(token.upper(), ()))
        return _dedupe(out)

    def v1_view(self, record: Mapping[str, Any], *, include_template: bool = False) -> dict[str, Any]:
        """The REST v1 ``Endpoint`` read shape of a legacy record."""
        view: dict[str, Any] = {"id": record["id"]}
        for key in ("name", "templateId", "idleTimeout", "scalerType", "scalerValue", "workersMin"):
            if record.get(key) is not None:
                view[key] = record[key]
        for key in ("workersMax", "executionTimeoutMs", "gpuCount"):
            if record.get(key) is not None:
                view[key] = record[key]
        if is_cpu(record):
            view["computeType"] = "CPU"
            view["instanceIds"] = list(record["instanceIds"])
        else:
            view["computeType"] = "GPU"
            view["gpuTypeIds"] = self.gpu_types(record.get("gpuIds"))
        dcs = self.data_centers(record.get("locations"))
        view["dataCenterIds"] = ",".join(dcs) if self.options.dc_ids_as_string else dcs
        if not self.options.omit_flashboot:
            view["flashboot"] = flash_type(record) != "OFF"
        view["allowedCudaVersions"] = tokens(record.get("allowedCudaVersions"))
        if record.get("minCudaVersion"):
            view["minCudaVersion"] = record["minCudaVersion"]
        if record.get("networkVolumeId"):
            view["networkVolumeId"] = record["networkVolumeId"]
        view["networkVolumeIds"] = [
            str(v.get("networkVolumeId"))
            for v in record.get("networkVolumeIds") or []
            if isinstance(v, Mapping) and v.get("networkVolumeId")
        ]
        view["env"] = _env_map(record.get("env"))
        view["userId"] = record.get("userId") or USER_ID
        view["version"] = record.get("version") or 0
        if record.get("createdAt") is not None:
            view["createdAt"] = record["createdAt"]
        if include_template:
            template = template_of(record)
            view["template"] = {
                "id": template["id"],
                "name": template["name"],
                "imageName": template["imageName"],
                "env": _env_map(template.get("env")),
            }
        return view

    def v2_view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The REST v2 ``Endpoint`` read shape of a legacy record."""
        endpoint_id = record["id"]
        queue = record.get("type") != "LB"
        scaler = record.get("scalerType") or "QUEUE_DELAY"
        value = record.get("scalerValue")
        value = 4 if value is None else value
        template = template_of(record)
        view: dict[str, Any] = {"id": endpoint_id, "name": record.get("name") or ""}
        view["type"] = "QUEUE" if queue else "LOAD_BALANCER"
        if queue:
            base = f"https://api.runpod.ai/v2/{endpoint_id}"
            view["requestUrls"] = {
                "run": f"{base}/run",
                "runSync": f"{base}/runsync",
                "status": f"{base}/status/{{job_id}}",
                "stream": f"{base}/stream/{{job_id}}",
                "cancel": f"{base}/cancel/{{job_id}}",
                "retry": f"{base}/retry/{{job_id}}",
                "purgeQueue": f"{base}/purge-queue",
                "health": f"{base}/health",
            }
        else:
            view["requestUrls"] = {
                "base": f"https://{endpoint_id}.api.runpod.ai",
                "health": f"https://{endpoint_id}.api.runpod.ai/ping",
            }
        view["image"] = template.get("imageName") or ""
        view["args"] = template.get("dockerArgs") or ""
        view["disk"] = template.get("containerDiskInGb") or 20
        view["ports"] = tokens(template.get("ports"))
        view["env"] = _env_map(record.get("env"))
        view["registry"] = template.get("containerRegistryAuthId")
        if is_cpu(record):
            view["gpu"] = None
            cpus = []
            for iid in record["instanceIds"]:
                parsed = parse_instance(str(iid))
                if parsed is not None:
                    flavor, vcpu = parsed
                    cpus.append({"id": flavor, "vcpuCount": vcpu, "memory": vcpu * RAM_MULTIPLIER.get(flavor, 2)})
            view["cpu"] = cpus
        else:
            pools, excluded = split_gpu_ids(record.get("gpuIds"))
            if any(token not in self.pools for token in pools):
                # v2 speaks only pool ids: a legacy GPU-type token reads as its pool minus the other members
                pools, excluded = split_gpu_ids(self.gpu_ids_from_types(self.gpu_types(record.get("gpuIds"))))
            view["gpu"] = {
                "pools": pools,
                "excludedTypes": excluded,
                "count": record.get("gpuCount") or 1,
                "allowedCudaVersions": tokens(record.get("allowedCudaVersions")),
                "minCudaVersion": record.get("minCudaVersion") or None,
            }
        workers: dict[str, Any] = {"min": record.get("workersMin") or 0, "max": record.get("workersMax") or 0}
        if not (queue and scaler == "REQUEST_COUNT") and record.get("idleTimeout") is not None:
            workers["idleTimeout"] = record["idleTimeout"]
        view["workers"] = workers
        if scaler == "REQUEST_COUNT":
            view["scaling"] = {"type": "REQUEST_COUNT", "requestCount": value}
        else:
            view["scaling"] = {"type": "QUEUE_DELAY", "queueDelay": value}
        view["dataCenterIds"] = self.data_centers(record.get("locations")) if tokens(record.get("locations")) else []
        volumes = [
            str(v.get("networkVolumeId"))
            for v in record.get("networkVolumeIds") or []
            if isinstance(v, Mapping) and v.get("networkVolumeId")
        ]
        if record.get("networkVolumeId") and record["networkVolumeId"] not in volumes:
            volumes.insert(0, str(record["networkVolumeId"]))
        view["networkVolumes"] = volumes
        view["timeout"] = record.get("executionTimeoutMs") or 0
        view["flashboot"] = flash_type(record)
        view["createdAt"] = record.get("createdAt") or ""
        return view

    # -- REST -> legacy ---------------------------------------------------------------------------

    def gpu_ids_from_types(self, gpu_type_ids: Sequence[str]) -> str:
        """Rebuild ``gpuIds`` from a v1 type list: the pools holding them, minus their unlisted members."""
        listed = _dedupe(gpu_type_ids)
        wanted = set(listed)
        head: list[str] = []
        pools: list[str] = []
        for gpu_type in listed:
            pool = self._pool_of.get(gpu_type)
            if pool is None:
                head.append(gpu_type)  # in no pool: kept as a raw token
            elif pool not in pools:
                pools.append(pool)
                head.append(pool)
        exclusions = [m for pool in pools for m in self.pools[pool] if m not in wanted]
        return ",".join(head + ["-" + m for m in _dedupe(exclusions)])

    def wipe_exclusions(self, endpoint_id: str) -> None:
        """Drop the ``-TYPE`` exclusions from an endpoint's ``gpuIds`` (the fault RunPod's v2 PATCH once had)."""
        with self.lock:
            record = self._records.get(endpoint_id)
            if record is not None and isinstance(record.get("gpuIds"), str):
                tokens = [t for t in record["gpuIds"].split(",") if t.strip() and not t.strip().startswith("-")]
                record["gpuIds"] = ",".join(tokens)

    def _commit(self, endpoint_id: str, record: Record) -> None:
        record["version"] = int(record.get("version") or 0) + 1
        self._records[endpoint_id] = record
        self._writes[endpoint_id] = self._writes.get(endpoint_id, 0) + 1

    def apply_v1(self, endpoint_id: str, body: Mapping[str, Any]) -> Record:
        """Apply a validated v1 ``EndpointUpdateInput``; unknown keys are ignored. Returns the new record."""
        with self.lock:
            current = self._records.get(endpoint_id)
            if current is None:
                raise UnknownEndpointError(endpoint_id)
            new = dict(current)
            for key in _V1_COPIED:
                if key in body:
                    new[key] = body[key]
            if "gpuTypeIds" in body:
                if not body["gpuTypeIds"]:
                    raise RuleError("gpuTypeIds: at least one GPU type is required")
                new["gpuIds"] = self.gpu_ids_from_types(body["gpuTypeIds"])
            if "dataCenterIds" in body:
                new["locations"] = ",".join(_dedupe(body["dataCenterIds"]))
            if "flashboot" in body:
                keep_priority = body["flashboot"] and current.get("flashBootType") == "PRIORITY_FLASHBOOT"
                new["flashBootType"] = (
                    "PRIORITY_FLASHBOOT" if keep_priority else ("FLASHBOOT" if body["flashboot"] else "OFF")
                )
            if "cpuFlavorIds" in body or "vcpuCount" in body:
                old = [p for p in (parse_instance(str(i)) for i in current.get("instanceIds") or []) if p]
                flavors = _dedupe(body.get("cpuFlavorIds") or [flavor for flavor, _ in old])
                vcpu = body.get("vcpuCount") or max((v for _, v in old), default=2)
                if not flavors:
                    raise RuleError("cpuFlavorIds: at least one CPU flavor is required")
                new["instanceIds"] = [instance_id(flavor, vcpu) for flavor in flavors]
            if "allowedCudaVersions" in body:
                new["allowedCudaVersions"] = ",".join(body["allowedCudaVersions"]) or None
            if "networkVolumeIds" in body:
                new["networkVolumeIds"] = [
                    {"networkVolumeId": v, "dataCenterId": None} for v in _dedupe(body["networkVolumeIds"])
                ]
            _check_workers(new)
            self._commit(endpoint_id, new)
            return new

    def apply_v2(self, endpoint_id: str, body: Mapping[str, Any]) -> Record:
        """Apply a validated v2 ``UpdateEndpointRequest`` (PATCH semantics). Returns the new record."""
        with self.lock:
            current = self._records.get(endpoint_id)
            if current is None:
                raise UnknownEndpointError(endpoint_id)
            new = dict(current)
            if "gpu" in body and "cpu" in body:
                raise RuleError("send at most one of gpu and cpu")
            if "gpu" in body:
                if is_cpu(current):
                    raise RuleError("gpu sent for a CPU endpoint: the compute family cannot be changed")
                self._patch_gpu(new, body["gpu"])
            if "cpu" in body:
                if not is_cpu(current):
                    raise RuleError("cpu sent for a GPU endpoint: the compute family cannot be changed")
                new["instanceIds"] = _cpu_instances(body["cpu"])
            if "name" in body:
                new["name"] = body["name"]
            if "templateId" in body:
                new["templateId"] = body["templateId"]
            if "scaling" in body:
                scaling = body["scaling"]
                new["scalerType"] = scaling["type"]
                raw = scaling.get("queueDelay", scaling.get("requestCount"))
                # legacy scalerValue is an Int: a fractional queue delay rounds up
                new["scalerValue"] = math.ceil(raw)
            if "workers" in body:
                workers = body["workers"]
                if "idleTimeout" in workers and new.get("type") != "LB" and new.get("scalerType") == "REQUEST_COUNT":
                    raise RuleError("workers.idleTimeout is not applicable to queue endpoints scaling on requestCount")
                for src, dst in (("min", "workersMin"), ("max", "workersMax"), ("idleTimeout", "idleTimeout")):
                    if src in workers:
                        new[dst] = workers[src]
            if "dataCenterIds" in body:
                new["locations"] = ",".join(_dedupe(s.strip() for s in body["dataCenterIds"]))
            if "networkVolumes" in body:
                volumes = _dedupe(body["networkVolumes"])
                new["networkVolumeIds"] = [{"networkVolumeId": v, "dataCenterId": None} for v in volumes]
                if new.get("networkVolumeId") not in volumes:
                    new["networkVolumeId"] = None
            if "timeout" in body:
                new["executionTimeoutMs"] = body["timeout"]
            if "flashboot" in body:
                new["flashBootType"] = body["flashboot"]
            if "env" in body:
                new["env"] = _env_list(body["env"])
            container = {
                "image": "imageName",
                "args": "dockerArgs",
                "disk": "containerDiskInGb",
                "registry": "containerRegistryAuthId",
            }
            if any(key in body for key in (*container, "ports")):
                template = dict(template_of(current))
                for src, dst in container.items():
                    if src in body:
                        template[dst] = body[src]
                if "ports" in body:
                    template["ports"] = ",".join(body["ports"])
                new["template"] = template
            _check_workers(new)
            self._commit(endpoint_id, new)
            return new

    def _patch_gpu(self, new: Record, gpu: Mapping[str, Any]) -> None:
        allowed = gpu.get("allowedCudaVersions")
        minimum = gpu.get("minCudaVersion")
        if allowed and minimum:
            raise RuleError("gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive")
        if "pools" in gpu:
            pools = [p.strip() for p in gpu["pools"]]
            for pool in pools:
                if pool not in self.pools:
                    raise RuleError(f"gpu.pools: {pool!r} is not a serverless GPU pool")
            members = {m for pool in pools for m in self.pools[pool]}
            # supplying pools replaces the selection wholesale: omitted excludedTypes means none
            excluded = _dedupe(t.strip() for t in gpu.get("excludedTypes") or [])
            for gpu_type in excluded:
                if gpu_type not in members:
                    raise RuleError(f"gpu.excludedTypes: {gpu_type!r} is not a GPU type in the selected pools")
            if not members - set(excluded):
                raise RuleError("gpu: the selection leaves no GPU type")
            new["gpuIds"] = ",".join(_dedupe(pools) + ["-" + t for t in excluded])
        if "count" in gpu:
            new["gpuCount"] = gpu["count"]
        if "allowedCudaVersions" in gpu:
            new["allowedCudaVersions"] = ",".join(allowed or []) or None
        if "minCudaVersion" in gpu:
            new["minCudaVersion"] = minimum or None
        if ("allowedCudaVersions" in gpu or "minCudaVersion" in gpu) and (
            new.get("allowedCudaVersions") and new.get("minCudaVersion")
        ):
            raise RuleError(
                "gpu: the endpoint would carry both allowedCudaVersions and minCudaVersion; clear one explicitly"
            )


def _cpu_instances(cpus: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for index, cpu in enumerate(cpus):
        flavor, vcpu = str(cpu["id"]).strip(), int(cpu["vcpuCount"])
        if flavor not in RAM_MULTIPLIER:
            raise RuleError(f"cpu[{index}].id: {flavor!r} is not a serverless CPU flavor")
        if vcpu & (vcpu - 1):
            raise RuleError(f"cpu[{index}].vcpuCount: {vcpu} is not a power of two")
        out.append(instance_id(flavor, vcpu))
    return _dedupe(out)


def _check_workers(record: Mapping[str, Any]) -> None:
    low, high = record.get("workersMin"), record.get("workersMax")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise RuleError(f"workersMin ({low}) must not exceed workersMax ({high})")


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
