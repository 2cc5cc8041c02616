"""The endpoint API of one REST target over the run's :class:`~bridge.http.Http`: list, read, update.

Where the API is and which method an update uses come from the target (:mod:`bridge.targets`): v1 lists
``GET {rest}/endpoints`` in one answer and updates with ``POST …/endpoints/{id}/update``; v2 lists
``GET {v2}/serverless`` in cursor pages and updates with ``PATCH …/serverless/{id}``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from bridge.config import Settings
from bridge.errors import ApiError
from bridge.http import Counters, Http, RetryPolicy
from bridge.targets import RestTarget, get_target

__all__ = ["RestClient", "open_rest"]


class RestClient:
    """The endpoint operations of one REST target over a shared :class:`Http`.

    ``target`` is a :class:`~bridge.targets.RestTarget` or its name (``v1``, ``v2``); :attr:`target` is the
    target itself, which says where the endpoints are and how an update is sent.
    """

    def __init__(self, http: Http, target: str | RestTarget = "v1") -> None:
        self.http = http
        self.target: RestTarget = get_target(target) if isinstance(target, str) else target
        self._base = self.target.base_url(http.settings)

    @property
    def counters(self) -> Counters:
        """The counters of the shared session."""
        return self.http.counters

    def endpoint_url(self, endpoint_id: str) -> str:
        """The URL of one endpoint in this target."""
        return f"{self._base}/{self.target.read_path(quote(endpoint_id, safe=''))}"

    async def _get(self, url: str, params: Mapping[str, str] | None = None, kind: str = "read") -> Any:
        response = await self.http.request("GET", url, api=self.target.name, params=params, kind=kind)
        return self.http.decode("GET", str(response.request.url), response)

    async def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint of the account as this target reads it (a paged list is followed to its last page)."""
        url = f"{self._base}/{self.target.list_path()}"
        if not self.target.paged:
            doc = await self._get(url, kind="list")
            items = doc.get("endpoints") if isinstance(doc, Mapping) else doc
            return self._endpoint_list(items, f"GET {url}")
        endpoints: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"cursor": cursor} if cursor else None
            response = await self.http.request("GET", url, api=self.target.name, params=params, kind="list")
            doc = self.http.decode("GET", url, response)
            if not isinstance(doc, Mapping):
                raise self.http.fail(
                    ApiError(f"GET {url}: expected an object with endpoints, got {type(doc).__name__}")
                )
            page = self._endpoint_list(doc.get("endpoints"), f"GET {url}")
            endpoints.extend(page)
            cursor = _next_cursor(doc, response)
            if not cursor:
                return endpoints
            if cursor in seen:
                raise self.http.fail(
                    ApiError(f"GET {url}: the server repeated page cursor {self.http.quote(cursor, 80)!r}")
                )
            # A next page after a page with no endpoint could go on for ever: a broken server, not an account.
            if not page:
                raise self.http.fail(ApiError(f"GET {url}: the server gave a next cursor after an empty page"))
            seen.add(cursor)

    def _endpoint_list(self, items: Any, where: str) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not all(
            isinstance(item, Mapping) and isinstance(item.get("id"), str) for item in items
        ):
            raise self.http.fail(ApiError(f"{where}: expected a list of endpoints with string ids"))
        return [dict(item) for item in items]

    async def list_endpoint_ids(self) -> list[str]:
        """The id of every endpoint of the account."""
        return [item["id"] for item in await self.list_endpoints()]

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """One endpoint as this target reads it. Raises :class:`NotFoundError` when there is none."""
        url = self.endpoint_url(endpoint_id)
        doc = await self._get(url)
        if not isinstance(doc, Mapping):
            raise self.http.fail(ApiError(f"GET {url}: expected an endpoint object, got {type(doc).__name__}"))
        # An answer that is not this endpoint (a proxy's JSON, another endpoint) must never pass for its state.
        if doc.get("id") != endpoint_id:
            got = doc.get("id")
            what = f"endpoint {self.http.quote(str(got), 60)!r}" if got is not None else "an object without an id"
            raise self.http.fail(ApiError(f"GET {url}: expected endpoint {endpoint_id!r}, the answer is {what}"))
        return dict(doc)

    async def send_update(self, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send one update (the target's method and path) and return the endpoint the server answers.

        Retried only while it surely was not applied (429, connection refused). Raises
        :class:`~bridge.errors.WriteOutcomeUnknown` when it may have been applied, and the typed errors for
        4xx answers.
        """
        method = self.target.write_method
        url = f"{self._base}/{self.target.write_path(quote(endpoint_id, safe=''))}"
        response = await self.http.request(method, url, api=self.target.name, json_body=dict(body), write=True)
        if not response.content.strip():
            return {}
        try:
            doc = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # The write was accepted (2xx) but the answer cannot be read: the engine verifies by reading back.
            return {}
        return dict(doc) if isinstance(doc, Mapping) else {}


def _next_cursor(doc: Mapping[str, Any], response: httpx.Response) -> str | None:
    """The cursor of the next page of a paged list: a body field, or a ``Link: <…?cursor=…>; rel="next"`` header."""
    for key in ("nextCursor", "next_cursor", "cursor", "next"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            if value.startswith(("http://", "https://", "/")):
                cursor = httpx.URL(value).params.get("cursor")
                if cursor:
                    return str(cursor)
                continue
            return value
    page = doc.get("pagination") or doc.get("page")
    if isinstance(page, Mapping):
        for key in ("nextCursor", "next_cursor", "cursor", "next"):
            value = page.get(key)
            if isinstance(value, str) and value:
                return value
    link = response.links.get("next")
    if link and link.get("url"):
        cursor = httpx.URL(link["url"]).params.get("cursor")
        return str(cursor) if cursor else None
    return None


@asynccontextmanager
async def open_rest(
    settings: Settings,
    target: str | RestTarget = "v1",
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[RestClient]:
    """Open a session for ``settings`` and yield a :class:`RestClient` for ``target``; close it on exit."""
    async with Http(settings, policy=policy, transport=transport) as http:
        yield RestClient(http, target)
