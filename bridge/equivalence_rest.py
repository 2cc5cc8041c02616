"""The REST evaluator of the equivalence check: what a v1 or v2 update body selects.

Written from the REST APIs' meaning (SPEC §4-§5, runpod-domain.md §5), not from the targets' body builders. A
field the body leaves out is ``KEPT`` (updates are partial); a v2 ``gpu.pools`` without ``gpu.excludedTypes``
clears the exclusions; v1 ``flashboot: true`` is ``FLASHBOOT``; an empty ``dataCenterIds`` is anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from bridge.equivalence_eval import (
    _FLASHBOOT,
    KEPT,
    Compute,
    CpuPair,
    Kept,
    Selection,
    _base_name,
    _Index,
    _index,
    _minus,
    _number,
    _remember,
    _tokens,
    _unique,
)
from bridge.tables import Tables

__all__ = ["rest_selection"]


def _str_list(body: Mapping[str, Any], key: str, aspect: str, problems: list[tuple[str, str]]) -> list[str] | None:
    """``body[key]`` as a list of trimmed strings (a comma string is accepted), or None when absent or bad."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return _tokens(value)
    if type(value) is list:
        # A tuple of strings equals only a tuple of the same strings: one cache serves every repeated list.
        cached = _STR_LISTS.get(tuple(value))
        if cached is not None:
            return cached
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        trimmed = [v.strip() for v in value if v.strip()]
        if type(value) is list:
            _remember(_STR_LISTS, tuple(value), trimmed)
        return trimmed
    problems.append((aspect, f"{key} {value!r} is not a list of strings"))
    return None


_STR_LISTS: dict[tuple[Any, ...], list[str]] = {}
"""Trimmed string lists by the body's list (callers only read them)."""


def _int(body: Mapping[str, Any], key: str) -> int | Kept | None:
    value = body.get(key, KEPT)
    return KEPT if value is None else _number(value)


def _canonical(mapping: Mapping[str, str], values: Iterable[str]) -> tuple[str, ...]:
    return _unique(mapping.get(v.casefold(), v) for v in values)


def _canonical_cached(
    cache: dict[tuple[str, ...], tuple[str, ...]], mapping: Mapping[str, str], values: list[str]
) -> tuple[str, ...]:
    """:func:`_canonical`, cached per list in ``cache`` (a few hundred lists repeat across an account)."""
    key = tuple(values)
    cached = cache.get(key)
    if cached is None:
        cached = _canonical(mapping, values)
        _remember(cache, key, cached)
    return cached


def _canonical_dcs(index: _Index, values: list[str]) -> tuple[str, ...]:
    """``values`` written as the tables' data center ids."""
    return _canonical_cached(index.dc_list_cache, index.dcs, values)


def _rest_gpu_v1(index: _Index, body: Mapping[str, Any], problems: list[tuple[str, str]]) -> tuple[str, ...] | Kept:
    types = _str_list(body, "gpuTypeIds", "gpu", problems)
    if types is None:
        return KEPT
    return _canonical_cached(index.list_cache, index.types, types)


def _rest_gpu_v2(
    index: _Index, gpu: Mapping[str, Any], problems: list[tuple[str, str]]
) -> tuple[tuple[str, ...] | Kept, tuple[str, ...] | Kept]:
    pools = _str_list(gpu, "pools", "gpu", problems)
    if pools is None:
        return KEPT, KEPT
    # Sending pools without excludedTypes clears the exclusions (v2 PATCH semantics): absent means none.
    excluded = _str_list(gpu, "excludedTypes", "gpu", problems) or []
    key = (tuple(pools), tuple(excluded))
    cached = index.v2_cache.get(key)
    if cached is None:
        cached = _expand_v2(index, pools, excluded)
        _remember(index.v2_cache, key, cached)
    problems.extend(("gpu", text) for text in cached[2])
    return cached[0], cached[1]


def _expand_v2(
    index: _Index, pools: list[str], excluded: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(types, known pools, problems)`` of v2 ``gpu.pools`` minus ``gpu.excludedTypes``."""
    problems: list[str] = []
    members: list[str] = []
    known: list[str] = []
    for pool in pools:
        entry = index.pools.get(pool.casefold())
        if entry is None:
            problems.append(f"gpu.pools entry {pool!r} is not a known pool")
            continue
        known.append(entry[0])
        members.extend(entry[1])
    return _minus(members, excluded), _unique(known), tuple(problems)


def _cpu_v1(index: _Index, body: Mapping[str, Any], problems: list[tuple[str, str]]) -> frozenset[CpuPair] | Kept:
    flavors = _str_list(body, "cpuFlavorIds", "cpu", problems)
    vcpus = body.get("vcpuCount")
    vcpu = vcpus if isinstance(vcpus, int) and not isinstance(vcpus, bool) else None
    if flavors is None and vcpu is None:
        return KEPT
    if flavors is None:
        return frozenset({(None, vcpu)})
    return frozenset((flavor, vcpu) for flavor in _canonical(index.cpu_flavors, flavors))


def _cpu_v2(index: _Index, entries: Any, problems: list[tuple[str, str]]) -> frozenset[CpuPair]:
    pairs: set[CpuPair] = set()
    for entry in entries if isinstance(entries, Sequence) else ():
        flavor = entry.get("id") if isinstance(entry, Mapping) else None
        vcpus = entry.get("vcpuCount") if isinstance(entry, Mapping) else None
        if not isinstance(flavor, str) or not isinstance(vcpus, int) or isinstance(vcpus, bool):
            problems.append(("cpu", f"cpu entry {entry!r} is not {{id, vcpuCount}}"))
            continue
        pairs.add((index.cpu_flavors.get(flavor.strip().casefold(), flavor.strip()), vcpus))
    return frozenset(pairs)


def _set_or_kept(values: list[str] | None) -> frozenset[str] | Kept | None:
    return KEPT if values is None else (frozenset(values) or None)


def rest_selection(body: Mapping[str, Any], target: Literal["v1", "v2"], tables: Tables) -> Selection:
    """Evaluate what a REST update body selects under ``tables``: ``target`` is ``"v1"`` or ``"v2"``."""
    index = _index(tables)
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    if target == "v1":
        gpu_types = _rest_gpu_v1(index, body, problems)
        cpu = _cpu_v1(index, body, problems)
        values.update(
            gpu_pools=KEPT if gpu_types is KEPT else (),
            gpu_count=_int(body, "gpuCount"),
            workers_min=_int(body, "workersMin"),
            workers_max=_int(body, "workersMax"),
            scaler_type=body.get("scalerType", KEPT),
            scaler_value=_int(body, "scalerValue"),
            idle_timeout=_int(body, "idleTimeout"),
            execution_timeout_ms=_int(body, "executionTimeoutMs"),
            allowed_cuda=_set_or_kept(_str_list(body, "allowedCudaVersions", "other", problems)),
            min_cuda=body.get("minCudaVersion", KEPT) or None,
            template_id=body.get("templateId", KEPT) or None,
        )
        volume_ids = _str_list(body, "networkVolumeIds", "other", problems)
        single = body.get("networkVolumeId")
        if volume_ids is not None or single:
            values["volumes"] = frozenset([*(volume_ids or ()), *([single] if isinstance(single, str) else [])]) or None
        raw_flashboot = body.get("flashboot")
        if isinstance(raw_flashboot, bool):
            values["flashboot"] = "FLASHBOOT" if raw_flashboot else "OFF"
        elif raw_flashboot is not None:
            problems.append(("flashboot", f"flashboot {raw_flashboot!r} is not a boolean"))
    else:
        gpu = body.get("gpu")
        gpu_types, gpu_pools = _rest_gpu_v2(index, gpu, problems) if isinstance(gpu, Mapping) else (KEPT, KEPT)
        cpu = _cpu_v2(index, body["cpu"], problems) if "cpu" in body else KEPT
        gpu_map: Mapping[str, Any] = gpu if isinstance(gpu, Mapping) else {}
        raw_workers = body.get("workers")
        workers: Mapping[str, Any] = raw_workers if isinstance(raw_workers, Mapping) else {}
        scaling = body.get("scaling")
        values.update(
            gpu_pools=gpu_pools,
            gpu_count=_int(gpu_map, "count"),
            workers_min=_int(workers, "min"),
            workers_max=_int(workers, "max"),
            idle_timeout=_int(workers, "idleTimeout"),
            execution_timeout_ms=_int(body, "timeout"),
            allowed_cuda=_set_or_kept(_str_list(gpu_map, "allowedCudaVersions", "other", problems)),
            min_cuda=gpu_map.get("minCudaVersion", KEPT) or None,
            volumes=_set_or_kept(_str_list(body, "networkVolumes", "other", problems)),
            template_id=body.get("templateId", KEPT) or None,
        )
        if isinstance(scaling, Mapping):
            kind = scaling.get("type")
            values["scaler_type"] = kind
            values["scaler_value"] = _number(scaling.get("queueDelay" if kind == "QUEUE_DELAY" else "requestCount"))
        mode = body.get("flashboot")
        if mode is not None:
            values["flashboot"] = mode
            if mode not in _FLASHBOOT:
                problems.append(("flashboot", f"flashboot {mode!r} is not one of {', '.join(_FLASHBOOT)}"))
    compute: Compute | Kept = "cpu" if cpu is not KEPT else "gpu" if gpu_types is not KEPT else KEPT
    if target == "v2" and compute is KEPT and isinstance(body.get("gpu"), Mapping):
        compute = "gpu"
    if cpu is not KEPT and gpu_types is not KEPT:
        problems.append(("cpu", "the body selects both GPU types and CPU instances"))
    data_centers = _str_list(body, "dataCenterIds", "locations", problems)
    raw_name = body.get("name")
    name, has_suffix = _base_name(raw_name) if isinstance(raw_name, str) and raw_name else (KEPT, False)
    return Selection(
        compute=compute,
        gpu_types=gpu_types,
        cpu=cpu,
        data_centers=KEPT if data_centers is None else (_canonical_dcs(index, data_centers) or None),
        name=name,
        name_has_suffix=has_suffix,
        problems=tuple(problems),
        **values,
    )
