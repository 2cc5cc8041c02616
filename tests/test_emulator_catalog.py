"""The emulator's REST v2 catalogs (GET /v2/catalog/gpus, /datacenters, /cpus) and the accounts it generates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from conftest import EMULATOR_KEY
from helpers import v2_spec
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from bridge.emulator import Emulator, Faults, generate_account
from bridge.models import LegacyEndpoint
from bridge.plan import build_plan
from bridge.tables import build_tables, bundled_tables

MakeEmulator = Callable[..., Emulator]
MIG_24 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"
MIG_48 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb"
NEWER_DCS = ("US-MO-1", "US-MO-2", "US-NC-2", "US-NE-1", "US-MD-1", "CA-MTL-4", "EUR-NO-2", "AP-IN-1", "AP-IN-2")
ROUTES = {
    "/v2/catalog/gpus": "ListGpuTypesResponse",
    "/v2/catalog/datacenters": "ListDataCentersResponse",
    "/v2/catalog/cpus": "ListCpuTypesResponse",
}


@contextmanager
def client(emu: Emulator, key: str | None = EMULATOR_KEY) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=10) as c:
        yield c


def validator(schema_name: str) -> Draft202012Validator:
    """A validator for one response schema of the stored v2 spec (shared/reference, else the package copy)."""
    registry: Registry[Any] = Registry().with_resource("urn:v2", DRAFT202012.create_resource(v2_spec()))
    return Draft202012Validator({"$ref": f"urn:v2#/components/schemas/{schema_name}"}, registry=registry)


def test_the_stored_spec_has_these_routes() -> None:
    """The routes and their response schemas are the spec's own (a renamed schema fails here first)."""
    paths = v2_spec()["paths"]
    for route, schema in ROUTES.items():
        ref = paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + schema)


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/v2/catalog/gpus", {}),
        ("/v2/catalog/gpus", {"include": "AVAILABILITY", "product": "SERVERLESS"}),
        ("/v2/catalog/gpus", {"include": "AVAILABILITY", "product": "SERVERLESS,POD", "countryCodes": "US,IN"}),
        ("/v2/catalog/datacenters", {}),
        ("/v2/catalog/datacenters", {"include": "GPU_AVAILABILITY,CPU_AVAILABILITY"}),
        ("/v2/catalog/datacenters", {"regions": "EUROPE,ASIA"}),
        ("/v2/catalog/cpus", {}),
        ("/v2/catalog/cpus", {"include": "AVAILABILITY", "product": "SERVERLESS"}),
    ],
)
def test_catalogs_conform_to_the_stored_v2_schemas(emulator: Emulator, route: str, params: dict[str, str]) -> None:
    """Every catalog answer validates against its response schema in the stored v2 spec."""
    with client(emulator) as c:
        response = c.get(route, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = list(validator(ROUTES[route]).iter_errors(response.json()))
    assert not errors, errors[0].message
    assert next(iter(response.json().values())), "an empty catalog proves nothing"


def test_the_schema_check_can_fail() -> None:
    """The validator rejects a GPU row without `pool` and a data center with a region outside the enum."""
    gpu = {"id": "X", "name": "X", "manufacturer": "NVIDIA", "memory": 1, "secure": True, "community": True}
    gpu |= {"price": {"secure": 1, "community": 1}, "maxCount": {"secure": 1, "community": 1}}
    assert list(validator("ListGpuTypesResponse").iter_errors({"gpus": [gpu]}))
    dc = {"id": "AP-IN-1", "name": "x", "region": "ASIA_PACIFIC", "globalNetwork": False}
    dc |= {"networkVolumeTypes": [], "compliance": []}
    assert list(validator("ListDataCentersResponse").iter_errors({"dataCenters": [dc]}))


def test_gpu_catalog_puts_mig_slices_in_their_pools(emulator: Emulator) -> None:
    """MIG slices are listed with their pool; a type in no serverless pool has pool null; pools match the tables."""
    with client(emulator) as c:
        gpus = {g["id"]: g for g in c.get("/v2/catalog/gpus").json()["gpus"]}
    assert gpus[MIG_24]["pool"] == "AMPERE_24" and gpus[MIG_24]["memory"] == 24
    assert gpus[MIG_48]["pool"] == "ADA_48_PRO" and gpus[MIG_48]["memory"] == 48
    assert gpus["NVIDIA RTX PRO 4500 Blackwell"]["pool"] is None
    assert "serverless" not in gpus["NVIDIA RTX PRO 4500 Blackwell"]["price"]
    assert not [g for g in gpus if "  " in g]  # the v1 enum's double-space spellings are not catalog ids
    grouped: dict[str, list[str]] = {}
    for type_id, gpu in gpus.items():
        if gpu["pool"] is not None:
            grouped.setdefault(gpu["pool"], []).append(type_id)
    assert grouped == {pool: list(members) for pool, members in bundled_tables().pools.items()}


def test_gpu_catalog_may_disagree_with_graphql_pools(make_emulator: MakeEmulator) -> None:
    """`catalog_pools` gives the catalog its own pool table; GraphQL keeps the account's."""
    emu = make_emulator(catalog_pools={"AMPERE_24": ["NVIDIA L4", MIG_24]})
    with client(emu) as c:
        gpus = {g["id"]: g["pool"] for g in c.get("/v2/catalog/gpus").json()["gpus"]}
        pools = c.post("/graphql", json={"query": "{ serverlessGpuPools { id gpuTypeIds } }"}).json()
    assert gpus["NVIDIA L4"] == "AMPERE_24" and gpus["NVIDIA RTX A5000"] is None
    graphql = {p["id"]: p["gpuTypeIds"] for p in pools["data"]["serverlessGpuPools"]}
    assert "NVIDIA RTX A5000" in graphql["AMPERE_24"]


def test_country_codes_give_every_data_center_of_the_country(emulator: Emulator) -> None:
    """countryCodes=US lists all US data centers, the newer ones too; a country without any drops every type."""
    query = {"include": "AVAILABILITY", "product": "SERVERLESS"}
    with client(emulator) as c:
        us = c.get("/v2/catalog/gpus", params={**query, "countryCodes": "US"}).json()["gpus"]
        gb = c.get("/v2/catalog/gpus", params={**query, "countryCodes": "GB"}).json()["gpus"]
    dcs = [dc["id"] for dc in us[0]["dataCenters"]]
    assert dcs == list(bundled_tables().countries["US"])
    assert {"US-MO-1", "US-MO-2", "US-NC-2", "US-NE-1", "US-MD-1"} <= set(dcs)
    assert all(gpu["availability"] == "HIGH" for gpu in us)
    assert gb == []


def test_datacenter_catalog_lists_newer_data_centers_with_regions(emulator: Emulator) -> None:
    """Every known data center is listed with its continental region; the regions filter narrows the list."""
    with client(emulator) as c:
        dcs = {dc["id"]: dc for dc in c.get("/v2/catalog/datacenters").json()["dataCenters"]}
        asia = c.get("/v2/catalog/datacenters", params={"regions": "ASIA"}).json()["dataCenters"]
    assert list(dcs) == list(bundled_tables().data_centers)
    for dc_id in NEWER_DCS:
        assert dcs[dc_id]["region"] == bundled_tables().data_center_regions[dc_id]
    assert dcs["AP-IN-1"]["region"] == "ASIA" and dcs["US-MO-1"]["region"] == "NORTH_AMERICA"
    assert dcs["US-KS-2"]["name"] == "US Kansas 2"  # the v2 spec's own example
    assert {dc["id"] for dc in asia} == {"AP-JP-1", "AP-IN-1", "AP-IN-2"}


def test_cpu_catalog_gives_memory_per_vcpu(emulator: Emulator) -> None:
    """Each flavor is listed by its id with the bundled ratio and a vCPU range v2 accepts (min 2)."""
    with client(emulator) as c:
        cpus = {cpu["id"]: cpu for cpu in c.get("/v2/catalog/cpus").json()["cpus"]}
    assert {k: v["ramGbPerVcpu"] for k, v in cpus.items()} == bundled_tables().cpu_memory_per_vcpu
    assert cpus["cpu3g"]["ramGbPerVcpu"] == 4 and cpus["cpu3m"]["ramGbPerVcpu"] == 8
    assert cpus["cpu5c"]["group"] == "Gen 5" and all(cpu["vcpu"]["min"] >= 2 for cpu in cpus.values())


@pytest.mark.parametrize(
    ("route", "params", "status"),
    [
        ("/v2/catalog/gpus", {"include": "AVAILABILITY"}, 400),  # product is required with it
        ("/v2/catalog/gpus", {"product": "SERVERLESS"}, 400),  # product only with include
        ("/v2/catalog/gpus", {"countryCodes": "US"}, 400),  # countryCodes only with include
        ("/v2/catalog/gpus", {"include": "AVAILABILITY", "product": "SERVERLESS", "countryCodes": "usa"}, 422),
        ("/v2/catalog/gpus", {"include": "PRICES"}, 400),
        ("/v2/catalog/cpus", {"include": "AVAILABILITY", "product": "CLUSTER"}, 422),
        ("/v2/catalog/datacenters", {"include": "EVERYTHING"}, 422),
    ],
)
def test_bad_catalog_queries_are_problems(emulator: Emulator, route: str, params: dict[str, str], status: int) -> None:
    """A query the spec refuses is answered as problem+json with the spec's status."""
    with client(emulator) as c:
        response = c.get(route, params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status and response.json()["detail"]


def test_catalog_methods_and_paths(make_emulator: MakeEmulator) -> None:
    """Only GET is allowed; an unknown catalog is 404; `catalogs=False` answers 404 like an older server."""
    emu = make_emulator()
    with client(emu) as c:
        post = c.post("/v2/catalog/gpus", json={})
        assert post.status_code == 405 and post.headers["allow"] == "GET"
        assert c.get("/v2/catalog/volumes").status_code == 404
        assert c.get("/v2/catalog/gpus/extra").status_code == 404
    old = make_emulator(catalogs=False)
    with client(old) as c:
        assert c.get("/v2/catalog/gpus").status_code == 404
        assert c.get("/v2/serverless").status_code == 200


@pytest.mark.parametrize("route", list(ROUTES))
def test_catalogs_require_the_key(emulator: Emulator, route: str) -> None:
    """No key or a wrong key is 401, like every other v2 route; the key is never echoed."""
    for key in (None, "wrong-key"):
        with client(emulator, key=key) as c:
            response = c.get(route)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "wrong-key" not in response.text


def test_catalog_rate_limit_and_fail_every(make_emulator: MakeEmulator) -> None:
    """rate_limit answers 429 with Retry-After; fail_every answers 503; both on the catalogs too."""
    limited = make_emulator(faults=Faults(rate_limit=2))
    with client(limited) as c:
        statuses = [c.get("/v2/catalog/gpus") for _ in range(4)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    too_many = [r for r in statuses if r.status_code == 429]
    assert too_many and too_many[0].headers.get("retry-after")
    assert all("RateLimit" in r.headers for r in statuses)
    failing = make_emulator(faults=Faults(fail_every=2))
    with client(failing) as c:
        codes = [c.get(route).status_code for route in (*ROUTES, *ROUTES)]
    assert codes == [200, 503, 200, 503, 200, 503]


def test_catalog_latency_and_retired_v1(make_emulator: MakeEmulator) -> None:
    """latency_ms delays catalog answers; retire_v1 leaves the v2 catalogs serving."""
    emu = make_emulator(faults=Faults(latency_ms=150, retire_v1=True))
    with client(emu) as c:
        start = time.monotonic()
        assert c.get("/v2/catalog/datacenters").status_code == 200
        elapsed = time.monotonic() - start
        assert c.get("/v1/endpoints").status_code == 410
    assert elapsed >= 0.15
    assert [r["path"] for r in emu.requests][:1] == ["/v2/catalog/datacenters"]


def test_generated_accounts_have_console_style_mig_exclusions_and_newer_dcs() -> None:
    """Generated accounts carry the console's MIG-slice exclusions and locations naming newer data centers."""
    endpoints = generate_account(400, seed=3)["data"]["myself"]["endpoints"]
    gpu_ids = {e["gpuIds"] for e in endpoints}
    assert f"AMPERE_24,-NVIDIA L4,-NVIDIA RTX A5000,-{MIG_24}" in gpu_ids
    assert f"ADA_48_PRO,-{MIG_48}" in gpu_ids
    locations = " ".join(e["locations"] or "" for e in endpoints)
    assert {"US-MO-1", "AP-IN-1", "CA-MTL-4", "EUR-NO-2"} <= set(locations.replace(",", " ").split())


def test_generated_accounts_without_mig_pools_skip_mig_exclusions() -> None:
    """With a pool table that has no MIG slice, no generated endpoint excludes one (it would be an error)."""
    pools = {pool: [t for t in members if " MIG " not in t] for pool, members in bundled_tables().pools.items()}
    endpoints = generate_account(200, seed=3, pools=pools)["data"]["myself"]["endpoints"]
    assert not [e for e in endpoints if "MIG" in e["gpuIds"]]


@pytest.mark.parametrize("target", ["v1", "v2"])
def test_generated_accounts_translate_without_errors(target: str) -> None:
    """On both targets every generated endpoint translates without an error, MIG exclusions and newer DCs included."""
    doc = generate_account(300, seed=5)
    endpoints = [LegacyEndpoint.model_validate(e) for e in doc["data"]["myself"]["endpoints"]]
    plan = build_plan(endpoints, build_tables(), target=target)  # type: ignore[arg-type]
    errors = [(p.id, f.code) for p in plan.endpoints for f in p.findings if f.severity == "error"]
    assert not errors, errors[:3]
    console = {e.id for e in endpoints if "MIG 1g.24gb" in (e.gpuIds or "")}
    newer = {e.id for e in endpoints if "US-MO-1" in (e.locations or "")}
    assert console and newer
    assert all(p.status != "blocked" for p in plan.endpoints if p.id in console | newer)


def test_v1_accepts_what_the_tables_know_beyond_the_stored_enum(emulator: Emulator) -> None:
    """A v1 update may name newer data centers and MIG slices (the live enum grew); an unknown id is still 400."""
    with client(emulator) as c:
        ok = c.post(
            "/v1/endpoints/i02xupws21hp6i/update",
            json={"dataCenterIds": ["US-MO-1", "AP-IN-1", "US-TX-3"], "gpuTypeIds": ["NVIDIA L4", MIG_24]},
        )
        bad_dc = c.post("/v1/endpoints/i02xupws21hp6i/update", json={"dataCenterIds": ["US-XX-9"]})
        bad_gpu = c.post("/v1/endpoints/i02xupws21hp6i/update", json={"gpuTypeIds": ["NVIDIA Z9"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["dataCenterIds"] == ["US-MO-1", "AP-IN-1", "US-TX-3"]
    assert set(ok.json()["gpuTypeIds"]) == {"NVIDIA L4", MIG_24}
    assert bad_dc.status_code == 400 and "US-XX-9" in bad_dc.text
    assert bad_gpu.status_code == 400 and "NVIDIA Z9" in bad_gpu.text
