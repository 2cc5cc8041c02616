"""The journal's fsync strategy: attempts on disk before they are sent, one fsync shared by the lines in flight."""

from __future__ import annotations

import asyncio
import os
import threading
import time
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


@pytest.mark.parametrize(("fsync_seconds", "on_loop_thread"), [(0.0, True), (0.005, False)])
def test_a_fast_disk_is_fsynced_on_the_loop_thread_a_slow_one_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync_seconds: float, on_loop_thread: bool
) -> None:
    # A worker thread's hand-over costs more than a 0.1 ms fsync; a 5 ms fsync must not hold up the loop.
    threads: list[bool] = []

    def timed_fsync(fd: int) -> None:  # the disk's speed is set here, whatever this machine's disk does
        time.sleep(fsync_seconds)
        threads.append(threading.current_thread() is threading.main_thread())

    monkeypatch.setattr(bridge.journal.os, "fsync", timed_fsync)

    async def main(journal: Journal) -> None:
        for round_ in range(3):  # each round: 8 attempts in one pass of the loop, sharing one fsync
            await asyncio.gather(*(journal.record_synced("attempt", endpoint=f"ep{round_}-{i}") for i in range(8)))

    with Journal(tmp_path / "journal.jsonl") as journal:
        journal.record("run-start")  # on the loop's thread: the disk's speed is learnt here
        asyncio.run(main(journal))
    assert threads[0] is True  # record() itself
    assert threads[1:4] == [on_loop_thread] * 3  # one shared fsync per round, on the thread the disk's speed picks
