"""Hostile answers through the run's Http (issue 15): decompression bombs, trickling servers, escaped keys,
non-UTF-8 bodies, terminal escapes, names that do not resolve. Each class is attacked with several variants."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers import VirtualTime
from mock_api import KEY, SETTINGS, policy

from bridge.config import Settings
from bridge.errors import ApiError, WriteOutcomeUnknown
from bridge.http import Http
from bridge.http.retry import NameNotResolved

URL = "https://rest.runpod.io/v1/endpoints/ep1"
LIMIT = 64 * 1024  # a small cap for the tests: the same code path as the 64 MB default


class _Raw(httpx.AsyncByteStream):
    """A body sent as it is, in chunks (not pre-read, like an answer off the network)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _bomb(encoding: str, size: int) -> bytes:
    zeros = b"0" * size
    if encoding == "gzip":
        return gzip.compress(zeros)
    if encoding == "deflate":
        return zlib.compress(zeros)
    if encoding == "gzip, gzip":  # applied twice: the outer layer is tiny, the inner one explodes
        return gzip.compress(gzip.compress(zeros))
    raise AssertionError(encoding)


def _get(handler: Any, *, settings: Settings = SETTINGS, limit: int = LIMIT, write: bool = False) -> Any:
    vt = VirtualTime()

    async def main() -> Any:
        async with Http(
            settings, policy=policy(vt), transport=httpx.MockTransport(handler), max_answer_bytes=limit
        ) as http:
            response = await http.request("POST" if write else "GET", URL, api="v1", write=write)
            return http.decode("GET", URL, response)

    return asyncio.run(main())


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "gzip, gzip"])
@pytest.mark.parametrize("status", [200, 400, 503])
def test_a_decompression_bomb_stops_at_the_cap_naming_the_url(encoding: str, status: int) -> None:
    """A small compressed answer that decodes past the cap is one error naming the URL, whatever its status,
    and is never retried (the next answer would be the same)."""
    body = _bomb(encoding, LIMIT * 50)
    assert len(body) < LIMIT
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, headers={"content-encoding": encoding}, stream=_Raw([body[:100], body[100:]]))

    with pytest.raises(ApiError, match=rf"GET {URL}: the answer is larger than 64 KB|larger than {LIMIT} bytes"):
        _get(handler)
    assert len(calls) == 1


def test_an_uncompressed_answer_past_the_cap_is_refused_and_one_at_the_cap_is_read() -> None:
    big = b'{"id": "' + b"x" * LIMIT + b'"}'
    with pytest.raises(ApiError, match=rf"GET {URL}: the answer is larger than"):
        _get(lambda r: httpx.Response(200, stream=_Raw([big[:1000], big[1000:]])))
    fits = b'{"id":"' + b"x" * (LIMIT - 10) + b'"}'
    assert len(fits) <= LIMIT
    assert _get(lambda r: httpx.Response(200, headers={"content-encoding": "gzip"}, stream=_Raw([gzip.compress(fits)])))


def test_a_broken_encoding_is_one_line() -> None:
    with pytest.raises(ApiError, match=rf"GET {URL}: the answer's gzip encoding is broken"):
        _get(lambda r: httpx.Response(200, headers={"content-encoding": "gzip"}, stream=_Raw([b"not gzip at all"])))


def _escaped_forms(key: str) -> list[str]:
    return [
        key,
        "".join(f"\\u{ord(c):04x}" for c in key),  # every character \u-escaped inside the JSON string
        quote(key, safe=""),
        "".join(f"%{ord(c):02X}" for c in key),  # every character percent-encoded
        key[:30] + "\\u0000" + key[30:],  # cut by an escape
    ]


@pytest.mark.parametrize("form", range(5))
@pytest.mark.parametrize("status", [400, 404, 500])
def test_the_key_in_an_error_detail_never_reaches_the_message(form: int, status: int) -> None:
    """A detail echoing the key, raw, \\u-escaped or percent-encoded, long enough to be clipped, is scrubbed
    before the clip: no piece of the key is left in the message."""
    key = "rpa_" + "K3Y9" * 10
    settings = Settings(api_key=key, rest_url="https://rest.runpod.io/v1", concurrency=2)
    padding = "x" * 280  # the key sits across the 300-character clip
    body = ('{"detail": "' + padding + _escaped_forms(key)[form] + ' tail"}').encode()
    with pytest.raises(ApiError) as caught:
        _get(lambda r: httpx.Response(status, content=body), settings=settings)
    message = str(caught.value)
    assert "K3Y9K3Y9" not in message and "%4B" not in message and "\\u004b" not in message.lower()
    assert f"HTTP {status}" in message


@pytest.mark.parametrize(
    "body",
    [
        b'{"detail": "bad \x1b[31mred\x1b[0m \x1b]0;title\x07 name"}',
        b"plain \x1b[2J\x1b[H text with \x9b31m C1",
        '{"detail": "rtl \u202e reversed \u2066"}'.encode(),
        b'{"detail": "escaped \\u001b[31m inside JSON"}',
        b"\xff\xfe not utf-8 \x1b[1m bold \xc3",
    ],
)
def test_terminal_escapes_and_non_utf8_in_answers_are_escaped(body: bytes) -> None:
    """Control characters and bidi overrides from an answer never reach a message raw; bytes that are not
    UTF-8 become U+FFFD, not a crash."""
    with pytest.raises(ApiError) as caught:
        _get(lambda r: httpx.Response(400, content=body))
    message = str(caught.value)
    assert not any(c in message for c in "\x1b\x07\x9b\u202e\u2066"), message
    assert "HTTP 400" in message


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"<html>\x1b[31m</html>", b"not json " + b"y" * 500])
def test_a_2xx_that_is_not_json_is_one_safe_line(body: bytes) -> None:
    with pytest.raises(ApiError, match=rf"GET {URL}: HTTP 200: ") as caught:
        _get(lambda r: httpx.Response(200, content=body))
    assert "\x1b" not in str(caught.value) and len(str(caught.value)) < 300


@pytest.mark.parametrize("cause", [socket.gaierror(-2, "Name or service not known"), None])
def test_a_name_that_does_not_resolve_is_not_retried(cause: BaseException | None) -> None:
    """DNS failures (aiohttp's, mapped to NameNotResolved, or httpcore's gaierror) are one line, one attempt."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if cause is None:
            raise NameNotResolved("Cannot connect to host rest.runpod.io:443 ssl:default [Name or service not known]")
        raise httpx.ConnectError("[Errno -2] Name or service not known") from cause

    with pytest.raises(
        ApiError, match=rf"GET {URL}: cannot resolve the host name \(.*Name or service not known"
    ) as caught:
        _get(handler)
    assert len(calls) == 1 and "gave up" not in str(caught.value)


def test_a_refused_connection_is_still_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(ApiError, match="gave up after 5 attempts"):
        _get(handler)
    assert len(calls) == 5


@pytest.fixture
def trickle() -> Iterator[tuple[str, list[int]]]:
    """A loopback server that answers every request one byte every 50 ms, for ever; counts the connections."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(0.05):
                    conn.sendall(b" ")
            except OSError:
                return

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connections
    stop.set()
    server.close()


@pytest.mark.parametrize("write", [False, True])
def test_a_trickling_server_meets_one_deadline_over_all_attempts(trickle: tuple[str, list[int]], write: bool) -> None:
    """Each byte arrives within the read timeout, so only the request's deadline (timeout x 3, shared by every
    attempt) stops it: one attempt, not five of the full deadline each. A write's outcome is then unknown."""
    base, connections = trickle
    settings = Settings(api_key=KEY, rest_url=f"{base}/v1", concurrency=2, timeout=0.3)

    async def main() -> None:
        async with Http(settings) as http:  # the real transport (aiohttp) over a real socket
            await http.request("POST" if write else "GET", f"{base}/v1/endpoints/ep1", api="v1", write=write)

    loop_start = asyncio.new_event_loop()
    try:
        started = loop_start.time()
        expected: type[Exception] = WriteOutcomeUnknown if write else ApiError
        with pytest.raises(expected, match=r"timed out|no complete answer"):
            loop_start.run_until_complete(main())
        elapsed = loop_start.time() - started
    finally:
        loop_start.close()
    assert len(connections) == 1
    assert elapsed < 0.3 * 3 * 2  # the deadline, with room for a busy machine; five deadlines would be 4.5 s


@pytest.mark.parametrize("length", ["declared", "undeclared"])
def test_the_cap_holds_with_and_without_a_content_length(length: str) -> None:
    big = b'{"id": "' + b"x" * (LIMIT * 3) + b'"}'

    def handler(request: httpx.Request) -> httpx.Response:
        if length == "declared":
            return httpx.Response(200, content=big)  # Content-Length: past the cap
        return httpx.Response(200, stream=_Raw([big[i : i + 4096] for i in range(0, len(big), 4096)]))

    with pytest.raises(ApiError, match=rf"GET {URL}: the answer is larger than"):
        _get(handler)
