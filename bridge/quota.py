"""Quota awareness: RunPod's published rate-limit windows, and whether a run fits what is left of them (issue 17).

The REST v2 API announces per-user quotas in ``RateLimit-Policy`` (``"minute";q=60;w=60, "hour";q=3000;w=3600``)
and what is left in ``RateLimit`` (``"hour";r=120;t=1800``). :class:`QuotaWatch` keeps the latest of both from the
answers a run already gets (no extra request), and :meth:`QuotaWatch.estimate` says, before anything is written,
how many requests and how long the writing part of a run needs, and whether that is more than an hour or day
window has left: the run still proceeds, paced to the quota, and can be resumed after a stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.http import parse_rate_limit

__all__ = ["Estimate", "QuotaWatch", "Window", "duration"]

LONG_WINDOW = 3600  # windows at least this long (hour, day) are the ones a run can exhaust


@dataclass
class Window:
    """One published window: ``quota`` requests per ``seconds``; ``remaining`` left, reset in ``reset`` s."""

    name: str
    quota: float
    seconds: float
    remaining: float | None = None
    reset: float | None = None


@dataclass
class Estimate:
    """What the writing part of a run needs, and the windows it exceeds."""

    requests: int
    seconds: float
    exceeds: list[Window]

    def note(self) -> str | None:
        """A line for the plan summary when the run needs more than an hour or day window has left."""
        if not self.exceeds:
            return None
        left = "; ".join(
            f"the {w.name} window has {w.remaining:.0f} of {w.quota:.0f} left"
            + (f" (resets in {duration(w.reset)})" if w.reset is not None else "")
            for w in self.exceeds
        )
        return (
            f"this run needs about {self.requests:,} requests, more than RunPod's quota has left ({left}): "
            f"it will pace itself to the quota and take about {duration(self.seconds)}; if it stops, run the same "
            "command again to finish"
        )


def duration(seconds: float) -> str:
    """``95`` -> ``"2 min"``, ``5400`` -> ``"1.5 h"``."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class QuotaWatch:
    """The latest ``RateLimit-Policy`` windows and ``RateLimit`` remainders seen in a run's answers."""

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from one answer's headers (any answer: the v2 API sends them on each)."""
        for name, params in parse_rate_limit(headers.get("ratelimit-policy")).items():
            quota, seconds = params.get("q", 0), params.get("w", 0)
            if quota > 0 and seconds > 0:
                window = self.windows.setdefault(name, Window(name, quota, seconds))
                window.quota, window.seconds = quota, seconds
        for name, params in parse_rate_limit(headers.get("ratelimit")).items():
            known = self.windows.get(name)
            if known is not None:
                known.remaining = params.get("r", known.remaining)
                known.reset = params.get("t", known.reset)

    def estimate(self, requests: int) -> Estimate:
        """How long ``requests`` take under the known windows, and which long windows they exceed."""
        seconds = 0.0
        exceeds: list[Window] = []
        for window in self.windows.values():
            seconds = max(seconds, requests * window.seconds / window.quota)  # the steady rate it allows
            left = window.remaining if window.remaining is not None else window.quota
            if requests > left:
                reset = window.reset if window.reset is not None else window.seconds
                more = math.ceil((requests - left) / window.quota) - 1  # whole windows after the first reset
                seconds = max(seconds, reset + more * window.seconds)
                if window.seconds >= LONG_WINDOW:
                    exceeds.append(window)
        return Estimate(requests, seconds, exceeds)
