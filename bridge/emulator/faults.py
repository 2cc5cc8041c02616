"""Faults the emulator injects on request, and the counters that decide when they fire.

``Faults`` is a plain mutable dataclass: a test may change a field while the server runs, and the next
request sees it. A counter restarts whenever its setting changes, so ``fail_every = 3`` set at run time
fails the 3rd, 6th, ... API request from that moment on.

Rate limits are fixed windows. ``rate_limit = N`` is one window of N requests per second; ``rate_policy`` adds
windows written as REST v2 announces them in ``RateLimit-Policy`` (the IETF draft's structured list), for
example the v2 spec's example policy :data:`EXAMPLE_POLICY`. A request is answered only when every window has
room, and counts in every window. :meth:`RateDecision.headers` gives the ``RateLimit`` and ``RateLimit-Policy``
headers v2 sends on every authenticated answer, one member per window::

    RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400
    RateLimit: "minute";r=0;t=12, "hour";r=2800;t=1812, "day";r=49500;t=45012
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "EXAMPLE_POLICY",
    "UNLIMITED_QUOTA",
    "FaultCounters",
    "Faults",
    "RateDecision",
    "Window",
    "WindowState",
    "parse_policy",
]

# The per-second quota reported in RateLimit headers when no rate limit is set.
UNLIMITED_QUOTA = 1_000_000
# The REST v2 spec's example policy (components.headers.RateLimit-Policy): example values, not RunPod's promise.
EXAMPLE_POLICY = '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400'

_MEMBER = re.compile(r'\s*"([A-Za-z0-9_.-]+)"\s*;\s*q\s*=\s*(\d+)\s*;\s*w\s*=\s*(\d+)\s*')


@dataclass(frozen=True)
class Window:
    """One fixed rate-limit window: at most ``quota`` requests per ``seconds``."""

    name: str
    quota: int
    seconds: int


def parse_policy(text: str) -> tuple[Window, ...]:
    """Read a ``RateLimit-Policy`` value (``"minute";q=60;w=60, "hour";q=3000;w=3600``); ValueError if malformed."""
    windows: list[Window] = []
    for member in text.split(","):
        match = _MEMBER.fullmatch(member)
        if match is None:
            raise ValueError(f'rate_policy: {member.strip()!r} is not of the form "NAME";q=QUOTA;w=SECONDS')
        name, quota, seconds = match.group(1), int(match.group(2)), int(match.group(3))
        if quota < 1 or seconds < 1:
            raise ValueError(f"rate_policy: {member.strip()!r}: q and w must be at least 1")
        if any(w.name == name for w in windows):
            raise ValueError(f"rate_policy: the window {name!r} is given twice")
        windows.append(Window(name, quota, seconds))
    return tuple(windows)


@dataclass
class Faults:
    """What to break, and how often. Every field applies to /graphql, /v1 and /v2, never to /_emulator."""

    latency_ms: float = 0.0  # sleep this long in the handler thread before answering
    rate_limit: int | None = None  # requests per second across the server, fixed 1-second windows -> 429
    rate_policy: str | None = None  # more windows, as RateLimit-Policy writes them (EXAMPLE_POLICY) -> 429
    rate_headers: bool = True  # False: the limits are enforced (429) but no v2 answer announces them (RateLimit)
    graphql_max_complexity: int | None = None  # a GraphQL document costing more -> 400 "exceeds the maximum complexity"
    fail_every: int | None = None  # every Nth API request -> 503, not applied
    drop_every: int | None = None  # every Nth successful write is applied, then the connection is closed
    retire_v1: bool = False  # every /v1 request -> 410 Gone
    # RunPod's bug: a v2 PATCH answers with the endpoint as patched, then its GPU exclusions are gone
    wipe_v2_exclusions: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError when a setting is out of range."""
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name in ("rate_limit", "fail_every", "drop_every", "graphql_max_complexity"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None")
        for name in ("retire_v1", "wipe_v2_exclusions", "rate_headers"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        if self.rate_policy is not None:
            if not isinstance(self.rate_policy, str):
                raise ValueError("rate_policy must be a string or None")
            parse_policy(self.rate_policy)

    def windows(self) -> tuple[Window, ...]:
        """The rate-limit windows in force: ``rate_limit`` per second, then ``rate_policy``'s."""
        windows: tuple[Window, ...] = (Window("second", self.rate_limit, 1),) if self.rate_limit else ()
        windows += parse_policy(self.rate_policy) if self.rate_policy else ()
        return windows

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
class WindowState:
    """One window as a request left it: what ``RateLimit`` reports for it."""

    window: Window
    remaining: int
    reset_s: int


@dataclass(frozen=True)
class RateDecision:
    """The rate limiter's answer for one request, with what the RateLimit headers report.

    ``quota``, ``remaining`` and ``reset_s`` are those of the binding window: the one that refused the request,
    else the one with the fewest requests left.
    """

    allowed: bool
    quota: int
    remaining: int
    reset_s: int
    windows: tuple[WindowState, ...] = ()
    exceeded: str | None = None  # the name of the window that refused the request

    @property
    def detail(self) -> str:
        """The 429 problem detail, as REST v2 words it."""
        return f"rate limit exceeded for the {self.exceeded} window" if self.exceeded else "rate limit exceeded"

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit`` and ``RateLimit-Policy``, one member per window (REST v2, on every authenticated answer)."""
        if not self.windows:
            return [
                ("RateLimit", f'"second";r={self.remaining};t={self.reset_s}'),
                ("RateLimit-Policy", f'"second";q={self.quota};w=1'),
            ]
        return [
            ("RateLimit", ", ".join(f'"{s.window.name}";r={s.remaining};t={s.reset_s}' for s in self.windows)),
            (
                "RateLimit-Policy",
                ", ".join(f'"{s.window.name}";q={s.window.quota};w={s.window.seconds}' for s in self.windows),
            ),
        ]


class FaultCounters:
    """Thread-safe counters behind ``rate_limit``, ``fail_every`` and ``drop_every``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # Window name -> (its setting, the index of its current window, requests counted in it).
        self._windows: dict[str, tuple[Window, int, int]] = {}
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

    def decide(self, faults: Faults) -> RateDecision:
        """Count one request in every window of ``faults`` (see :meth:`Faults.windows`); refuse it when one is full.

        With no window set, the answer reports one unlimited per-second window (:data:`UNLIMITED_QUOTA`).
        """
        windows = faults.windows()
        if not windows:
            return self.rate(None)
        now = self._clock()
        with self._lock:
            states: list[tuple[Window, int, int, int]] = []  # window, index, used, reset
            for window in windows:
                index = math.floor(now / window.seconds)
                setting, current, used = self._windows.get(window.name, (window, index, 0))
                if setting != window or current != index:
                    used = 0
                reset = max(1, math.ceil((index + 1) * window.seconds - now))
                states.append((window, index, used, reset))
            full = next((s for s in states if s[2] >= s[0].quota), None)
            if full is None:
                states = [(w, i, used + 1, reset) for w, i, used, reset in states]
            for window, index, used, _ in states:
                self._windows[window.name] = (window, index, used)
        report = tuple(WindowState(w, max(0, w.quota - used), reset) for w, _, used, reset in states)
        if full is not None:
            binding = next(s for s in report if s.window == full[0])
            return RateDecision(False, full[0].quota, 0, binding.reset_s, report, full[0].name)
        binding = min(report, key=lambda s: s.remaining)
        return RateDecision(True, binding.window.quota, binding.remaining, binding.reset_s, report)

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
