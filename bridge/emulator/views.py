"""The pool and data-center tables of an emulated account, and the REST v1 and v2 views of legacy records.

The REST views are computed from the stored legacy record on every read, and REST type lists are turned
back into the legacy form, the way RunPod's servers do it (``reference/runpod-domain.md`` §2.1, §5.3):
``{"gpuTypeIds": ["NVIDIA A40"]}`` is stored as ``gpuIds: "AMPERE_48,-NVIDIA RTX A6000"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.emulator.records import (
    RAM_MULTIPLIER,
    USER_ID,
    ViewOptions,
    dedupe,
    env_map,
    flash_type,
    is_cpu,
    parse_instance,
    split_gpu_ids,
    template_of,
    tokens,
)
from bridge.tables import bundled_tables

__all__ = ["Views"]


class Views:
    """The tables an account reads through (pools, GPU types, data centers) and the REST views they give."""

    def _init_tables(self, pools: Mapping[str, Sequence[str]] | None, options: ViewOptions | None) -> None:
        tables = bundled_tables()
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
        return dedupe(t for t in out if t not in drop)

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
        return dedupe(out)

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
        view["env"] = env_map(record.get("env"))
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
                "env": env_map(template.get("env")),
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
        view["env"] = env_map(record.get("env"))
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

    def gpu_ids_from_types(self, gpu_type_ids: Sequence[str]) -> str:
        """Rebuild ``gpuIds`` from a v1 type list: the pools holding them, minus their unlisted members."""
        listed = dedupe(gpu_type_ids)
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
        return ",".join(head + ["-" + m for m in dedupe(exclusions)])
