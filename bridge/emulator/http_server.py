"""The emulator's HTTP server: connections, request plumbing, routing, auth and faults.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1 speaking HTTP/1.1 with keep-alive: one thread per
connection, so a per-request latency (a sleep in the handler thread) scales with the client's
concurrency. Each response goes out in one ``send`` (no Nagle stalls on keep-alive connections).

Order of checks for every API request (``/graphql``, ``/v1``, ``/v2``; never ``/_emulator``):
log -> latency -> ``retire_v1`` (410) -> auth (401) -> ``rate_limit`` (429) -> ``fail_every`` (503) -> the API
(``routes.py``), and for a write that succeeded, ``drop_every`` (applied, then the connection is closed unanswered).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bridge.emulator import routes
from bridge.emulator.replies import PROBLEM_TITLES, Reply, error_reply, v1_error

if TYPE_CHECKING:
    from bridge.emulator.server import Emulator

__all__ = ["HOST", "EmulatorServer"]

_log = logging.getLogger("bridge.emulator")

HOST = "127.0.0.1"
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 120.0


class EmulatorServer(ThreadingHTTPServer):
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
    server: EmulatorServer

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

    def _send(self, reply: Reply, entry: dict[str, Any] | None) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        phrase = PROBLEM_TITLES.get(reply.status, "")
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
            self._send(Reply(411 if "chunked" in self.headers.get("Transfer-Encoding", "") else 413), None)
            return
        if path.startswith("/_emulator"):
            self._send(routes.admin(emulator, method, path, body), None)
            return
        if path == "/graphql":
            api = "graphql"
        elif path == "/v1" or path.startswith("/v1/"):
            api = "v1"
        elif path == "/v2" or path.startswith("/v2/"):
            api = "v2"
        else:
            self._send(Reply(404, {"error": f"no such path: {path}", "status": 404}), None)
            return
        entry = emulator._record_request(api, method, url.path, url.query, dict(self.headers.items()), body)
        try:
            reply = self._api(api, method, path, query, body)
        except Exception as exc:  # a bug in the emulator: answer 500 rather than hang the client
            _log.exception("emulator error on %s %s", method, self.path)
            reply = error_reply(api, 500, f"emulator error: {exc}", "INTERNAL_SERVER_ERROR")
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

    def _api(self, api: str, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> Reply:
        emulator = self.server.emulator
        faults = emulator.faults
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000.0)
        if api == "v1" and faults.retire_v1:
            return v1_error(410, "REST API v1 has been retired")
        key = self._key(api, query)
        if not key or (emulator.api_key is not None and not hmac.compare_digest(key, emulator.api_key)):
            detail = "missing bearer token" if not key else "invalid bearer token"
            return error_reply(api, 401, f"Unauthorized: {detail}", "UNAUTHENTICATED")
        rate = emulator.counters.decide(faults)
        headers = rate.headers() if api == "v2" and faults.rate_headers else []
        if not rate.allowed:
            reply = error_reply(api, 429, rate.detail, "RATE_LIMITED")
        elif emulator.counters.fail(faults.fail_every):
            reply = error_reply(api, 503, "service unavailable", "SERVICE_UNAVAILABLE")
        elif api == "graphql":
            reply = routes.graphql(emulator, method, query, body)
        elif api == "v1":
            reply = routes.v1(emulator, method, path, query, body)
        else:
            reply = routes.v2(emulator, method, path, query, body)
        if not rate.allowed:
            reply.headers.append(("Retry-After", str(rate.reset_s)))
        reply.headers.extend(headers)
        if reply.write and emulator.counters.drop(faults.drop_every):
            reply.drop = True
        return reply
