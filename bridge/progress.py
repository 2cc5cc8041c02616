"""Progress of a run, told by the library and shown by whoever called it.

The library never prints. Live reads and the apply engine tell the *current reporter* which phase a run is
in and how far it got; the command line installs one that draws a line on a terminal's stderr::

    class Log:
        def phase(self, label: str, total: int | None = None) -> None:
            print(f"{label} (0/{total})")

        def advance(self, count: int = 1) -> None:
            pass

    with bridge.progress.reporting(Log()):
        bridge.run_migration(settings, confirm=lambda plan, notes: True)

The reporter lives in a :mod:`contextvars` variable, so it reaches every task of the run's event loop
without being threaded through each call, and two runs in two threads each keep their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

__all__ = ["Reporter", "advance", "counted", "phase", "reporting"]

T = TypeVar("T")


class Reporter(Protocol):
    """What a run tells: a new phase (its label and, when known, how many steps it has), then each step."""

    def phase(self, label: str, total: int | None = None) -> None:
        """A phase starts: ``reading endpoints`` (400 steps), ``reading REST state``, ``writing``."""

    def advance(self, count: int = 1) -> None:
        """``count`` more steps of the current phase are done."""


_CURRENT: ContextVar[Reporter | None] = ContextVar("bridge_progress", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Make ``reporter`` the current one for the calls made inside the block (None: nobody listens)."""
    token = _CURRENT.set(reporter)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def phase(label: str, total: int | None = None) -> None:
    """Tell the current reporter, if any, that a phase starts."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.phase(label, total)


def advance(count: int = 1) -> None:
    """Tell the current reporter, if any, that ``count`` more steps are done."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.advance(count)


def counted(awaitable: Awaitable[T]) -> asyncio.Future[T]:
    """Schedule ``awaitable`` and count one step done when it ends (returned, raised or was cancelled).

    A task rather than a wrapping coroutine: cancelled before it starts, a wrapper would leave the wrapped
    coroutine never awaited.
    """
    future = asyncio.ensure_future(awaitable)
    future.add_done_callback(lambda _: advance())
    return future
