"""Draw the library's progress (:mod:`bridge.progress`) as one line on a terminal's stderr.

``reading endpoints 412/2000  ETA 0:04``: the label of the current phase, its count, and an ETA from the
rate measured in this phase only (a phase of quick reads says nothing about the writes after it). Nothing
is drawn with --quiet or when stderr is not a terminal (a log file gets no carriage returns).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from bridge.progress import reporting

__all__ = ["TerminalProgress", "progress_shown"]

_REDRAW = 0.1  # seconds between two redraws
_ETA_AFTER = 1.0  # seconds of a phase before its rate is trusted


class TerminalProgress:
    """A :class:`bridge.progress.Reporter` that redraws one status line in place."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self._clock = stream, clock
        self._label, self._done = "", 0
        self._total: int | None = None
        self._started = self._drawn_at = 0.0
        self._width = 0
        self._drawn = False
        self._active = False

    def phase(self, label: str, total: int | None = None) -> None:
        self._label, self._total, self._done = label, total, 0
        self._started = self._clock()
        self._active = True
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self._done += count
        self._draw(force=self._total is not None and self._done >= self._total)

    def line(self) -> str:
        """The status line as it would be drawn now."""
        if self._total is None:
            return f"bridge: {self._label}..." if not self._done else f"bridge: {self._label} {self._done}"
        text = f"bridge: {self._label} {self._done}/{self._total}"
        elapsed = self._clock() - self._started
        if 0 < self._done < self._total and elapsed >= _ETA_AFTER:
            left = round((self._total - self._done) * elapsed / self._done)
            text += f"  ETA {left // 60}:{left % 60:02d}"
        return text

    def _draw(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._drawn_at < _REDRAW:
            return
        self._drawn_at = now
        text = self.line()
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)
        self._drawn = True

    def clear(self) -> None:
        """Erase the status line, so that the next message starts on a clean line."""
        if self._drawn:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._drawn, self._width = False, 0


@contextmanager
def progress_shown(quiet: bool) -> Iterator[TerminalProgress | None]:
    """Show the progress of the calls inside the block on stderr, on a terminal and without --quiet."""
    if quiet or not sys.stderr.isatty():
        with reporting(None):
            yield None
        return
    shown = TerminalProgress(sys.stderr)
    try:
        with reporting(shown):
            yield shown
    finally:
        shown.clear()
