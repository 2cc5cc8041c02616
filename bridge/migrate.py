"""Whole writing runs in one call each: migrate (read, plan, confirm, apply), apply a plan file, roll back.

::

    migration = run_migration(settings, target="v2", confirm=lambda plan, notes: True, state_dir="bridge-state")
    render_result(migration.result, sys.stdout)

Each opens one HTTP session for the whole run, so the writes keep the pacing the reads learned (a fresh
session would burst into a rate limit the reads had already found). The engine itself, which re-reads,
backs up, writes, verifies and journals each endpoint, is :mod:`bridge.apply`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bridge._aio import run as run_async
from bridge.apply import ApplyResult, Outcome, WorkItem, items_from_plan, rollback_items, run_items
from bridge.config import Settings
from bridge.http import Http, RetryPolicy
from bridge.integrity import find_redacted
from bridge.journal import Backup, StateLock, written_only
from bridge.locks import AccountLock
from bridge.models import Plan, TargetChoice
from bridge.pipeline import make_plan, read_account_live
from bridge.quota import estimate
from bridge.rest import RestClient, open_rest
from bridge.tables import Override
from bridge.targets import get_target

__all__ = [
    "Confirm",
    "Migration",
    "Progress",
    "apply_plan_async",
    "rollback_async",
    "run_locks",
    "run_migration",
    "run_migration_async",
]

Confirm = Callable[[Plan, Sequence[str]], bool]
"""Gets the plan and the read's notes before anything is written; False stops there (a dry run)."""
Progress = Callable[[Outcome], None]


def _without_redacted(item: WorkItem, lost: list[str]) -> WorkItem:
    """Leave out a field whose saved value was scrubbed (a secret, the key): sending it would replace the real
    value with ``<redacted>``. It is named as not restorable instead."""
    scrubbed = [key for key, value in item.body.items() if find_redacted(value, key)]
    if scrubbed:
        lost.append(f"{item.id}: {', '.join(scrubbed)} (the backup holds it redacted)")
    expect = item.expect  # a scrubbed value written by the run cannot be compared with the live one: not checked
    if expect is not None:
        expect = {k: v for k, v in expect.items() if k not in scrubbed and not find_redacted(v, k)}
    return replace(item, body={k: v for k, v in item.body.items() if k not in scrubbed}, expect=expect)


@contextmanager
def run_locks(settings: Settings, state_dir: str | Path) -> Iterator[None]:
    """Hold the account (:class:`~bridge.locks.AccountLock`) and the state directory for one writing run.

    Every run that writes takes both before it reads anything, so a second run is refused at once, with one
    line, before it has read the account or asked anything. Entered again inside the same run (the engine
    takes the state lock itself), they take nothing.
    """
    with ExitStack() as stack:
        stack.enter_context(AccountLock.for_settings(settings, state_dir=state_dir))
        stack.enter_context(StateLock(state_dir))
        yield


@dataclass
class Migration:
    """What :func:`run_migration` did: the plan, the read's notes, and the run's result (None: nothing was applied)."""

    plan: Plan
    notes: list[str] = field(default_factory=list)
    result: ApplyResult | None = None


async def run_migration_async(
    settings: Settings,
    *,
    confirm: Confirm,
    target: TargetChoice = "auto",
    mappings: Sequence[str | Path | Override] = (),
    endpoint_ids: Sequence[str] = (),
    keep_fb_suffix: bool = False,
    state_dir: str | Path = "./bridge-state",
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
) -> Migration:
    """Read the live account, plan it for ``target``, ask ``confirm``, then apply and verify the plan.

    ``target="auto"`` plans for REST v1 while RunPod serves it and for v2 once v1 answers 410 Gone (decided
    during the read, before ``confirm``); ``plan.target_reason`` says which and why.

    ``confirm`` is called once, even when nothing is to be updated; it may also raise (e.g.
    :class:`~bridge.errors.ConsentError`) to stop. Running again after an interruption finishes the rest.
    """
    with run_locks(settings, state_dir):  # before the live read: a second run is refused before it reads
        async with Http(settings, policy=policy, transport=transport) as http:
            read_at = time.monotonic()  # the state is at least this fresh
            account = await read_account_live(http, mappings=mappings, endpoint_ids=endpoint_ids, target=target)
            plan = make_plan(account, target=target, keep_fb_suffix=keep_fb_suffix)
            migration = Migration(plan=plan, notes=list(account.notes))
            # The writes, and the final read-back (as many list pages as the read took).
            note = estimate(http.quota_status(), plan.summary.update + max(1, http.counters.by_kind["list"])).note()
            if plan.summary.update and note:
                migration.notes.append(note)
            if not confirm(plan, migration.notes):
                return migration
            legacy = {ep.id: ep.model_dump(exclude_none=True) for ep in account.endpoints}
            # The state the plan was made against is the writes' starting point while it is fresh (no re-read).
            migration.result = await apply_plan_async(
                plan,
                settings,
                state_dir=state_dir,
                legacy=legacy,
                progress=progress,
                kind="migrate",
                http=http,
                state=account.rest_state,
                state_read_at=read_at,
            )
            return migration


def run_migration(
    settings: Settings,
    *,
    confirm: Confirm,
    target: TargetChoice = "auto",
    mappings: Sequence[str | Path | Override] = (),
    endpoint_ids: Sequence[str] = (),
    keep_fb_suffix: bool = False,
    state_dir: str | Path = "./bridge-state",
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
) -> Migration:
    """:func:`run_migration_async` in its own event loop."""
    return run_async(
        run_migration_async(
            settings,
            confirm=confirm,
            target=target,
            mappings=mappings,
            endpoint_ids=endpoint_ids,
            keep_fb_suffix=keep_fb_suffix,
            state_dir=state_dir,
            progress=progress,
            transport=transport,
            policy=policy,
        )
    )


async def apply_plan_async(
    plan: Plan,
    settings: Settings,
    *,
    state_dir: str | Path,
    force: bool = False,
    legacy: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
    kind: str = "apply",
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
    http: Http | None = None,
    state: Mapping[str, Mapping[str, Any]] | None = None,
    state_read_at: float | None = None,
) -> ApplyResult:
    """Send the plan's ``update`` bodies with ``settings`` (a :class:`bridge.config.Settings`).

    ``http``: an open :class:`bridge.http.Http` to send them over (the session that read the account, so
    that the writes keep the pacing the reads learned); without one, a session is opened for the run.
    ``state``: the REST state the plan was made against, read at ``state_read_at`` (``time.monotonic()``):
    the starting point while it is fresh, else the endpoint list is read again before the first write.
    """
    items, known = items_from_plan(plan)
    session = (
        nullcontext(RestClient(http, plan.target))
        if http is not None
        else open_rest(settings, plan.target, transport=transport, policy=policy)
    )
    with run_locks(settings, state_dir):
        async with session as client:
            return await run_items(
                client,
                get_target(plan.target),
                items,
                state_dir=state_dir,
                known=known,
                legacy=legacy,
                concurrency=settings.concurrency,
                force=force,
                secrets=[settings.api_key],
                kind=kind,
                progress=progress,
                state=state,
                state_read_at=state_read_at,
            )


async def rollback_async(
    backup: Backup,
    settings: Settings,
    *,
    state_dir: str | Path,
    force: bool = False,
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
) -> ApplyResult:
    """Put back the REST fields a run changed, from its backup, through the same engine.

    Only the fields the run's journal (beside the backup) shows it sent are put back; without that journal,
    ``force`` puts back every field of the backup, and otherwise nothing is written (one line).
    """
    target = get_target(backup.target)
    items, lost = rollback_items(written_only(backup, force=force), target)
    items = [_without_redacted(item, lost) for item in items]
    items = [item for item in items if item.body]
    with run_locks(settings, state_dir):
        async with open_rest(settings, target, transport=transport, policy=policy) as client:
            result = await run_items(
                client,
                target,
                items,
                state_dir=state_dir,
                concurrency=settings.concurrency,
                force=force,
                secrets=[settings.api_key],
                kind="rollback",
                progress=progress,
            )
    result.notes.extend(f"not restorable: {line}" for line in lost)
    return result
