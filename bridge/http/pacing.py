"""Pacing shared by every request of a run: bounded concurrency, pauses after 429, AIMD, RateLimit headers."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

__all__ = ["Pacer", "parse_rate_limit"]


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
