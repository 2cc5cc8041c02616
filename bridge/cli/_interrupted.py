"""Ctrl-C during a writing run: say from its journal how far it got and how to finish, then exit 130."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

__all__ = ["interruptible"]


@contextmanager
def interruptible(state_dir: str) -> Iterator[None]:
    """Run the block; on Ctrl-C, report the run's journal (written since the block began) and exit 130."""
    started = time.time()
    try:
        yield
    except KeyboardInterrupt:
        for line in _report(Path(state_dir), started):
            click.echo(line, err=True)
        sys.exit(130)


def _report(state_dir: Path, started: float) -> list[str]:
    from bridge.journal import read_journal
    from bridge.report import plural

    journals = [p for p in sorted(state_dir.glob("journal-*.jsonl")) if p.stat().st_mtime >= started - 1]
    if not journals:
        return ["bridge: interrupted: nothing was written"]
    journal = journals[-1]
    total, done, blocked, backup = 0, set(), set(), None
    for event in read_journal(journal):
        if event.get("event") == "run-start":
            total = int(event.get("endpoints") or 0)
        elif event.get("event") == "backup":
            backup = event.get("path")
        elif event.get("event") == "outcome" and event.get("status") in ("updated", "unchanged"):
            done.add(event.get("endpoint"))
        elif event.get("event") == "outcome" and event.get("status") == "blocked":
            blocked.add(event.get("endpoint"))
    left = max(total - len(done) - len(blocked), 0)
    lines = [
        f"bridge: interrupted: {len(done)} done, {plural(left, 'endpoint')} left: run the same command again to finish",
        f"bridge: journal {journal}" + (f", backup {backup}" if backup else ""),
    ]
    if backup:
        lines.append(f"next: to undo what was written: bridge rollback {shlex.quote(str(backup))}")
    return lines
