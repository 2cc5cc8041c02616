"""The emulated account: legacy endpoint records (the truth), read and written under one lock.

REST writes are turned back into the legacy form (``views.py`` has the tables and the read shapes,
``records.py`` the record helpers and seeding).

Records are copy-on-write: a write builds a new dict and swaps it in under the lock, so a reader may use
a record it got under the lock without holding the lock.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bridge._gc import paused_gc
from bridge.emulator.records import (
    RAM_MULTIPLIER,
    Record,
    RuleError,
    UnknownEndpointError,
    ViewOptions,
    dedupe,
    env_list,
    instance_id,
    is_cpu,
    load_seed,
    parse_instance,
    template_of,
)
from bridge.emulator.views import Views

__all__ = [
    "Account",
    "Record",
    "RuleError",
    "UnknownEndpointError",
    "ViewOptions",
    "is_cpu",
    "load_seed",
]

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


class Account(Views):
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
        self.lock = threading.Lock()
        self._init_tables(pools, options)
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

    # -- REST -> legacy ---------------------------------------------------------------------------

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
                new["locations"] = ",".join(dedupe(body["dataCenterIds"]))
            if "flashboot" in body:
                keep_priority = body["flashboot"] and current.get("flashBootType") == "PRIORITY_FLASHBOOT"
                new["flashBootType"] = (
                    "PRIORITY_FLASHBOOT" if keep_priority else ("FLASHBOOT" if body["flashboot"] else "OFF")
                )
            if "cpuFlavorIds" in body or "vcpuCount" in body:
                old = [p for p in (parse_instance(str(i)) for i in current.get("instanceIds") or []) if p]
                flavors = dedupe(body.get("cpuFlavorIds") or [flavor for flavor, _ in old])
                vcpu = body.get("vcpuCount") or max((v for _, v in old), default=2)
                if not flavors:
                    raise RuleError("cpuFlavorIds: at least one CPU flavor is required")
                new["instanceIds"] = [instance_id(flavor, vcpu) for flavor in flavors]
            if "allowedCudaVersions" in body:
                new["allowedCudaVersions"] = ",".join(body["allowedCudaVersions"]) or None
            if "networkVolumeIds" in body:
                new["networkVolumeIds"] = [
                    {"networkVolumeId": v, "dataCenterId": None} for v in dedupe(body["networkVolumeIds"])
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
                new["locations"] = ",".join(dedupe(s.strip() for s in body["dataCenterIds"]))
            if "networkVolumes" in body:
                volumes = dedupe(body["networkVolumes"])
                new["networkVolumeIds"] = [{"networkVolumeId": v, "dataCenterId": None} for v in volumes]
                if new.get("networkVolumeId") not in volumes:
                    new["networkVolumeId"] = None
            if "timeout" in body:
                new["executionTimeoutMs"] = body["timeout"]
            if "flashboot" in body:
                new["flashBootType"] = body["flashboot"]
            if "env" in body:
                new["env"] = env_list(body["env"])
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
            excluded = dedupe(t.strip() for t in gpu.get("excludedTypes") or [])
            for gpu_type in excluded:
                if gpu_type not in members:
                    raise RuleError(f"gpu.excludedTypes: {gpu_type!r} is not a GPU type in the selected pools")
            if not members - set(excluded):
                raise RuleError("gpu: the selection leaves no GPU type")
            new["gpuIds"] = ",".join(dedupe(pools) + ["-" + t for t in excluded])
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
    return dedupe(out)


def _check_workers(record: Mapping[str, Any]) -> None:
    low, high = record.get("workersMin"), record.get("workersMax")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise RuleError(f"workersMin ({low}) must not exceed workersMax ({high})")
