"""``bridge apply``, ``bridge migrate`` and ``bridge rollback``: the commands that write to RunPod."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    KEEP_FB,
    MAPPINGS,
    TARGET,
    connection_options,
    handle_errors,
    settings_from,
)

STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default="./bridge-state",
    show_default=True,
    help="Where the backup and the journal of each run are written.",
)
YES = click.option("--yes", "-y", is_flag=True, help="Write without asking (needed without a terminal).")
FORCE = click.option("--force", is_flag=True, help="Write endpoints that changed since the plan was made.")
QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Result format."
)
TARGET_OF_FILE = click.option(
    "--target",
    type=click.Choice(["v1", "v2"]),
    default=None,
    help="Refuse to run unless the file was made for this REST version.",
)


def _consent(yes: bool, question: str) -> None:
    """Writing needs --yes or an interactive "y"; without a terminal nothing is written (exit 2)."""
    from bridge.errors import ConsentError

    if yes:
        return
    if not sys.stdin.isatty():
        raise ConsentError("nothing was written: no terminal to ask; run again with --yes to write")
    if not click.confirm(question, default=False, err=True):
        raise ConsentError("nothing was written: not confirmed")


@contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[Any], None] | None]:
    if quiet or total < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label="bridge", file=sys.stderr) as bar:
        yield lambda _outcome: bar.update(1)


def _report(result: Any, fmt: str) -> None:
    """Print the result (stdout) and exit with its code."""
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        for outcome in result.outcomes:
            if outcome.status in ("failed", "stale", "not-attempted"):
                label = f"{outcome.id} {json.dumps(outcome.name)}" if outcome.name else outcome.id
                click.echo(f"  {outcome.status}: {label}: {outcome.detail}")
        for note in result.notes:
            click.echo(f"  note: {note}")
        counts = result.counts()
        parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in ("updated", "failed"))
        click.echo(f"bridge: {parts}" + (f" (stopped: {result.stopped})" if result.stopped else ""))
        click.echo(
            f"bridge: journal {result.journal_path}" + (f", backup {result.backup_path}" if result.backup_path else "")
        )
    sys.exit(result.exit_code)


def _summary_line(plan: Any) -> str:
    s = plan.summary
    return f"{s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked (target REST {plan.target})"


@click.command()
@click.argument("plan_or_dir", type=click.Path(exists=True))
@YES
@FORCE
@TARGET_OF_FILE
@STATE_DIR
@QUIET
@FORMAT
@connection_options
@DEBUG
@handle_errors
def apply(**kwargs: Any) -> None:
    """Send the bodies of an exported plan (a plan.json or an export directory), and nothing else.

    Each endpoint is re-read first: one already at its target is not written, one that changed since the
    plan was made is skipped as stale (--force writes it anyway). Every write is read back and compared.
    """
    from bridge.apply import apply_plan_async, load_plan
    from bridge.errors import InputError

    plan = load_plan(kwargs["plan_or_dir"])
    if kwargs["target"] and kwargs["target"] != plan.target:
        raise InputError(
            f"{kwargs['plan_or_dir']}: the plan was made for REST {plan.target}, not {kwargs['target']}: plan again"
        )
    settings = settings_from(kwargs)
    click.echo(f"bridge: plan {kwargs['plan_or_dir']}: {_summary_line(plan)}", err=True)
    if any(ep.status == "update" and ep.fingerprint is None for ep in plan.endpoints):
        click.echo(
            "bridge: warning: the plan was made from a snapshot (no REST state): an endpoint changed since cannot "
            "be told apart, so it is not skipped as stale; plan live (without --from) to get that check",
            err=True,
        )
    if not plan.summary.update:
        click.echo("bridge: nothing to write", err=True)
    else:
        _consent(kwargs["yes"], f"Write {plan.summary.update} endpoint update(s) to RunPod?")
    with _progress(plan.summary.update, kwargs["quiet"]) as progress:
        result = asyncio.run(
            apply_plan_async(plan, settings, state_dir=kwargs["state_dir"], force=kwargs["force"], progress=progress)
        )
    _report(result, kwargs["fmt"])


@click.command()
@click.option("--dry-run", is_flag=True, help="Stop after the plan: nothing is written.")
@YES
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
@STATE_DIR
@QUIET
@FORMAT
@connection_options
@DEBUG
@handle_errors
def migrate(**kwargs: Any) -> None:
    """One shot: read the live account, plan, ask, apply, verify, summarise.

    Running it again after an interruption finishes the rest: endpoints already done come back unchanged.
    """
    from bridge.apply import apply_plan_async
    from bridge.http import Http
    from bridge.pipeline import make_plan, read_account_live
    from bridge.report import render

    settings = settings_from(kwargs)
    target = kwargs["target"]

    async def run() -> Any:
        # One session from the first read to the last write: the writes keep the pacing the reads learned
        # (a fresh one would burst into a rate limit the reads had already found).
        async with Http(settings) as http:
            account = await read_account_live(
                http, mappings=kwargs["mappings"], endpoint_ids=kwargs["endpoint_ids"], target=target
            )
            for note in account.notes:
                click.echo(f"bridge: warning: {note}", err=True)
            plan = make_plan(account, target=target, keep_fb_suffix=kwargs["keep_fb_suffix"])
            if kwargs["dry_run"]:
                render(plan, sys.stdout, kwargs["fmt"])
                return 3 if plan.summary.blocked else 0
            click.echo(f"bridge: {_summary_line(plan)}", err=True)
            for ep in plan.endpoints:
                if ep.status == "blocked":
                    codes = ", ".join(sorted({f.code for f in ep.findings if f.severity == "error"}))
                    click.echo(f"bridge: blocked {ep.id}: {codes} (see `bridge plan`)", err=True)
            if plan.summary.update:
                _consent(kwargs["yes"], f"Write {plan.summary.update} endpoint update(s) to RunPod?")
            legacy = {ep.id: ep.model_dump(exclude_none=True) for ep in account.endpoints}
            with _progress(plan.summary.update, kwargs["quiet"]) as progress:
                return await apply_plan_async(
                    plan,
                    settings,
                    state_dir=kwargs["state_dir"],
                    legacy=legacy,
                    progress=progress,
                    kind="migrate",
                    http=http,
                )

    result = asyncio.run(run())
    if isinstance(result, int):
        sys.exit(result)
    _report(result, kwargs["fmt"])


@click.command()
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@YES
@FORCE
@TARGET_OF_FILE
@STATE_DIR
@QUIET
@FORMAT
@connection_options
@DEBUG
@handle_errors
def rollback(**kwargs: Any) -> None:
    """Put back the REST fields a migration changed, from its backup (STATE_DIR/backup-*.json).

    An endpoint changed again since that run is skipped as stale (--force writes it anyway). Fields the
    backup's read did not show (e.g. flashboot) are named as not restorable.
    """
    from bridge.apply import rollback_async
    from bridge.errors import InputError
    from bridge.journal import load_backup

    backup = load_backup(kwargs["backup_file"])
    if kwargs["target"] and kwargs["target"] != backup.target:
        raise InputError(f"{kwargs['backup_file']}: the backup is of a REST {backup.target} run")
    settings = settings_from(kwargs)
    click.echo(f"bridge: backup {kwargs['backup_file']}: {len(backup.entries)} endpoint(s)", err=True)
    if backup.entries:
        _consent(kwargs["yes"], f"Put back {len(backup.entries)} endpoint(s) as they were?")
    with _progress(len(backup.entries), kwargs["quiet"]) as progress:
        result = asyncio.run(
            rollback_async(backup, settings, state_dir=kwargs["state_dir"], force=kwargs["force"], progress=progress)
        )
    _report(result, kwargs["fmt"])
