"""Faults the emulator injects on request, and the counters that decide when they fire.

``Faults`` is a plain mutable dataclass: a test may change a field while the server runs, and the next
request sees it. A counter restarts whenever its setting changes, so ``fail_every = 3`` set at run time
fails the 3rd, 6th, ... API request from that moment on.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["UNLIMITED_QUOTA", "FaultCounters", "Faults", "RateDecision"]

# The per-second quota reported in RateLimit headers when no rate limit is set.
UNLIMITED_QUOTA = 1_000_000


@dataclass
class Faults:
    """What to break, and how often. Every field applies to /graphql, /v1 and /v2, never to /_emulator."""

    latency_ms: float = 0.0  # sleep this long in the handler thread before answering
    rate_limit: int | None = None  # requests per second across the server, fixed 1-second windows -> 429
    fail_every: int | None = None  # every Nth API request -> 503, not applied
    drop_every: int | None = None  # every Nth successful write is applied, then the connection is closed
    retire_v1: bool = False  # every /v1 request -> 410 Gone

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError when a setting is out of range."""
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name in ("rate_limit", "fail_every", "drop_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON data."""
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Change some settings from JSON data; unknown or invalid values raise ValueError, changing nothing."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        candidate = Faults(**{**self.to_dict(), **changes})
        for name in names:
            setattr(self, name, getattr(candidate, name))


@dataclass(frozen=True)
class RateDecision:
    """The rate limiter's answer for one request, with what the RateLimit headers report."""

    allowed: bool
    quota: int
    remaining: int
    reset_s: int


class FaultCounters:
    """Thread-safe counters behind ``rate_limit``, ``fail_every`` and ``drop_every``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = -1
        self._window_used = 0
        self._window_key: int | None = None
        self._fail_key: int | None = None
        self._fail_n = 0
        self._drop_key: int | None = None
        self._drop_n = 0

    def rate(self, limit: int | None) -> RateDecision:
        """Count one request in the current 1-second window; refuse it when the window is full."""
        now = time.monotonic()
        window = math.floor(now)
        quota = limit or UNLIMITED_QUOTA
        reset_s = max(1, math.ceil(window + 1 - now))
        with self._lock:
            if window != self._window or limit != self._window_key:
                self._window, self._window_used, self._window_key = window, 0, limit
            if self._window_used >= quota:
                return RateDecision(False, quota, 0, reset_s)
            self._window_used += 1
            return RateDecision(True, quota, quota - self._window_used, reset_s)

    def fail(self, every: int | None) -> bool:
        """Count one API request; True when it is the Nth and must fail."""
        with self._lock:
            if every != self._fail_key:
                self._fail_key, self._fail_n = every, 0
            if not every:
                return False
            self._fail_n += 1
            return self._fail_n % every == 0

    def drop(self, every: int | None) -> bool:
        """Count one applied write; True when it is the Nth and its connection must be dropped."""
        with self._lock:
            if every != self._drop_key:
                self._drop_key, self._drop_n = every, 0
            if not every:
                return False
            self._drop_n += 1
            return self._drop_n % every == 0
