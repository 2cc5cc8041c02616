"""Read a live account: legacy endpoints and GPU pools through GraphQL, REST state through REST (SPEC §3.2, §6).

::

    live = read_live_account(Settings.resolve())           # target "auto": v1 while served, else v2
    plan = build_plan(live.endpoints, build_tables(pools=live.pools), target=live.target, rest_state=live.rest_state)

Everything runs in one event loop over one :class:`bridge.http.Http` (one connection pool, shared pacing).
The v2 catalogs (:mod:`bridge.catalogs`) are read alongside GraphQL's pool table.

**The automatic target.** With ``target="auto"`` the REST reads start on v1; the first v1 answer of 410 Gone
switches the read to v2 before anything is planned, and :attr:`LiveAccount.target_reason` says so. An explicit
``"v1"`` is never switched: a retired v1 stops the read with :class:`~bridge.errors.RetiredError`.
REST reads are stored raw (the plan's target normalizes them); secrets are still in them, so anything
written from a :class:`LiveAccount` goes through :mod:`bridge.redact` (see :func:`snapshot_document`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge._aio import run as run_async
from bridge.catalogs import Catalogs, read_catalogs
from bridge.config import Settings
from bridge.errors import ApiError, InputError, NotFoundError, RetiredError, SnapshotError
from bridge.http import Counters, Http, RetryPolicy, gather_all
from bridge.models import Finding, LegacyEndpoint, Target, TargetChoice
from bridge.progress import counted
from bridge.progress import phase as progress_phase
from bridge.redact import redact_endpoint
from bridge.rest import RestClient
from bridge.snapshot import parse_snapshot
from bridge.source import GraphQLSource

__all__ = ["LiveAccount", "TargetChoice", "read_live", "read_live_account", "snapshot_document"]

Progress = Callable[[str], None]
# Up to this many --endpoint ids, their REST state is read one by one; more, from the endpoint list.
SELECTED_READS = 4
AUTO_V1 = "auto: REST v1 is served"
AUTO_RETIRED = "auto: REST v1 answered 410 Gone"


class _Route:
    """The REST target of a read, switched once from v1 to v2 when ``auto`` meets a retired v1."""

    def __init__(self, http: Http, choice: TargetChoice) -> None:
        self.auto = choice == "auto"
        self.rest = RestClient(http, "v1" if self.auto else choice)
        self.reason = AUTO_V1 if self.auto else f"--target {choice}"

    def switch(self, error: RetiredError) -> RestClient:
        successor = self.rest.target.successor
        if not self.auto or successor is None:
            raise error
        self.rest = RestClient(self.rest.http, successor)
        self.reason = AUTO_RETIRED
        return self.rest


@dataclass
class LiveAccount:
    """What a live read found. ``rest_state`` maps endpoint id to its raw REST read (v1 or v2 per target)."""

    endpoints: list[LegacyEndpoint]
    pools: dict[str, list[str]] | None = None
    rest_state: dict[str, dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    extra_findings: dict[str, list[Finding]] = field(default_factory=dict)
    raw_endpoints: list[dict[str, Any]] = field(default_factory=list)
    counters: Counters | None = None
    catalogs: Catalogs = field(default_factory=Catalogs)
    target: Target = "v1"
    target_reason: str = AUTO_V1


def read_live_account(
    settings: Settings,
    *,
    target: TargetChoice = "auto",
    endpoint_ids: Sequence[str] = (),
    with_rest_state: bool = True,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
) -> LiveAccount:
    """Read the live account (all endpoints, or only ``endpoint_ids``) in one event loop.

    Raises :class:`~bridge.errors.InputError` for an ``endpoint_ids`` entry the account lacks, and the
    :class:`~bridge.errors.ApiError` family when RunPod cannot be read.
    """

    async def run() -> LiveAccount:
        async with Http(settings, policy=policy, transport=transport) as http:
            return await read_live(
                http, target=target, endpoint_ids=endpoint_ids, with_rest_state=with_rest_state, progress=progress
            )

    return run_async(run())


async def read_live(
    http: Http,
    *,
    target: TargetChoice = "auto",
    endpoint_ids: Sequence[str] = (),
    with_rest_state: bool = True,
    progress: Progress | None = None,
) -> LiveAccount:
    """Read the live account over an open :class:`Http` (so a whole run can share one session)."""
    say = progress or (lambda _message: None)
    route = _Route(http, target)
    notes: list[str] = []
    async with GraphQLSource(http) as source:
        pools_task = asyncio.ensure_future(_read_pools(source, notes))
        catalogs_task = asyncio.ensure_future(read_catalogs(http))
        try:
            if endpoint_ids:
                raw, state, findings = await _read_selected(source, route, endpoint_ids, with_rest_state, say)
            else:
                raw, state, findings = await _read_all(source, route, with_rest_state, notes, say)
            pools = await pools_task
            catalogs, catalog_notes = await catalogs_task
        except BaseException:
            # Let catalog reads in flight end (three short GETs): httpcore can leave the socket of a request
            # cancelled mid-connect unclosed.
            await asyncio.wait([catalogs_task], timeout=5)
            for task in (pools_task, catalogs_task):
                task.cancel()
            await asyncio.gather(pools_task, catalogs_task, return_exceptions=True)
            raise
        notes[:0] = [*source.notes, *catalog_notes]
    try:
        endpoints = parse_snapshot(
            {"data": {"myself": {"endpoints": raw}}}, f"GraphQL answer from {source.url}"
        ).endpoints
    except SnapshotError as exc:
        raise http.fail(ApiError(str(exc))) from None
    return LiveAccount(
        endpoints=endpoints,
        pools=pools,
        rest_state=state,
        notes=list(dict.fromkeys(notes)),
        extra_findings=findings,
        raw_endpoints=raw,
        counters=http.counters,
        catalogs=catalogs,
        target=route.rest.target.name,
        target_reason=route.reason,
    )


async def _read_pools(source: GraphQLSource, notes: list[str]) -> dict[str, list[str]] | None:
    try:
        return await source.pools()
    except ApiError as exc:
        if exc.stops_run:  # a rejected key, a TLS failure or a long rate-limit pause: the endpoints would meet it too
            raise
        notes.append(f"could not read GraphQL serverlessGpuPools ({exc}): the pools come from the next source")
        return None


async def _read_all(
    source: GraphQLSource, route: _Route, with_rest_state: bool, notes: list[str], say: Progress
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]] | None, dict[str, list[Finding]]]:
    listing: asyncio.Future[list[dict[str, Any]]] | None = None

    async def list_rest() -> list[dict[str, Any]]:
        try:
            return await route.rest.list_endpoints()
        except RetiredError as exc:
            old = route.rest.target.name
            rest = route.switch(exc)
            if not with_rest_state:
                notes.append(f"REST {old} is retired: listed the endpoint ids through REST {rest.target.name}")
            return await rest.list_endpoints()

    async def rest_ids() -> list[str]:
        nonlocal listing
        if listing is None:
            listing = asyncio.ensure_future(list_rest())
        return [item["id"] for item in await listing]

    if with_rest_state:
        listing = asyncio.ensure_future(list_rest())
    try:
        raw = await source.read_endpoints(rest_ids, always_list=with_rest_state)
        say(f"read {len(raw)} legacy endpoint{'' if len(raw) == 1 else 's'} through GraphQL")
        if not with_rest_state:
            return raw, None, {}
        assert listing is not None
        progress_phase("reading REST state")
        by_id = {item["id"]: item for item in await listing}
    except BaseException:
        if listing is not None:
            listing.cancel()  # no-op when it is done; gathering it retrieves its own failure, if any
            await asyncio.gather(listing, return_exceptions=True)
        raise
    state = {row["id"]: by_id[row["id"]] for row in raw if row["id"] in by_id}
    unlisted = [row["id"] for row in raw if row["id"] not in by_id]
    more, findings = await _read_states(route.rest, unlisted)  # the list may lag behind: ask each one
    state.update(more)
    say(f"read the REST {route.rest.target.name} state of {len(state)} endpoint{'' if len(state) == 1 else 's'}")
    return raw, state, findings


async def _read_selected(
    source: GraphQLSource, route: _Route, endpoint_ids: Sequence[str], with_rest_state: bool, say: Progress
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]] | None, dict[str, list[Finding]]]:
    ids = list(dict.fromkeys(endpoint_ids))
    legacy_task = asyncio.ensure_future(source.get_endpoints(ids))
    try:
        state: dict[str, dict[str, Any]] = {}
        findings: dict[str, list[Finding]] = {}
        if with_rest_state:
            try:
                state, findings = await _selected_states(route.rest, ids)
            except RetiredError as exc:
                state, findings = await _selected_states(route.switch(exc), ids)
        legacy = await legacy_task
    except BaseException:
        legacy_task.cancel()
        await asyncio.gather(legacy_task, return_exceptions=True)
        raise
    missing = [i for i, row in legacy.items() if row is None]
    if missing:
        raise InputError(f"--endpoint {missing[0]}: the account has no such endpoint (GraphQL at {source.url})")
    raw = [row for row in legacy.values() if row is not None]
    say(f"read {len(raw)} legacy endpoint{'' if len(raw) == 1 else 's'} through GraphQL")
    return raw, (state if with_rest_state else None), findings


async def _selected_states(
    rest: RestClient, ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Finding]]]:
    """The REST state of ``ids``: from the endpoint list when there are many (fewer requests), else one by one."""
    state: dict[str, dict[str, Any]] = {}
    if len(ids) > SELECTED_READS:  # many: the list costs fewer requests than one read each
        wanted = set(ids)
        state = {item["id"]: item for item in await rest.list_endpoints() if item["id"] in wanted}
    more, findings = await _read_states(rest, [i for i in ids if i not in state])
    state.update(more)
    return state, findings


async def _read_states(
    rest: RestClient, endpoint_ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Finding]]]:
    """GET each endpoint's REST state; one REST does not know is an error finding (it cannot be updated)."""

    async def one(endpoint_id: str) -> dict[str, Any] | None:
        try:
            return await rest.get_endpoint(endpoint_id)
        except NotFoundError:
            return None

    progress_phase("reading REST state", len(endpoint_ids))
    reads = await gather_all(counted(one(i)) for i in endpoint_ids)
    state: dict[str, dict[str, Any]] = {}
    findings: dict[str, list[Finding]] = {}
    for endpoint_id, read in zip(endpoint_ids, reads, strict=True):
        if read is not None:
            state[endpoint_id] = read
            continue
        findings[endpoint_id] = [
            Finding(
                severity="error",
                code="not-in-rest",
                field="id",
                message=(
                    f"REST {rest.target.name} has no endpoint {endpoint_id} (GET {rest.endpoint_url(endpoint_id)} "
                    "answered 404): it cannot be updated through REST"
                ),
            )
        ]
    return state, findings


def snapshot_document(live: LiveAccount) -> dict[str, Any]:
    """The snapshot of a live read (SPEC §3.1), with secrets redacted: what ``bridge fetch`` writes."""
    data: dict[str, Any] = {"myself": {"endpoints": [redact_endpoint(row) for row in live.raw_endpoints]}}
    if live.pools is not None:
        data["serverlessGpuPools"] = [{"id": pool, "gpuTypeIds": list(types)} for pool, types in live.pools.items()]
    document: dict[str, Any] = {"data": data}
    if live.catalogs.raw:  # the v2 catalogs hold no secrets: stored as read, for `plan --from`
        document["catalogs"] = dict(live.catalogs.raw)
    return document
