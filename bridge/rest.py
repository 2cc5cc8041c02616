"""REST v1/v2 clients over one shared HTTP session: reads, writes, retries and pacing (SPEC §8, §9).

::

    Http          one httpx.AsyncClient per run, with the Pacer, the RetryPolicy and the Counters that every
                  request of the run shares (REST and GraphQL alike)
    Pacer         bounded concurrency, a global pause after a 429, an AIMD send rate, RateLimit headers
    RestClient    the endpoint operations of one target on top of Http:
                  v1  GET {rest}/endpoints · GET {rest}/endpoints/{id} · POST {rest}/endpoints/{id}/update
                  v2  GET {v2}/serverless (cursor pages) · GET {v2}/serverless/{id} · PATCH {v2}/serverless/{id}

The key travels only in the ``Authorization: Bearer`` header; every error message names the method, the
URL and the status, and is scrubbed of the key. Errors raised here (see :mod:`bridge.errors`)::

    ApiError                 a failure after retries, or a status that is never retried
    ├── AuthError            401/403: RunPod rejected the API key
    ├── RetiredError         410 on REST v1
    ├── RateLimitedError     Retry-After longer than bridge waits (resumable)
    ├── TlsError             the TLS handshake failed (never retried)
    ├── NotFoundError        404: no such endpoint
    └── WriteOutcomeUnknown  a write that may or may not have been applied (timeout, dropped, 5xx)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from bridge import __version__
from bridge.config import Settings
from bridge.errors import ApiError, AuthError, RateLimitedError, RetiredError, TlsError
from bridge.redact import redact_text

__all__ = [
    "USER_AGENT",
    "Api",
    "Counters",
    "Http",
    "NotFoundError",
    "Pacer",
    "RestClient",
    "RetryPolicy",
    "WriteOutcomeUnknown",
    "error_for",
    "gather_all",
    "is_html",
    "open_rest",
    "parse_rate_limit",
    "parse_retry_after",
]

USER_AGENT = f"bridge/{__version__} (runpod-bridge; python-httpx/{httpx.__version__})"

Api = Literal["v1", "v2", "graphql"]
T = TypeVar("T")

# A whole request (connect, send, answer) may last this many times the per-operation timeout.
DEADLINE_FACTOR = 3.0

# Statuses that say the request itself is wrong, or the key: asking again cannot help (SPEC §8).
NEVER_RETRY = frozenset({400, 401, 403, 404, 410, 422})
# Statuses that say "not now" and that nothing was applied: a write may be sent again, like after a 429.
# 409: the endpoint is busy with another change (e.g. a rolling release in progress).
NOT_APPLIED_RETRY = frozenset({409})


class NotFoundError(ApiError):
    """RunPod answered 404: there is no such endpoint (or path)."""


class WriteOutcomeUnknown(ApiError):
    """A write may or may not have been applied (timeout, dropped connection, 5xx): re-read before retrying."""


@dataclass
class Counters:
    """What the run's requests met, for reports and benchmarks."""

    requests: int = 0  # requests sent (every attempt)
    rate_limited: int = 0  # answers with status 429
    retries: int = 0  # attempts made after a failed one
    failures: int = 0  # transport errors and 5xx answers
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON data."""
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "failures": self.failures,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


def _default_rng() -> random.Random:
    return random.Random()


@dataclass
class RetryPolicy:
    """How often and how long to retry (SPEC §8). ``sleep``, ``clock`` and ``rng`` are injectable for tests."""

    read_attempts: int = 5
    write_attempts: int = 3  # attempts of a write that surely was not applied (429, connection refused)
    base: float = 0.5
    cap: float = 20.0
    max_retry_after: float = 120.0
    max_rate_limited: int = 20  # 429 answers one request waits through before giving up
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=_default_rng)

    def backoff(self, retry: int) -> float:
        """Full-jitter exponential backoff before retry number ``retry`` (1, 2, ...)."""
        return self.rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def parse_rate_limit(value: str | None) -> dict[str, dict[str, float]]:
    """Parse a ``RateLimit`` or ``RateLimit-Policy`` header (``"minute";r=0;t=12, "hour";q=3000;w=3600``).

    Returns ``{window name: {parameter: number}}``; members or parameters that do not parse are skipped.
    """
    out: dict[str, dict[str, float]] = {}
    if not value:
        return out
    for member in value.split(","):
        parts = [p.strip() for p in member.split(";")]
        if not parts or not parts[0]:
            continue
        name = parts[0].strip('"')
        params: dict[str, float] = {}
        for part in parts[1:]:
            key, sep, raw = part.partition("=")
            if not sep:
                continue
            try:
                number = float(raw.strip().strip('"'))
            except ValueError:
                continue
            if math.isfinite(number):
                params[key.strip()] = number
        out[name] = params
    return out


class Pacer:
    """Pacing shared by every request of a run.

    - at most ``concurrency`` requests in flight (a semaphore);
    - after a 429 everyone waits until ``Retry-After`` (a global pause), and the send rate is lowered
      multiplicatively from the rate the server was seen to accept; each success raises it additively
      (AIMD), slowly, so that the server rarely has to say it again;
    - a ``RateLimit-Policy`` header (quota ``q`` per ``w`` seconds) caps the rate just under the quota from
      the first answer on, and a ``RateLimit`` header with no requests left pauses until its window resets,
      so that a v2 run slows down before the limit is hit.
    """

    DECREASE = 0.9  # multiplicative decrease on a 429
    INCREASE = 0.004  # additive increase: this fraction of the last known ceiling per second
    POLICY_MARGIN = 0.95  # send at this fraction of a quota the server announces
    MIN_RATE = 0.5

    def __init__(
        self,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.concurrency = concurrency
        self._sem = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._sleep = sleep
        self.rate: float | None = None  # AIMD send rate (requests/s); None until the server pushes back
        self.policy_rate: float | None = None  # from RateLimit-Policy
        self._ceiling = 0.0
        self._next = 0.0
        self._paused_until = 0.0
        self._epoch_end = -math.inf
        self._ok: deque[float] = deque()
        self.inflight = 0

    def _interval(self) -> float:
        rates = [r for r in (self.rate, self.policy_rate) if r]
        return 1.0 / min(rates) if rates else 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` slots, entered at the paced time."""
        async with self._sem:
            await self._turn()
            self.inflight += 1
            try:
                yield
            finally:
                self.inflight -= 1

    async def _turn(self) -> None:
        while True:
            now = self._clock()
            at = max(now, self._next, self._paused_until)
            self._next = at + self._interval()
            if at <= now:
                return
            await self._sleep(at - now)
            if self._clock() >= self._paused_until:
                return

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def on_answer(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer: its status and any rate-limit headers."""
        now = self._clock()
        if status != 429:
            self._ok.append(now)
            while self._ok and self._ok[0] < now - 1.0:
                self._ok.popleft()
            if self.rate is not None:
                self.rate += self.INCREASE * self._ceiling / self.rate
        policy = parse_rate_limit(headers.get("ratelimit-policy"))
        rates = [p["q"] / p["w"] for p in policy.values() if p.get("q", 0) > 0 and p.get("w", 0) > 0]
        if rates:
            self.policy_rate = max(self.MIN_RATE, min(rates) * self.POLICY_MARGIN)
        for window in parse_rate_limit(headers.get("ratelimit")).values():
            remaining, reset = window.get("r"), window.get("t")
            # Requests still in flight will use up what is left; when nothing is, wait for the reset.
            if remaining is not None and reset is not None and remaining - max(self.inflight - 1, 0) <= 0:
                self.pause(min(reset, 120.0))

    def on_rate_limited(self, wait: float) -> None:
        """A 429 arrived: pause everyone for ``wait`` seconds and lower the rate once per episode."""
        now = self._clock()
        self.pause(wait)
        if now < self._epoch_end:
            return  # an answer to a request sent before the last decrease
        while self._ok and self._ok[0] < now - 1.0:
            self._ok.popleft()
        seen = float(len(self._ok))
        base = seen if self.rate is None else min(self.rate, seen or self.rate)
        self._ceiling = max(base, self.MIN_RATE)
        self.rate = max(self.MIN_RATE, base * self.DECREASE)
        self._epoch_end = self._paused_until


def _phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _clip(text: str, limit: int = 300) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_html(response: httpx.Response) -> bool:
    """Tell whether an answer is an HTML page (a proxy, Cloudflare or a portal), not an API answer."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _cloudflare(response: httpx.Response) -> bool:
    server = response.headers.get("server", "").lower()
    return "cloudflare" in server or "cf-ray" in response.headers or b"cloudflare" in response.content[:20000].lower()


def _html_reason(response: httpx.Response) -> str:
    text = response.text
    match = _TITLE.search(text) or _H1.search(text)
    title = _clip(_TAGS.sub(" ", match.group(1)), 120) if match else ""
    who = "Cloudflare" if _cloudflare(response) else "a proxy or gateway"
    named = f' "{title}"' if title else ""
    return f"an HTML page{named} from {who}, not an answer of the RunPod API"


def _cloudflare_ua_block(response: httpx.Response) -> bool:
    if response.status_code != 403 or not _cloudflare(response):
        return False
    body = response.content[:20000].lower()
    return b"1010" in body


def server_reason(response: httpx.Response) -> str:
    """The server's own explanation of an error answer, in one line (v1, v2 problem+json, GraphQL, HTML)."""
    if is_html(response):
        return _html_reason(response)
    try:
        doc = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = response.text.strip()
        return _clip(text.splitlines()[0]) if text else ""
    if isinstance(doc, Mapping):
        parts: list[str] = []
        for key in ("detail", "error", "message"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
                break
        if not parts and isinstance(doc.get("title"), str):
            parts.append(doc["title"])
        errors = doc.get("errors")
        if isinstance(errors, list):
            for item in errors[:5]:
                if isinstance(item, str):
                    parts.append(item)
                elif isinstance(item, Mapping) and isinstance(item.get("message"), str):
                    parts.append(item["message"])
        return _clip("; ".join(parts)) if parts else _clip(_dump(doc))
    return _clip(_dump(doc))


def _dump(doc: Any) -> str:
    try:
        return json.dumps(doc, ensure_ascii=False)
    except (ValueError, RecursionError):
        return "(a JSON answer nested too deeply to quote)"


def error_for(method: str, url: str, response: httpx.Response, api: Api) -> ApiError:
    """Build the typed error for an answer bridge will not (or no longer) retry."""
    status = response.status_code
    where = f"{method} {url}"
    reason = server_reason(response)
    suffix = f": {reason}" if reason else ""
    if _cloudflare_ua_block(response):
        blocked = ApiError(
            f"{where}: HTTP 403 from Cloudflare (error 1010): the request was refused for its client "
            f"signature (User-Agent {USER_AGENT!r}) before it reached RunPod; the key was not checked. "
            "A proxy that rewrites headers can cause this.",
            status=status,
        )
        blocked.stops_run = True  # every request of the run carries the same signature
        return blocked
    if status in (401, 403) and not is_html(response):
        return AuthError(f"RunPod rejected the API key (HTTP {status}) at {where}{suffix}", status=status)
    if status in (401, 403):  # a proxy's or gateway's page: every later request would meet it too
        refused = ApiError(f"{where}: HTTP {status} {_phrase(status)}{suffix}", status=status)
        refused.stops_run = True
        return refused
    if status == 410 and api == "v1":
        return RetiredError(
            f"RunPod has retired REST v1: run again with --target v2 (HTTP 410 at {where})", status=status
        )
    if status == 410 and api == "graphql":
        return RetiredError(
            f"RunPod has retired the legacy GraphQL API (HTTP 410 at {where}): the legacy settings can no longer "
            "be read live; plan from a snapshot saved earlier with --from",
            status=status,
        )
    if status == 404:
        return NotFoundError(f"{where}: HTTP 404 Not Found{suffix}", status=status)
    if status == 429:
        return RateLimitedError(f"{where}: HTTP 429 Too Many Requests{suffix}", status=status)
    return ApiError(f"{where}: HTTP {status} {_phrase(status)}{suffix}".replace("  ", " "), status=status)


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS reason when ``exc`` (or what caused it) is an ``ssl`` error, else None."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = getattr(current, "verify_message", None) or current
            return f"the server's TLS certificate does not verify ({reason})"
        if isinstance(current, ssl.SSLError):
            return f"the TLS handshake failed ({current})"
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the server's TLS certificate does not verify ({text})"
    if text.startswith("[SSL"):
        return f"the TLS handshake failed ({text})"
    return None


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "")
        return f"timed out {phase}".strip()
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or 'connection refused'})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the connection was dropped before the answer ({exc or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# A request that never reached the server: safe to send again, even a write.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
    ) -> httpx.Response:
        """Send one request with the run's pacing and retry policy; return a 2xx (or ``passthrough``) answer.

        Reads are retried on 409, 429, 5xx, timeouts and dropped connections, up to ``policy.read_attempts``
        attempts (429 answers have their own budget, ``policy.max_rate_limited``). Writes are retried only when
        they surely were not applied (409, 429, connection refused), up to ``policy.write_attempts``; a timeout,
        a dropped connection or a 5xx raises :class:`WriteOutcomeUnknown`. A TLS failure is never retried.
        """
        policy = self.policy
        attempts = policy.write_attempts if write else policy.read_attempts
        failures = 0  # failed attempts (transport errors, 5xx)
        limited = 0  # 429 answers
        where = f"{method} {url}"
        while True:
            response, problem = await self._send(method, url, json_body, params)
            if problem is not None:
                self.counters.failures += 1
                tls = _tls_failure(problem)
                if tls is not None:
                    raise self.fail(
                        TlsError(
                            f"{where}: {tls}: check that the URL's scheme and port are right, and, behind a proxy "
                            "that intercepts TLS, point SSL_CERT_FILE at its certificate"
                        )
                    )
                message = f"{where}: {_describe(problem)}"
                if write and not isinstance(problem, _NOT_SENT):
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
                raise self.fail(ApiError(f"{where}: answered with {_html_reason(response)}")) from None
            raise self.fail(ApiError(f"{where}: the answer is not JSON ({_clip(response.text, 80)!r})")) from None


@dataclass(frozen=True)
class _Shape:
    api: Api
    base: str
    collection: str


class RestClient:
    """The endpoint operations of one REST target (``v1`` or ``v2``) over a shared :class:`Http`."""

    def __init__(self, http: Http, target: Literal["v1", "v2"] = "v1") -> None:
        if target not in ("v1", "v2"):
            raise ValueError(f"unknown target {target!r}: use v1 or v2")
        self.http = http
        self.target = target
        settings = http.settings
        self._shape = (
            _Shape("v1", settings.rest_url.rstrip("/"), "endpoints")
            if target == "v1"
            else _Shape("v2", settings.rest_v2_url.rstrip("/"), "serverless")
        )

    @property
    def counters(self) -> Counters:
        """The counters of the shared session."""
        return self.http.counters

    def endpoint_url(self, endpoint_id: str) -> str:
        """The URL of one endpoint in this target."""
        return f"{self._shape.base}/{self._shape.collection}/{quote(endpoint_id, safe='')}"

    async def _get(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        response = await self.http.request("GET", url, api=self._shape.api, params=params)
        return self.http.decode("GET", str(response.request.url), response)

    async def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint of the account as this target reads it (v2 follows the cursor to the last page)."""
        url = f"{self._shape.base}/{self._shape.collection}"
        if self.target == "v1":
            doc = await self._get(url)
            items = doc.get("endpoints") if isinstance(doc, Mapping) else doc
            return self._endpoint_list(items, f"GET {url}")
        endpoints: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"cursor": cursor} if cursor else None
            response = await self.http.request("GET", url, api="v2", params=params)
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
                raise self.http.fail(ApiError(f"GET {url}: the server repeated page cursor {_clip(cursor, 80)!r}"))
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
            what = f"endpoint {_clip(str(got), 60)!r}" if got is not None else "an object without an id"
            raise self.http.fail(ApiError(f"GET {url}: expected endpoint {endpoint_id!r}, the answer is {what}"))
        return dict(doc)

    async def send_update(self, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send one update (v1 ``POST …/update``, v2 ``PATCH``) and return the endpoint the server answers.

        Retried only while it surely was not applied (429, connection refused). Raises
        :class:`WriteOutcomeUnknown` when it may have been applied, and the typed errors for 4xx answers.
        """
        if self.target == "v1":
            method, url = "POST", f"{self.endpoint_url(endpoint_id)}/update"
        else:
            method, url = "PATCH", self.endpoint_url(endpoint_id)
        response = await self.http.request(method, url, api=self._shape.api, json_body=dict(body), write=True)
        if not response.content.strip():
            return {}
        try:
            doc = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # The write was accepted (2xx) but the answer cannot be read: the engine verifies by reading back.
            return {}
        return dict(doc) if isinstance(doc, Mapping) else {}


def _next_cursor(doc: Mapping[str, Any], response: httpx.Response) -> str | None:
    """The cursor of the next v2 page: a body field, or a ``Link: <…?cursor=…>; rel="next"`` header."""
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


@asynccontextmanager
async def open_rest(
    settings: Settings,
    target: Literal["v1", "v2"] = "v1",
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[RestClient]:
    """Open a session for ``settings`` and yield a :class:`RestClient` for ``target``; close it on exit."""
    async with Http(settings, policy=policy, transport=transport) as http:
        yield RestClient(http, target)
