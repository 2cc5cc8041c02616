"""The journal's fsync strategy: attempts on disk before they are sent, one fsync shared by the lines in flight."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import bridge.journal
from bridge.errors import BridgeError
from bridge.journal import Journal, read_journal


def test_concurrent_attempts_share_fsyncs_and_each_is_synced_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_lines: list[int] = []  # the lines on disk at each fsync
    path = tmp_path / "journal.jsonl"
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        real_fsync(fd)
        synced_lines.append(len(path.read_bytes().splitlines()))

    monkeypatch.setattr(bridge.journal.os, "fsync", counting_fsync)

    async def main(journal: Journal) -> list[int]:
        async def one(i: int) -> int:
            await journal.record_synced("attempt", endpoint=f"ep{i}")
            return max(synced_lines)  # an fsync after this line was written has ended

        return await asyncio.gather(*(one(i) for i in range(16)))

    with Journal(path) as journal:
        journal.record("run-start")
        seen = asyncio.run(main(journal))
        journal.note("outcome", endpoint="ep0")
    events = [e["event"] for e in read_journal(path)]
    assert events == ["run-start", *["attempt"] * 16, "outcome"]
    assert all(n >= 2 for n in seen)  # each attempt returned only once a fsync covered it
    assert len(synced_lines) < 1 + 16  # the attempts shared fsyncs
    assert synced_lines[-1] == 18  # close() made the noted outcome durable


def test_a_failed_fsync_stops_the_attempt_naming_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(bridge.journal.os, "fsync", failing_fsync)
    journal = Journal(tmp_path / "j.jsonl")
    with pytest.raises(BridgeError, match=r"j\.jsonl: cannot write the journal .*stopped at 'attempt'"):
        asyncio.run(journal.record_synced("attempt", endpoint="e1"))
    journal.close()
