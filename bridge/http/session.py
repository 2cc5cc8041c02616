"""The run's HTTP session: one transport, the pacing, the retry loop and the counters (SPEC §8, §9).

Every request of a run (REST and GraphQL alike) goes through one :class:`Http`. The key travels only in the
``Authorization: Bearer`` header; every error message names the method, the URL and the status, and every
message built from an answer is decoded, scrubbed of the key, escaped and only then clipped
(:func:`bridge.redact.safe_message`).

Requests keep httpx's ``Request``/``Response`` API but skip ``httpx.AsyncClient``: :meth:`Http._send` builds the
``httpx.Request`` and hands it to the transport itself. By default that is :class:`bridge.http.transport.Transport`
(httpx-aiohttp, aiohttp's connection pool: see README "The HTTP path"); tests give ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bridge._aio import gather_all
from bridge.config import Settings
from bridge.errors import ApiError, RateLimitedError, TlsError, WriteOutcomeUnknown
from bridge.http.answers import USER_AGENT, Api, error_for, html_reason, is_html
from bridge.http.capped import MAX_ANSWER_BYTES, capped_response
from bridge.http.pacing import Pacer, QuotaWindow
from bridge.http.retry import (
    DEADLINE_FACTOR,
    NOT_APPLIED_RETRY,
    NOT_SENT,
    NameNotResolved,
    RetryPolicy,
    describe_failure,
    is_dns_failure,
    parse_retry_after,
    tls_failure,
)
from bridge.redact import Scrubber, safe_message

__all__ = ["Counters", "Http", "gather_all"]

T = TypeVar("T")

# Messages are scrubbed and escaped whole; only text quoted from an answer is clipped short.
_MESSAGE_LIMIT = 4000

# httpx checks a URL character by character: a run sends a few requests to each endpoint URL (read, write,
# read-back), and a list to the same URL again and again, so each URL is parsed once.
_parsed_url = functools.lru_cache(maxsize=4096)(httpx.URL)

if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # aiohttp brings async-timeout on Python 3.10
    from async_timeout import timeout as _deadline


@dataclass
class Counters:
    """What the run's requests met, for reports and benchmarks."""

    requests: int = 0  # requests sent (every attempt)
    rate_limited: int = 0  # answers with status 429
    retries: int = 0  # attempts made after a failed one
    failures: int = 0  # transport errors and 5xx answers
    by_status: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)  # requests sent: graphql, list, read, write

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON data."""
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "failures": self.failures,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_kind": dict(sorted(self.by_kind.items())),
        }


class Http:
    """The run's transport (one connection pool), with the pacing, retry policy and counters every request
    shares.

    ``transport``: any ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests); by default bridge's
    aiohttp transport, with environment proxies for the run's ``https://`` URLs resolved once, here.
    Use it as an async context manager (or call :meth:`aclose`): the connection pool is closed at the end.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.counters = Counters()
        self.pacer = Pacer(settings.concurrency, clock=self.policy.clock, sleep=self.policy.sleep)
        self.max_answer_bytes = max_answer_bytes
        self.headers = httpx.Headers(
            {"Authorization": f"Bearer {settings.api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        )
        self._timeouts = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)).as_dict()
        self._scrubber = Scrubber([settings.api_key])
        if transport is None:
            from bridge.http.transport import session_transport  # aiohttp: imported only when a run sends

            urls = (settings.graphql_url, settings.rest_url, settings.rest_v2_url)
            pool = settings.concurrency + 4
            transport = session_transport(
                urls, limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            )
        self.transport: httpx.AsyncBaseTransport = transport
        self.is_closed = False

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if not self.is_closed:
            self.is_closed = True
            await self.transport.aclose()

    def quota_status(self) -> list[QuotaWindow]:
        """The server's rate-limit windows as last announced (``RateLimit-Policy``/``RateLimit``): each with its
        limit, what remains and the seconds to its reset; empty until an answer carried them."""
        return self.pacer.quota_status()

    def scrub(self, text: str) -> str:
        """``text`` decoded (JSON and percent escapes), scrubbed of the key and of anything that looks like a
        credential, with control characters escaped."""
        return safe_message(text, self._scrubber, limit=_MESSAGE_LIMIT)

    def quote(self, text: str | bytes, limit: int = 80) -> str:
        """Text from an answer (an id, a cursor, a body) made safe to put in a message, clipped to ``limit``."""
        return safe_message(text, self._scrubber, limit=limit)

    def fail(self, error: ApiError) -> ApiError:
        error.args = (self.scrub(str(error)),)
        return error

    def error_for(self, method: str, url: str, response: httpx.Response, api: Api) -> ApiError:
        """:func:`error_for` with the server's reason made safe (decoded, scrubbed, escaped, then clipped)."""
        return self.fail(error_for(method, url, response, api, quote=self.quote))

    async def request(
        self,
        method: str,
        url: str,
        *,
        api: Api,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        write: bool = False,
        passthrough: Collection[int] = (),
        kind: str | None = None,
    ) -> httpx.Response:
        """Send one request with the run's pacing and retry policy; return a 2xx (or ``passthrough``) answer.

        Reads are retried on 409, 429, 5xx, timeouts and dropped connections, up to ``policy.read_attempts``
        attempts (429 answers have their own budget, ``policy.max_rate_limited``). Writes are retried only when
        they surely were not applied (409, 429, connection refused), up to ``policy.write_attempts``; a timeout,
        a dropped connection or a 5xx raises :class:`WriteOutcomeUnknown`. A TLS failure and a host name that
        does not resolve are never retried. The time spent waiting for the server, over every attempt, is
        bounded by ``timeout * DEADLINE_FACTOR``: a server that trickles its answers cannot stretch it.
        ``kind`` is what :attr:`Counters.by_kind` counts each attempt as (default: ``graphql``, ``write`` or ``read``).
        """
        kind = kind or ("graphql" if api == "graphql" else "write" if write else "read")
        policy = self.policy
        attempts = policy.write_attempts if write else policy.read_attempts
        failures = 0  # failed attempts (transport errors, 5xx)
        limited = 0  # 429 answers
        where = f"{method} {url}"
        budget = [self.settings.timeout * DEADLINE_FACTOR]  # seconds left to wait on the server, all attempts
        while True:
            self.counters.by_kind[kind] += 1
            response, problem = await self._send(method, url, json_body, params, budget)
            if problem is not None:
                self.counters.failures += 1
                self._unretryable(where, problem)
                message = f"{where}: {describe_failure(problem)}"
                if write and not isinstance(problem, NOT_SENT):
                    raise self.fail(WriteOutcomeUnknown(message))
                failures += 1
                if budget[0] <= 0:
                    total = self.settings.timeout * DEADLINE_FACTOR
                    tries = f"{failures} attempt{'s' if failures > 1 else ''}"
                    raise self.fail(ApiError(f"{message} (gave up: no answer within {total:g} s over {tries})"))
                if failures >= attempts:
                    raise self.fail(ApiError(f"{message} (gave up after {failures} attempts)"))
                delay = policy.backoff(failures)
            else:
                assert response is not None
                status = response.status_code
                if 200 <= status < 300 or status in passthrough:
                    return response
                if status == 429:
                    limited += 1
                    self._rate_limited(where, response, limited)
                    self.counters.retries += 1
                    continue  # the pacer holds everyone, this request too, until the pause ends
                not_applied = status == 408 or status in NOT_APPLIED_RETRY
                if not (status >= 500 or not_applied):
                    if 300 <= status < 400:
                        location = response.headers.get("location") or "(nowhere)"
                        message = f"{where}: HTTP {status}: unexpected redirect to {self.quote(location, 200)}"
                        raise self.fail(ApiError(message, status=status))
                    raise self.error_for(method, url, response, api)
                self.counters.failures += 1
                error = self.error_for(method, url, response, api)
                if write and not not_applied:
                    raise self.fail(WriteOutcomeUnknown(str(error), status=status))
                failures += 1
                if failures >= attempts or budget[0] <= 0:
                    raise self.fail(type(error)(f"{error} (gave up after {failures} attempts)", status=status))
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None and retry_after <= policy.max_retry_after:
                    delay = retry_after
                else:
                    delay = policy.backoff(failures)
            self.counters.retries += 1
            await policy.sleep(delay)

    def _unretryable(self, where: str, problem: httpx.TransportError) -> None:
        """Raise for a failure asking again cannot fix: TLS, a name that does not resolve, an unknown scheme."""
        tls = tls_failure(problem)
        if tls is not None:
            raise self.fail(
                TlsError(
                    f"{where}: {tls}: check that the URL's scheme and port are right, and, behind a proxy "
                    "that intercepts TLS, point SSL_CERT_FILE at its certificate"
                )
            )
        if isinstance(problem, NameNotResolved) or is_dns_failure(problem):  # asking again gets the same answer
            said = describe_failure(problem)
            if not said.startswith("cannot resolve"):
                said = f"cannot resolve the host name ({problem})"
            raise self.fail(ApiError(f"{where}: {said}"))
        if isinstance(problem, httpx.UnsupportedProtocol):
            raise self.fail(ApiError(f"{where}: {describe_failure(problem)}"))

    async def _send(
        self,
        method: str,
        url: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        budget: list[float],
    ) -> tuple[httpx.Response | None, httpx.TransportError | None]:
        async with self.pacer.slot():
            self.counters.requests += 1
            request = httpx.Request(
                method,
                _parsed_url(url),
                params=params,
                json=json_body,
                headers=self.headers,
                extensions={"timeout": self._timeouts},
            )
            loop = asyncio.get_running_loop()
            started, sent_at = loop.time(), self.pacer.now()
            # httpx's timeouts bound each network operation; a server that trickles its answer a byte at a
            # time would pass them all. The attempts of one request share one deadline.
            left = max(budget[0], 0.0)
            try:
                async with _deadline(left):
                    streamed = await self.transport.handle_async_request(request)
                    streamed.request = request
                    try:
                        response = await self._read(streamed, f"{method} {url}")
                    finally:
                        await streamed.aclose()
            except httpx.TransportError as exc:
                return None, exc
            except asyncio.TimeoutError:  # TimeoutError on 3.11+; async-timeout's on 3.10
                return None, httpx.ReadTimeout(
                    f"no complete answer within {self.settings.timeout * DEADLINE_FACTOR:g} s"
                )
            except ApiError as exc:  # larger than the cap, or a broken encoding: never retried
                raise self.fail(exc) from None
            finally:
                budget[0] -= loop.time() - started
            self.counters.by_status[response.status_code] += 1
            self.pacer.on_answer(response.status_code, response.headers, sent_at=sent_at)
            return response, None

    async def _read(self, streamed: httpx.Response, where: str) -> httpx.Response:
        """The answer's body, read with the cap on its decoded size (:mod:`bridge.http.capped`).

        An answer with no encoding and a ``Content-Length`` within the cap is read as it is (aiohttp reads no
        more than the length says): the common case, without copying the response.
        """
        headers = streamed.headers
        if "content-encoding" not in headers:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) <= self.max_answer_bytes:
                await streamed.aread()
                return streamed
        return await capped_response(streamed, where=where, limit=self.max_answer_bytes)

    def _rate_limited(self, where: str, response: httpx.Response, limited: int) -> None:
        """Count a 429, pause everyone as the server asks, or give up when it asks too much."""
        policy = self.policy
        self.counters.rate_limited += 1
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is not None and retry_after > policy.max_retry_after:
            raise self.fail(
                RateLimitedError(
                    f"{where}: HTTP 429: RunPod asked to wait {retry_after:.0f} s (Retry-After), more than "
                    f"bridge waits ({policy.max_retry_after:.0f} s); run the same command again later to finish",
                    status=429,
                )
            )
        if limited > policy.max_rate_limited:
            raise self.fail(
                RateLimitedError(
                    f"{where}: HTTP 429 Too Many Requests {limited} times in a row; run the same command again "
                    "later to finish",
                    status=429,
                )
            )
        self.pacer.on_rate_limited(retry_after if retry_after is not None else policy.backoff(limited))

    def decode(self, method: str, url: str, response: httpx.Response) -> Any:
        """Decode a JSON answer; an HTML page or other text is a clear error."""
        try:
            return json.loads(response.content)
        except RecursionError:
            where = f"{method} {url}: HTTP {response.status_code}"
            raise self.fail(ApiError(f"{where}: the answer is JSON nested too deeply to read")) from None
        except (ValueError, UnicodeDecodeError):
            where = f"{method} {url}: HTTP {response.status_code}"
            if is_html(response):
                raise self.fail(ApiError(f"{where}: answered with {html_reason(response, self.quote)}")) from None
            raise self.fail(ApiError(f"{where}: the answer is not JSON ({self.quote(response.content)!r})")) from None
