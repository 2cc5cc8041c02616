"""Load and validate mapping tables: bundled data in ``mappings/``, snapshot or live pools, user overrides.

Precedence, later wins: bundled -> pools from the snapshot or the live API -> override files.
``Tables.sources`` names where each table came from (``"bundled"`` unless a layer replaced it).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge._resources import data_path
from bridge.errors import TableError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["CATALOG_REGIONS", "CpuFlavor", "DataCenter", "Override", "PoolSource", "Tables", "build_tables"]
__all__ += ["bundled_tables", "load_override", "member_problem", "parse_override", "pool_id_problem"]

PoolSource = Literal["bundled", "snapshot", "live"]

# The v2 catalog's continental regions (REST v2 spec, components.schemas.DataCenterRegion).
CATALOG_REGIONS = (
    "NORTH_AMERICA",
    "SOUTH_AMERICA",
    "EUROPE",
    "ASIA",
    "MIDDLE_EAST",
    "AFRICA",
    "OCEANIA",
    "ANTARCTICA",
    "UNKNOWN",
)

_STRICT = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)
_POOL_ID = re.compile(r"^[A-Za-z0-9_]+$")
_CPU_FLAVOR = re.compile(r"^cpu[0-9]+[a-z]+$")
NonEmpty = Field(min_length=1)


class _Pool(BaseModel):
    model_config = _STRICT
    members: tuple[str, ...] = NonEmpty
    sources: tuple[str, ...] = NonEmpty
    disputed: str | None = None

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problem = member_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class _NoPool(BaseModel):
    model_config = _STRICT
    types: tuple[str, ...] = NonEmpty
    sources: tuple[str, ...] = NonEmpty

    @field_validator("types")
    @classmethod
    def _types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problem = member_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class _PoolFile(BaseModel):
    model_config = _STRICT
    pools: dict[str, _Pool] = NonEmpty
    no_pool: _NoPool | None = None

    @field_validator("pools")
    @classmethod
    def _ids(cls, value: dict[str, _Pool]) -> dict[str, _Pool]:
        _check_pool_ids(value)
        return value


class DataCenter(BaseModel):
    """A REST data center: ISO country code (None: unknown), locality, v2 catalog region and name, source."""

    model_config = _STRICT
    country: str | None = Field(pattern=r"^[A-Z]{2}$")
    region: str
    source: str
    catalog_region: str = "UNKNOWN"  # the v2 catalog's continental DataCenterRegion
    name: str | None = None  # the v2 catalog's display name, where known

    @field_validator("catalog_region")
    @classmethod
    def _catalog_region(cls, value: str) -> str:
        if value not in CATALOG_REGIONS:
            raise ValueError(f"{value!r} is not a v2 catalog region ({', '.join(CATALOG_REGIONS)})")
        return value


class _BundledDataCenter(DataCenter):
    country: str = Field(pattern=r"^[A-Z]{2}$")  # required in the bundled table, like catalog_region
    catalog_region: str


class _DataCenterFile(BaseModel):
    model_config = _STRICT
    data_centers: dict[str, _BundledDataCenter] = NonEmpty

    @field_validator("data_centers")
    @classmethod
    def _ids(cls, value: dict[str, _BundledDataCenter]) -> dict[str, _BundledDataCenter]:
        problem = member_problem(list(value))
        if problem:
            raise ValueError(problem)
        return value


class CpuFlavor(BaseModel):
    """A CPU flavor: memory (GB) per vCPU and the vCPU range an instance of it may have."""

    model_config = _STRICT
    name: str
    memory_per_vcpu: float = Field(gt=0)
    vcpu_min: int = Field(ge=1)
    vcpu_max: int = Field(ge=1)
    source: str
    disputed: str | None = None

    @field_validator("vcpu_max")
    @classmethod
    def _range(cls, value: int, info: Any) -> int:
        low = info.data.get("vcpu_min")
        if low is not None and value < low:
            raise ValueError(f"vcpu_max {value} is below vcpu_min {low}")
        return value


class _CpuFile(BaseModel):
    model_config = _STRICT
    flavors: dict[str, CpuFlavor] = NonEmpty

    @field_validator("flavors")
    @classmethod
    def _ids(cls, value: dict[str, CpuFlavor]) -> dict[str, CpuFlavor]:
        for flavor in value:
            if not _CPU_FLAVOR.match(flavor):
                raise ValueError(f"{flavor!r} is not a CPU flavor id (like cpu3c)")
        return value


class _Countries(BaseModel):
    model_config = _STRICT
    documented: tuple[str, ...]
    source: str


class _LocationFile(BaseModel):
    model_config = _STRICT
    countries: _Countries
    locations: dict[str, tuple[str, ...]] = {}


class _RestV1File(BaseModel):
    model_config = _STRICT
    source: str
    gpu_types: tuple[str, ...] = NonEmpty
    cuda_versions: tuple[str, ...] = NonEmpty
    cpu_flavors: tuple[str, ...] = NonEmpty
    data_centers: tuple[str, ...] = NonEmpty
    scaler_types: tuple[str, ...] = NonEmpty


def member_problem(members: Sequence[str]) -> str | None:
    """Say what is wrong with a pool's or location's member list, or ``None`` when it is fine."""
    seen: set[str] = set()
    for member in members:
        if not member.strip() or "," in member or member.startswith("-") or member != member.strip():
            return f"{member!r} is not a valid id"
        if member in seen:
            return f"{member!r} is listed twice"
        seen.add(member)
    return None


def pool_id_problem(pool_id: str) -> str | None:
    """Say what is wrong with a pool id, or ``None`` when it is fine."""
    return None if _POOL_ID.match(pool_id) else f"{pool_id!r} is not a pool id (letters, digits and _ only)"


def _check_pool_ids(pool_ids: Iterable[str]) -> None:
    for pool_id in pool_ids:
        problem = pool_id_problem(pool_id)
        if problem:
            raise ValueError(problem)


def _check_members(value: dict[str, tuple[str, ...]], what: str) -> dict[str, tuple[str, ...]]:
    for key, members in value.items():
        if not key.strip() or "," in key:
            raise ValueError(f"{key!r} is not a valid {what} name")
        if not members:
            raise ValueError(f"{key}: the list is empty")
        problem = member_problem(members)
        if problem:
            raise ValueError(f"{key}: {problem}")
    return value


class Override(BaseModel):
    """A user override file: ``[pools]`` replaces or adds pools, ``[locations]`` maps legacy tokens."""

    model_config = _STRICT
    name: str = "override"
    pools: dict[str, tuple[str, ...]] = {}
    locations: dict[str, tuple[str, ...]] = {}

    @field_validator("pools")
    @classmethod
    def _pools(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        _check_pool_ids(value)
        return _check_members(value, "pool")

    @field_validator("locations")
    @classmethod
    def _locations(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return _check_members(value, "location")


class Tables(BaseModel):
    """Everything translation looks up, validated once. Build it with :func:`build_tables`.

    ``data_centers`` holds every data center bridge knows (the v1 enum first, then newer ones) and
    ``countries`` expands over all of them; ``v1_data_centers`` is the REST v1 spec's enum alone.
    ``gpu_types``/``cpu_flavors`` stay the REST v1 enums. ``sources`` names where each table came from:
    keys ``pools``, ``data_centers``, ``cpus``, ``rest_v1``; values ``"bundled"`` unless a layer replaced it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    pools: dict[str, tuple[str, ...]]
    pool_source: PoolSource
    data_centers: dict[str, DataCenter]
    countries: dict[str, tuple[str, ...]]
    locations: dict[str, tuple[str, ...]]
    gpu_types: frozenset[str]
    gpu_types_ordered: tuple[str, ...]
    cuda_versions: tuple[str, ...]
    cpu_flavors: tuple[str, ...]
    scaler_types: tuple[str, ...]
    overrides: tuple[str, ...] = ()
    v1_data_centers: tuple[str, ...] = ()  # the REST v1 dataCenterIds enum, in spec order
    cpu_flavor_table: dict[str, CpuFlavor] = {}  # every known CPU flavor (v1 enum and newer)
    gpu_types_without_pool: tuple[str, ...] = ()  # GPU types known to be in no serverless pool
    sources: dict[str, str] = {}

    @functools.cached_property
    def data_center_regions(self) -> dict[str, str]:
        """Map each known data center to its v2 catalog region (``NORTH_AMERICA``, ``EUROPE``, ...)."""
        return {dc_id: dc.catalog_region for dc_id, dc in self.data_centers.items()}

    @functools.cached_property
    def cpu_memory_per_vcpu(self) -> dict[str, float]:
        """Map each known CPU flavor to its memory in GB per vCPU."""
        return {flavor: spec.memory_per_vcpu for flavor, spec in self.cpu_flavor_table.items()}

    @functools.cached_property
    def pool_of(self) -> dict[str, str]:
        """Map each GPU type to the first pool that lists it."""
        owner: dict[str, str] = {}
        for pool, members in self.pools.items():
            for member in members:
                owner.setdefault(member, pool)
        return owner


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: invalid TOML: {exc}") from exc


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        raise TableError(f"{where}: {key}: {_pydantic_message(err)}") from exc


def _pydantic_message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "missing"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    if err["type"] in ("tuple_type", "list_type"):
        return "expected a list of strings"
    if err["type"] in ("dict_type", "model_type"):
        return "expected a table"
    return str(err["msg"])


def _file(directory: Path, name: str, model: type[BaseModel]) -> Any:
    return _validate(model, _read_toml(directory / name), str(directory / name))


def load_table_dir(directory: Path) -> Tables:
    """Load and cross-check the five bundled table files in ``directory``."""
    pools = _file(directory, "gpu_pools.toml", _PoolFile)
    dcs = _file(directory, "data_centers.toml", _DataCenterFile)
    locs = _file(directory, "locations.toml", _LocationFile)
    rest = _file(directory, "rest_v1.toml", _RestV1File)
    cpus = _file(directory, "cpu_flavors.toml", _CpuFile)
    where = directory / "data_centers.toml"
    if tuple(dcs.data_centers)[: len(rest.data_centers)] != rest.data_centers:
        raise TableError(f"{where}: data_centers: does not start with the REST v1 data-center enum in its order")
    missing = [flavor for flavor in rest.cpu_flavors if flavor not in cpus.flavors]
    if missing:
        raise TableError(f"{directory / 'cpu_flavors.toml'}: flavors: REST v1 flavor {missing[0]!r} is missing")
    no_pool = pools.no_pool.types if pools.no_pool is not None else ()
    pooled = {member for p in pools.pools.values() for member in p.members}
    if pooled & set(no_pool):
        raise TableError(f"{directory / 'gpu_pools.toml'}: no_pool: {sorted(pooled & set(no_pool))[0]!r} is in a pool")
    countries: dict[str, list[str]] = {code: [] for code in locs.countries.documented}
    for dc_id, dc in dcs.data_centers.items():
        countries.setdefault(dc.country, []).append(dc_id)
    base = Tables(
        pools={pool: p.members for pool, p in pools.pools.items()},
        pool_source="bundled",
        data_centers={dc_id: DataCenter(**dc.model_dump()) for dc_id, dc in dcs.data_centers.items()},
        countries={code: tuple(ids) for code, ids in countries.items()},
        locations={},
        gpu_types=frozenset(rest.gpu_types),
        gpu_types_ordered=rest.gpu_types,
        cuda_versions=rest.cuda_versions,
        cpu_flavors=rest.cpu_flavors,
        scaler_types=rest.scaler_types,
        v1_data_centers=rest.data_centers,
        cpu_flavor_table=dict(cpus.flavors),
        gpu_types_without_pool=no_pool,
        sources=dict.fromkeys(("pools", "data_centers", "cpus", "rest_v1"), "bundled"),
    )
    extra = Override(name=str(directory / "locations.toml"), locations=locs.locations)
    _check_locations(base, extra)
    return base.model_copy(update={"locations": dict(locs.locations)})


@functools.lru_cache(maxsize=1)
def bundled_tables() -> Tables:
    """Return the tables shipped with bridge (``mappings/``)."""
    return load_table_dir(data_path("mappings"))


def parse_override(data: Mapping[str, Any], name: str = "override") -> Override:
    """Validate override data given as Python values (the shape of an override file)."""
    return _validate(Override, {**data, "name": name}, name)  # type: ignore[no-any-return]


def load_override(path: str | Path) -> Override:
    """Read and validate one override file (``--mappings FILE``)."""
    path = Path(path)
    return parse_override(_read_toml(path), str(path))


def _check_locations(tables: Tables, override: Override) -> None:
    for token, ids in override.locations.items():
        for dc_id in ids:
            if dc_id not in tables.data_centers:
                raise TableError(f"{override.name}: locations.{token}: {dc_id!r} is not a known data center")


def _pool_table(pools: Mapping[str, Sequence[str]], where: str) -> dict[str, tuple[str, ...]]:
    """Validate a pool table read from a snapshot or the live API.

    Unlike an override, a live pool may be empty (it has no GPU type right now): endpoints that select
    only it are then blocked with ``no-gpu-types`` instead of the whole run failing.
    """
    table: dict[str, tuple[str, ...]] = {}
    for pool_id, members in pools.items():
        if not isinstance(pool_id, str) or isinstance(members, str) or not isinstance(members, Sequence):
            raise TableError(f"{where}: {pool_id}: expected a list of GPU type ids")
        problem = pool_id_problem(pool_id) or member_problem(members)
        if problem:
            raise TableError(f"{where}: {pool_id}: {problem}")
        table[pool_id] = tuple(members)
    return table


def build_tables(
    *,
    base: Tables | None = None,
    pools: Mapping[str, Sequence[str]] | None = None,
    pool_source: PoolSource = "snapshot",
    overrides: Iterable[Override | Mapping[str, Any]] = (),
    sources: Mapping[str, str] | None = None,
) -> Tables:
    """Layer snapshot/live ``pools`` and ``overrides`` over ``base`` (the bundled tables by default).

    ``sources`` relabels tables (e.g. ``{"pools": "live v2 catalog"}``); replacing ``pools`` sets
    ``sources["pools"]`` to ``pool_source`` unless ``sources`` names it.
    """
    tables = base or bundled_tables()
    update: dict[str, Any] = {}
    new_pools = dict(tables.pools)
    new_sources = dict(tables.sources)
    if pools is not None:
        new_pools = _pool_table(pools, f"{pool_source} pool table")
        update["pool_source"] = pool_source
        new_sources["pools"] = pool_source
    new_sources.update(sources or {})
    update["sources"] = new_sources
    locations = dict(tables.locations)
    names = list(tables.overrides)
    for index, raw in enumerate(overrides):
        override = raw if isinstance(raw, Override) else parse_override(raw, f"override #{index + 1}")
        _check_locations(tables, override)
        new_pools.update(override.pools)
        locations.update(override.locations)
        names.append(override.name)
    update.update(pools=new_pools, locations=locations, overrides=tuple(names))
    result = tables.model_copy(update=update)
    for cached in ("pool_of", "data_center_regions", "cpu_memory_per_vcpu"):
        result.__dict__.pop(cached, None)  # model_copy carries cached_property values over: they would be stale
    return result
