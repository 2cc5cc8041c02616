"""The GraphQL source: shipped query documents, the 400-row cap, schema drift and GraphQL errors.

The server is the emulator's GraphQL engine behind an httpx.MockTransport (no sockets), so each error
path can be answered exactly; the end-to-end reads over real sockets are in test_live.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest
from graphql import build_schema, parse, validate
from helpers import sample_doc

from bridge._resources import package_path
from bridge.config import Settings
from bridge.emulator import generate_account
from bridge.emulator.graphql_api import GraphQLApi
from bridge.emulator.state import Account, load_seed
from bridge.errors import ApiError, AuthError
from bridge.http import Http, RetryPolicy
from bridge.source import ENDPOINTS_CAP, REQUIRED_FIELDS, Fragment, GraphQLSource, load_query

KEY = "test-key-0123456789"
URL = "https://gql.test/graphql"
SETTINGS = Settings(api_key=KEY, graphql_url=URL, concurrency=4)


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


class FakeGraphQL:
    """The emulator's GraphQL engine as a MockTransport handler, recording every request body."""

    def __init__(self, doc: Any = None, *, drop_fields: Sequence[str] = ()) -> None:
        records, pools = load_seed(doc if doc is not None else sample_doc())
        self.api = GraphQLApi(Account(records, pools), drop_fields=drop_fields)
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        self.bodies.append(body)
        status, answer = self.api.execute(body)
        return httpx.Response(status, json=answer)


def read(
    handler: Callable[[httpx.Request], Any], fn: Callable[[GraphQLSource], Awaitable[Any]]
) -> tuple[Any, list[str]]:
    """Run ``fn(source)`` against ``handler``; return its result and the source's notes."""

    async def main() -> tuple[Any, list[str]]:
        policy = RetryPolicy(sleep=_no_sleep, rng=random.Random(1))
        transport = httpx.MockTransport(handler)
        async with Http(SETTINGS, policy=policy, transport=transport) as http, GraphQLSource(http) as source:
            return await fn(source), source.notes

    return asyncio.run(main())


def test_query_documents_validate_against_the_emulator_schema() -> None:
    """Each shipped query, with the fragment, is valid against the emulator's copy of the legacy schema."""
    schema = build_schema(package_path("emulator", "schema.graphql").read_text())
    fragment = Fragment(load_query("endpoint_fields")).text()
    for name in ("endpoints", "endpoint"):
        assert validate(schema, parse(load_query(name) + fragment)) == [], name
    assert validate(schema, parse(load_query("pools"))) == []


def test_fragment_round_trips_and_keeps_required_fields() -> None:
    """The fragment as data prints back every field of the shipped file, required ones included."""
    fragment = Fragment(load_query("endpoint_fields"))
    assert set(fragment.fields) >= REQUIRED_FIELDS
    assert fragment.fields["env"] == ["key", "value"]
    assert Fragment(fragment.text()).fields == fragment.fields


def test_list_sends_bearer_header_and_fixed_documents() -> None:
    """myself { endpoints } is a POST with the key in the Bearer header only, never ?api_key=."""
    server = FakeGraphQL()
    rows, notes = read(server, lambda s: s.list_endpoints())
    assert len(rows) == 16 and notes == []
    (request,) = server.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {KEY}" and "api_key" not in str(request.url)
    assert KEY not in request.content.decode()
    assert "fragment LegacyEndpoint on Endpoint" in server.bodies[0]["query"]


def test_below_the_cap_no_rest_list_is_needed() -> None:
    """With fewer than 400 rows, read_endpoints does not ask REST for ids."""
    asked: list[bool] = []

    async def ids() -> list[str]:
        asked.append(True)
        return []

    rows, _ = read(FakeGraphQL(), lambda s: s.read_endpoints(ids))
    assert len(rows) == 16 and asked == []


def test_at_the_cap_missing_endpoints_are_read_in_aliased_batches() -> None:
    """450 endpoints: the list stops at 400, the REST ids name 50 more, read 50 per aliased request."""
    doc = generate_account(450, seed=5)
    all_ids = [e["id"] for e in doc["data"]["myself"]["endpoints"]]
    server = FakeGraphQL(doc)

    async def ids() -> list[str]:
        return all_ids

    rows, _ = read(server, lambda s: s.read_endpoints(ids))
    assert sorted(r["id"] for r in rows) == sorted(all_ids)
    assert [b.get("operationName") for b in server.bodies] == ["Endpoints", "EndpointBatch"]
    batch = server.bodies[1]
    assert sorted(batch["variables"].values()) == sorted(all_ids[ENDPOINTS_CAP:])
    assert not any(i in batch["query"] for i in all_ids)  # the ids travel as variables only


def test_rest_ids_unknown_to_graphql_are_noted() -> None:
    """An id REST lists but GraphQL does not know (deleted meanwhile) is left out with a note."""
    doc = generate_account(400, seed=2)
    ids = [e["id"] for e in doc["data"]["myself"]["endpoints"]] + ["ghost0000000001"]

    async def rest_ids() -> list[str]:
        return ids

    rows, notes = read(FakeGraphQL(doc), lambda s: s.read_endpoints(rest_ids))
    assert len(rows) == 400
    assert any("ghost0000000001" in n for n in notes)


def test_dropped_optional_field_is_noted_once_and_read_continues() -> None:
    """A server without Endpoint.workersStandby: the field is dropped, the read succeeds, one note says so."""
    server = FakeGraphQL(drop_fields=["workersStandby", "EnvironmentVariable.value"])

    async def both(s: GraphQLSource) -> Any:
        rows = await s.list_endpoints()
        one = await s.get_endpoint(rows[0]["id"])
        return rows, one

    (rows, one), notes = read(server, both)
    assert len(rows) == 16 and one is not None and "workersStandby" not in one
    assert notes == [
        "the GraphQL API does not know Endpoint.workersStandby: read the endpoints without it (schema drift)",
        "the GraphQL API does not know EnvironmentVariable.value: read the endpoints without it (schema drift)",
    ]
    assert len(server.bodies) == 3  # one rejected list, the list again, the single read


@pytest.mark.parametrize("field", ["gpuIds", "flashBootType", "instanceIds"])
def test_dropped_required_field_is_a_clear_error(field: str) -> None:
    """A server that no longer knows a field the body depends on stops the read, naming the field."""
    with pytest.raises(ApiError, match=rf"no longer knows Endpoint\.{field}, which bridge needs"):
        read(FakeGraphQL(drop_fields=[field]), lambda s: s.list_endpoints())


def test_graphql_errors_answer_is_reported_with_what_failed() -> None:
    """A 200 answer with errors names the query, the path and the server's message."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"data": None, "errors": [{"message": "Something broke", "path": ["myself", "endpoints"]}]},
        )

    with pytest.raises(ApiError) as info:
        read(handler, lambda s: s.list_endpoints())
    assert str(info.value) == f"POST {URL}: GraphQL query Endpoints failed (at myself.endpoints): Something broke"


def test_unauthenticated_is_an_auth_error() -> None:
    """An HTTP 401 and a GraphQL UNAUTHENTICATED error both say RunPod rejected the API key."""

    def http_401(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}]}
        )

    def gql_401(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"errors": [{"message": "nope", "extensions": {"code": "UNAUTHENTICATED"}}]})

    with pytest.raises(AuthError, match=rf"^RunPod rejected the API key \(HTTP 401\) at POST {URL}"):
        read(http_401, lambda s: s.list_endpoints())
    with pytest.raises(AuthError, match="RunPod rejected the API key"):
        read(gql_401, lambda s: s.list_endpoints())


def test_rate_limit_errors_in_graphql_answers_are_retried() -> None:
    """A 200 answer whose only error says 'too many requests' is retried like a 429."""
    server = FakeGraphQL()
    answers = [httpx.Response(200, json={"errors": [{"message": "Too many requests, slow down"}]})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop() if answers else server(request)

    rows, _ = read(handler, lambda s: s.list_endpoints())
    assert len(rows) == 16


def test_html_answer_is_explained() -> None:
    """An HTML page instead of a GraphQL answer is reported as such, in one line."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, text="<html><title>Bad Request</title></html>", headers={"content-type": "text/html"}
        )

    with pytest.raises(ApiError, match='HTTP 400 Bad Request: an HTML page "Bad Request" from a proxy or gateway'):
        read(handler, lambda s: s.list_endpoints())


def test_pools_and_missing_endpoint() -> None:
    """serverlessGpuPools reads as pool -> types; endpoint(id:) of an unknown id is None."""

    async def fn(s: GraphQLSource) -> Any:
        return await s.pools(), await s.get_endpoint("nope")

    (pools, missing), _ = read(FakeGraphQL(), fn)
    assert pools["AMPERE_16"] and all(isinstance(t, str) for t in pools["AMPERE_16"])
    assert missing is None


def test_myself_null_is_an_auth_error() -> None:
    """myself: null (the key is not a user's) is reported as a rejected key."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"myself": None}})

    with pytest.raises(AuthError, match="answered myself: null"):
        read(handler, lambda s: s.list_endpoints())


def _at_cap(n: int, seed: int) -> tuple[FakeGraphQL, list[str]]:
    doc = generate_account(n, seed=seed)
    return FakeGraphQL(doc), [e["id"] for e in doc["data"]["myself"]["endpoints"]]


def test_batches_refused_as_too_complex_shrink_and_stay_small() -> None:
    """Behind a complexity limit the batch is split to the size that fits, and later batches start there."""
    server, all_ids = _at_cap(600, seed=8)
    server.api.max_complexity = 400  # about 10 endpoints' worth of the fragment

    async def ids() -> list[str]:
        return all_ids

    async def run(source: GraphQLSource) -> Any:
        return await source.read_endpoints(ids), source.batch_size

    (rows, size), notes = read(server, run)
    assert sorted(r["id"] for r in rows) == sorted(all_ids)
    batches = [b for b in server.bodies if b.get("operationName") == "EndpointBatch"]
    refused = len(batches) - -(-200 // size)
    assert 1 <= size < 50 and 1 <= refused <= 3
    assert all(len(b["variables"]) <= size for b in batches[refused + 1 :])
    assert any("too complex" in n and f"{size} endpoint(s) per request" in n for n in notes)


def test_batched_reads_drop_a_rejected_field_and_send_again() -> None:
    """Schema drift in a batched read: the field is dropped once, with a note, and the batch read again."""
    doc = generate_account(430, seed=9)
    server = FakeGraphQL(doc, drop_fields=["workersStandby"])
    all_ids = [e["id"] for e in doc["data"]["myself"]["endpoints"]]

    async def ids() -> list[str]:
        return all_ids

    rows, notes = read(server, lambda s: s.read_endpoints(ids))
    assert len(rows) == 430 and all("workersStandby" not in r for r in rows)
    assert (
        notes.count(
            "the GraphQL API does not know Endpoint.workersStandby: read the endpoints without it (schema drift)"
        )
        == 1
    )
    assert [b.get("operationName") for b in server.bodies] == ["Endpoints", "Endpoints", "EndpointBatch"]


def test_batch_errors_other_than_complexity_are_reported() -> None:
    """An error answer to a batch (not drift, not complexity) is one clear error naming the query."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"errors": [{"message": "something broke"}], "data": None})

    with pytest.raises(ApiError, match="GraphQL query EndpointBatch failed: something broke"):
        read(handler, lambda s: s.get_endpoints(["a", "b"]))
