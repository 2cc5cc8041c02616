"""Pacing shared by every request of a run: bounded concurrency, pauses after 429, AIMD, RateLimit headers.

A quota announced in windows (``RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600, ...``) is spent,
not averaged: requests go as fast as the concurrency allows while every window has quota left, and wait for a
window's reset only when it has none. Averaging over the tightest window (the day's 50,000 / 86,400 s =
0.58 req/s) would make a run that fits in the minute's and the hour's quota take several times longer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["Pacer", "QuotaWindow", "parse_rate_limit"]


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


@dataclass(frozen=True)
class QuotaWindow:
    """One rate-limit window as the server last announced it (:meth:`Pacer.quota_status`)."""

    name: str
    limit: int | None  # requests per window (``q``); None when only ``RateLimit`` named the window
    seconds: float | None  # the window's length (``w``)
    remaining: int | None  # requests left in the current window, less those sent since; None if never said
    reset: float | None  # seconds until the window starts again


class _Window:
    """What is known of one window: the policy (q, w), the server's last word (remaining, reset), our sends.

    The server's word (``RateLimit``: ``r`` left, reset in ``t`` whole seconds) holds until the reset it gave.
    After that the window has started again, but ``t`` was rounded up to a second, so where the new window
    starts is known only to a second. While answers keep speaking of the window (REST v2 sends ``RateLimit`` on
    every answer) its quota is taken as back in full, and the next answer corrects that within a round trip.
    When they have stopped (REST v1 answers carry none: the policy was learnt from the v2 catalog reads), the
    window is counted as a sliding one (at most ``q`` of our sends in any ``w`` seconds, and a small guard),
    which keeps within every fixed window wherever its edges lie. Assuming the edge there sent the next burst,
    now and then, while the server's window had not yet turned: all refused, a pause, and the same again every
    window, as nothing corrects the guess (measured: 1 REST v1 migration in 4 under ``--rate-limit 50`` took
    1.4x the ideal, with 14 % answered 429).
    """

    __slots__ = ("limit", "remaining", "reset_at", "seconds", "sent", "speaking", "started")

    # The sliding span is the window and a guard for the jitter between our send times and the server's count:
    # 1 % of the window, and at least 50 ms.
    GUARD_SHARE, GUARD_MIN = 0.01, 0.05
    EDGE = 1.0  # how well a reset is known: ``t`` comes in whole seconds

    def __init__(self) -> None:
        self.limit: float | None = None
        self.seconds: float | None = None
        self.remaining: float | None = None  # the server's last r, less our sends since; None: not said for now
        self.reset_at: float | None = None  # when the server's window turns (then every ``seconds``)
        self.sent: deque[float] = deque()  # our sends in the last ``seconds`` (and the guard)
        self.started: float | None = None  # when the current window began, once it rolled over
        self.speaking = False  # whether the last answer spoke of this window (RateLimit); v1 answers do not

    def _guard(self) -> float:
        assert self.seconds is not None
        return max(self.seconds * self.GUARD_SHARE, self.GUARD_MIN)

    def _span(self) -> float:
        assert self.seconds is not None
        return self.seconds + self._guard()

    def _quota(self) -> int:
        assert self.limit is not None
        return max(1, math.floor(self.limit))  # a fractional q allows what it says, rounded down (and never none)

    def _trim(self, now: float) -> None:
        if self.seconds is not None:
            span = self._span()
            while self.sent and self.sent[0] <= now - span:
                self.sent.popleft()

    def left(self, now: float) -> float | None:
        """Requests this window still allows now (None: no limit known)."""
        if self.reset_at is not None and now >= self.reset_at:
            # The window started again: the server's word was about the one before (see the class).
            started = self.started = self.reset_at
            if self.limit is not None and self.seconds is not None:
                self.reset_at += self.seconds * math.ceil((now - self.reset_at + 1e-9) / self.seconds)
                if self.speaking:
                    # Answers speak of the window (REST v2): the next one corrects this guess within a round
                    # trip, so the window's quota is taken as back in full, less what went since it turned.
                    self.remaining = self._quota() - sum(1 for t in self.sent if t >= started)
                else:
                    # Nothing says where the new window starts: counted as sliding. Sends more than a second (the
                    # reset's precision) before the guessed edge were in the window before, which the server's r
                    # allowed: they are not counted against this one.
                    self.remaining = None
                    edge = started - self.EDGE - self._guard()
                    while self.sent and self.sent[0] <= edge:
                        self.sent.popleft()
            else:
                self.remaining, self.reset_at = None, None
        if self.remaining is not None:
            return self.remaining
        if self.limit is None or self.seconds is None:
            return None
        self._trim(now)
        return self._quota() - len(self.sent)

    def spend(self, now: float) -> None:
        """Count one send of ours."""
        if self.remaining is not None:
            self.remaining -= 1
        if self.seconds is not None:
            self.sent.append(now)
            self._trim(now)

    def learn(self, remaining: float, reset_at: float, sent_at: float | None) -> None:
        """Take in one answer's ``r`` (already less the requests still in flight) and reset time."""
        if sent_at is not None and self.started is not None and sent_at < self.started:
            return  # the answer to a request of the window before: its r and t are of that window
        # Answers within one window: the reset is rounded up to whole seconds and r falls, so keep the lowest
        # of each; a reset much later than the one known starts a new window.
        same = self.reset_at is not None and reset_at < self.reset_at + 0.5 * (self.seconds or 1.0)
        if same and self.reset_at is not None:
            self.remaining = min(self.remaining, remaining) if self.remaining is not None else remaining
            self.reset_at = min(self.reset_at, reset_at)
        else:
            self.remaining, self.reset_at = remaining, reset_at

    def opens_at(self, now: float) -> float:
        """When a window with nothing left has room again."""
        if self.remaining is not None and self.reset_at is not None:
            return self.reset_at  # the server's word: nothing until its reset
        if self.sent and self.seconds is not None and self.limit is not None:
            # Sliding: once enough of our sends have aged out of the span.
            return self.sent[max(0, len(self.sent) - self._quota())] + self._span()
        return self.reset_at if self.reset_at is not None else now


class Pacer:
    """Pacing shared by every request of a run.

    - at most ``concurrency`` requests in flight (a semaphore);
    - after a 429 everyone waits until ``Retry-After`` (a global pause), and the send rate is lowered
      multiplicatively from the rate the server was seen to accept; each success raises it additively
      (AIMD), slowly, so that the server rarely has to say it again;
    - windows announced in ``RateLimit-Policy`` (``q`` requests per ``w`` seconds) and ``RateLimit``
      (``r`` left, reset in ``t`` seconds) are spent as they allow: a request waits only when a window has
      nothing left (counting the requests in flight), until that window resets, so a v2 run slows down
      before the limit is hit and never below what the quota allows.
    """

    DECREASE = 0.9  # multiplicative decrease on a 429
    INCREASE = 0.004  # additive increase: this fraction of the last known ceiling per second
    MIN_RATE = 0.5
    MAX_PAUSE = 120.0  # a window reset further away than this is left to 429 handling

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
        self._windows: dict[str, _Window] = {}
        self._ceiling = 0.0
        self._next = 0.0
        self._paused_until = 0.0
        self._epoch_end = -math.inf
        self._ok: deque[float] = deque()
        self.inflight = 0

    def _interval(self) -> float:
        return 1.0 / self.rate if self.rate else 0.0

    def _quota_wait(self, now: float) -> float:
        """The time the windows let the next request go (``now`` when every window has room)."""
        at = now
        for window in self._windows.values():
            # ``left`` already counts the requests in flight: each was taken off ``remaining`` when sent
            # (``_spend``), and ``learn`` takes the ones the server had not counted off its ``r``.
            left = window.left(now)
            if left is not None and left <= 0:
                at = max(at, min(window.opens_at(now), now + self.MAX_PAUSE))
        return at

    def _spend(self, now: float) -> None:
        for window in self._windows.values():
            window.spend(now)

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
            at = max(now, self._next, self._paused_until, self._quota_wait(now))
            self._next = at + self._interval()
            if at > now:
                await self._sleep(at - now)
                now = self._clock()
                if now < self._paused_until or self._quota_wait(now) > now:
                    continue
            self._spend(now)
            return

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def now(self) -> float:
        """The pacer's clock (the time to pass back as ``sent_at``)."""
        return self._clock()

    def on_answer(self, status: int, headers: Mapping[str, str], *, sent_at: float | None = None) -> None:
        """Learn from one answer (to a request sent at ``sent_at``): its status and any rate-limit headers."""
        now = self._clock()
        if status != 429:
            self._ok.append(now)
            while self._ok and self._ok[0] < now - 1.0:
                self._ok.popleft()
            if self.rate is not None:
                self.rate += self.INCREASE * self._ceiling / self.rate
        policy_header, limit_header = headers.get("ratelimit-policy"), headers.get("ratelimit")
        if policy_header:
            for name, params in parse_rate_limit(policy_header).items():
                q, w = params.get("q", 0), params.get("w", 0)
                if q > 0 and w > 0:
                    window = self._windows.setdefault(name, _Window())
                    window.limit, window.seconds = q, w
        spoken = parse_rate_limit(limit_header)
        for name, window in self._windows.items():
            window.speaking = name in spoken
        if spoken:
            for name, params in spoken.items():
                remaining, reset = params.get("r"), params.get("t")
                if remaining is None or reset is None or remaining < 0 or reset < 0:
                    continue
                window = self._windows.setdefault(name, _Window())
                window.left(now)  # roll the window over first if its reset has passed
                # The server counted this request; the others in flight it may not have counted yet.
                window.learn(remaining - max(self.inflight - 1, 0), now + reset, sent_at)

    def quota_status(self) -> list[QuotaWindow]:
        """The windows the server announced, with what remains of each and the seconds to its reset."""
        now = self._clock()
        out = []
        for name, window in self._windows.items():
            left = window.left(now)
            reset = window.reset_at - now if window.reset_at is not None else None
            if reset is None and window.sent and window.seconds is not None:
                reset = window.sent[0] + window.seconds - now
            out.append(
                QuotaWindow(
                    name=name,
                    limit=int(window.limit) if window.limit is not None else None,
                    seconds=window.seconds,
                    remaining=max(0, math.floor(left)) if left is not None else None,
                    reset=max(0.0, reset) if reset is not None else None,
                )
            )
        return out

    def on_rate_limited(self, wait: float) -> None:
        """A 429 arrived: pause everyone for ``wait`` seconds and lower the rate once per episode."""
        now = self._clock()
        self.pause(wait)
        if self._windows:
            # The server publishes its windows (v2): they pace every request, and the pause covers this one.
            # Cutting an AIMD rate as well would keep the run slow long after the window reopened (measured:
            # one 429 made a 10 s run take 16 s, when the rate was cut from the few answers of the last second).
            return
        if now < self._epoch_end:
            return  # an answer to a request sent before the last decrease
        while self._ok and self._ok[0] < now - 1.0:
            self._ok.popleft()
        seen = float(len(self._ok))
        base = seen if self.rate is None else min(self.rate, seen or self.rate)
        self._ceiling = max(base, self.MIN_RATE)
        self.rate = max(self.MIN_RATE, base * self.DECREASE)
        self._epoch_end = self._paused_until
