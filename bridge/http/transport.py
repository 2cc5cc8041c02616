"""httpx's transport interface over aiohttp (the ``httpx-aiohttp`` package), with the errors bridge's retries need.

Why: httpcore's async pool costs about 0.4 ms of CPU per request more than aiohttp on the same requests; see
``benchmarks/http_path.py`` and the README's Performance section. The session keeps httpx's ``Request`` and
``Response`` (and ``httpx.MockTransport`` in unit tests); only the transport changes.

httpx-aiohttp 0.2 maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, including a server that
closed the connection after reading a request: bridge counts a connect timeout as "never sent" and would send a
write again that may have been applied. :class:`Transport` maps aiohttp's errors by what they say happened:

=========================================================  ===========================  ==================
aiohttp (the ``__cause__`` of httpx-aiohttp's error)        raised here                  the request
=========================================================  ===========================  ==================
``ClientConnectorDNSError`` (the name did not resolve)     ``NameNotResolved``          was not sent
``ClientProxyConnectionError``, ``ClientHttpProxyError``    ``httpx.ProxyError``         was not sent
``ClientConnectorError`` (refused, TLS handshake)           ``httpx.ConnectError``       was not sent
``ConnectionTimeoutError`` (connect, or a free connection)  ``httpx.ConnectTimeout``     was not sent
``SocketTimeoutError`` / other ``ServerTimeoutError``       ``httpx.ReadTimeout``        may have been
``ServerDisconnectedError``                                 ``httpx.RemoteProtocolError``  may have been
``ClientPayloadError``, ``ClientOSError``, other errors     ``httpx.ReadError``          may have been
=========================================================  ===========================  ==================

The same mapping applies while the answer's body is read.

:func:`session_transport` builds the run's transport: one aiohttp pool for direct traffic, and, when the
environment names a proxy for the run's ``https://`` origins (:mod:`bridge.http.proxies`, resolved once per session),
one proxied transport per such origin (a SOCKS proxy through httpx's own transport, which supports it).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable, Mapping

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.http.retry import NameNotResolved

__all__ = ["NameNotResolved", "Routed", "Transport", "map_error", "session_transport"]


def _dns(exc: aiohttp.ClientConnectorError) -> bool:
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)  # aiohttp 3.11+
    if dns_error is not None and isinstance(exc, dns_error):
        return True
    return isinstance(exc.os_error, socket.gaierror)


def map_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one (see the table above), or None when ``exc`` is not aiohttp's."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(text)
    if isinstance(exc, aiohttp.ClientConnectorError) and _dns(exc):
        return NameNotResolved(text)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.ReadError(text)
    return None


def _remapped(exc: httpx.TransportError) -> httpx.TransportError:
    cause = exc.__cause__
    mapped = map_error(cause) if cause is not None else None
    if mapped is None:
        return exc
    mapped.__cause__ = cause  # keeps an ssl error reachable for the TLS diagnosis
    return mapped


class _Stream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise _remapped(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise map_error(exc) or httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class Transport(AiohttpTransport):
    """``httpx_aiohttp.AiohttpTransport`` whose errors say whether the request may have reached the server.

    Build it with ``limits=httpx.Limits(max_connections=N)``: aiohttp's connector keeps one pool of ``N``.
    Its ``aiohttp.ClientSession`` is created on the first request, inside the running event loop; close it
    with ``aclose()`` (an ``httpx.AsyncClient`` given the transport does that).
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise _remapped(exc) from exc.__cause__
        except aiohttp.ClientError as exc:  # one httpx-aiohttp does not map (a malformed answer)
            raise map_error(exc) or httpx.ReadError(str(exc)) from exc
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Stream(response.stream)
        return response


class Routed(httpx.AsyncBaseTransport):
    """Send each request through the transport mounted for its origin (``https://host[:port]``), else ``direct``."""

    def __init__(self, direct: httpx.AsyncBaseTransport, mounts: Mapping[str, httpx.AsyncBaseTransport]) -> None:
        self.direct = direct
        self.mounts = dict(mounts)

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The transport for ``url``."""
        if not self.mounts:
            return self.direct
        host = f"[{url.host}]" if ":" in url.host else url.host
        origin = f"{url.scheme}://{host}" + (f":{url.port}" if url.port else "")
        return self.mounts.get(origin, self.direct)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self.direct, *self.mounts.values()):
            await transport.aclose()


def _proxied(proxy: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if proxy.startswith("socks"):  # aiohttp has no SOCKS; httpx's transport has, with socksio (checked before)
        return httpx.AsyncHTTPTransport(proxy=proxy, limits=limits, trust_env=False)
    return Transport(limits=limits, proxy=httpx.Proxy(proxy), trust_env=False)


def session_transport(
    urls: Iterable[str], *, limits: httpx.Limits, environ: Mapping[str, str] | None = None
) -> httpx.AsyncBaseTransport:
    """The transport of one run: aiohttp's pool, direct, with the environment's proxy for ``https://`` origins
    only (the key then travels inside the CONNECT tunnel; cleartext loopback never goes through a proxy)."""
    from bridge.http.proxies import env_proxies

    mounts = {origin: _proxied(proxy, limits) for origin, proxy in env_proxies(urls, environ).items()}
    direct = Transport(limits=limits, trust_env=False)
    return Routed(direct, mounts) if mounts else direct
