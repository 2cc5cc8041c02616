"""Reading an answer's body with a cap on its decoded size, so a hostile server cannot exhaust memory.

A 2 MB gzip answer can expand to gigabytes. :func:`read_answer` reads a streamed ``httpx`` response's raw
bytes and decodes ``gzip``/``deflate`` itself with a bounded output (``zlib`` ``max_length``), so no more than
``limit`` bytes (plus one chunk) are ever held, however well the answer compresses; any other encoding goes
through httpx's decoders with the same cap. Past the cap it raises an :class:`~bridge.errors.ApiError` naming
the URL.

The HTTP layer uses it as::

    response = await client.send(client.build_request(method, url, ...), stream=True)
    try:
        response = await capped_response(response, where=f"{method} {url}")
    finally:
        await response.aclose()  # (of the streamed one)
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, Callable

import httpx

from bridge.errors import ApiError

__all__ = ["MAX_ANSWER_BYTES", "capped_response", "read_answer", "read_capped"]

MAX_ANSWER_BYTES = 64 * 1024 * 1024


def _too_large(where: str, limit: int) -> ApiError:
    size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit} bytes"
    return ApiError(f"{where}: the answer is larger than {size} once decoded; bridge stopped reading it")


async def read_capped(chunks: AsyncIterable[bytes], *, where: str, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """Join ``chunks`` (e.g. ``response.aiter_bytes()``), raising once more than ``limit`` bytes arrived."""
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(where, limit)
        parts.append(chunk)
    return b"".join(parts)


class _Inflate:
    """One gzip or deflate layer, decoding at most ``room`` bytes per call; gzip members may follow each other."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        self._first = True
        self._d = self._new()

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: Callable[[], int], sink: Callable[[bytes], None]) -> None:
        while data:
            try:
                out = self._d.decompress(data, room())
            except zlib.error:
                if self._gzip or not self._first:
                    raise
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, as some servers do
                self._first = False
                continue
            self._first = False
            sink(out)
            data = self._d.unconsumed_tail
            if self._d.eof and self._d.unused_data:  # another gzip member follows
                data = self._d.unused_data
                self._d = self._new()


def _layer(inflate: _Inflate, room: Callable[[], int], inner: Callable[[bytes], None]) -> Callable[[bytes], None]:
    return lambda data: inflate.feed(data, room, inner)


async def read_answer(response: httpx.Response, *, where: str, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """Read a streamed response's decoded body, holding no more than ``limit`` bytes of it."""
    try:
        content = response.content  # already read (a response built in memory): only the cap to check
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise _too_large(where, limit)
        return content
    encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",") if e.strip()]
    layers = [e for e in encodings if e != "identity"]
    if any(e not in ("gzip", "deflate") for e in layers):  # br, zstd: httpx decodes, chunk by chunk
        return await read_capped(response.aiter_bytes(), where=where, limit=limit)
    parts: list[bytes] = []
    total = 0

    def room() -> int:
        return limit - total + 1  # one byte more than allowed tells "too large" from "exactly the limit"

    def collect(data: bytes) -> None:
        nonlocal total
        total += len(data)
        if total > limit:
            raise _too_large(where, limit)
        parts.append(data)

    # Encodings are listed in the order they were applied: undo the last one first.
    feed: Callable[[bytes], None] = collect
    for encoding in layers:
        feed = _layer(_Inflate(encoding), room, feed)
    try:
        async for chunk in response.aiter_raw():
            feed(chunk)
    except zlib.error as exc:
        raise ApiError(f"{where}: the answer's {'/'.join(layers)} encoding is broken ({exc})") from None
    return b"".join(parts)


async def capped_response(response: httpx.Response, *, where: str, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """A read, decoded copy of a streamed ``response`` (no ``Content-Encoding`` left), or ``ApiError`` past
    ``limit``."""
    body = await read_answer(response, where=where, limit=limit)
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request, extensions=response.extensions
    )
