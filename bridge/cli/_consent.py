"""Asking before a write: the diff above ``[y/N]``, and every way of not saying yes means nothing is written.

``n`` (or just Enter), EOF and a closed stdin are a no: "Cancelled: nothing was written.", exit 2. Ctrl-C at
the prompt ends at once: the same words, exit 130. Without a terminal and without --yes a command refuses
before it reads anything (:func:`require_consent_possible`).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import click

__all__ = ["Cancelled", "ask", "cancelled", "interactive", "require_consent_possible"]

CANCELLED = "Cancelled: nothing was written."


class Cancelled(Exception):
    """The user did not consent; ``code`` is the exit code (2, or 130 for Ctrl-C)."""

    def __init__(self, code: int) -> None:
        super().__init__(CANCELLED)
        self.code = code


def cancelled(code: int) -> NoReturn:
    """Say that nothing was written and exit with ``code``."""
    click.echo(CANCELLED, err=True)
    sys.exit(code)


def interactive() -> bool:
    """Is there a person to ask: stdin open and a terminal?"""
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and stdin.isatty()
    except (ValueError, OSError):
        return False


def require_consent_possible(yes: bool) -> None:
    """Refuse before any read when a write would need a "y" nobody can type."""
    from bridge.errors import ConsentError

    if not yes and not interactive():
        raise ConsentError(
            "nothing was written: no terminal to ask for consent; run again with --yes to write without asking"
        )


def ask(question: str, show: Callable[[], None]) -> None:
    """Show what would be written, ask ``question [y/N]``; anything but y/yes raises :class:`Cancelled`."""
    if not interactive():
        raise Cancelled(2)
    # Inside asyncio.run the first Ctrl-C only cancels the loop's task, which a blocking read never
    # notices: from the first line shown until the answer, Ctrl-C raises at once.
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        show()
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise Cancelled(130) from None
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)
    if not answer:  # EOF
        sys.stderr.write("\n")
        raise Cancelled(2)
    if answer.strip().lower() not in ("y", "yes"):
        raise Cancelled(2)
