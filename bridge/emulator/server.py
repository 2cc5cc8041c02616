"""The HTTP side of the emulator: routing, auth, faults, the request log, and the ``Emulator`` handle.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1 speaking HTTP/1.1 with keep-alive: one thread per
connection, so a per-request latency (a sleep in the handler thread) scales with the client's
concurrency. Each response goes out in one ``send`` (no Nagle stalls on keep-alive connections).

The v2 catalogs (``/v2/catalog/{gpus,datacenters,cpus}``) are answered by ``catalog.py``.
Order of checks for every API request (``/graphql``, ``/v1``, ``/v2``; never ``/_emulator``):
log -> latency -> ``retire_v1`` (410) -> auth (401) -> ``rate_limit`` (429) -> ``fail_every`` (503) -> the API,
and for a write that succeeded, ``drop_every`` (applied, then the connection is closed unanswered).
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import copy
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bridge.emulator.catalog import Catalog, CatalogError
from bridge.emulator.faults import FaultCounters, Faults
from bridge.emulator.graphql_api import GraphQLApi
from bridge.emulator.schemas import v1_update_errors, v2_update_errors
from bridge.emulator.state import (
    Account,
    Record,
    RuleError,
    UnknownEndpointError,
    ViewOptions,
    is_cpu,
    load_seed,
)

__all__ = ["Emulator"]

_log = logging.getLogger("bridge.emulator")

HOST = "127.0.0.1"
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 120.0
PROBLEM = "application/problem+json"
JSON = "application/json"

_PROBLEM_TITLES = {status.value: status.phrase for status in HTTPStatus}


@dataclass
class _Reply:
    status: int
    body: Any = None
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    write: bool = False  # an applied write: drop_every counts it
    drop: bool = False


def _v1_error(status: int, message: str) -> _Reply:
    return _Reply(status, {"error": message, "status": status})


def _problem(status: int, detail: str, errors: Sequence[str] | None = None) -> _Reply:
    body: dict[str, Any] = {"title": _PROBLEM_TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = list(errors)
    return _Reply(status, body, PROBLEM)


def _gql_error(status: int, message: str, code: str) -> _Reply:
    return _Reply(status, {"errors": [{"message": message, "extensions": {"code": code}}]})


def _error_reply(api: str, status: int, message: str, code: str) -> _Reply:
    if api == "v1":
        return _v1_error(status, message)
    if api == "v2":
        return _problem(status, message)
    return _gql_error(status, message, code)


def _json_body(raw: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return False, None


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        return None
    return int(number)


class _Server(ThreadingHTTPServer):
    """A threading server that can close its open keep-alive connections and join their threads."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # the default 5 resets connections when many clients connect at once

    def __init__(self, port: int, emulator: Emulator) -> None:
        self.emulator = emulator
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__((HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"emulator-conn-{client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._conns[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut down every open connection and wait for its thread to finish."""
        with self._conn_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runpod-emulator/1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the library never prints (the request log is in ``Emulator.requests``)."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing -----------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply, entry: dict[str, Any] | None) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        phrase = _PROBLEM_TITLES.get(reply.status, "")
        lines = [f"HTTP/1.1 {reply.status} {phrase}", f"Server: {self.server_version}"]
        if payload or reply.status not in (204, 304):
            lines += [f"Content-Type: {reply.content_type}", f"Content-Length: {len(payload)}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if entry is not None:
            self.server.emulator._finish(entry, reply.status, dropped=False)
        self.wfile.write(head + payload)

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query, keep_blank_values=True)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(_Reply(411 if "chunked" in self.headers.get("Transfer-Encoding", "") else 413), None)
            return
        if path.startswith("/_emulator"):
            self._send(self._admin(method, path, body), None)
            return
        if path == "/graphql":
            api = "graphql"
        elif path == "/v1" or path.startswith("/v1/"):
            api = "v1"
        elif path == "/v2" or path.startswith("/v2/"):
            api = "v2"
        else:
            self._send(_Reply(404, {"error": f"no such path: {path}", "status": 404}), None)
            return
        entry = emulator._record_request(api, method, url.path, url.query, dict(self.headers.items()), body)
        try:
            reply = self._api(api, method, path, query, body)
        except Exception as exc:  # a bug in the emulator: answer 500 rather than hang the client
            _log.exception("emulator error on %s %s", method, self.path)
            reply = _error_reply(api, 500, f"emulator error: {exc}", "INTERNAL_SERVER_ERROR")
        if reply.drop:
            emulator._finish(entry, None, dropped=True)
            self.close_connection = True  # applied, then closed without a byte of answer
            return
        self._send(reply, entry)

    # -- API ----------------------------------------------------------------------------------------

    def _key(self, api: str, query: Mapping[str, list[str]]) -> str:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if api == "graphql":  # GraphQL also takes ?api_key= (RunPod still documents it); REST does not
            return (query.get("api_key") or [""])[0].strip()
        return ""

    def _api(self, api: str, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> _Reply:
        emulator = self.server.emulator
        faults = emulator.faults
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000.0)
        if api == "v1" and faults.retire_v1:
            return _v1_error(410, "REST API v1 has been retired")
        key = self._key(api, query)
        if not key or (emulator.api_key is not None and not hmac.compare_digest(key, emulator.api_key)):
            detail = "missing bearer token" if not key else "invalid bearer token"
            return _error_reply(api, 401, f"Unauthorized: {detail}", "UNAUTHENTICATED")
        rate = emulator.counters.decide(faults)
        headers = rate.headers() if api == "v2" else []
        if not rate.allowed:
            reply = _error_reply(api, 429, rate.detail, "RATE_LIMITED")
        elif emulator.counters.fail(faults.fail_every):
            reply = _error_reply(api, 503, "service unavailable", "SERVICE_UNAVAILABLE")
        elif api == "graphql":
            reply = self._graphql(method, query, body)
        elif api == "v1":
            reply = self._v1(method, path, query, body)
        else:
            reply = self._v2(method, path, query, body)
        if not rate.allowed:
            reply.headers.append(("Retry-After", str(rate.reset_s)))
        reply.headers.extend(headers)
        if reply.write and emulator.counters.drop(faults.drop_every):
            reply.drop = True
        return reply

    def _graphql(self, method: str, query: Mapping[str, list[str]], body: bytes) -> _Reply:
        if method == "GET":
            request: Any = {"query": (query.get("query") or [""])[0]}
            if query.get("operationName"):
                request["operationName"] = query["operationName"][0]
            if query.get("variables"):
                ok, request["variables"] = _json_body(query["variables"][0].encode())
                if not ok:
                    return _gql_error(400, "`variables` is not valid JSON", "BAD_REQUEST")
        elif method == "POST":
            ok, request = _json_body(body)
            if not ok:
                return _gql_error(400, "POST body is not valid JSON", "BAD_REQUEST")
        else:
            reply = _gql_error(405, f"{method} is not supported: use POST", "METHOD_NOT_ALLOWED")
            reply.headers.append(("Allow", "GET, POST"))
            return reply
        emulator = self.server.emulator
        status, result = emulator.graphql.execute(request, max_complexity=emulator.faults.graphql_max_complexity)
        return _Reply(status, result)

    def _v1(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> _Reply:
        account = self.server.emulator.account
        parts = [unquote(p) for p in path.split("/")[2:]]
        template = (query.get("includeTemplate") or ["false"])[0].lower() == "true"
        workers = (query.get("includeWorkers") or ["false"])[0].lower() == "true"
        if parts == ["endpoints"]:
            if method != "GET":
                return _v1_error(405, f"{method} /v1/endpoints is not supported by the emulator")
            views = [account.v1_view(rec, include_template=template) for rec in account.ordered()]
            if workers:
                for view in views:
                    view["workers"] = []
            return _Reply(200, views)
        if len(parts) == 2 and parts[0] == "endpoints" and method in ("GET", "PATCH"):
            endpoint_id = parts[1]
            if method == "GET":
                record = account.find(endpoint_id)
                if record is None:
                    return _v1_error(404, "endpoint not found")
                view = account.v1_view(record, include_template=template)
                if workers:
                    view["workers"] = []
                return _Reply(200, view)
            return self._v1_update(endpoint_id, body)
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "update" and method == "POST":
            return self._v1_update(parts[1], body)
        if parts[:1] == ["endpoints"] and len(parts) in (2, 3):
            return _v1_error(405, f"{method} is not allowed on {path}")
        return _v1_error(404, f"no such path: {path}")

    def _v1_update(self, endpoint_id: str, body: bytes) -> _Reply:
        account = self.server.emulator.account
        if account.find(endpoint_id) is None:
            return _v1_error(404, "endpoint not found")
        ok, data = _json_body(body)
        if not ok:
            return _v1_error(400, "invalid input: the body is not valid JSON")
        errors = v1_update_errors(data, {"dataCenterIds": account.dc_ids, "gpuTypeIds": account.known_types})
        if errors:
            return _v1_error(400, "invalid input: " + "; ".join(errors))
        try:
            record = account.apply_v1(endpoint_id, data)
        except UnknownEndpointError:
            return _v1_error(404, "endpoint not found")
        except RuleError as exc:
            return _v1_error(400, f"invalid input: {exc}")
        return _Reply(200, account.v1_view(record), write=True)

    def _v2(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> _Reply:
        emulator = self.server.emulator
        account = emulator.account
        parts = [unquote(p) for p in path.split("/")[2:]]
        if parts[:1] == ["catalog"]:
            return self._catalog(method, parts, query)
        if parts == ["serverless"]:
            if method != "GET":
                reply = _problem(405, "The requested method is not allowed for this path.")
                reply.headers.append(("Allow", "GET"))
                return reply
            return self._v2_list(query)
        if len(parts) == 2 and parts[0] == "serverless":
            endpoint_id = parts[1]
            if method == "GET":
                record = account.find(endpoint_id)
                if record is None:
                    return _problem(404, "endpoint not found")
                return _Reply(200, account.v2_view(record))
            if method == "PATCH":
                return self._v2_patch(endpoint_id, body)
            reply = _problem(405, "The requested method is not allowed for this path.")
            reply.headers.append(("Allow", "GET, PATCH"))
            return reply
        return _problem(404, f"no such path: {path}")

    def _catalog(self, method: str, parts: list[str], query: Mapping[str, list[str]]) -> _Reply:
        emulator = self.server.emulator
        if not emulator.serve_catalogs or len(parts) != 2 or parts[1] not in ("gpus", "datacenters", "cpus"):
            return _problem(404, f"no such path: /v2/{'/'.join(parts)}")
        if method != "GET":
            reply = _problem(405, "The requested method is not allowed for this path.")
            reply.headers.append(("Allow", "GET"))
            return reply
        try:
            return _Reply(200, emulator.catalog.answer(parts[1], query))
        except CatalogError as exc:
            return _problem(exc.status, str(exc))

    def _v2_list(self, query: Mapping[str, list[str]]) -> _Reply:
        emulator = self.server.emulator
        limit = emulator.v2_page_size
        if query.get("limit"):
            raw = query["limit"][0]
            if not raw.isdigit() or not 1 <= int(raw) <= 1000:
                return _problem(400, "limit must be an integer from 1 to 1000")
            limit = int(raw)
        offset = 0
        if query.get("cursor") and query["cursor"][0]:
            decoded = _decode_cursor(query["cursor"][0])
            if decoded is None:
                return _problem(400, "invalid cursor")
            offset = decoded
        total = len(emulator.account)
        records = emulator.account.ordered(offset, offset + limit)
        next_cursor = _encode_cursor(offset + limit) if offset + limit < total else None
        return _Reply(200, {"endpoints": [emulator.account.v2_view(r) for r in records], "nextCursor": next_cursor})

    def _v2_patch(self, endpoint_id: str, body: bytes) -> _Reply:
        account = self.server.emulator.account
        if account.find(endpoint_id) is None:
            return _problem(404, "endpoint not found")
        ok, data = _json_body(body)
        if not ok:
            return _problem(400, "the request body is not valid JSON")
        errors = v2_update_errors(data)
        if errors:
            return _problem(422, "Request validation failed.", errors)
        try:
            record = account.apply_v2(endpoint_id, data)
        except UnknownEndpointError:
            return _problem(404, "endpoint not found")
        except RuleError as exc:
            return _problem(400, str(exc))
        reply = _Reply(200, account.v2_view(record), write=True)
        if self.server.emulator.faults.wipe_v2_exclusions:
            account.wipe_exclusions(endpoint_id)  # after the answer was made: it shows what was asked for
        return reply

    # -- inspection ---------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> _Reply:
        emulator = self.server.emulator
        if path == "/_emulator/state" and method == "GET":
            return _Reply(200, emulator.snapshot())
        if path == "/_emulator/requests" and method == "GET":
            return _Reply(200, {"requests": emulator.requests})
        if path == "/_emulator/requests" and method == "DELETE":
            return _Reply(200, {"cleared": emulator.clear_requests()})
        if path == "/_emulator/faults" and method == "GET":
            return _Reply(200, emulator.faults.to_dict())
        if path == "/_emulator/faults" and method == "POST":
            ok, data = _json_body(body)
            if not ok or not isinstance(data, dict):
                return _Reply(400, {"error": "the body must be a JSON object of fault settings"})
            try:
                emulator.faults.update(data)
            except (TypeError, ValueError) as exc:
                return _Reply(400, {"error": str(exc)})
            return _Reply(200, emulator.faults.to_dict())
        return _Reply(404, {"error": f"no such path: {method} {path}"})


class Emulator:
    """A local stand-in for RunPod's GraphQL, REST v1 and REST v2 APIs, served on 127.0.0.1.

    >>> with Emulator(api_key="test-key") as emu:          # doctest: +SKIP
    ...     httpx.get(emu.url + "/v1/endpoints", headers={"Authorization": "Bearer test-key"})

    ``snapshot`` is a snapshot file, a parsed snapshot document, or None for the bundled sample account.
    ``pools`` replaces the pool table (default: the snapshot's ``serverlessGpuPools``, else the bundled one).
    ``drop_fields`` removes fields from the GraphQL schema (``"workersStandby"`` or ``"Type.field"``).
    ``catalog_pools`` gives ``GET /v2/catalog/gpus`` its own pool table (default: the same as GraphQL's);
    ``catalogs=False`` answers 404 on ``/v2/catalog/*``, as a server without the catalogs would.
    """

    def __init__(
        self,
        snapshot: str | Path | Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        api_key: str | None = None,
        faults: Faults | None = None,
        pools: Mapping[str, Sequence[str]] | None = None,
        drop_fields: Iterable[str] = (),
        dc_ids_as_string: bool = False,
        omit_flashboot: bool = False,
        v2_page_size: int = 100,
        introspection: bool = False,
        log_limit: int | None = 100_000,
        catalog_pools: Mapping[str, Sequence[str]] | None = None,
        catalogs: bool = True,
    ) -> None:
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must be a non-empty string or None (any key accepted)")
        if v2_page_size < 1:
            raise ValueError("v2_page_size must be >= 1")
        records, seed_pools = load_seed(snapshot)
        options = ViewOptions(dc_ids_as_string=dc_ids_as_string, omit_flashboot=omit_flashboot)
        self.account = Account(records, pools if pools is not None else seed_pools, options=options)
        self.graphql = GraphQLApi(self.account, drop_fields=drop_fields, introspection=introspection)
        self.catalog = Catalog.build(catalog_pools if catalog_pools is not None else self.account.pools)
        self.serve_catalogs = catalogs
        self.api_key = api_key
        self.v2_page_size = v2_page_size
        self.counters = FaultCounters()
        self._faults = faults if faults is not None else Faults()
        self._log_lock = threading.Lock()
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=log_limit)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, port: int = 0) -> Emulator:
        """Listen on 127.0.0.1:``port`` (0 = a free port) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server(port, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-serve", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self if self._server is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point bridge at this emulator (the key is not included)."""
        base = self.url
        return {
            "RUNPOD_GRAPHQL_URL": f"{base}/graphql",
            "RUNPOD_REST_URL": f"{base}/v1",
            "RUNPOD_REST_V2_URL": f"{base}/v2",
        }

    # -- faults -----------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live fault settings: change a field, or assign a new ``Faults``, at any time."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        value.validate()
        self._faults = value

    # -- request log ------------------------------------------------------------------------------

    def _record_request(
        self, api: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": time.time(),
            "api": api,
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "status": None,
            "dropped": False,
        }
        with self._log_lock:
            self._log.append(entry)
        return entry

    def _finish(self, entry: dict[str, Any], status: int | None, *, dropped: bool) -> None:
        with self._log_lock:
            entry["status"] = status
            entry["dropped"] = dropped

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the API request log, oldest first: time, api, method, path, query, headers, body,
        status (None while in flight or when dropped) and dropped."""
        with self._log_lock:
            return [{**entry, "headers": dict(entry["headers"])} for entry in self._log]

    def clear_requests(self) -> int:
        """Empty the request log; return how many entries it had."""
        with self._log_lock:
            count = len(self._log)
            self._log.clear()
        return count

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Record]:
        """A deep copy of every legacy record by id, oldest ``createdAt`` first."""
        return self.account.copy_records()

    def record(self, endpoint_id: str) -> Record:
        """A deep copy of one legacy record. Raises KeyError for an unknown id."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return copy.deepcopy(record)

    def v1_view(self, endpoint_id: str) -> dict[str, Any]:
        """What ``GET /v1/endpoints/{id}`` returns now."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return self.account.v1_view(record)

    def v2_view(self, endpoint_id: str) -> dict[str, Any]:
        """What ``GET /v2/serverless/{id}`` returns now."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return self.account.v2_view(record)

    def write_count(self, endpoint_id: str | None = None) -> int:
        """REST writes applied to one endpoint (or to all when no id is given), dropped ones included."""
        return self.account.write_count(endpoint_id)

    def write_counts(self) -> dict[str, int]:
        """REST writes applied, per endpoint."""
        return self.account.write_counts()

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint (e.g. between a plan and its apply). Raises KeyError for an unknown id."""
        try:
            self.account.delete(endpoint_id)
        except UnknownEndpointError:
            raise KeyError(endpoint_id) from None

    def snapshot(self) -> dict[str, Any]:
        """The current state as a snapshot document (usable as ``bridge plan --from``), plus write counts."""
        records = [{**rec, "computeType": "CPU" if is_cpu(rec) else "GPU"} for rec in self.state.values()]
        return {
            "data": {"myself": {"endpoints": records}, "serverlessGpuPools": self.account.pool_list()},
            "writeCounts": self.write_counts(),
        }
