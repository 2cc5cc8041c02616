"""The RunPod emulator over real sockets: GraphQL, REST v1, REST v2, faults, inspection and the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EMULATOR_KEY, SAMPLE_ACCOUNT
from helpers import BRIDGE
from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4, DRAFT202012

from bridge._resources import package_path
from bridge.emulator import Emulator, Faults, generate_account
from bridge.emulator.schemas import V1_SPEC, V2_SPEC, load_spec
from bridge.tables import bundled_tables

QUERIES = package_path("queries")
FRAGMENT = (QUERIES / "endpoint_fields.graphql").read_text()
ENDPOINTS_QUERY = FRAGMENT + (QUERIES / "endpoints.graphql").read_text()
ENDPOINT_QUERY = FRAGMENT + (QUERIES / "endpoint.graphql").read_text()
POOLS_QUERY = (QUERIES / "pools.graphql").read_text()
ALL_DCS = list(bundled_tables().data_centers)
US_DCS = list(bundled_tables().countries["US"])
AMPERE_48 = ["NVIDIA A40", "NVIDIA RTX A6000"]
RATE_LIMIT = re.compile(r'^"second";r=\d+;t=\d+$')
RATE_POLICY = re.compile(r'^"second";q=\d+;w=1$')

MakeEmulator = Callable[..., Emulator]


@contextmanager
def client(emu: Emulator, key: str | None = EMULATOR_KEY, **kwargs: Any) -> Iterator[httpx.Client]:
    """A keep-alive client for the emulator, sending ``key`` as a Bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=10, **kwargs) as c:
        yield c


def gql(c: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    """POST one GraphQL request."""
    return c.post("/graphql", json={"query": query, "variables": variables or {}})


def legacy(c: httpx.Client, endpoint_id: str) -> dict[str, Any]:
    """Read one legacy record through GraphQL with bridge's own query."""
    response = gql(c, ENDPOINT_QUERY, {"id": endpoint_id})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()["data"]["myself"]["endpoint"]
    return record


def sample() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SAMPLE_ACCOUNT.read_text())
    return doc


# ------------------------------------------------------------------------------------------- GraphQL


def test_graphql_serves_bridge_queries(emulator: Emulator) -> None:
    """bridge's endpoints, endpoint and pools documents execute and return the seed as it was given."""
    seed = sample()["data"]
    with client(emulator) as c:
        listed = gql(c, ENDPOINTS_QUERY).json()["data"]["myself"]["endpoints"]
        one = legacy(c, "llm70b0prod0a1")
        pools = gql(c, POOLS_QUERY).json()["data"]["serverlessGpuPools"]
    by_created = sorted(seed["myself"]["endpoints"], key=lambda e: e["createdAt"])
    assert [e["id"] for e in listed] == [e["id"] for e in by_created]
    first = next(e for e in seed["myself"]["endpoints"] if e["id"] == listed[0]["id"])
    assert {k: v for k, v in listed[0].items() if k in first or v is not None} == first  # unset fields read null
    assert one["gpuIds"] == "ADA_80_PRO,AMPERE_80,-NVIDIA H100 NVL"
    assert one["flashBootType"] == "PRIORITY_FLASHBOOT"
    assert one["env"][0]["value"].startswith("SECRET-")
    assert pools == seed["serverlessGpuPools"]


def test_graphql_caps_endpoints_at_400_oldest_first(make_emulator: MakeEmulator) -> None:
    """myself.endpoints returns the 400 oldest endpoints and no more, with no way to page."""
    doc = generate_account(450, seed=7)
    ids = [e["id"] for e in doc["data"]["myself"]["endpoints"]]
    emu = make_emulator(doc)
    with client(emu) as c:
        listed = gql(c, "{ myself { endpoints { id createdAt } } }").json()["data"]["myself"]["endpoints"]
    assert [e["id"] for e in listed] == ids[:400]
    assert [e["createdAt"] for e in listed] == sorted(e["createdAt"] for e in listed)


def test_graphql_endpoint_by_id_reaches_past_the_cap(make_emulator: MakeEmulator) -> None:
    """myself.endpoint(id:) finds an endpoint the capped list leaves out; an unknown id is null."""
    doc = generate_account(450, seed=7)
    last = doc["data"]["myself"]["endpoints"][-1]
    emu = make_emulator(doc)
    with client(emu) as c:
        assert legacy(c, last["id"])["gpuIds"] == last["gpuIds"]
        missing = gql(c, '{ myself { endpoint(id: "nope") { id } } }').json()
    assert missing == {"data": {"myself": {"endpoint": None}}}


def test_graphql_unknown_field_fails_validation_like_apollo(emulator: Emulator) -> None:
    """A field the schema lacks is a 400 with Apollo's message, locations and GRAPHQL_VALIDATION_FAILED."""
    with client(emulator) as c:
        response = gql(c, "{ myself { endpoints { id bogusField } } }")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"].startswith('Cannot query field "bogusField" on type "Endpoint".')
    assert error["locations"] == [{"line": 1, "column": 27}]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_graphql_drop_fields_simulates_schema_drift(make_emulator: MakeEmulator) -> None:
    """A field removed with drop_fields fails validation while the rest of the schema still answers."""
    emu = make_emulator(drop_fields={"workersStandby", "Endpoint.compliance"})
    with client(emu) as c:
        full = gql(c, ENDPOINTS_QUERY)
        trimmed = gql(c, ENDPOINTS_QUERY.replace("  workersStandby\n", "").replace("  compliance\n", ""))
    assert full.status_code == 400
    messages = [e["message"] for e in full.json()["errors"]]
    assert any(m.startswith('Cannot query field "workersStandby" on type "Endpoint".') for m in messages)
    assert trimmed.status_code == 200
    with pytest.raises(ValueError, match="not a field"):
        Emulator(drop_fields={"noSuchField"})


def test_graphql_introspection_is_off(emulator: Emulator) -> None:
    """Introspection is refused, as in production, so bridge cannot come to rely on it."""
    with client(emulator) as c:
        response = gql(c, "{ __schema { types { name } } }")
    assert response.status_code == 400
    assert "introspection" in response.json()["errors"][0]["message"]


def test_graphql_accepts_bearer_or_query_key_and_refuses_others(emulator: Emulator) -> None:
    """GraphQL takes the key as a Bearer header or ?api_key=; a missing or wrong key is 401."""
    query = {"query": "{ myself { id } }"}
    with httpx.Client(base_url=emulator.url) as c:
        bearer = c.post("/graphql", json=query, headers={"Authorization": f"Bearer {EMULATOR_KEY}"})
        param = c.post("/graphql", json=query, params={"api_key": EMULATOR_KEY})
        wrong = c.post("/graphql", json=query, headers={"Authorization": "Bearer nope"})
        missing = c.post("/graphql", json=query)
    assert (bearer.status_code, param.status_code) == (200, 200)
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_rest_accepts_only_the_header_key(emulator: Emulator) -> None:
    """REST v1 and v2 refuse ?api_key= (401, v2 as problem+json) and accept the Bearer header."""
    with httpx.Client(base_url=emulator.url) as c:
        v1 = c.get("/v1/endpoints", params={"api_key": EMULATOR_KEY})
        v2 = c.get("/v2/serverless", params={"api_key": EMULATOR_KEY})
        ok = c.get("/v1/endpoints", headers={"Authorization": f"Bearer {EMULATOR_KEY}"})
    assert v1.status_code == 401 and v1.json()["status"] == 401
    assert v2.status_code == 401 and v2.headers["content-type"] == "application/problem+json"
    assert "RateLimit" not in v2.headers
    assert ok.status_code == 200


def test_any_non_empty_key_works_without_api_key(make_emulator: MakeEmulator) -> None:
    """With api_key=None any non-empty key is accepted, and no key is still 401."""
    emu = make_emulator(api_key=None)
    with client(emu, key="whatever") as c:
        assert c.get("/v1/endpoints").status_code == 200
    with client(emu, key=None) as c:
        assert c.get("/v1/endpoints").status_code == 401


# ------------------------------------------------------------------------------------------- REST v1


def test_v1_view_expands_pools_locations_and_flashboot(emulator: Emulator) -> None:
    """The v1 view expands gpuIds, locations and the -fb suffix the way RunPod reads them back."""
    with client(emulator) as c:
        views = {e["id"]: e for e in c.get("/v1/endpoints").json()}
    sdxl, llm, generated = views["sdxl0worker0ab"], views["llm70b0prod0a1"], views["i02xupws21hp6i"]
    assert sdxl["gpuTypeIds"] == ["NVIDIA A40"]  # AMPERE_48 minus the RTX A6000
    assert sdxl["dataCenterIds"] == ["EU-RO-1"] and sdxl["flashboot"] is True
    assert llm["gpuTypeIds"] == [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA H100 PCIe",
        "NVIDIA A100 80GB PCIe",
        "NVIDIA A100-SXM4-80GB",
    ]
    assert llm["dataCenterIds"] == ["EU-CZ-1", "EU-FR-1", "EUR-NO-1", "EUR-NO-2", "EU-RO-1", *US_DCS]
    assert llm["allowedCudaVersions"] == ["12.4", "12.8"]
    assert llm["networkVolumeIds"] == ["vol0eu0ro0001", "vol0us0tx0003"]
    assert llm["env"]["OPENAI_API_KEY"].startswith("SECRET-")
    assert generated["flashboot"] is True and generated["dataCenterIds"] == US_DCS
    assert views["whisper00asr01"]["flashboot"] is False  # flashBootType OFF beats the -fb name
    assert views["anywhere000016"]["dataCenterIds"] == ALL_DCS
    assert views["gputype0asid08"]["gpuTypeIds"] == ["NVIDIA GeForce RTX 4090"]  # a type where a pool belongs
    assert views["sdxl0worker0ab"]["computeType"] == "GPU"


def test_v1_view_of_a_cpu_endpoint(emulator: Emulator) -> None:
    """A CPU endpoint reads as computeType CPU with its instanceIds and no gpuTypeIds."""
    with client(emulator) as c:
        view = c.get("/v1/endpoints/cpu0embed0x001").json()
    assert view["computeType"] == "CPU"
    assert view["instanceIds"] == ["cpu3c-2-4", "cpu5c-2-4"]
    assert "gpuTypeIds" not in view


def test_v1_list_is_a_bare_array_and_unknown_id_is_404(emulator: Emulator) -> None:
    """GET /v1/endpoints is a bare JSON array; an unknown id is 404 in v1's {error, status} shape."""
    with client(emulator) as c:
        listed = c.get("/v1/endpoints").json()
        missing = c.get("/v1/endpoints/nope")
    assert isinstance(listed, list) and len(listed) == 16
    assert missing.status_code == 404
    assert missing.json() == {"error": "endpoint not found", "status": 404}


def test_v1_update_round_trips_through_the_legacy_record(emulator: Emulator) -> None:
    """A v1 update is stored in legacy form (GraphQL shows it) and reads back as what was sent."""
    body = {
        "name": "sdxl-worker",
        "gpuTypeIds": ["NVIDIA RTX A6000"],
        "dataCenterIds": ["US-TX-3", "EU-RO-1"],
        "flashboot": False,
        "allowedCudaVersions": ["12.4", "12.8"],
        "networkVolumeIds": ["vol1", "vol2"],
        "workersMax": 7,
    }
    with client(emulator) as c:
        answer = c.post("/v1/endpoints/sdxl0worker0ab/update", json=body)
        record = legacy(c, "sdxl0worker0ab")
        view = c.get("/v1/endpoints/sdxl0worker0ab").json()
    assert answer.status_code == 200 and answer.json() == view
    assert record["gpuIds"] == "AMPERE_48,-NVIDIA A40"
    assert record["locations"] == "US-TX-3,EU-RO-1"
    assert record["flashBootType"] == "OFF"
    assert record["allowedCudaVersions"] == "12.4,12.8"
    assert record["networkVolumeIds"] == [
        {"networkVolumeId": "vol1", "dataCenterId": None},
        {"networkVolumeId": "vol2", "dataCenterId": None},
    ]
    assert record["version"] == 1
    assert {key: view[key] for key in body} == body
    assert emulator.write_count("sdxl0worker0ab") == 1


def test_v1_patch_is_the_same_update(emulator: Emulator) -> None:
    """PATCH /v1/endpoints/{id} updates exactly like POST .../update, types across two pools included."""
    types = ["NVIDIA RTX A4500", "NVIDIA RTX A4000", "NVIDIA L4"]
    with client(emulator) as c:
        answer = c.patch("/v1/endpoints/i02xupws21hp6i", json={"gpuTypeIds": types, "flashboot": True})
        record = legacy(c, "i02xupws21hp6i")
    assert answer.status_code == 200
    assert set(answer.json()["gpuTypeIds"]) == set(types)
    assert record["gpuIds"] == (
        "AMPERE_16,AMPERE_24,-NVIDIA RTX 4000 Ada Generation,-NVIDIA RTX 2000 Ada Generation,"
        "-NVIDIA RTX A5000,-NVIDIA GeForce RTX 3090,-NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"
    )
    assert record["flashBootType"] == "FLASHBOOT"


def test_v1_invalid_body_is_400_with_reasons_and_not_applied(emulator: Emulator) -> None:
    """A body outside EndpointUpdateInput is a 400 naming each bad field, and nothing changes."""
    before = emulator.record("sdxl0worker0ab")
    with client(emulator) as c:
        response = c.post(
            "/v1/endpoints/sdxl0worker0ab/update",
            json={"gpuTypeIds": ["NVIDIA RTX 9999"], "idleTimeout": 0, "flashboot": "yes"},
        )
        not_json = c.post("/v1/endpoints/sdxl0worker0ab/update", content=b"{nope", headers={"Content-Type": "x"})
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == 400
    for field in ("gpuTypeIds[0]", "idleTimeout", "flashboot"):
        assert field in error["error"]
    assert not_json.status_code == 400
    assert emulator.record("sdxl0worker0ab") == before
    assert emulator.write_count("sdxl0worker0ab") == 0


def test_v1_unknown_keys_are_ignored(emulator: Emulator) -> None:
    """v1 has no additionalProperties: false, so a misspelt key is dropped silently, as live."""
    with client(emulator) as c:
        response = c.post("/v1/endpoints/sdxl0worker0ab/update", json={"name": "renamed", "flashBoot": True})
    assert response.status_code == 200
    assert response.json()["name"] == "renamed"
    assert "flashBoot" not in emulator.record("sdxl0worker0ab")


def test_v1_cpu_update_rebuilds_instance_ids(emulator: Emulator) -> None:
    """cpuFlavorIds and vcpuCount become instanceIds with the flavor's memory multiplier."""
    with client(emulator) as c:
        view = c.post("/v1/endpoints/cpu0embed0x001/update", json={"cpuFlavorIds": ["cpu5g", "cpu3c"], "vcpuCount": 4})
    assert view.json()["instanceIds"] == ["cpu5g-4-16", "cpu3c-4-8"]


def test_v1_flashboot_true_keeps_priority_flashboot(emulator: Emulator) -> None:
    """flashboot: true on a PRIORITY_FLASHBOOT endpoint keeps the priority mode; false turns it OFF."""
    with client(emulator) as c:
        c.post("/v1/endpoints/llm70b0prod0a1/update", json={"flashboot": True})
        kept = legacy(c, "llm70b0prod0a1")["flashBootType"]
        c.post("/v1/endpoints/llm70b0prod0a1/update", json={"flashboot": False})
        off = legacy(c, "llm70b0prod0a1")["flashBootType"]
    assert (kept, off) == ("PRIORITY_FLASHBOOT", "OFF")


def test_v1_read_options_match_the_docs_and_the_spec(make_emulator: MakeEmulator) -> None:
    """dc_ids_as_string gives a comma string; omit_flashboot leaves flashboot out of reads."""
    emu = make_emulator(dc_ids_as_string=True, omit_flashboot=True)
    with client(emu) as c:
        view = c.get("/v1/endpoints/llm70b0prod0a1").json()
    assert view["dataCenterIds"] == ",".join(["EU-CZ-1", "EU-FR-1", "EUR-NO-1", "EUR-NO-2", "EU-RO-1", *US_DCS])
    assert "flashboot" not in view


def test_concurrent_writes_are_all_applied(emulator: Emulator) -> None:
    """Writes from many threads at once are each applied once: the state lock loses none."""

    def write(n: int) -> None:
        with client(emulator) as c:
            for i in range(20):
                assert c.patch("/v1/endpoints/sdxl0worker0ab", json={"workersMax": n + i}).status_code == 200

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emulator.write_count("sdxl0worker0ab") == 160
    assert emulator.record("sdxl0worker0ab")["version"] == 160


# ------------------------------------------------------------------------------------------- REST v2


def test_v2_list_pages_with_a_cursor(make_emulator: MakeEmulator) -> None:
    """GET /v2/serverless is {endpoints, nextCursor}; following the cursor yields every endpoint once."""
    doc = generate_account(250, seed=3)
    emu = make_emulator(doc)
    seen: list[str] = []
    pages = 0
    with client(emu) as c:
        params: dict[str, str] = {}
        while True:
            page = c.get("/v2/serverless", params=params).json()
            pages += 1
            seen += [e["id"] for e in page["endpoints"]]
            if not page["nextCursor"]:
                break
            params = {"cursor": page["nextCursor"]}
        small = c.get("/v2/serverless", params={"limit": "7"}).json()
        bad = c.get("/v2/serverless", params={"cursor": "garbage!"})
    assert seen == [e["id"] for e in doc["data"]["myself"]["endpoints"]]
    assert pages == 3
    assert len(small["endpoints"]) == 7 and small["nextCursor"]
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def test_views_conform_to_the_stored_specs(make_emulator: MakeEmulator) -> None:
    """Every v1 and v2 read of a generated account validates against the specs' Endpoint schemas."""
    emu = make_emulator(generate_account(120, seed=11))
    v1 = Draft4Validator(
        {"$ref": "urn:v1#/components/schemas/Endpoint"},
        registry=Registry().with_resource("urn:v1", DRAFT4.create_resource(load_spec(V1_SPEC))),
    )
    v2 = Draft202012Validator(
        {"$ref": "urn:v2#/components/schemas/Endpoint"},
        registry=Registry().with_resource("urn:v2", DRAFT202012.create_resource(load_spec(V2_SPEC))),
    )
    with client(emu) as c:
        v1_views = c.get("/v1/endpoints").json()
        v2_views = c.get("/v2/serverless", params={"limit": "1000"}).json()["endpoints"]
    tables = bundled_tables()
    known = set(tables.data_centers) | set(tables.pool_of)  # the live v1 enum grew past the stored copy
    for view in v1_views:
        errors = [e for e in v1.iter_errors(view) if not (e.validator == "enum" and e.instance in known)]
        assert not errors, view["id"]
    for view in v2_views:
        assert not list(v2.iter_errors(view)), view["id"]


def test_v2_view_nests_gpu_workers_scaling_and_flashboot(emulator: Emulator) -> None:
    """The v2 view keeps pools and exclusions, the flashboot enum, and drops idleTimeout on REQUEST_COUNT."""
    with client(emulator) as c:
        llm = c.get("/v2/serverless/llm70b0prod0a1").json()
        cpu = c.get("/v2/serverless/cpu0embed0x001").json()
    assert llm["gpu"] == {
        "pools": ["ADA_80_PRO", "AMPERE_80"],
        "excludedTypes": ["NVIDIA H100 NVL"],
        "count": 2,
        "allowedCudaVersions": ["12.4", "12.8"],
        "minCudaVersion": None,
    }
    assert llm["flashboot"] == "PRIORITY_FLASHBOOT"
    assert llm["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}
    assert llm["workers"] == {"min": 1, "max": 10}
    assert llm["networkVolumes"] == ["vol0eu0ro0001", "vol0us0tx0003"]
    assert cpu["gpu"] is None
    assert cpu["cpu"] == [{"id": "cpu3c", "vcpuCount": 2, "memory": 4}, {"id": "cpu5c", "vcpuCount": 2, "memory": 4}]


def test_v2_pools_without_excluded_types_clear_the_exclusions(emulator: Emulator) -> None:
    """Sending gpu.pools alone clears excludedTypes (the documented sharp edge); restating keeps them."""
    with client(emulator) as c:
        kept = c.patch(
            "/v2/serverless/sdxl0worker0ab",
            json={"gpu": {"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA RTX A6000"]}},
        ).json()
        untouched = c.patch("/v2/serverless/sdxl0worker0ab", json={"gpu": {"count": 2}}).json()
        cleared = c.patch("/v2/serverless/sdxl0worker0ab", json={"gpu": {"pools": ["AMPERE_48"]}}).json()
        record = legacy(c, "sdxl0worker0ab")
        v1 = c.get("/v1/endpoints/sdxl0worker0ab").json()
    assert kept["gpu"]["excludedTypes"] == ["NVIDIA RTX A6000"]
    assert untouched["gpu"]["excludedTypes"] == ["NVIDIA RTX A6000"] and untouched["gpu"]["count"] == 2
    assert cleared["gpu"]["excludedTypes"] == []
    assert record["gpuIds"] == "AMPERE_48"
    assert v1["gpuTypeIds"] == ["NVIDIA A40", "NVIDIA RTX A6000"]  # widened


def test_v2_patch_updates_the_legacy_record(emulator: Emulator) -> None:
    """A v2 PATCH changes only what it sends, and GraphQL reads the legacy encoding of it."""
    body = {
        "name": "whisper",
        "flashboot": "PRIORITY_FLASHBOOT",
        "workers": {"min": 1, "max": 4, "idleTimeout": 30},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 6},
        "dataCenterIds": ["US-GA-1"],
        "timeout": 120000,
        "templateId": "tplnew0001",
    }
    with client(emulator) as c:
        answer = c.patch("/v2/serverless/whisper00asr01", json=body)
        record = legacy(c, "whisper00asr01")
    assert answer.status_code == 200
    assert answer.json()["flashboot"] == "PRIORITY_FLASHBOOT"
    assert answer.json()["gpu"]["pools"] == ["ADA_24", "AMPERE_24"]
    assert (record["name"], record["flashBootType"]) == ("whisper", "PRIORITY_FLASHBOOT")
    assert record["locations"] == "US-GA-1"
    assert (record["workersMin"], record["workersMax"], record["idleTimeout"]) == (1, 4, 30)
    assert (record["scalerType"], record["scalerValue"], record["executionTimeoutMs"]) == ("QUEUE_DELAY", 6, 120000)
    assert record["templateId"] == "tplnew0001"
    assert record["version"] == 1


def test_v2_invalid_body_is_422_problem_json(emulator: Emulator) -> None:
    """A body outside UpdateEndpointRequest is 422 problem+json listing each failure, nothing applied."""
    with client(emulator) as c:
        response = c.patch(
            "/v2/serverless/sdxl0worker0ab",
            json={"bogus": 1, "flashboot": True, "gpu": {"pools": ["AMPERE_48"], "excludedTypes": ["-NVIDIA A40"]}},
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["title"], problem["status"]) == ("Unprocessable Entity", 422)
    assert "$: additional properties 'bogus' not allowed" in problem["errors"]
    assert any(e.startswith("$.flashboot:") for e in problem["errors"])
    assert any(e.startswith("$.gpu.excludedTypes[0]:") for e in problem["errors"])
    assert emulator.write_count() == 0


@pytest.mark.parametrize(
    ("endpoint_id", "body", "detail"),
    [
        ("sdxl0worker0ab", {"gpu": {"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA L4"]}}, "not a GPU type"),
        ("sdxl0worker0ab", {"gpu": {"pools": ["AMPERE_20"]}}, "not a serverless GPU pool"),
        ("sdxl0worker0ab", {"gpu": {"allowedCudaVersions": ["12.4"], "minCudaVersion": "12.1"}}, "exclusive"),
        ("sdxl0worker0ab", {"cpu": [{"id": "cpu3c", "vcpuCount": 4}]}, "compute family"),
        ("cpu0embed0x001", {"gpu": {"count": 1}}, "compute family"),
        ("cpu0embed0x001", {"cpu": [{"id": "cpu3c", "vcpuCount": 6}]}, "power of two"),
        ("llm70b0prod0a1", {"workers": {"idleTimeout": 10}}, "requestCount"),
        ("sdxl0worker0ab", {"workers": {"min": 9, "max": 2}}, "workersMin"),
        ("sdxl0worker0ab", {"gpu": {"pools": ["AMPERE_48"], "excludedTypes": AMPERE_48}}, "no GPU"),
    ],
)
def test_v2_documented_rules_are_400(emulator: Emulator, endpoint_id: str, body: dict[str, Any], detail: str) -> None:
    """v2's documented rules beyond the schema answer 400 problem+json and change nothing."""
    with client(emulator) as c:
        response = c.patch(f"/v2/serverless/{endpoint_id}", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert emulator.write_count() == 0


def test_v2_rate_limit_headers_on_authenticated_responses(emulator: Emulator) -> None:
    """Every authenticated v2 answer, errors included, carries RateLimit and RateLimit-Policy; v1 none."""
    with client(emulator) as c:
        responses = [c.get("/v2/serverless/sdxl0worker0ab"), c.get("/v2/serverless/nope"), c.get("/v2/serverless")]
        v1 = c.get("/v1/endpoints/sdxl0worker0ab")
    for response in responses:
        assert RATE_LIMIT.match(response.headers["RateLimit"]), response.headers
        assert RATE_POLICY.match(response.headers["RateLimit-Policy"])
    assert responses[1].status_code == 404
    assert "RateLimit" not in v1.headers


# ------------------------------------------------------------------------------------------- faults


def test_latency_delays_api_answers_but_not_inspection(make_emulator: MakeEmulator) -> None:
    """latency_ms delays every API answer; /_emulator is never delayed."""
    emu = make_emulator(faults=Faults(latency_ms=150))
    with client(emu) as c:
        start = time.monotonic()
        assert c.get("/v1/endpoints/sdxl0worker0ab").status_code == 200
        api_s = time.monotonic() - start
        start = time.monotonic()
        assert c.get("/_emulator/faults").status_code == 200
        admin_s = time.monotonic() - start
    assert api_s >= 0.15
    assert admin_s < 0.1


def test_latency_overlaps_across_connections(make_emulator: MakeEmulator) -> None:
    """The latency is a sleep per handler thread: 8 concurrent requests take about one latency, not 8."""
    emu = make_emulator(faults=Faults(latency_ms=200))
    statuses: list[int] = []

    def one() -> None:
        with client(emu) as c:
            statuses.append(c.get("/v1/endpoints/sdxl0worker0ab").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert time.monotonic() - start < 0.2 * 6  # one after another would take 8 x 0.2 s


def test_rate_limit_answers_429_with_retry_after(make_emulator: MakeEmulator) -> None:
    """Over rate_limit per second the answer is 429 with Retry-After; v2 adds problem+json and r=0."""
    emu = make_emulator(faults=Faults(rate_limit=3))
    with client(emu) as c:
        answers = [c.get("/v2/serverless/sdxl0worker0ab") for _ in range(10)]
        limited = [r for r in answers if r.status_code == 429]
        v1 = next(r for r in (c.get("/v1/endpoints") for _ in range(10)) if r.status_code == 429)
        time.sleep(int(limited[-1].headers["Retry-After"]))
        recovered = c.get("/v2/serverless/sdxl0worker0ab")
    assert len(limited) >= 4  # ten requests span at most two 1-second windows of 3
    assert {r.status_code for r in answers} == {200, 429}
    first = limited[0]
    assert int(first.headers["Retry-After"]) >= 1
    assert first.headers["content-type"] == "application/problem+json"
    assert first.json()["detail"] == "rate limit exceeded for the second window"
    assert first.headers["RateLimit"].startswith('"second";r=0;')
    assert first.headers["RateLimit-Policy"] == '"second";q=3;w=1'
    assert (
        v1.json() == {"error": "rate limit exceeded for the second window", "status": 429}
        and "Retry-After" in v1.headers
    )
    assert recovered.status_code == 200


def test_rate_headers_off_enforces_the_limit_without_announcing_it(make_emulator: MakeEmulator) -> None:
    """rate_headers=False: the same 429s, but no v2 answer carries RateLimit or RateLimit-Policy."""
    emu = make_emulator(faults=Faults(rate_limit=3, rate_headers=False))
    with client(emu) as c:
        answers = [c.get("/v2/serverless/sdxl0worker0ab") for _ in range(10)]
    assert {r.status_code for r in answers} == {200, 429}
    assert all("RateLimit" not in r.headers and "RateLimit-Policy" not in r.headers for r in answers)
    assert all("Retry-After" in r.headers for r in answers if r.status_code == 429)
    with pytest.raises(ValueError, match="rate_headers must be true or false"):
        Faults(rate_headers="no")  # type: ignore[arg-type]


def test_fail_every_answers_503_and_does_not_apply(make_emulator: MakeEmulator) -> None:
    """fail_every=2 fails every second API request with 503, and a failed write is not applied."""
    emu = make_emulator(faults=Faults(fail_every=2))
    with client(emu) as c:
        first = c.post("/v1/endpoints/sdxl0worker0ab/update", json={"workersMax": 6})
        second = c.post("/v1/endpoints/sdxl0worker0ab/update", json={"workersMax": 9})
        third = gql(c, "{ myself { id } }")
        fourth = c.get("/v2/serverless/sdxl0worker0ab")
    assert [r.status_code for r in (first, second, third, fourth)] == [200, 503, 200, 503]
    assert fourth.headers["content-type"] == "application/problem+json"
    assert emu.write_count("sdxl0worker0ab") == 1
    assert emu.record("sdxl0worker0ab")["workersMax"] == 6


def test_drop_every_applies_the_write_then_drops_the_connection(make_emulator: MakeEmulator) -> None:
    """drop_every=2: the second write is applied, then the socket closes without any answer."""
    emu = make_emulator(faults=Faults(drop_every=2))
    with client(emu) as c:
        assert c.patch("/v2/serverless/sdxl0worker0ab", json={"name": "one"}).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            c.patch("/v2/serverless/sdxl0worker0ab", json={"name": "two"})
        after = c.get("/v2/serverless/sdxl0worker0ab").json()
    assert after["name"] == "two"
    assert emu.write_count("sdxl0worker0ab") == 2
    dropped = [r for r in emu.requests if r["dropped"]]
    assert len(dropped) == 1 and dropped[0]["status"] is None and dropped[0]["method"] == "PATCH"


def test_retire_v1_answers_410_on_every_v1_call(make_emulator: MakeEmulator) -> None:
    """retire_v1 makes every /v1 call 410 Gone with v1's error shape; GraphQL and v2 still answer."""
    emu = make_emulator(faults=Faults(retire_v1=True))
    with client(emu) as c:
        gone = [c.get("/v1/endpoints"), c.post("/v1/endpoints/sdxl0worker0ab/update", json={})]
        v2 = c.get("/v2/serverless/sdxl0worker0ab")
        graph = gql(c, "{ myself { id } }")
    with client(emu, key=None) as c:
        unauthenticated = c.get("/v1/endpoints")
    for response in (*gone, unauthenticated):
        assert response.status_code == 410
        assert response.json() == {"error": "REST API v1 has been retired", "status": 410}
    assert (v2.status_code, graph.status_code) == (200, 200)
    assert emu.write_count() == 0


def test_faults_switch_at_run_time_in_process_and_over_http(emulator: Emulator) -> None:
    """Faults change while serving, in-process or by POST /_emulator/faults, and never hit /_emulator."""
    with client(emulator) as c:
        emulator.faults.retire_v1 = True
        assert c.get("/v1/endpoints").status_code == 410
        assert c.post("/_emulator/faults", json={"retire_v1": False, "fail_every": 1}).status_code == 200
        assert c.get("/v1/endpoints").status_code == 503
        assert c.get("/_emulator/state").status_code == 200  # fail_every=1 does not reach inspection
        assert c.get("/_emulator/requests").status_code == 200
        invalid = c.post("/_emulator/faults", json={"fail_every": 0})
        unknown = c.post("/_emulator/faults", json={"explode": True})
        emulator.faults = Faults()
        assert c.get("/v1/endpoints").status_code == 200
    assert (invalid.status_code, unknown.status_code) == (400, 400)


# ------------------------------------------------------------------------------------------- inspection


def test_request_log_keeps_method_path_query_headers_body_status(emulator: Emulator) -> None:
    """Each API request is logged with method, path, query, headers, body and status, in-process and over HTTP."""
    with client(emulator) as c:
        c.post("/v1/endpoints/sdxl0worker0ab/update", params={"x": "1"}, json={"name": "logged"})
        over_http = c.get("/_emulator/requests").json()["requests"]
        cleared = c.delete("/_emulator/requests").json()
    (entry,) = over_http
    assert entry["method"] == "POST" and entry["api"] == "v1"
    assert entry["path"] == "/v1/endpoints/sdxl0worker0ab/update"
    assert entry["query"] == "x=1"
    assert entry["headers"]["Authorization"] == f"Bearer {EMULATOR_KEY}"
    assert json.loads(entry["body"]) == {"name": "logged"}
    assert entry["status"] == 200 and entry["dropped"] is False
    assert over_http == [entry]
    assert cleared == {"cleared": 1} and emulator.requests == []


def test_state_over_http_is_a_snapshot_that_seeds_again(emulator: Emulator) -> None:
    """GET /_emulator/state returns the current records as a snapshot document, with write counts."""
    with client(emulator) as c:
        c.patch("/v1/endpoints/sdxl0worker0ab", json={"name": "changed"})
        state = c.get("/_emulator/state").json()
    assert state["writeCounts"] == {"sdxl0worker0ab": 1}
    assert len(state["data"]["myself"]["endpoints"]) == 16
    again = Emulator(state)
    assert again.record("sdxl0worker0ab")["name"] == "changed"
    assert emulator.state["sdxl0worker0ab"]["name"] == "changed"


def test_stop_closes_open_keep_alive_connections(make_emulator: MakeEmulator) -> None:
    """stop() ends open keep-alive connections and frees the port; calling it twice is harmless."""
    emu = make_emulator()
    port = emu.port
    with client(emu) as c:
        assert c.get("/v1/endpoints").status_code == 200
        emu.stop()
        emu.stop()
        with pytest.raises(httpx.TransportError):
            c.get("/v1/endpoints")
    assert not emu.running
    again = Emulator().start(port)
    again.stop()


# ------------------------------------------------------------------------------------------- generator


def test_generate_account_is_deterministic_and_realistic() -> None:
    """The same arguments give the same account: unique ids, rising createdAt, every kind of endpoint."""
    first, second = generate_account(2000, seed=5), generate_account(2000, seed=5)
    assert first == second
    assert first != generate_account(2000, seed=6)
    endpoints = first["data"]["myself"]["endpoints"]
    ids = [e["id"] for e in endpoints]
    assert len(set(ids)) == 2000 and all(re.fullmatch(r"[0-9a-z]{14}", i) for i in ids)
    created = [e["createdAt"] for e in endpoints]
    assert created == sorted(created) and len(set(created)) == 2000
    assert any(e["instanceIds"] for e in endpoints)
    assert any("-" in (e["gpuIds"] or "").replace("AMPERE_", "") for e in endpoints)
    assert {e["flashBootType"] for e in endpoints} == {None, "OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"}
    assert any(e["name"].lower().endswith("-fb") for e in endpoints)
    assert any(e["aiKey"] for e in endpoints) and any(e.get("template") for e in endpoints)
    assert first["data"]["serverlessGpuPools"]


def test_fb_suffix_gives_every_endpoint_a_write() -> None:
    """fb_suffix=True puts the legacy -fb suffix on every name, so a plan renames every endpoint; nothing else moves."""
    from bridge.models import LegacyEndpoint
    from bridge.plan import translate

    plain = generate_account(300, seed=4)["data"]["myself"]["endpoints"]
    suffixed = generate_account(300, seed=4, fb_suffix=True)["data"]["myself"]["endpoints"]
    assert all(e["name"].lower().endswith("-fb") for e in suffixed)
    for before, after in zip(plain, suffixed, strict=True):
        assert {k: v for k, v in after.items() if k != "name"} == {k: v for k, v in before.items() if k != "name"}
        body = translate(LegacyEndpoint.model_validate(after), bundled_tables()).body
        assert body["name"] != after["name"]


def test_generated_endpoints_translate_without_errors_unless_asked() -> None:
    """With blocked_fraction=0 bridge's translation finds no errors; a fraction blocks about that share."""
    from bridge.models import LegacyEndpoint
    from bridge.plan import translate

    tables = bundled_tables()
    clean = generate_account(500, seed=2)["data"]["myself"]["endpoints"]
    blocked = generate_account(500, seed=2, blocked_fraction=0.2)["data"]["myself"]["endpoints"]

    def errors(ep: dict[str, Any]) -> bool:
        return translate(LegacyEndpoint.model_validate(ep), tables).blocked

    assert not [e["id"] for e in clean if errors(e)]
    assert 50 <= sum(errors(e) for e in blocked) <= 150


@pytest.mark.slow
def test_generate_account_is_fast_enough_for_benchmarks() -> None:
    """100,000 endpoints generate and seed an emulator in a few seconds."""
    start = time.monotonic()
    emu = Emulator(generate_account(100_000, seed=1))
    assert len(emu.account) == 100_000
    assert time.monotonic() - start < 15


# ------------------------------------------------------------------------------------------- CLI


def test_cli_prints_the_environment_and_serves_until_interrupted(tmp_path: Path) -> None:
    """`bridge emulator --port 0` prints export lines that work, then exits 0 on Ctrl-C without a traceback."""
    key_file = tmp_path / "key"
    key_file.write_text("cli-key-42\n")
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_EMULATOR_API_KEY"}
    with subprocess.Popen(
        [BRIDGE, "emulator", "--port", "0", "--api-key-file", str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert "cli-key-42" not in "".join(lines)  # a key from a file is never printed: it may be a real one
        shell = subprocess.run(
            [
                "bash",
                "-c",
                "".join(lines) + 'printf "%s\\n" "$RUNPOD_GRAPHQL_URL" "$RUNPOD_REST_URL" '
                '"$RUNPOD_REST_V2_URL" "$RUNPOD_API_KEY"',
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        names = ["RUNPOD_GRAPHQL_URL", "RUNPOD_REST_URL", "RUNPOD_REST_V2_URL", "RUNPOD_API_KEY"]
        exported = dict(zip(names, shell.stdout.splitlines(), strict=True))
        with httpx.Client(headers={"Authorization": f"Bearer {exported['RUNPOD_API_KEY']}"}) as c:
            pools = c.post(exported["RUNPOD_GRAPHQL_URL"], json={"query": POOLS_QUERY})
            v1 = c.get(exported["RUNPOD_REST_URL"] + "/endpoints")
            v2 = c.get(exported["RUNPOD_REST_V2_URL"] + "/serverless")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert exported["RUNPOD_API_KEY"] == "cli-key-42"
    assert (pools.status_code, v1.status_code, v2.status_code) == (200, 200, 200)
    assert proc.returncode == 0
    assert "Traceback" not in stderr


def test_cli_bad_snapshot_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A --from file that is not a snapshot gives one stderr line naming the file, and exit code 2."""
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    result = subprocess.run([BRIDGE, "emulator", "--from", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(bad) in result.stderr
    assert result.stdout == ""
