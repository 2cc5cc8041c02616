"""Live reads end to end against the emulator over real sockets: whole accounts, REST state, drift and faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import EMULATOR_KEY

from bridge.config import Settings
from bridge.emulator import Emulator, Faults, generate_account
from bridge.errors import InputError, RetiredError
from bridge.http import RetryPolicy
from bridge.live import LiveAccount, read_live_account
from bridge.source import ENDPOINTS_CAP

MakeEmulator = Callable[..., Emulator]


async def _short_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.01))


def fast() -> RetryPolicy:
    """Backoff that waits at most 10 ms at a time (pauses still last until the server's window resets)."""
    return RetryPolicy(sleep=_short_sleep)


def settings(emu: Emulator, concurrency: int = 8) -> Settings:
    return Settings.resolve(environ={**emu.env, "RUNPOD_API_KEY": EMULATOR_KEY}, concurrency=concurrency)


def live(emu: Emulator, concurrency: int = 8, **kwargs: Any) -> LiveAccount:
    return read_live_account(settings(emu, concurrency), policy=fast(), **kwargs)


def ids_of(doc: dict[str, Any]) -> list[str]:
    return [e["id"] for e in doc["data"]["myself"]["endpoints"]]


def single_reads(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r["api"] == "graphql" and '"operationName":"Endpoint"' in r["body"])


def batch_reads(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r["api"] == "graphql" and '"operationName":"EndpointBatch"' in r["body"])


def rest_reads(emu: Emulator) -> int:
    """REST GETs of one endpoint (not the list)."""
    return sum(
        1
        for r in emu.requests
        if r["api"] != "graphql" and r["method"] == "GET" and r["path"].count("/") > 2 and "/catalog/" not in r["path"]
    )


@pytest.mark.parametrize("size", [0, 1, 400, 1000])
def test_accounts_are_read_whole(make_emulator: MakeEmulator, size: int) -> None:
    """Accounts of 0, 1, 400 and 1,000 endpoints are read whole: every endpoint, its REST state, the pools."""
    doc = generate_account(size, seed=size)
    emu = make_emulator(doc)
    account = live(emu)
    assert sorted(e.id for e in account.endpoints) == sorted(ids_of(doc))
    assert len(account.raw_endpoints) == size
    assert account.rest_state is not None and set(account.rest_state) == set(ids_of(doc))
    assert account.pools is not None and account.notes == [] and account.extra_findings == {}
    # Past the cap: 50 endpoints per aliased GraphQL read, none one by one; the REST state from the list alone.
    assert single_reads(emu) == 0 and batch_reads(emu) == -(-max(0, size - ENDPOINTS_CAP) // 50)
    assert rest_reads(emu) == 0


def test_high_concurrency_reads_the_same(make_emulator: MakeEmulator) -> None:
    """At --concurrency 40 (one aiohttp pool of 44 connections) the account reads the same as at 4."""
    doc = generate_account(700, seed=12)
    emu = make_emulator(doc)
    wide, narrow = live(emu, concurrency=40), live(emu, concurrency=4)
    assert wide.raw_endpoints == narrow.raw_endpoints and wide.rest_state == narrow.rest_state
    assert sorted(e.id for e in wide.endpoints) == sorted(ids_of(doc))


def test_fetch_style_read_below_the_cap_skips_rest(make_emulator: MakeEmulator) -> None:
    """Without REST state and below the cap, nothing is asked of REST."""
    emu = make_emulator(generate_account(30, seed=1))
    account = live(emu, with_rest_state=False)
    assert len(account.endpoints) == 30 and account.rest_state is None
    rest = [r["path"] for r in emu.requests if r["api"] != "graphql"]
    assert rest and all("/v2/catalog/" in path for path in rest)  # the catalogs only, no endpoint


def test_requests_carry_the_key_only_in_the_header(make_emulator: MakeEmulator) -> None:
    """Every request the emulator logged has the Bearer header; no URL holds the key or an api_key parameter."""
    emu = make_emulator(generate_account(420, seed=4))
    live(emu)
    live(emu, target="v2")
    assert len(emu.requests) >= 10  # GraphQL lists, batches and pools; REST lists and pages, for both targets
    for request in emu.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["authorization"] == f"Bearer {EMULATOR_KEY}"
        assert headers["user-agent"].startswith("bridge/")
        assert EMULATOR_KEY not in request["path"] + "?" + request["query"]
        assert "api_key" not in request["query"]


def test_endpoint_filter_reads_only_those(make_emulator: MakeEmulator) -> None:
    """--endpoint reads just the named endpoints (by id) and their REST state."""
    doc = generate_account(450, seed=9)
    emu = make_emulator(doc)
    wanted = [ids_of(doc)[5], ids_of(doc)[440]]
    account = live(emu, endpoint_ids=wanted)
    assert [e.id for e in account.endpoints] == wanted
    assert account.rest_state is not None and sorted(account.rest_state) == sorted(wanted)
    assert not any(r["path"].endswith("/endpoints") for r in emu.requests)  # no list was read


def test_many_selected_endpoints_take_their_state_from_the_list(make_emulator: MakeEmulator) -> None:
    """More than a few --endpoint ids: one aliased GraphQL read and one REST list, not a read per endpoint."""
    doc = generate_account(450, seed=9)
    emu = make_emulator(doc)
    wanted = ids_of(doc)[100:130]
    account = live(emu, endpoint_ids=wanted)
    assert sorted(e.id for e in account.endpoints) == sorted(wanted)
    assert account.rest_state is not None and sorted(account.rest_state) == sorted(wanted)
    assert rest_reads(emu) == 0 and single_reads(emu) == 0 and batch_reads(emu) == 1
    assert sum(1 for r in emu.requests if r["path"] == "/v1/endpoints") == 1


def test_unknown_endpoint_filter_is_an_input_error(emulator: Emulator) -> None:
    """An --endpoint id the account lacks is an input error naming it."""
    with pytest.raises(InputError, match="--endpoint nope0000000000: the account has no such endpoint"):
        live(emulator, endpoint_ids=["i02xupws21hp6i", "nope0000000000"])


def test_dropped_optional_field_reads_with_a_note(make_emulator: MakeEmulator) -> None:
    """A GraphQL schema without workersStandby still reads every endpoint, with one note."""
    doc = generate_account(410, seed=3)
    emu = make_emulator(doc, drop_fields=["workersStandby"])
    account = live(emu)
    assert len(account.endpoints) == 410
    assert all("workersStandby" not in row for row in account.raw_endpoints)
    assert account.notes == [
        "the GraphQL API does not know Endpoint.workersStandby: read the endpoints without it (schema drift)"
    ]


@pytest.mark.parametrize(
    ("faults", "concurrency"),
    [
        (Faults(fail_every=3), 8),
        (Faults(fail_every=3, latency_ms=5), 1),
        pytest.param(Faults(rate_limit=5), 8, marks=pytest.mark.slow),  # waits out Retry-After: ~4 s
        (Faults(drop_every=1), 8),
        (Faults(latency_ms=20), 8),
    ],
    ids=["503", "503-sequential", "429", "dropped", "latency"],
)
def test_read_faults_are_survived(make_emulator: MakeEmulator, faults: Faults, concurrency: int) -> None:
    """503s, 429s with Retry-After, dropped connections and latency do not change what is read."""
    doc = generate_account(1000, seed=11)  # batched reads: about 16 requests in all
    emu = make_emulator(doc)
    clean = live(emu)
    emu.faults = faults
    emu.clear_requests()
    faulty = live(emu, concurrency)
    assert faulty.raw_endpoints == clean.raw_endpoints
    assert faulty.rest_state == clean.rest_state and faulty.pools == clean.pools
    statuses = {r["status"] for r in emu.requests}
    if faults.fail_every:
        assert 503 in statuses and faulty.counters is not None and faulty.counters.retries > 0
    if faults.rate_limit:
        assert 429 in statuses and faulty.counters is not None and faulty.counters.rate_limited > 0


def test_rest_state_tolerates_live_v1_shapes(make_emulator: MakeEmulator) -> None:
    """dataCenterIds as a comma string and reads without flashboot are stored raw and still compare."""
    from bridge.targets import V1

    emu = make_emulator(dc_ids_as_string=True, omit_flashboot=True)
    account = live(emu)
    assert account.rest_state is not None
    state = account.rest_state["i02xupws21hp6i"]
    assert isinstance(state["dataCenterIds"], str) and "flashboot" not in state
    assert isinstance(V1.normalize_state(state)["dataCenterIds"], list)


def test_v2_target_reads_v2_state_through_pages(make_emulator: MakeEmulator) -> None:
    """With --target v2 the REST state is the v2 read of each endpoint, listed through the cursor."""
    doc = generate_account(450, seed=12)
    emu = make_emulator(doc, v2_page_size=100)
    account = live(emu, target="v2")
    assert account.rest_state is not None and len(account.rest_state) == 450
    assert all("workers" in s and isinstance(s["workers"], dict) for s in account.rest_state.values())
    pages = [r for r in emu.requests if r["path"].endswith("/v2/serverless")]
    assert len(pages) == 5


def test_retired_v1_stops_a_v1_plan_read(make_emulator: MakeEmulator) -> None:
    """When v1 answers 410, reading v1 REST state stops with the pointer to --target v2."""
    emu = make_emulator(faults=Faults(retire_v1=True))
    with pytest.raises(RetiredError, match="run again with --target v2"):
        live(emu, target="v1")


def test_retired_v1_lists_ids_through_v2(make_emulator: MakeEmulator) -> None:
    """Past the cap without REST state (fetch), a retired v1 list falls back to the v2 list, with a note."""
    doc = generate_account(405, seed=13)
    emu = make_emulator(doc, faults=Faults(retire_v1=True))
    account = live(emu, with_rest_state=False)
    assert len(account.endpoints) == 405
    assert account.notes == ["REST v1 is retired: listed the endpoint ids through REST v2"]


def test_endpoint_missing_from_rest_is_blocked() -> None:
    """An endpoint GraphQL knows but REST answers 404 for gets a not-in-rest error finding."""
    from test_source import FakeGraphQL

    graphql = FakeGraphQL()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/graphql":
            return graphql(request)
        if request.url.path == "/v1/endpoints":
            return httpx.Response(200, json=[{"id": "sdxl0worker0ab"}])
        return httpx.Response(404, json={"error": "endpoint not found", "status": 404})

    account = read_live_account(
        Settings(api_key=EMULATOR_KEY, graphql_url="https://x.test/graphql", rest_url="https://x.test/v1"),
        policy=fast(),
        transport=httpx.MockTransport(handler),
    )
    assert account.rest_state is not None and list(account.rest_state) == ["sdxl0worker0ab"]
    assert len(account.extra_findings) == 15
    finding = account.extra_findings["i02xupws21hp6i"][0]
    assert finding.code == "not-in-rest" and finding.severity == "error"
    assert "GET https://x.test/v1/endpoints/i02xupws21hp6i answered 404" in finding.message
