"""Live reads of the legacy GraphQL API, with gql over its httpx transport (SPEC §3.2).

Production has introspection off, so the queries are the fixed documents shipped in ``bridge/queries``
(the ``LegacyEndpoint`` fragment plus one query each). Requests go through the run's shared
:class:`bridge.http.Http`: the key only in the ``Authorization: Bearer`` header, the same pacing, retries
and typed errors as REST.

- ``myself { endpoints }`` stops at :data:`ENDPOINTS_CAP` rows with no paging: :meth:`GraphQLSource.read_endpoints`
  asks for the REST list of endpoint ids when it gets that many (or whenever it is given one) and reads the
  missing endpoints many per request, with aliases (:mod:`bridge.batch_reads`): a document RunPod refuses as
  too complex is split, and the smaller size is kept for the rest of the read.
- Schema drift: when the server rejects an optional field (``Cannot query field "X" on type "Endpoint"``),
  the field is dropped from the fragment, the query is sent again, and a note says so once.
  :data:`REQUIRED_FIELDS` cannot be dropped: their absence is an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import DocumentNode, ExecutionResult, FieldNode, FragmentDefinitionNode, parse, print_ast

from bridge._resources import package_path
from bridge.batch_reads import DEFAULT_BATCH, OPERATION, BatchError, Rebuild, is_too_complex, read_batched
from bridge.errors import ApiError, AuthError
from bridge.http import Http, is_html
from bridge.progress import advance as progress_advance
from bridge.progress import phase as progress_phase
from bridge.tables import member_problem, pool_id_problem

__all__ = [
    "ENDPOINTS_CAP",
    "REQUIRED_FIELDS",
    "Fragment",
    "GraphQLSource",
    "load_query",
]

# `myself { endpoints }` returns at most this many rows, oldest first, with no paging.
ENDPOINTS_CAP = 400
# Without these an endpoint cannot be identified or translated without changing what it runs on: the name
# carries the legacy -fb switch; read without flashBootType, a FlashBoot endpoint with no suffix would be
# planned as flashboot off; read without instanceIds, a CPU endpoint would be planned as a GPU one.
REQUIRED_FIELDS = frozenset({"id", "name", "gpuIds", "instanceIds", "flashBootType"})

_UNKNOWN_FIELD = re.compile(r"""Cannot query field ["'](\w+)["'] on type ["'](\w+)["']""")
_RATE_WORDS = re.compile(r"too many requests|rate limit", re.IGNORECASE)
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
# How RunPod (and the proxies before it) say "bad key" inside a 200: "Invalid token", "Unauthenticated",
# "invalid bearer token", "token expired", "API key is invalid".
_AUTH_WORDS = re.compile(
    r"unauthori[sz]ed|unauthenticated|not authenticated|invalid[ _](?:api[ _-]?key|(?:bearer |access |auth )?token)"
    r"|(?:api[ _-]?key|token) (?:is )?(?:invalid|expired|revoked)|expired token",
    re.IGNORECASE,
)


@functools.cache
def load_query(name: str) -> str:
    """The text of a shipped query document (``endpoints``, ``endpoint``, ``pools``, ``endpoint_fields``)."""
    return package_path("queries", f"{name}.graphql").read_text(encoding="utf-8")


class Fragment:
    """The ``LegacyEndpoint`` fragment as data, so that fields the server rejects can be dropped."""

    def __init__(self, text: str) -> None:
        document = parse(text)
        definition = next(d for d in document.definitions if isinstance(d, FragmentDefinitionNode))
        self.name = definition.name.value
        self.type_name = definition.type_condition.name.value
        self.fields: dict[str, list[str]] = {}
        for selection in definition.selection_set.selections:
            if isinstance(selection, FieldNode):
                subfields = selection.selection_set.selections if selection.selection_set else ()
                self.fields[selection.name.value] = [s.name.value for s in subfields if isinstance(s, FieldNode)]
        self.dropped: list[str] = []

    def text(self) -> str:
        """The fragment as GraphQL source."""
        lines = [f"fragment {self.name} on {self.type_name} {{"]
        for name, subfields in self.fields.items():
            lines.append(f"  {name} {{ {' '.join(subfields)} }}" if subfields else f"  {name}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def drop(self, type_name: str, field_name: str) -> str | None:
        """Remove a field the server rejected; return its dotted name, or None when it was not there."""
        if type_name == self.type_name:
            if field_name in self.fields:
                del self.fields[field_name]
                self.dropped.append(f"{type_name}.{field_name}")
                return f"{type_name}.{field_name}"
            return None
        for parent, subfields in list(self.fields.items()):
            if field_name in subfields:
                subfields.remove(field_name)
                if not subfields:
                    del self.fields[parent]
                self.dropped.append(f"{type_name}.{field_name}")
                return f"{type_name}.{field_name}"
        return None


class _PacedTransport(HTTPXAsyncTransport):
    """gql's httpx transport, sending through the run's :class:`Http` (one client, pacing, retries)."""

    def __init__(self, http: Http, url: str) -> None:
        super().__init__(url=url)
        self._http = http
        # Printing a document costs as much as parsing it: the source registers the text it parsed.
        self._texts: dict[int, str] = {}

    def register(self, document: DocumentNode, text: str) -> None:
        """Remember the source text of a parsed document, sent instead of printing it again."""
        self._texts[id(document)] = text

    async def connect(self) -> None:
        pass  # every request goes through the run's Http (its transport), which the run closes

    async def close(self) -> None:
        pass

    async def execute(
        self,
        request: GraphQLRequest,
        *,
        extra_args: dict[str, Any] | None = None,
        upload_files: bool = False,
    ) -> ExecutionResult:
        url = str(self.url)
        payload: dict[str, Any] = {"query": self._texts.get(id(request.document)) or print_ast(request.document)}
        if request.operation_name:
            payload["operationName"] = request.operation_name
        if request.variable_values is not None:
            payload["variables"] = request.variable_values
        # Apollo answers documents that do not validate (schema drift) with 400 and a JSON `errors` list.
        response = await self._http.request("POST", url, api="graphql", json_body=payload, passthrough=(400,))
        if response.status_code == 400 and is_html(response):
            raise self._http.error_for("POST", url, response, "graphql")
        doc = self._http.decode("POST", url, response)
        data = doc.get("data") if isinstance(doc, Mapping) else None
        errors = doc.get("errors") if isinstance(doc, Mapping) else None
        if not isinstance(data, Mapping) and not (isinstance(errors, list) and errors):
            status = response.status_code
            raise self._http.fail(ApiError(f"POST {url}: HTTP {status}: not a GraphQL answer", status=status))
        if errors is not None:  # gql expects a list of error objects
            errors = (
                [e if isinstance(e, Mapping) else {"message": str(e)} for e in errors]
                if isinstance(errors, list)
                else [{"message": str(errors)}]
            )
        extensions = doc.get("extensions")
        return ExecutionResult(
            data=dict(data) if isinstance(data, Mapping) else None,
            errors=errors or None,
            extensions=dict(extensions) if isinstance(extensions, Mapping) else None,
        )


class GraphQLSource:
    """Reads legacy endpoints and GPU pools from the GraphQL API. Use it as an async context manager."""

    def __init__(self, http: Http, url: str | None = None) -> None:
        self.http = http
        self.url = url or http.settings.graphql_url
        self.fragment = Fragment(load_query("endpoint_fields"))
        self.notes: list[str] = []
        self._transport = _PacedTransport(http, self.url)
        self._client = Client(transport=self._transport, fetch_schema_from_transport=False, execute_timeout=None)
        self._documents: dict[str, DocumentNode] = {}
        self._session: Any = None
        self.batch_size = DEFAULT_BATCH  # endpoints per aliased read; shrinks for the run when RunPod refuses one
        self.batch_requests = 0  # aliased documents sent, refused ones included
        self._shrink_noted = False

    async def __aenter__(self) -> GraphQLSource:
        self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close_async()  # type: ignore[no-untyped-call]
        self._session = None

    async def _query(self, name: str, operation: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a shipped query (with the current fragment when it uses one), dropping rejected optional fields."""
        attempt = 0
        while True:
            request = GraphQLRequest(self._document(name), variable_values=variables, operation_name=operation)
            try:
                data = await self._session.execute(request)
            except TransportQueryError as exc:
                errors = [e for e in (exc.errors or []) if isinstance(e, Mapping)]
                if self._drop_rejected(errors, operation):
                    continue
                attempt += 1
                if self._retryable(errors) and attempt < self.http.policy.read_attempts:
                    self.http.counters.retries += 1
                    await self.http.policy.sleep(self.http.policy.backoff(attempt))
                    continue
                raise self._query_error(operation, errors, str(exc)) from None
            if not isinstance(data, dict):
                raise self.http.fail(ApiError(f"POST {self.url}: query {operation}: the answer has no data"))
            return data

    def _document(self, name: str) -> DocumentNode:
        """The parsed query ``name`` with the current fragment (parsed once per fragment version)."""
        text = load_query(name)
        if "...LegacyEndpoint" in text:
            text = text + "\n" + self.fragment.text()
        document = self._documents.get(text)
        if document is None:
            document = self._documents[text] = parse(text)
            self._transport.register(document, text)
        return document

    def _drop_rejected(self, errors: Sequence[Mapping[str, Any]], operation: str) -> bool:
        rejected = [m.groups() for e in errors if (m := _UNKNOWN_FIELD.search(str(e.get("message", ""))))]
        if not rejected or len(rejected) != len(errors):
            return False
        for field_name, type_name in rejected:
            if type_name == self.fragment.type_name and field_name in REQUIRED_FIELDS:
                raise self.http.fail(
                    ApiError(
                        f"POST {self.url}: query {operation}: the GraphQL API no longer knows "
                        f"{type_name}.{field_name}, which bridge needs to read endpoints "
                        f"({', '.join(sorted(REQUIRED_FIELDS))}); "
                        "the legacy schema has changed: update bridge"
                    )
                )
            dropped = self.fragment.drop(type_name, field_name)
            if dropped is None:
                return False  # not a field of ours: report the error as it is
            self.notes.append(f"the GraphQL API does not know {dropped}: read the endpoints without it (schema drift)")
        return True

    @staticmethod
    def _retryable(errors: Sequence[Mapping[str, Any]]) -> bool:
        return bool(errors) and all(_RATE_WORDS.search(str(e.get("message", ""))) for e in errors)

    def _query_error(self, operation: str, errors: Sequence[Mapping[str, Any]], fallback: str) -> ApiError:
        messages = [str(e.get("message", "")).strip() for e in errors] or [fallback]
        paths = [".".join(str(p) for p in e["path"]) for e in errors if isinstance(e.get("path"), list)]
        text = self.http.scrub("; ".join(dict.fromkeys(m for m in messages if m)))[:400]  # scrub, then cut
        at = f" (at {', '.join(dict.fromkeys(paths))})" if paths else ""
        codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
        if codes & _AUTH_CODES or _AUTH_WORDS.search(text):
            return self.http.fail(AuthError(f"RunPod rejected the API key at POST {self.url}: {text}"))
        return self.http.fail(ApiError(f"POST {self.url}: GraphQL query {operation} failed{at}: {text}"))

    def _myself(self, data: Mapping[str, Any], operation: str) -> Mapping[str, Any]:
        myself = data.get("myself")
        if not isinstance(myself, Mapping):
            raise self.http.fail(
                AuthError(f"RunPod rejected the API key at POST {self.url}: query {operation} answered myself: null")
            )
        return myself

    def _rows(self, rows: Any, operation: str) -> list[dict[str, Any]]:
        if not isinstance(rows, list) or not all(
            isinstance(row, Mapping) and isinstance(row.get("id"), str) and row["id"] for row in rows
        ):
            raise self.http.fail(ApiError(f"POST {self.url}: query {operation}: expected a list of endpoints with ids"))
        return [dict(row) for row in rows]

    async def list_endpoints(self) -> list[dict[str, Any]]:
        """``myself { endpoints }``: at most :data:`ENDPOINTS_CAP` endpoints, oldest first."""
        data = await self._query("endpoints", "Endpoints")
        return self._rows(self._myself(data, "Endpoints").get("endpoints"), "Endpoints")

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        """``myself { endpoint(id:) }``: one endpoint, or None when the account has no such endpoint."""
        data = await self._query("endpoint", "Endpoint", {"id": endpoint_id})
        row = self._myself(data, "Endpoint").get("endpoint")
        if row is None:
            return None
        rows = self._rows([row], f"Endpoint(id: {endpoint_id})")
        if rows[0]["id"] != endpoint_id:
            raise self.http.fail(
                ApiError(f"POST {self.url}: query Endpoint(id: {endpoint_id}) answered endpoint {rows[0]['id']}")
            )
        return rows[0]

    async def get_endpoints(self, endpoint_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Read several endpoints by id, many per request (aliased batches), concurrently within the run's bound.

        One id is read with the plain ``Endpoint`` query. A batch refused as too complex is split (down to one
        endpoint per document); a field the server rejects is dropped and the batch sent again, as in every query.
        """
        ids = list(dict.fromkeys(endpoint_ids))
        progress_phase("reading endpoints", len(ids))
        if len(ids) <= 1:
            return {i: await self.get_endpoint(i) for i in ids}
        try:
            batch = await read_batched(ids, self._send_batch, fragment=self.fragment.text, size=self.batch_size)
        except BatchError as exc:
            if exc.errors:
                raise self._query_error(OPERATION, exc.errors, str(exc)) from None
            raise self.http.fail(ApiError(f"POST {self.url}: {exc}")) from None
        self.batch_size = batch.size
        self.batch_requests += batch.requests
        if batch.shrunk and not self._shrink_noted:
            self._shrink_noted = True
            self.notes.append(
                f"the GraphQL API refused {batch.refused} batched read(s) as too complex: "
                f"read {batch.size} endpoint(s) per request instead"
            )
        return batch.records

    async def _send_batch(self, document: str, variables: dict[str, str]) -> Mapping[str, Any]:
        """Send one aliased batch; drift drops the field (then :class:`Rebuild`), rate-limit errors are retried."""
        payload = {"query": document, "variables": variables, "operationName": OPERATION}
        attempt = 0
        while True:
            response = await self.http.request("POST", self.url, api="graphql", json_body=payload, passthrough=(400,))
            if response.status_code == 400 and is_html(response):
                raise self.http.error_for("POST", self.url, response, "graphql")
            doc = self.http.decode("POST", self.url, response)
            if not isinstance(doc, Mapping):
                status = response.status_code
                raise self.http.fail(ApiError(f"POST {self.url}: HTTP {status}: not a GraphQL answer", status=status))
            raw = doc.get("errors")
            errors = (
                [e if isinstance(e, Mapping) else {"message": str(e)} for e in raw] if isinstance(raw, list) else []
            )
            if raw and not errors:
                errors = [{"message": str(raw)}]
            if not errors:
                data = doc.get("data")
                if not isinstance(data, Mapping):
                    raise self.http.fail(ApiError(f"POST {self.url}: query {OPERATION}: the answer has no data"))
                self._myself(data, OPERATION)
                progress_advance(len(variables))
                return doc
            if is_too_complex(errors):
                return doc  # read_batched splits the batch
            if self._drop_rejected(errors, OPERATION):
                raise Rebuild
            attempt += 1
            if self._retryable(errors) and attempt < self.http.policy.read_attempts:
                self.http.counters.retries += 1
                await self.http.policy.sleep(self.http.policy.backoff(attempt))
                continue
            raise self._query_error(OPERATION, errors, "the batched read failed")

    async def read_endpoints(
        self, rest_ids: Callable[[], Awaitable[Sequence[str]]] | None = None, *, always_list: bool = False
    ) -> list[dict[str, Any]]:
        """Every endpoint of the account, past the :data:`ENDPOINTS_CAP` rows of ``myself { endpoints }``.

        ``rest_ids`` lists the account's endpoint ids through REST; it is called when the GraphQL list is
        full (or always, with ``always_list``), and the endpoints it names that the list lacks are read by id in
        aliased batches.
        """
        progress_phase("reading endpoints")
        rows = await self.list_endpoints()
        if rest_ids is None or (len(rows) < ENDPOINTS_CAP and not always_list):
            if len(rows) >= ENDPOINTS_CAP:
                self.notes.append(
                    f"GraphQL returned {len(rows)} endpoints, its cap: there may be more, and no REST list was read"
                )
            return rows
        known = {row["id"] for row in rows}
        missing = [i for i in await rest_ids() if i not in known]
        found = await self.get_endpoints(missing)
        gone = [i for i, row in found.items() if row is None]
        if gone:
            self.notes.append(
                f"{len(gone)} endpoint(s) listed by REST are unknown to GraphQL (deleted meanwhile?): "
                + ", ".join(gone[:5])
            )
        return rows + [row for row in found.values() if row is not None]

    async def pools(self) -> dict[str, list[str]]:
        """``serverlessGpuPools``: pool id → GPU type ids, in the server's order."""
        data = await self._query("pools", "ServerlessGpuPools")
        raw = data.get("serverlessGpuPools")
        pools: dict[str, list[str]] = {}
        if isinstance(raw, list):
            for item in raw:
                if (
                    isinstance(item, Mapping)
                    and isinstance(item.get("id"), str)
                    and isinstance(item.get("gpuTypeIds"), list)
                    and all(isinstance(t, str) for t in item["gpuTypeIds"])
                ):
                    pools[item["id"]] = list(item["gpuTypeIds"])
                else:
                    raise self.http.fail(
                        ApiError(f"POST {self.url}: serverlessGpuPools: expected {{id, gpuTypeIds: [string]}} items")
                    )
        if not pools:
            raise self.http.fail(ApiError(f"POST {self.url}: serverlessGpuPools answered no pools"))
        for pool_id, members in pools.items():
            problem = pool_id_problem(pool_id) or member_problem(members)
            if problem:
                raise self.http.fail(ApiError(f"POST {self.url}: serverlessGpuPools: {problem}"))
        return pools
