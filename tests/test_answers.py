"""Answers capped by decoded size: gzip bombs, deflate, stacked encodings and plain floods stop at the cap."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.errors import ApiError
from bridge.http.capped import MAX_ANSWER_BYTES, capped_response, read_answer, read_capped

URL = "https://rest.test/v1/endpoints"
MB = 2**20


def _bomb(size: int, *, wbits: int = 31, members: int = 1) -> bytes:
    """``size`` zero bytes (in ``members`` gzip members, or raw/zlib deflate), compressed ~1000:1."""
    out = b""
    for _ in range(members):
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        block = bytes(MB)
        parts = [c.compress(block) for _ in range(size // members // MB)]
        out += b"".join(parts) + c.flush()
    return out


class _Network(httpx.AsyncByteStream):
    """A body arriving in 64 kB pieces, as from a socket (``content=`` would be read, and decoded, at once)."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._raw), 65536):
            yield self._raw[start : start + 65536]


def _answer(raw: bytes, encoding: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda _: httpx.Response(200, headers={"content-encoding": encoding}, stream=_Network(raw))
    )


async def _read(raw: bytes, encoding: str, limit: int) -> httpx.Response:
    transport = _answer(raw, encoding)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.send(client.build_request("GET", URL), stream=True)
        try:
            return await capped_response(response, where=f"GET {URL}", limit=limit)
        finally:
            await response.aclose()


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (lambda: _bomb(100 * MB), "gzip"),
        (lambda: _bomb(100 * MB, members=50), "gzip"),  # many small members, each under the cap
        (lambda: _bomb(100 * MB, wbits=15), "deflate"),
        (lambda: _bomb(100 * MB, wbits=-15), "deflate"),  # raw deflate
        (lambda: gzip.compress(_bomb(100 * MB)), "gzip, gzip"),  # a bomb inside a bomb
        (lambda: bytes(9 * MB), "identity"),
        (lambda: bytes(9 * MB), ""),
    ],
)
def test_bombs_and_floods_stop_at_the_cap_with_bounded_memory(raw: object, encoding: str) -> None:
    """Past the cap: an ApiError naming the URL; memory stays near the cap, not the decoded size."""
    body = raw()  # type: ignore[operator]
    tracemalloc.start()
    try:
        with pytest.raises(ApiError, match=rf"GET {URL}: the answer is larger than 8 MB once decoded"):
            asyncio.run(_read(body, encoding, 8 * MB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB * 3 + len(body) * 2, peak


def test_default_cap_is_64_mb() -> None:
    """The default cap: 64 MB decoded passes, one byte more does not."""
    assert MAX_ANSWER_BYTES == 64 * MB
    exact = asyncio.run(_read(_bomb(64 * MB), "gzip", MAX_ANSWER_BYTES))
    assert len(exact.content) == 64 * MB and "content-encoding" not in exact.headers
    with pytest.raises(ApiError, match="larger than 64 MB"):
        asyncio.run(_read(gzip.compress(bytes(64 * MB + 1), 1), "gzip", MAX_ANSWER_BYTES))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", "gzip, identity"])
def test_ordinary_answers_are_decoded(encoding: str) -> None:
    """A normal JSON answer comes out decoded, whole, with its status and other headers."""
    doc = b'{"id": "ep1", "name": "' + b"x" * 100_000 + b'"}'
    raw = {
        "gzip": gzip.compress(doc),
        "deflate": zlib.compress(doc),
        "identity": doc,
        "gzip, identity": gzip.compress(doc),
    }
    response = asyncio.run(_read(raw[encoding], encoding, MB))
    assert response.content == doc and response.json()["id"] == "ep1" and response.status_code == 200


def test_broken_gzip_is_an_api_error() -> None:
    """A truncated or garbage gzip body is an ApiError naming the URL, not a zlib traceback."""
    with pytest.raises(ApiError, match=rf"GET {URL}: the answer's gzip encoding is broken"):
        asyncio.run(_read(b"\x1f\x8b\x08\x00garbage" * 10, "gzip", MB))


def test_read_capped_on_any_iterator() -> None:
    """The generic cap counts the bytes of any async iterator (aiter_bytes of another encoding)."""

    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"x" * 1000

    assert len(asyncio.run(read_capped(chunks(5), where="GET u", limit=5000))) == 5000
    with pytest.raises(ApiError, match="GET u: the answer is larger than 4999 bytes"):
        asyncio.run(read_capped(chunks(5), where="GET u", limit=4999))


def test_other_encodings_go_through_httpx_with_the_cap() -> None:
    """An encoding bridge does not decode itself (here an unknown one, passed through) is still capped."""

    async def run() -> bytes:
        transport = httpx.MockTransport(
            lambda _: httpx.Response(200, headers={"content-encoding": "x-odd"}, content=bytes(2 * MB))
        )
        async with httpx.AsyncClient(transport=transport) as client, client.stream("GET", URL) as response:
            return await read_answer(response, where=f"GET {URL}", limit=MB)

    with pytest.raises(ApiError, match="larger than 1 MB"):
        asyncio.run(run())


def test_a_response_already_in_memory_is_checked_too() -> None:
    """A response built from bytes (a test transport, a cache) is measured, not read again."""
    small = httpx.Response(200, content=b"{}")
    assert asyncio.run(read_answer(small, where="GET u", limit=10)) == b"{}"
    with pytest.raises(ApiError, match="GET u: the answer is larger than 1 bytes"):
        asyncio.run(read_answer(small, where="GET u", limit=1))
