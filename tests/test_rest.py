"""The endpoint API (bridge.rest): the key header, each target's paths and methods, paged lists."""

from __future__ import annotations

import json

import httpx
import pytest
from mock_api import ENDPOINT, KEY, Recorder, call, ok

from bridge.errors import ApiError
from bridge.http import USER_AGENT


def test_reads_send_the_key_only_in_the_bearer_header() -> None:
    """A read carries Authorization: Bearer and a bridge User-Agent, and no key in the URL."""
    server = Recorder(ok([ENDPOINT]))
    assert call(server, lambda rest: rest.list_endpoints()) == [ENDPOINT]
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"] == USER_AGENT and USER_AGENT.startswith("bridge/")
    assert str(request.url) == "https://rest.test/v1/endpoints"
    assert KEY not in str(request.url)


def test_v1_and_v2_paths() -> None:
    """GET by id goes to /endpoints/{id} on v1 and /serverless/{id} on v2, with the id quoted."""
    server = Recorder(ok(ENDPOINT), ok({**ENDPOINT, "id": "a/b"}))
    call(server, lambda rest: rest.get_endpoint("ep1"))
    call(server, lambda rest: rest.get_endpoint("a/b"), target="v2")
    assert [str(r.url) for r in server.requests] == [
        "https://rest.test/v1/endpoints/ep1",
        "https://api.test/v2/serverless/a%2Fb",
    ]


def test_v2_list_follows_the_cursor() -> None:
    """The v2 list is read page by page through nextCursor until there is none."""
    pages = {
        None: {"endpoints": [{"id": "a"}], "nextCursor": "c1"},
        "c1": {"endpoints": [{"id": "b"}], "nextCursor": "c2"},
        "c2": {"endpoints": [{"id": "c"}], "nextCursor": None},
    }
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        seen.append(cursor)
        return ok(pages[cursor])

    assert call(handler, lambda rest: rest.list_endpoint_ids(), target="v2") == ["a", "b", "c"]
    assert seen == [None, "c1", "c2"]


def test_v2_list_repeating_cursor_is_an_error() -> None:
    """A server that hands back the same cursor twice stops the read instead of looping."""
    server = Recorder(ok({"endpoints": [{"id": "a"}], "nextCursor": "same"}))
    with pytest.raises(ApiError, match="repeated page cursor"):
        call(server, lambda rest: rest.list_endpoints(), target="v2")


def test_send_update_v1_and_v2() -> None:
    """v1 writes POST /endpoints/{id}/update, v2 writes PATCH /serverless/{id}; the answer is returned."""
    server = Recorder(ok({"id": "ep1", "name": "x"}))
    assert call(server, lambda rest: rest.send_update("ep1", {"name": "x"})) == {"id": "ep1", "name": "x"}
    call(server, lambda rest: rest.send_update("ep1", {"name": "x"}), target="v2")
    assert [(r.method, str(r.url), json.loads(r.content)) for r in server.requests] == [
        ("POST", "https://rest.test/v1/endpoints/ep1/update", {"name": "x"}),
        ("PATCH", "https://api.test/v2/serverless/ep1", {"name": "x"}),
    ]
