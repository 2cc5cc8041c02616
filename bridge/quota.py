"""Quota awareness: RunPod's published rate-limit windows, and whether a run fits what is left of them (issue 17).

The REST v2 API announces per-user quotas in ``RateLimit-Policy`` (``"minute";q=60;w=60, "hour";q=3000;w=3600``)
and what is left in ``RateLimit`` (``"hour";r=120;t=1800``). :class:`bridge.http.Pacer` keeps the latest of
both from the answers a run already gets (no extra request), and :func:`estimate` says, before anything is written,
how many requests and how long the writing part of a run needs, and whether that is more than an hour or day
window has left: the run still proceeds, paced to the quota, and can be resumed after a stop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.http.pacing import QuotaWindow

__all__ = ["Estimate", "duration", "estimate"]

LONG_WINDOW = 3600  # windows at least this long (hour, day) are the ones a run can exhaust


@dataclass
class Estimate:
    """What the writing part of a run needs, and the windows it exceeds."""

    requests: int
    seconds: float
    exceeds: list[QuotaWindow]

    def note(self) -> str | None:
        """A line for the plan summary when the run needs more than an hour or day window has left."""
        if not self.exceeds:
            return None
        left = "; ".join(
            f"the {w.name} window has {w.remaining or 0:.0f} of {w.limit or 0:.0f} left"
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


def estimate(windows: Sequence[QuotaWindow], requests: int) -> Estimate:
    """How long ``requests`` take under ``windows`` (:meth:`bridge.http.Http.quota_status`), and which long
    windows they exceed."""
    seconds = 0.0
    exceeds: list[QuotaWindow] = []
    for window in windows:
        if not window.limit or not window.seconds:
            continue  # a window whose quota was never published says nothing about a rate
        seconds = max(seconds, requests * window.seconds / window.limit)  # the steady rate it allows
        left = window.remaining if window.remaining is not None else window.limit
        if requests > left:
            reset = window.reset if window.reset is not None else window.seconds
            more = math.ceil((requests - left) / window.limit) - 1  # whole windows after the first reset
            seconds = max(seconds, reset + more * window.seconds)
            if window.seconds >= LONG_WINDOW:
                exceeds.append(window)
    return Estimate(requests, seconds, exceeds)
