"""The selection shape of the equivalence check, and the legacy evaluator: what a legacy endpoint selects.

The legacy evaluator here and the REST one (:mod:`bridge.equivalence_rest`) are written from the APIs'
documented meaning (SPEC §3-§5, runpod-domain.md §2-§6), not from :mod:`bridge.translate` or a target's body
builder, and neither imports them: the check is only worth something if a translator bug cannot hide in a shared
helper. Both return a :class:`Selection`.

Decisions, with their reasons (both evaluators):

* **Tokens match tables case-insensitively** (pool ids, GPU type ids, data centers, countries, CPU flavors) and
  are trimmed: runpodctl resolves pools and types case-insensitively and compares exclusions upper-cased, and
  v2 trims ``excludedTypes`` values. The canonical (table) spelling is what the selection holds.
* **A field absent from an update body is ``KEPT``**: REST v1 and v2 updates are partial, so the endpoint keeps
  its current value, and that value is the legacy setting (GraphQL and REST read the same stored endpoint:
  a v1 ``gpuTypeIds`` write reads back as ``gpuIds`` pools and exclusions). :func:`bridge.equivalence.compare`
  therefore counts ``KEPT`` as ``same``. The one documented exception is encoded here: a v2 ``gpu.pools``
  sent without ``gpu.excludedTypes`` clears the exclusions.
* v1 ``flashboot: true`` is ``FLASHBOOT`` (v1 has no way to say priority); ``[]`` as ``dataCenterIds`` is anywhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple, TypeVar

from bridge.models import LegacyEndpoint
from bridge.tables import Tables

__all__ = ["KEPT", "CpuPair", "Kept", "Selection", "legacy_selection"]


class Kept(enum.Enum):
    """The marker of a setting an update body does not state: the endpoint keeps its current value."""

    KEPT = "kept"

    def __repr__(self) -> str:
        return "KEPT"


KEPT = Kept.KEPT

Compute = Literal["gpu", "cpu"]
CpuPair = tuple[str | None, int | None]  # (flavor, vCPUs); None = that half is kept (a partial v1 body)

_FLASHBOOT = ("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT")
_SUFFIX = re.compile(r"\s*-fb\s*\Z", re.IGNORECASE)


class Selection(NamedTuple):
    """What one side selects, in one shape for the legacy record, a v1 body and a v2 body (immutable).

    ``None`` means "not set" (for ``data_centers``: anywhere); ``KEPT`` means "not in the body".
    ``problems`` are ``(aspect, text)`` pairs for what the evaluator could not resolve (an unknown pool).
    """

    compute: Compute | Kept
    gpu_types: tuple[str, ...] | Kept = KEPT  # in priority order
    gpu_pools: tuple[str, ...] | Kept = KEPT  # pools the selection follows (grows with the pool); v1: ()
    gpu_count: int | Kept | None = KEPT
    data_centers: tuple[str, ...] | Kept | None = KEPT  # None = anywhere
    location_regions: tuple[str, ...] = ()  # legacy tokens that stand for a region (a country), not one DC
    flashboot: str | Kept = KEPT
    flashboot_from_name: bool = False  # legacy: the mode comes from the -fb name suffix
    cpu: frozenset[CpuPair] | Kept = KEPT
    cpu_memory: tuple[tuple[str, int, int], ...] = ()  # legacy instance ids as (flavor, vCPUs, GB), for reports
    workers_min: int | Kept | None = KEPT
    workers_max: int | Kept | None = KEPT
    scaler_type: str | Kept | None = KEPT
    scaler_value: float | Kept | None = KEPT
    idle_timeout: int | Kept | None = KEPT
    execution_timeout_ms: int | Kept | None = KEPT
    allowed_cuda: frozenset[str] | Kept | None = KEPT
    min_cuda: str | Kept | None = KEPT
    volumes: frozenset[str] | Kept | None = KEPT
    template_id: str | Kept | None = KEPT
    name: str | Kept | None = KEPT  # without any trailing -fb markers
    name_has_suffix: bool = False
    problems: tuple[tuple[str, str], ...] = ()


# --- table index (built once per Tables, cached) -----------------------------------------------------------


class _Index:
    """Case-folded lookups over one :class:`Tables`, and caches of the strings an account repeats."""

    __slots__ = (
        "cpu_flavors",
        "dc_list_cache",
        "dcs",
        "gpu_cache",
        "list_cache",
        "loc_cache",
        "pools",
        "regions",
        "tables",
        "types",
        "v2_cache",
    )

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.pools = {pool.casefold(): (pool, members) for pool, members in tables.pools.items()}
        types = [*tables.gpu_types_ordered, *(m for members in tables.pools.values() for m in members)]
        self.types = {t.casefold(): t for t in reversed(types)}
        self.dcs = {dc.casefold(): dc for dc in tables.data_centers}
        regions: dict[str, tuple[str, ...]] = {}
        for code, ids in tables.countries.items():
            regions.setdefault(code.casefold(), ids)
        for token, ids in tables.locations.items():  # the [locations] table wins over the country table
            regions[token.casefold()] = ids
        self.regions = regions
        # Every flavor the tables know, not only the v1 enum: v2 takes catalog flavors (cpu3m, cpu5m).
        self.cpu_flavors = {f.casefold(): f for f in (*tables.cpu_flavors, *tables.cpu_flavor_table)}
        self.gpu_cache: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}
        self.list_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.dc_list_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.v2_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[tuple[str, ...], ...]] = {}
        self.loc_cache: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


_INDEXES: dict[int, _Index] = {}
_CACHE_SIZE = 4096
_K = TypeVar("_K")
_V = TypeVar("_V")


def _index(tables: Tables) -> _Index:
    index = _INDEXES.get(id(tables))
    if index is None or index.tables is not tables:
        if len(_INDEXES) >= 8:
            _INDEXES.clear()
        index = _INDEXES[id(tables)] = _Index(tables)
    return index


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_SIZE:  # an account repeats a few hundred strings; a bound keeps odd ones cheap
        cache.clear()
    cache[key] = value


def _tokens(value: str) -> list[str]:
    return [t for t in (part.strip() for part in value.split(",")) if t]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def _members_named(chosen: list[str], excluded: list[str]) -> list[str]:
    """The exclusions, each a selected member where one matches it only with runs of whitespace ignored.

    A console or a hand spells ``-NVIDIA  RTX A4500`` (the v1 enum's own double-space entry) for the pool member
    ``NVIDIA RTX A4500``: such an exclusion narrows (issue 13, the safe side). A member another exclusion names
    exactly (case aside) is not taken a second time.
    """
    exact = {t.casefold() for t in chosen}
    named = {t.casefold() for t in excluded}
    loose = {_squash(t): t for t in reversed(chosen) if t.casefold() not in named}
    return [t if t.casefold() in exact else loose.get(_squash(t), t) for t in excluded]


def _minus(types: Iterable[str], excluded: Iterable[str]) -> tuple[str, ...]:
    drop = {t.casefold() for t in excluded}
    return _unique(t for t in types if t.casefold() not in drop)


# --- legacy ------------------------------------------------------------------------------------------------


def _legacy_gpu(index: _Index, gpu_ids: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(types in order, pools followed, problems)`` of a ``gpuIds`` string; cached per string."""
    cached = index.gpu_cache.get(gpu_ids)
    if cached is not None:
        return cached
    chosen: list[str] = []
    pools: list[str] = []
    excluded: list[str] = []
    problems: list[str] = []
    for token in _tokens(gpu_ids):
        if token.startswith("-"):
            name = token[1:].strip()
            if name:  # a lone "-" excludes nothing
                excluded.append(index.types.get(name.casefold(), name))
            continue
        pool = index.pools.get(token.casefold())
        if pool is not None:
            pools.append(pool[0])
            chosen.extend(pool[1])
        elif token.casefold() in index.types:  # a GPU type written where a pool belongs: that one type
            chosen.append(index.types[token.casefold()])
        else:
            problems.append(f"gpuIds token {token!r} is not a known pool or GPU type")
    result = (_minus(chosen, _members_named(chosen, excluded)), _unique(pools), tuple(problems))
    _remember(index.gpu_cache, gpu_ids, result)
    return result


def _legacy_locations(index: _Index, raw: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(data centers, region tokens, problems)`` of a non-empty ``locations`` string; cached per string."""
    cached = index.loc_cache.get(raw)
    if cached is not None:
        return cached
    found: list[str] = []
    regions: list[str] = []
    problems: list[str] = []
    for token in _tokens(raw):
        key = token.casefold()
        if key in index.dcs:
            found.append(index.dcs[key])
        elif key in index.regions:
            regions.append(token)
            found.extend(index.regions[key])
        else:
            problems.append(f"locations token {token!r} is not a data center, country or [locations] entry")
    result = (_unique(found), tuple(regions), tuple(problems))
    _remember(index.loc_cache, raw, result)
    return result


def _base_name(name: str) -> tuple[str, bool]:
    """A name without its trailing ``-fb`` markers (kept whole if nothing would be left), and whether it had one."""
    base = name
    while (match := _SUFFIX.search(base)) is not None:
        base = base[: match.start()]
    return (base if base.strip() else name), base != name


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def legacy_selection(endpoint: LegacyEndpoint, tables: Tables) -> Selection:
    """Evaluate what a legacy GraphQL endpoint selects under ``tables``."""
    index = _index(tables)
    problems: list[tuple[str, str]] = []
    cpu: frozenset[CpuPair] | Kept = KEPT
    memory: list[tuple[str, int, int]] = []
    gpu_types: tuple[str, ...] = ()
    gpu_pools: tuple[str, ...] = ()
    if endpoint.instanceIds:  # a non-empty instanceIds makes a CPU endpoint; gpuIds is then ignored
        compute: Compute = "cpu"
        pairs: set[CpuPair] = set()
        for instance in endpoint.instanceIds:
            parts = instance.strip().split("-")
            flavor = index.cpu_flavors.get(parts[0].casefold()) if len(parts) == 3 else None
            if flavor is None or not all(p.isdigit() and int(p) > 0 for p in parts[1:]):
                problems.append(("cpu", f"instance id {instance!r} is not FLAVOR-VCPU-MEMORY with a known flavor"))
                continue
            pairs.add((flavor, int(parts[1])))
            memory.append((flavor, int(parts[1]), int(parts[2])))
        cpu = frozenset(pairs)
    else:
        compute = "gpu"
        gpu_types, gpu_pools, gpu_problems = _legacy_gpu(index, endpoint.gpuIds or "")
        problems.extend(("gpu", p) for p in gpu_problems)

    data_centers: tuple[str, ...] | None = None
    regions: tuple[str, ...] = ()
    if endpoint.locations and endpoint.locations.strip():
        data_centers, regions, loc_problems = _legacy_locations(index, endpoint.locations)
        problems.extend(("locations", p) for p in loc_problems)

    name, has_suffix = _base_name(endpoint.name) if endpoint.name else (endpoint.name, False)
    mode = endpoint.flashBootType
    if mode is None:
        flashboot = "FLASHBOOT" if has_suffix else "OFF"
    else:
        flashboot = mode.strip().upper()
        if flashboot not in _FLASHBOOT:
            problems.append(("flashboot", f"flashBootType {mode!r} is not one of {', '.join(_FLASHBOOT)}"))

    cuda = endpoint.allowedCudaVersions
    versions = _tokens(cuda) if isinstance(cuda, str) else [v.strip() for v in cuda or () if v.strip()]
    volumes = {ref.networkVolumeId for ref in endpoint.networkVolumeIds or () if ref.networkVolumeId}
    if endpoint.networkVolumeId:
        volumes.add(endpoint.networkVolumeId)
    return Selection(
        compute=compute,
        gpu_types=gpu_types,
        gpu_pools=gpu_pools,
        gpu_count=endpoint.gpuCount if compute == "gpu" else None,
        data_centers=data_centers,
        location_regions=regions,
        flashboot=flashboot,
        flashboot_from_name=mode is None and has_suffix,
        cpu=cpu,
        cpu_memory=tuple(memory),
        workers_min=endpoint.workersMin,
        workers_max=endpoint.workersMax,
        scaler_type=endpoint.scalerType or None,
        scaler_value=_number(endpoint.scalerValue),
        idle_timeout=endpoint.idleTimeout,
        execution_timeout_ms=endpoint.executionTimeoutMs,
        allowed_cuda=frozenset(versions) or None,
        min_cuda=endpoint.minCudaVersion or None,
        volumes=frozenset(volumes) or None,
        template_id=endpoint.templateId or None,
        name=name,
        name_has_suffix=has_suffix,
        problems=tuple(problems),
    )
