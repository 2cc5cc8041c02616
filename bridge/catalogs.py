"""The REST v2 catalogs as a table source: ``GET /v2/catalog/gpus``, ``/datacenters`` and ``/cpus``.

::

    catalogs, notes = await read_catalogs(http)          # live, over the run's shared session
    tables, more = apply_catalogs(build_tables(), catalogs, "live v2 catalog")

Each catalog is read, validated and applied on its own: one that cannot be read leaves its table to the next
source (GraphQL ``serverlessGpuPools`` for the pools, then the bundled tables) with one note saying so.

Design (README "Where tables come from"): the data-center catalog has no country, so a catalog data center
takes its country from the bundled table; a country code expands over the catalog's data centers whose
country is known, and a catalog data center of unknown country is named in a note (it can still be given by
id in ``locations``, or added to a country with a ``--mappings [locations]`` override). Bundled data centers
the catalog lacks stay known ids but drop out of country expansions: the catalog says where RunPod runs today.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.errors import ApiError
from bridge.models import Finding, LegacyEndpoint, split_commas
from bridge.tables import CATALOG_REGIONS, CpuFlavor, DataCenter, Tables, member_problem, pool_id_problem

if TYPE_CHECKING:
    from bridge.http import Http

__all__ = [
    "CATALOGS",
    "Catalogs",
    "apply_catalogs",
    "parse_catalogs",
    "pool_disagreement_findings",
    "pool_disagreements",
    "read_catalogs",
]

CATALOGS = ("gpus", "datacenters", "cpus")
"""The catalog names, as in ``GET /v2/catalog/{name}`` and the snapshot's ``catalogs`` object."""

_CPU_FLAVOR = re.compile(r"^cpu[0-9]+[a-z]+$")


class CatalogShapeError(ValueError):
    """A catalog answer that is not the shape the v2 spec gives it."""


@dataclass(frozen=True)
class Catalogs:
    """What the catalogs said (None: not read). ``raw`` keeps each answer as received, for the snapshot."""

    gpus: dict[str, str | None] | None = None  # GPU type id -> its serverless pool (None: in no pool)
    data_centers: dict[str, tuple[str | None, str]] | None = None  # id -> (name, continental region)
    cpus: dict[str, CpuFlavor] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def pools(self) -> dict[str, list[str]] | None:
        """The GPU catalog grouped by ``pool`` (catalog order), as runpodctl builds its pool table."""
        if self.gpus is None:
            return None
        pools: dict[str, list[str]] = {}
        for type_id, pool in self.gpus.items():
            if pool is not None:
                pools.setdefault(pool, []).append(type_id)
        return pools


def _rows(doc: Any, key: str) -> list[Mapping[str, Any]]:
    rows = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise CatalogShapeError(f"expected {{{key}: [object]}}")
    return rows


def _id(row: Mapping[str, Any], index: int) -> str:
    value = row.get("id")
    if not isinstance(value, str) or member_problem([value]):
        raise CatalogShapeError(f"[{index}].id: {value!r} is not an id")
    return value


def parse_gpus(doc: Any) -> dict[str, str | None]:
    """``ListGpuTypesResponse`` -> GPU type id -> pool."""
    out: dict[str, str | None] = {}
    for index, row in enumerate(_rows(doc, "gpus")):
        type_id, pool = _id(row, index), row.get("pool")
        if pool is not None and (not isinstance(pool, str) or pool_id_problem(pool)):
            raise CatalogShapeError(f"[{index}].pool: {pool!r} is not a pool id")
        out.setdefault(type_id, pool)
    return out


def parse_data_centers(doc: Any) -> dict[str, tuple[str | None, str]]:
    """``ListDataCentersResponse`` -> id -> (name, region); an unknown region counts as ``UNKNOWN``."""
    out: dict[str, tuple[str | None, str]] = {}
    for index, row in enumerate(_rows(doc, "dataCenters")):
        name, region = row.get("name"), row.get("region")
        out[_id(row, index)] = (
            name if isinstance(name, str) else None,
            region if region in CATALOG_REGIONS else "UNKNOWN",
        )
    return out


def parse_cpus(doc: Any) -> dict[str, CpuFlavor]:
    """``ListCpuTypesResponse`` -> flavor -> memory per vCPU and vCPU range (rows that are not flavors skipped)."""
    out: dict[str, CpuFlavor] = {}
    for index, row in enumerate(_rows(doc, "cpus")):
        flavor = _id(row, index)
        if not _CPU_FLAVOR.match(flavor):
            continue
        ratio, vcpu = row.get("ramGbPerVcpu"), row.get("vcpu")
        low = vcpu.get("min") if isinstance(vcpu, Mapping) else None
        high = vcpu.get("max") if isinstance(vcpu, Mapping) else None
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise CatalogShapeError(f"[{index}].ramGbPerVcpu: {ratio!r} is not a positive number")
        counts = [n for n in (low, high) if isinstance(n, int) and not isinstance(n, bool) and n >= 1]
        if len(counts) != 2 or counts[1] < counts[0]:
            raise CatalogShapeError(f"[{index}].vcpu: {vcpu!r} is not {{min, max}} with 1 <= min <= max")
        name = row.get("name")
        out[flavor] = CpuFlavor(
            name=name if isinstance(name, str) else flavor,
            memory_per_vcpu=float(ratio),
            vcpu_min=counts[0],
            vcpu_max=counts[1],
            source="v2 catalog",
        )
    return out


_PARSERS = {"gpus": parse_gpus, "datacenters": parse_data_centers, "cpus": parse_cpus}
_FIELDS = {"gpus": "gpus", "datacenters": "data_centers", "cpus": "cpus"}


def parse_catalogs(raw: Mapping[str, Any], where: str) -> Catalogs:
    """Validate stored catalog answers (a snapshot's ``catalogs`` object). Raises ValueError naming the part."""
    values: dict[str, Any] = {}
    for name, doc in raw.items():
        if name not in _PARSERS:
            raise CatalogShapeError(f"{where}.{name}: not a catalog ({', '.join(CATALOGS)})")
        try:
            values[_FIELDS[name]] = _PARSERS[name](doc)
        except CatalogShapeError as exc:
            raise CatalogShapeError(f"{where}.{name}: {exc}") from None
    return Catalogs(**values, raw=dict(raw))


async def read_catalogs(http: Http) -> tuple[Catalogs, list[str]]:
    """Read the three catalogs concurrently; each one that cannot be read adds one note and stays None.

    A failure that stops the run (a rejected key, a TLS failure) is raised: the rest of the run would meet it.
    """
    base = http.settings.rest_v2_url.rstrip("/")

    async def one(name: str) -> tuple[Any, str | None]:
        url = f"{base}/catalog/{name}"
        try:
            response = await http.request("GET", url, api="v2", params=None)
            doc = http.decode("GET", url, response)
            _PARSERS[name](doc)
        except ApiError as exc:
            if exc.stops_run:
                raise
            return None, f"could not read the {name} catalog ({exc})"
        except CatalogShapeError as exc:
            return None, f"could not read the {name} catalog (GET {url}: {exc})"
        return doc, None

    results = await asyncio.gather(*(one(name) for name in CATALOGS), return_exceptions=True)
    for result in results:  # every one retrieved (none left "never retrieved"), the first failure raised
        if isinstance(result, BaseException):
            raise result
    answers = [result for result in results if not isinstance(result, BaseException)]
    raw = {name: doc for name, (doc, _) in zip(CATALOGS, answers, strict=True) if doc is not None}
    notes = [note for _, note in answers if note is not None]
    return parse_catalogs(raw, "catalogs"), notes


def apply_catalogs(tables: Tables, catalogs: Catalogs, label: str) -> tuple[Tables, list[str]]:
    """Layer what the catalogs hold over ``tables``; return the tables and notes (data centers of no known country).

    ``label`` names the source in ``Tables.sources`` (``"live v2 catalog"``, ``"snapshot"``). The pools are not
    applied here: they go through :func:`bridge.tables.build_tables` like any pool table.
    """
    update: dict[str, Any] = {}
    sources = dict(tables.sources)
    notes: list[str] = []
    if catalogs.data_centers is not None:
        known = tables.data_centers
        listed = catalogs.data_centers
        order = [dc for dc in known if dc in listed] + [dc for dc in listed if dc not in known]
        data_centers: dict[str, DataCenter] = {}
        for dc_id in order:
            name, region = listed[dc_id]
            old = known.get(dc_id)
            data_centers[dc_id] = (
                old.model_copy(update={"catalog_region": region, "name": name or old.name})
                if old is not None
                else DataCenter(country=None, region=name or dc_id, source=label, catalog_region=region, name=name)
            )
        countries: dict[str, list[str]] = {code: [] for code in tables.countries}
        for dc_id in order:
            country = data_centers[dc_id].country
            if country is not None:
                countries.setdefault(country, []).append(dc_id)
        for dc_id, dc in known.items():
            data_centers.setdefault(dc_id, dc)  # still a known id, outside every country expansion
        unplaced = [dc for dc in order if data_centers[dc].country is None]
        if unplaced:
            notes.append(
                f"the {label} lists data centers of no known country ({', '.join(unplaced)}): a country code in "
                "locations does not expand to them (name them by id, or add a --mappings [locations] entry)"
            )
        update.update(data_centers=data_centers, countries={k: tuple(v) for k, v in countries.items()})
        sources["data_centers"] = label
    if catalogs.cpus is not None:
        update["cpu_flavor_table"] = {**tables.cpu_flavor_table, **catalogs.cpus}
        sources["cpus"] = label
    update["sources"] = sources
    result = tables.model_copy(update=update)
    for cached in ("pool_of", "data_center_regions", "cpu_memory_per_vcpu"):
        result.__dict__.pop(cached, None)
    return result, notes


def pool_disagreements(catalog: Mapping[str, Sequence[str]], graphql: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Pool id -> how the v2 catalog and GraphQL ``serverlessGpuPools`` differ on it (only pools that differ)."""
    out: dict[str, str] = {}
    for pool in dict.fromkeys([*catalog, *graphql]):
        ours, theirs = set(catalog.get(pool, ())), set(graphql.get(pool, ()))
        if ours == theirs:
            continue
        parts = []
        if ours - theirs:
            parts.append(f"only the v2 catalog lists {', '.join(sorted(ours - theirs))}")
        if theirs - ours:
            parts.append(f"only GraphQL serverlessGpuPools lists {', '.join(sorted(theirs - ours))}")
        out[pool] = "; ".join(parts)
    return out


def pool_disagreement_findings(
    endpoints: Iterable[LegacyEndpoint], disagreements: Mapping[str, str]
) -> dict[str, list[Finding]]:
    """A warning on each endpoint whose ``gpuIds`` selects a pool the two sources disagree on."""
    out: dict[str, list[Finding]] = {}
    if not disagreements:
        return out
    for ep in endpoints:
        if ep.instanceIds:
            continue
        for token in split_commas(ep.gpuIds or ""):
            if token in disagreements:
                out.setdefault(ep.id, []).append(
                    Finding(
                        severity="warning",
                        code="pool-sources-disagree",
                        field="gpuIds",
                        message=f"pool {token}: {disagreements[token]}; the plan uses the v2 catalog",
                    )
                )
    return out
