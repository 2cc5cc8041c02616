"""When bridge asks again, and how long it waits first (SPEC §8).

Reads are retried on 408, 409, 429, 5xx, timeouts and dropped connections; writes only while they surely were
not applied. :class:`RetryPolicy` holds the budgets and the full-jitter backoff; the helpers here tell a
transport failure's kind (refused, timed out, dropped, TLS) and read ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

__all__ = [
    "DEADLINE_FACTOR",
    "NEVER_RETRY",
    "NOT_APPLIED_RETRY",
    "NOT_SENT",
    "RetryPolicy",
    "describe_failure",
    "is_dns_failure",
    "parse_retry_after",
    "tls_failure",
]

# A whole request (connect, send, answer) may last this many times the per-operation timeout.
DEADLINE_FACTOR = 3.0

# Statuses that say the request itself is wrong, or the key: asking again cannot help (SPEC §8).
NEVER_RETRY = frozenset({400, 401, 403, 404, 410, 422})
# Statuses that say "not now" and that nothing was applied: a write may be sent again, like after a 429.
# 409: the endpoint is busy with another change (e.g. a rolling release in progress).
NOT_APPLIED_RETRY = frozenset({409})


# A request that never reached the server: safe to send again, even a write.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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


def tls_failure(exc: BaseException) -> str | None:
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


def _os_cause(exc: BaseException) -> OSError | None:
    """The operating system's error under a transport error (refused, unreachable, unknown host), if any."""
    current: BaseException | None = exc
    found: OSError | None = None
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, OSError) and (current.errno is not None or isinstance(current, socket.gaierror)):
            found = current
        current = current.__cause__ or current.__context__
    return found


def is_dns_failure(exc: BaseException) -> bool:
    """A host name that does not resolve: asking four more times only delays the same answer."""
    return isinstance(_os_cause(exc), socket.gaierror)


def describe_failure(exc: httpx.TransportError) -> str:
    """Say in a few words what went wrong with a request that got no answer."""
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "")
        return f"timed out {phase}".strip()
    if isinstance(exc, httpx.ConnectError):
        cause = _os_cause(exc)  # "All connection attempts failed" hides the reason: name it
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause})"
        if cause is not None and cause.errno is not None:  # asyncio says "Connect call failed": say why
            return f"cannot connect ([Errno {cause.errno}] {os.strerror(cause.errno)})"
        return f"cannot connect ({exc or 'connection refused'})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the connection was dropped before the answer ({exc or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
