"""The REST v2 catalogs: ``GET /v2/catalog/gpus``, ``/v2/catalog/datacenters`` and ``/v2/catalog/cpus``.

Shaped like the stored v2 spec (``ListGpuTypesResponse``, ``ListDataCentersResponse``,
``ListCpuTypesResponse``) and built from the emulator's own tables: GPU types with their serverless
``pool`` (``null`` when in none, MIG slices included), every data center bridge knows (the v1 enum and the
newer ones) with its continental ``region``, and the CPU flavors with ``ramGbPerVcpu``. The catalog's pool
table may differ from the GraphQL ``serverlessGpuPools`` one (``Emulator(catalog_pools=...)``), so a
client can be tested on the two sources disagreeing.

The v2 data-center schema has no country: as the spec says, a client narrows to countries with
``GET /v2/catalog/gpus?include=AVAILABILITY&product=SERVERLESS&countryCodes=US`` and reads each type's
``dataCenters``. Every emulated data center offers every GPU type and CPU flavor, availability ``HIGH``.
Prices and VRAM are plausible figures for the shape, not RunPod's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.tables import Tables, bundled_tables

__all__ = ["Catalog", "CatalogError"]

_PRODUCTS = {"gpus": ("POD", "CLUSTER", "SERVERLESS"), "cpus": ("POD", "SERVERLESS")}
_DC_INCLUDES = ("GPU_AVAILABILITY", "CPU_AVAILABILITY")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_POOL_VRAM = re.compile(r"_(\d+)(?:_|$)")
_TYPE_VRAM = re.compile(r"(\d+)\s*gb", re.IGNORECASE)


class CatalogError(ValueError):
    """A catalog query the v2 API refuses: ``status`` is 400 or 422."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _list_param(query: Mapping[str, list[str]], name: str) -> list[str]:
    values = query.get(name) or []
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _gpu_name(type_id: str) -> str:
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "AMD "):
        if type_id.startswith(prefix):
            return type_id[len(prefix) :].strip()
    return type_id


def _vram(type_id: str, pool: str | None) -> int:
    found = _TYPE_VRAM.findall(type_id)
    if found:
        return int(found[-1])
    match = _POOL_VRAM.search(pool or "")
    return int(match.group(1)) if match else 0


@dataclass
class Catalog:
    """The three catalogs of one emulator. ``pools`` maps pool id -> GPU type ids, as the catalog reports them."""

    pools: dict[str, tuple[str, ...]]
    tables: Tables = field(default_factory=bundled_tables)

    @classmethod
    def build(cls, pools: Mapping[str, Sequence[str]]) -> Catalog:
        return cls({pool: tuple(members) for pool, members in pools.items()})

    # -- the rows ---------------------------------------------------------------------------------

    def gpu_pool_of(self) -> dict[str, str | None]:
        """Every GPU type the catalog lists, with its pool (None when in no serverless pool)."""
        out: dict[str, str | None] = {}
        for pool, members in self.pools.items():
            for member in members:
                out.setdefault(member, pool)
        for type_id in (*self.tables.gpu_types_without_pool, *self.tables.gpu_types_ordered):
            if "  " not in type_id:  # the v1 enum's double-space spellings are not catalog ids
                out.setdefault(type_id, None)
        return out

    def _dc_row(self, dc_id: str) -> dict[str, Any]:
        dc = self.tables.data_centers[dc_id]
        return {"id": dc_id, "name": dc.name or f"{dc.region} ({dc_id})"}

    def _dcs_in(self, countries: Sequence[str]) -> list[str]:
        if not countries:
            return list(self.tables.data_centers)
        return [dc_id for dc_id, dc in self.tables.data_centers.items() if dc.country in countries]

    # -- the routes -------------------------------------------------------------------------------

    def _availability(self, query: Mapping[str, list[str]], what: str) -> bool:
        include = _list_param(query, "include")
        products = _list_param(query, "product")
        for value in include:
            if value != "AVAILABILITY":
                raise CatalogError(400, f"include: unsupported value {value!r} (supported: AVAILABILITY)")
        wanted = bool(include)
        if wanted and not products:
            raise CatalogError(400, "product is required with include=AVAILABILITY")
        if products and not wanted:
            raise CatalogError(400, "product is valid only with include=AVAILABILITY")
        for value in products:
            if value not in _PRODUCTS[what]:
                raise CatalogError(422, f"product: {value!r} is not one of {', '.join(_PRODUCTS[what])}")
        return wanted

    def gpus(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """``ListGpuTypesResponse``."""
        availability = self._availability(query, "gpus")
        countries = _list_param(query, "countryCodes")
        if countries and not availability:
            raise CatalogError(400, "countryCodes is valid only with include=AVAILABILITY")
        for code in countries:
            if not _COUNTRY.match(code):
                raise CatalogError(422, f"countryCodes: {code!r} is not an uppercase ISO 3166-1 alpha-2 code")
        dcs = self._dcs_in(countries)
        rows: list[dict[str, Any]] = []
        for type_id, pool in self.gpu_pool_of().items():
            mig = " MIG " in type_id
            price: dict[str, Any] = {"secure": 0.79, "community": 0.59}
            if pool is not None:
                price["serverless"] = 1.19
            row: dict[str, Any] = {
                "id": type_id,
                "name": _gpu_name(type_id),
                "pool": pool,
                "manufacturer": "AMD" if type_id.startswith("AMD ") else "NVIDIA",
                "memory": _vram(type_id, pool),
                "secure": True,
                "community": not mig,
                "price": price,
                "maxCount": {"secure": 1 if mig else 8, "community": 0 if mig else 4},
            }
            if availability:
                if not dcs:
                    if countries:
                        continue  # no data center in those countries: the type drops out of the list
                    row["availability"] = "NONE"
                else:
                    row["availability"] = "HIGH"
                    row["dataCenters"] = [{**self._dc_row(dc), "availability": "HIGH"} for dc in dcs]
            rows.append(row)
        return {"gpus": rows}

    def datacenters(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """``ListDataCentersResponse``."""
        include = _list_param(query, "include")
        for value in include:
            if value not in _DC_INCLUDES:
                raise CatalogError(422, f"include: {value!r} is not one of {', '.join(_DC_INCLUDES)}")
        regions = _list_param(query, "regions")
        rows: list[dict[str, Any]] = []
        for dc_id, dc in self.tables.data_centers.items():
            if regions and dc.catalog_region not in regions:
                continue
            row: dict[str, Any] = {
                **self._dc_row(dc_id),
                "region": dc.catalog_region,
                "globalNetwork": dc.catalog_region in ("NORTH_AMERICA", "EUROPE"),
                "networkVolumeTypes": ["STANDARD"],
                "compliance": ["GDPR"] if dc.catalog_region == "EUROPE" else [],
            }
            if "GPU_AVAILABILITY" in include:
                row["gpuAvailability"] = [
                    {"id": type_id, "name": _gpu_name(type_id), "availability": "HIGH"}
                    for type_id, pool in self.gpu_pool_of().items()
                    if pool is not None
                ]
            if "CPU_AVAILABILITY" in include:
                row["cpuAvailability"] = [
                    {"id": flavor, "name": spec.name, "availability": "HIGH"}
                    for flavor, spec in self.tables.cpu_flavor_table.items()
                ]
            rows.append(row)
        return {"dataCenters": rows}

    def cpus(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """``ListCpuTypesResponse``: one row per flavor (``cpu.id`` takes the flavor id)."""
        availability = self._availability(query, "cpus")
        rows: list[dict[str, Any]] = []
        for flavor, spec in self.tables.cpu_flavor_table.items():
            generation = re.sub(r"\D", "", flavor)
            row: dict[str, Any] = {
                "id": flavor,
                "name": spec.name,
                "group": f"Gen {generation}",
                "vcpu": {"min": max(spec.vcpu_min, 2), "max": spec.vcpu_max},  # v2 takes 2 vCPUs at least
                "ramGbPerVcpu": spec.memory_per_vcpu,
                "price": {"securePerVcpu": 0.04, "serverlessPerVcpu": 0.03},
            }
            if availability:
                row["availability"] = "HIGH"
                row["dataCenters"] = [{**self._dc_row(dc), "availability": "HIGH"} for dc in self.tables.data_centers]
            rows.append(row)
        return {"cpus": rows}

    def answer(self, name: str, query: Mapping[str, list[str]]) -> dict[str, Any] | None:
        """The body of ``GET /v2/catalog/{name}``, or None for an unknown catalog. Raises CatalogError."""
        if name == "gpus":
            return self.gpus(query)
        if name == "datacenters":
            return self.datacenters(query)
        if name == "cpus":
            return self.cpus(query)
        return None
