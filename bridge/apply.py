"""The apply engine: re-read, skip what is done or stale, back up, write, verify, journal (SPEC §8).

Every REST update triggers a rolling release on RunPod, and RunPod has no idempotency keys, so the engine:

- takes each endpoint's current state from the state the plan was made against when that is younger than
  :data:`FRESH_SECONDS`, else from one re-read of the endpoint list (not one read per endpoint): one already at
  its target is ``unchanged`` and never written; one whose state no longer matches the plan's fingerprint is
  ``stale`` and skipped (unless ``force``);
- saves a backup of every endpoint it is about to write before the first write;
- writes each body and verifies it from the write's own answer when that carries the endpoint (v1 update and
  v2 PATCH answer with it), then verifies the whole run with one final list read-back, which also catches a
  server that changes an endpoint after answering; a body field neither shows is named as unverified;
- after a write whose outcome is unknown (timeout, dropped connection, 5xx) re-reads that endpoint before any
  retry, and counts it done if it already matches; at most :data:`WRITE_ATTEMPTS` writes per endpoint;
- records every attempt and outcome in the journal (each attempt on disk before its write is sent);
- stops the whole run on a rejected key, a retired API, a failed TLS handshake or a wait longer than
  the server may ask for (errors whose ``stops_run`` is true).

Killing the process at any moment loses nothing: a second run re-reads, finds the finished endpoints
``unchanged`` and finishes the rest.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from bridge.errors import ApiError, BridgeError
from bridge.integrity import load_plan as load_plan  # re-exported: it lived here
from bridge.journal import Backup, BackupEntry, Journal, StateLock, write_backup
from bridge.models import Plan
from bridge.progress import advance as progress_advance
from bridge.progress import counted
from bridge.progress import phase as progress_phase
from bridge.targets import RestTarget
from bridge.targets.base import diff, fingerprint
from bridge.verify import mismatch, read_back, unshown_fields

__all__ = [
    "FRESH_SECONDS",
    "WRITE_ATTEMPTS",
    "ApplyResult",
    "EndpointApi",
    "Outcome",
    "WorkItem",
    "items_from_plan",
    "rollback_items",
    "run_items",
]

WRITE_ATTEMPTS = 3
# State read longer ago than this is read again (one list read) before the first write.
FRESH_SECONDS = 30.0

OutcomeStatus = Literal["updated", "unchanged", "blocked", "stale", "failed", "not-attempted"]


class EndpointApi(Protocol):
    """The calls the engine needs from a REST client (see :mod:`bridge.rest`)."""

    async def list_endpoints(self) -> list[dict[str, Any]]:
        """Read every endpoint's REST state (the whole list, every page)."""
        ...

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """Read one endpoint's REST state."""
        ...

    async def send_update(self, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send one update; raise ``WriteOutcomeUnknown`` when it may or may not have been applied."""
        ...


@dataclass(frozen=True)
class WorkItem:
    """One endpoint to bring to ``body``. ``expect``: the state it must be in now (rollback), if any."""

    id: str
    body: dict[str, Any]
    name: str | None = None
    fingerprint: str | None = None
    expect: dict[str, Any] | None = None


@dataclass
class Outcome:
    """What happened to one endpoint."""

    id: str
    name: str | None
    status: OutcomeStatus
    detail: str = ""
    writes: int = 0
    unverified: list[str] = field(default_factory=list)  # body fields no answer or read has shown yet


@dataclass
class ApplyResult:
    """The outcome of a run, with the paths of its state files."""

    target: str
    outcomes: list[Outcome]
    journal_path: Path | None
    backup_path: Path | None = None
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Count outcomes by status."""
        counts = dict.fromkeys(get_args(OutcomeStatus), 0)
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """1 when anything failed, went stale or the run stopped, else 3 when endpoints were blocked, else 0."""
        counts = self.counts()
        if self.stopped or counts["failed"] or counts["not-attempted"] or counts["stale"]:
            return 1
        if counts["blocked"]:
            return 3
        return 0

    def to_dict(self) -> dict[str, Any]:
        """Return the machine-readable result (``--format json``)."""
        return {
            "target": self.target,
            "summary": self.counts(),
            "stopped": self.stopped,
            "journal": str(self.journal_path) if self.journal_path else None,
            "backup": str(self.backup_path) if self.backup_path else None,
            "notes": self.notes,
            "endpoints": [
                {"id": o.id, "name": o.name, "status": o.status, "detail": o.detail, "writes": o.writes}
                for o in self.outcomes
            ],
        }


def items_from_plan(plan: Plan) -> tuple[list[WorkItem], list[Outcome]]:
    """Split a plan into work items (``update``) and outcomes known without any request."""
    items, known = [], []
    for ep in plan.endpoints:
        if ep.status == "update":
            items.append(WorkItem(id=ep.id, name=ep.name, body=dict(ep.body), fingerprint=ep.fingerprint))
        elif ep.status == "unchanged":
            known.append(Outcome(ep.id, ep.name, "unchanged", "already as planned"))
        else:
            errors = "; ".join(f"{f.code}: {f.message}" for f in ep.findings if f.severity == "error")
            known.append(Outcome(ep.id, ep.name, "blocked", errors))
    return items, known


def rollback_items(backup: Backup, target: RestTarget) -> tuple[list[WorkItem], list[str]]:
    """Work items that put back the REST fields the run changed; and the fields that cannot be restored."""
    items, lost = [], []
    for entry in backup.entries:
        before = target.normalize_state(entry.rest)
        body = {key: before[key] for key in entry.body if key in before}
        missing = [key for key in entry.body if key not in before]
        if missing:
            lost.append(f"{entry.id}: {', '.join(missing)} (the backup's REST read did not show them)")
        if body:
            items.append(WorkItem(id=entry.id, body=body, name=entry.rest.get("name"), expect=entry.body))
    return items, lost


def backup_name(kind: str, stamp: str) -> str:
    """``backup-<time>.json`` for a migration (``rollback --last`` picks it), ``rollback-backup-...`` for a rollback."""
    return f"rollback-backup-{stamp}.json" if kind == "rollback" else f"backup-{stamp}.json"


def _stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class _Run:
    def __init__(
        self,
        api: EndpointApi,
        target: RestTarget,
        journal: Journal,
        *,
        concurrency: int,
        force: bool,
        sleep: Callable[[float], Awaitable[None]],
        progress: Callable[[Outcome], None] | None,
    ) -> None:
        self.api = api
        self.target = target
        self.journal = journal
        self.gate = asyncio.Semaphore(concurrency)
        self.force = force
        self.sleep = sleep
        self.progress = progress
        self.stopped: str | None = None

    def _stop(self, exc: ApiError) -> None:
        if self.stopped is None:
            self.stopped = str(exc)
            self.journal.record("run-stopped", reason=str(exc))

    def _done(self, outcome: Outcome) -> Outcome:
        self.journal.note(  # durable with the next attempt's fsync, or at close
            "outcome", endpoint=outcome.id, status=outcome.status, detail=outcome.detail, writes=outcome.writes
        )
        if self.progress is not None:
            self.progress(outcome)
        return outcome

    def _mismatch(self, body: Mapping[str, Any], normalized: Mapping[str, Any]) -> list[str]:
        return mismatch(self.target, body, normalized)

    async def check(self, item: WorkItem) -> tuple[WorkItem, dict[str, Any] | Outcome]:
        """Read the endpoint's current state (one read), then :meth:`judge` it."""
        async with self.gate:
            if self.stopped:  # checked once a slot is held, as in write()
                return item, Outcome(item.id, item.name, "not-attempted", "the run stopped: " + self.stopped)
            try:
                state = await self.api.get_endpoint(item.id)
            except ApiError as exc:
                if exc.stops_run:
                    self._stop(exc)
                    return item, self._done(Outcome(item.id, item.name, "not-attempted", str(exc)))
                return item, self._done(Outcome(item.id, item.name, "failed", _read_failed(exc)))
        return item, self.judge(item, state)

    def judge(self, item: WorkItem, state: dict[str, Any]) -> dict[str, Any] | Outcome:
        """Decide from the endpoint's current state: done, stale, or to be written (the state, returned)."""
        normalized = self.target.normalize_state(state)
        if item.body and not any(key in normalized for key in item.body):
            detail = f"could not read it: the REST read shows none of the fields to write ({', '.join(item.body)})"
            return self._done(Outcome(item.id, item.name, "failed", detail))
        if not self._mismatch(item.body, normalized):
            return self._done(Outcome(item.id, item.name, "unchanged", "already at its target"))
        if not self.force:
            if item.fingerprint is not None and fingerprint(normalized, self.target.set_fields) != item.fingerprint:
                return self._done(
                    Outcome(item.id, item.name, "stale", "changed since the plan was made (--force to write anyway)")
                )
            undone = self._mismatch(item.expect, normalized) if item.expect is not None else []
            if undone:
                return self._done(
                    Outcome(
                        item.id, item.name, "stale", f"changed since the run it undoes ({', '.join(undone)}); --force"
                    )
                )
        return state

    async def write(self, item: WorkItem) -> Outcome:
        """Write one endpoint, retrying only when safe; verify it from the answer, or by a read after an unknown
        outcome. Fields the answer does not show are left to the run's final read-back (:meth:`read_back`)."""
        writes = 0
        last = ""
        while writes < WRITE_ATTEMPTS:
            async with self.gate:
                # Checked once a slot is held: a run stopped while this task waited for one sends nothing more.
                if self.stopped:
                    stopped = "the run stopped: " + self.stopped
                    return self._done(Outcome(item.id, item.name, "not-attempted", stopped, writes))
                writes += 1
                # Journaled once a slot is held, and on disk before the write is sent (the writes in flight
                # share one fsync: see Journal).
                await self.journal.record_synced("attempt", endpoint=item.id, attempt=writes, body=item.body)
                try:
                    answer = await self.api.send_update(item.id, item.body)
                except ApiError as exc:
                    if exc.stops_run:
                        self._stop(exc)
                        return self._done(Outcome(item.id, item.name, "not-attempted", str(exc), writes))
                    if not _outcome_unknown(exc):
                        detail = _gone(exc) if exc.status == 404 else str(exc)
                        return self._done(Outcome(item.id, item.name, "failed", detail, writes))
                    last = str(exc)
                    self.journal.record("outcome-unknown", endpoint=item.id, attempt=writes, error=last)
                else:
                    # The answer counts only when it is this endpoint: anything else proves nothing.
                    shown = self.target.normalize_state(answer) if answer.get("id") == item.id else {}
                    differs = [c.field for c in diff(item.body, shown, self.target.set_fields)]
                    if differs:
                        detail = f"the write's answer differs in: {', '.join(differs)}"
                        return self._done(Outcome(item.id, item.name, "failed", detail, writes))
                    unshown = unshown_fields(item.body, shown)
                    detail = "verified from the answer" if shown else "written (the answer does not show it)"
                    return self._done(Outcome(item.id, item.name, "updated", detail, writes, unshown))
                try:  # the write may or may not have been applied: read before writing again
                    state = await self.api.get_endpoint(item.id)
                except ApiError as exc:
                    if exc.stops_run:
                        self._stop(exc)
                    return self._done(
                        Outcome(item.id, item.name, "failed", f"written, but the read-back failed: {exc}", writes)
                    )
            normalized = self.target.normalize_state(state)
            if not self._mismatch(item.body, normalized):
                unshown = unshown_fields(item.body, normalized)
                detail = "verified after an unknown write outcome"
                return self._done(Outcome(item.id, item.name, "updated", detail, writes, unshown))
            await self.sleep(random.uniform(0, min(20.0, 0.5 * 2**writes)))
        return self._done(Outcome(item.id, item.name, "failed", f"gave up after {writes} writes: {last}", writes))

    async def states(
        self, items: Sequence[WorkItem], known: Mapping[str, Mapping[str, Any]] | None, notes: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The current state of ``items``: ``known`` when given (fresh), else one read of the endpoint list.

        Endpoints the list lacks are left out (the caller reads those one by one: the list may lag behind).
        """
        if known is not None:
            return {item.id: dict(known[item.id]) for item in items if item.id in known}
        if not items:
            return {}
        try:
            listed = await self.api.list_endpoints()
        except ApiError as exc:
            if exc.stops_run:
                self._stop(exc)
                return {}
            notes.append(f"could not read the endpoint list ({exc}): read each endpoint instead")
            return {}
        return {row["id"]: row for row in listed if isinstance(row.get("id"), str)}


@contextmanager
def _kept_if_written(result: ApplyResult) -> Iterator[None]:
    """A run that sent nothing (no backup was needed), even one interrupted, leaves no journal behind."""
    try:
        yield
    finally:
        if result.backup_path is None and result.journal_path is not None:
            result.journal_path.unlink(missing_ok=True)
            result.journal_path = None


def _gone(exc: ApiError) -> str:
    return f"no longer exists (deleted since the plan was made?): {exc}"


def _read_failed(exc: ApiError) -> str:
    return _gone(exc) if exc.status == 404 else f"could not read it: {exc}"


def _outcome_unknown(exc: ApiError) -> bool:
    """A timeout, a dropped connection or a 5xx: the write may have been applied."""
    from bridge.errors import WriteOutcomeUnknown

    return isinstance(exc, WriteOutcomeUnknown)


async def run_items(
    api: EndpointApi,
    target: RestTarget,
    items: Sequence[WorkItem],
    *,
    state_dir: str | Path,
    known: Sequence[Outcome] = (),
    legacy: Mapping[str, Mapping[str, Any]] | None = None,
    concurrency: int = 8,
    force: bool = False,
    secrets: Sequence[str] = (),
    kind: str = "apply",
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    progress: Callable[[Outcome], None] | None = None,
    state: Mapping[str, Mapping[str, Any]] | None = None,
    state_read_at: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ApplyResult:
    """Bring every item to its body. ``known``: outcomes decided without requests (blocked, unchanged).

    ``state``: the REST state the plan was made against, by id, read at ``state_read_at`` (``clock`` time);
    used as the endpoints' current state while it is younger than :data:`FRESH_SECONDS`, else the endpoint
    list is read again (once, not once per endpoint).
    """
    state_dir = Path(state_dir)
    with StateLock(state_dir):  # one run per state directory; clears what a killed run left
        stamp = _stamp(now())
        journal = Journal(state_dir / f"journal-{stamp}.jsonl", secrets=secrets)
        result = ApplyResult(target=target.name, outcomes=[], journal_path=journal.path)
        with journal, _kept_if_written(result):
            journal.record("run-start", kind=kind, target=target.name, endpoints=len(items) + len(known), time=stamp)
            for outcome in known:
                journal.note("outcome", endpoint=outcome.id, status=outcome.status, detail=outcome.detail, writes=0)
            run = _Run(api, target, journal, concurrency=concurrency, force=force, sleep=sleep, progress=progress)
            fresh = state is not None and state_read_at is not None and clock() - state_read_at <= FRESH_SECONDS
            progress_phase("checking endpoints", len(items))
            current = await run.states(items, state if fresh else None, result.notes)
            journal.record("state", source="plan" if fresh else "list", endpoints=len(current))
            # Judged at once where the state is known (no task each: 1,000 endpoints, between the reads and the
            # first write); read one by one where the list lacks them.
            judged: dict[str, dict[str, Any] | Outcome] = {}
            unknown: list[WorkItem] = []
            for item in items:
                if item.id in current:
                    judged[item.id] = run.judge(item, current[item.id])
                    progress_advance()
                else:
                    unknown.append(item)
            judged.update((item.id, o) for item, o in await asyncio.gather(*(counted(run.check(i)) for i in unknown)))
            checked = [(item, judged[item.id]) for item in items]
            outcomes = {o.id: o for _, o in checked if isinstance(o, Outcome)}
            to_write = [(item, state) for item, state in checked if not isinstance(state, Outcome)]
            if to_write and not run.stopped:
                backup = Backup(
                    target=target.name,
                    created_at=stamp,
                    entries=[
                        BackupEntry(
                            id=item.id,
                            rest=state,
                            body=item.body,
                            legacy=dict(legacy[item.id]) if legacy and item.id in legacy else None,
                        )
                        for item, state in to_write
                    ],
                )
                try:
                    where = state_dir / backup_name(kind, stamp)
                    result.backup_path = write_backup(where, backup, secrets=secrets)
                except OSError as exc:  # before the first write: nothing was sent
                    raise BridgeError(
                        f"{where}: cannot write the backup ({exc.strerror or exc}): nothing was sent"
                    ) from None
                journal.record("backup", path=str(result.backup_path), endpoints=len(to_write))
                progress_phase("writing", len(to_write))
                written = await asyncio.gather(*(counted(run.write(item)) for item, _ in to_write))
                checked_writes = [(item, o) for (item, _), o in zip(to_write, written, strict=True)]
                if not run.stopped:  # a stopped run sends nothing more
                    progress_phase("verifying")
                    await read_back(api, target, journal, checked_writes, result.notes)
                elif any(o.status == "updated" for o in written):
                    result.notes.append("the run stopped: its writes were verified from their answers only")
                for outcome in written:
                    outcomes[outcome.id] = outcome
            else:
                for item, _ in to_write:
                    outcomes[item.id] = Outcome(
                        item.id, item.name, "not-attempted", "the run stopped: " + (run.stopped or "")
                    )
            result.outcomes = [*known, *(outcomes[item.id] for item in items)]
            result.stopped = run.stopped
            journal.record("run-end", summary=result.counts(), stopped=run.stopped)
    return result
