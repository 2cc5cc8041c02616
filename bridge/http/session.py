"""The run's HTTP session: one set of httpx clients, the pacing, the retry loop and the counters (SPEC §8, §9).

Every request of a run (REST and GraphQL alike) goes through one :class:`Http`. The key travels only in the
``Authorization: Bearer`` header; every error message names the method, the URL and the status, and is
scrubbed of the key.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Awaitable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bridge.config import Settings
from bridge.errors import ApiError, RateLimitedError, TlsError, WriteOutcomeUnknown
from bridge.http.answers import USER_AGENT, Api, clip, error_for, html_reason, is_html
from bridge.http.pacing import Pacer
from bridge.http.retry import (
    DEADLINE_FACTOR,
    NOT_APPLIED_RETRY,
    NOT_SENT,
    RetryPolicy,
    describe_failure,
    parse_retry_after,
    tls_failure,
)
from bridge.redact import redact_text

__all__ = ["Counters", "Http", "gather_all"]

T = TypeVar("T")


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


# httpcore's pool matches every waiting request against every connection each time one is freed, so one
# pool of 64 connections spent three quarters of a run's CPU there (and ran slower than 16). Pools of at
# most this many connections keep the cost per request flat; a run above it gets several.
_POOL_SHARD = 16


class Http:
    """The run's ``httpx.AsyncClient`` (one per 16 requests in flight), with the pacing, retry policy and
    counters every request shares.

    Use it as an async context manager (or call :meth:`aclose`): the connection pools are closed at the end.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.counters = Counters()
        self.pacer = Pacer(settings.concurrency, clock=self.policy.clock, sleep=self.policy.sleep)
        # A given transport does its own pooling (and is closed by the client that owns it): one client then.
        shards = 1 if transport is not None else math.ceil(settings.concurrency / _POOL_SHARD)
        pool = math.ceil(settings.concurrency / shards) + 4
        self.clients = [
            httpx.AsyncClient(
                headers={
                    "Authorization": f"Bearer {settings.api_key}",
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                },
                timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
                limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
                transport=transport,
                follow_redirects=False,
            )
            for _ in range(shards)
        ]
        self.client = self.clients[0]
        self._in_flight = [0] * shards

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        for client in self.clients:
            await client.aclose()

    def scrub(self, text: str) -> str:
        """Remove the API key (and anything that looks like a credential) from a message."""
        return redact_text(text, [self.settings.api_key])

    def fail(self, error: ApiError) -> ApiError:
        error.args = (self.scrub(str(error)),)
        return error

    def scrubbed(self, response: httpx.Response) -> httpx.Response:
        """A copy of an answer with the key scrubbed from its body, to quote in messages.

        Scrubbing must come before a reason is clipped: a key cut in half by the clip would no longer match.
        """
        text = response.content.decode("utf-8", errors="replace")
        clean = self.scrub(text)
        if clean == text:
            return response
        # The text is already decoded: a copied Content-Encoding (gzip) would make httpx decode it again.
        headers = [
            (k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(response.status_code, headers=headers, content=clean.encode("utf-8"))

    def error_for(self, method: str, url: str, response: httpx.Response, api: Api) -> ApiError:
        """:func:`error_for` on the scrubbed answer, with the message scrubbed too."""
        return self.fail(error_for(method, url, self.scrubbed(response), api))

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
        a dropped connection or a 5xx raises :class:`WriteOutcomeUnknown`. A TLS failure is never retried.
        ``kind`` is what :attr:`Counters.by_kind` counts each attempt as (default: ``graphql``, ``write`` or ``read``).
        """
        kind = kind or ("graphql" if api == "graphql" else "write" if write else "read")
        policy = self.policy
        attempts = policy.write_attempts if write else policy.read_attempts
        failures = 0  # failed attempts (transport errors, 5xx)
        limited = 0  # 429 answers
        where = f"{method} {url}"
        while True:
            self.counters.by_kind[kind] += 1
            response, problem = await self._send(method, url, json_body, params)
            if problem is not None:
                self.counters.failures += 1
                tls = tls_failure(problem)
                if tls is not None:
                    raise self.fail(
                        TlsError(
                            f"{where}: {tls}: check that the URL's scheme and port are right, and, behind a proxy "
                            "that intercepts TLS, point SSL_CERT_FILE at its certificate"
                        )
                    )
                message = f"{where}: {describe_failure(problem)}"
                if write and not isinstance(problem, NOT_SENT):
                    raise self.fail(WriteOutcomeUnknown(message))
                failures += 1
                if isinstance(problem, httpx.UnsupportedProtocol) or failures >= attempts:
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
                        message = f"{where}: HTTP {status}: unexpected redirect to {location}"
                        raise self.fail(ApiError(message, status=status))
                    raise self.error_for(method, url, response, api)
                self.counters.failures += 1
                error = self.error_for(method, url, response, api)
                if write and not not_applied:
                    raise self.fail(WriteOutcomeUnknown(str(error), status=status))
                failures += 1
                if failures >= attempts:
                    raise self.fail(type(error)(f"{error} (gave up after {failures} attempts)", status=status))
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None and retry_after <= policy.max_retry_after:
                    delay = retry_after
                else:
                    delay = policy.backoff(failures)
            self.counters.retries += 1
            await policy.sleep(delay)

    async def _send(
        self, method: str, url: str, json_body: Any, params: Mapping[str, str] | None
    ) -> tuple[httpx.Response | None, httpx.TransportError | None]:
        async with self.pacer.slot():
            self.counters.requests += 1
            # httpx's timeouts bound each network operation; a server that trickles its answer a byte at a
            # time would pass them all. The whole request gets a deadline too.
            deadline = self.settings.timeout * DEADLINE_FACTOR
            shard = self._in_flight.index(min(self._in_flight))  # the least busy pool
            self._in_flight[shard] += 1
            try:
                response = await asyncio.wait_for(
                    self.clients[shard].request(method, url, json=json_body, params=params), deadline
                )
            except httpx.TransportError as exc:
                return None, exc
            except asyncio.TimeoutError:
                return None, httpx.ReadTimeout(f"no complete answer within {deadline:.0f} s")
            finally:
                self._in_flight[shard] -= 1
            self.counters.by_status[response.status_code] += 1
            self.pacer.on_answer(response.status_code, response.headers)
            return response, None

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
            response = self.scrubbed(response)
            if is_html(response):
                raise self.fail(ApiError(f"{where}: answered with {html_reason(response)}")) from None
            raise self.fail(ApiError(f"{where}: the answer is not JSON ({clip(response.text, 80)!r})")) from None


async def gather_all(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await all, concurrently; on the first failure cancel the rest (and wait for them) and raise it."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
