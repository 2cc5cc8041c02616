"""``bridge apply``, ``bridge migrate`` and ``bridge rollback``: the commands that write to RunPod."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    KEEP_FB,
    MAPPINGS,
    TARGET,
    Connection,
    connection_options,
    handle_errors,
)

if TYPE_CHECKING:
    from bridge.apply import ApplyResult, Outcome
    from bridge.models import Plan, TargetChoice

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
def _progress(total: int, quiet: bool) -> Iterator[Callable[[Outcome], None] | None]:
    if quiet or total < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label="bridge", file=sys.stderr) as bar:
        yield lambda _outcome: bar.update(1)


def _finish(result: ApplyResult, fmt: str) -> NoReturn:
    """Print the result (stdout) and exit with its code."""
    from bridge.report import render_result

    render_result(result, sys.stdout, fmt)
    sys.exit(result.exit_code)


class _Bar:
    """A progress bar on a terminal's stderr, started once the number of endpoints to write is known."""

    def __init__(self, stack: ExitStack, quiet: bool) -> None:
        self._stack, self._quiet = stack, quiet
        self._update: Callable[[Outcome], None] | None = None

    def start(self, total: int) -> None:
        self._update = self._stack.enter_context(_progress(total, self._quiet))

    def __call__(self, outcome: Outcome) -> None:
        if self._update is not None:
            self._update(outcome)


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
def apply(
    plan_or_dir: str,
    yes: bool,
    force: bool,
    target: str | None,
    state_dir: str,
    quiet: bool,
    fmt: str,
    connection: Connection,
    debug: bool,
) -> None:
    """Send the bodies of an exported plan (a plan.json or an export directory), and nothing else.

    Each endpoint is re-read first: one already at its target is not written, one that changed since the
    plan was made is skipped as stale (--force writes it anyway). Every write is read back and compared.
    """
    from bridge.apply import load_plan
    from bridge.errors import InputError
    from bridge.migrate import apply_plan_async
    from bridge.report import summary_line

    plan = load_plan(plan_or_dir)
    if target and target != plan.target:
        raise InputError(f"{plan_or_dir}: the plan was made for REST {plan.target}, not {target}: plan again")
    settings = connection.settings()
    click.echo(f"bridge: plan {plan_or_dir}: {summary_line(plan)}", err=True)
    if any(ep.status == "update" and ep.fingerprint is None for ep in plan.endpoints):
        click.echo(
            "bridge: warning: the plan was made from a snapshot (no REST state): an endpoint changed since cannot "
            "be told apart, so it is not skipped as stale; plan live (without --from) to get that check",
            err=True,
        )
    if not plan.summary.update:
        click.echo("bridge: nothing to write", err=True)
    else:
        _consent(yes, f"Write {plan.summary.update} endpoint update(s) to RunPod?")
    with _progress(plan.summary.update, quiet) as progress:
        result = asyncio.run(apply_plan_async(plan, settings, state_dir=state_dir, force=force, progress=progress))
    _finish(result, fmt)


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
def migrate(
    dry_run: bool,
    yes: bool,
    target: TargetChoice,
    mappings: tuple[str, ...],
    endpoint_ids: tuple[str, ...],
    keep_fb_suffix: bool,
    state_dir: str,
    quiet: bool,
    fmt: str,
    connection: Connection,
    debug: bool,
) -> None:
    """One shot: read the live account, plan, ask, apply, verify, summarise.

    Running it again after an interruption finishes the rest: endpoints already done come back unchanged.
    """
    from bridge.migrate import run_migration
    from bridge.report import blocked_codes, render, summary_line

    def confirm(plan: Plan, notes: Sequence[str]) -> bool:
        for note in notes:
            click.echo(f"bridge: warning: {note}", err=True)
        if dry_run:
            render(plan, sys.stdout, fmt)
            return False
        click.echo(f"bridge: {summary_line(plan)}", err=True)
        for endpoint_id, codes in blocked_codes(plan):
            click.echo(f"bridge: blocked {endpoint_id}: {codes} (see `bridge plan`)", err=True)
        if plan.summary.update:
            _consent(yes, f"Write {plan.summary.update} endpoint update(s) to RunPod?")
        bar.start(plan.summary.update)
        return True

    with ExitStack() as stack:
        bar = _Bar(stack, quiet)
        migration = run_migration(
            connection.settings(),
            confirm=confirm,
            target=target,
            mappings=mappings,
            endpoint_ids=endpoint_ids,
            keep_fb_suffix=keep_fb_suffix,
            state_dir=state_dir,
            progress=bar,
        )
    if migration.result is None:
        sys.exit(3 if migration.plan.summary.blocked else 0)
    _finish(migration.result, fmt)


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
def rollback(
    backup_file: str,
    yes: bool,
    force: bool,
    target: str | None,
    state_dir: str,
    quiet: bool,
    fmt: str,
    connection: Connection,
    debug: bool,
) -> None:
    """Put back the REST fields a migration changed, from its backup (STATE_DIR/backup-*.json).

    An endpoint changed again since that run is skipped as stale (--force writes it anyway). Fields the
    backup's read did not show (e.g. flashboot) are named as not restorable.
    """
    from bridge.errors import InputError
    from bridge.journal import load_backup
    from bridge.migrate import rollback_async

    backup = load_backup(backup_file)
    if target and target != backup.target:
        raise InputError(f"{backup_file}: the backup is of a REST {backup.target} run")
    settings = connection.settings()
    click.echo(f"bridge: backup {backup_file}: {len(backup.entries)} endpoint(s)", err=True)
    if backup.entries:
        _consent(yes, f"Put back {len(backup.entries)} endpoint(s) as they were?")
    with _progress(len(backup.entries), quiet) as progress:
        result = asyncio.run(rollback_async(backup, settings, state_dir=state_dir, force=force, progress=progress))
    _finish(result, fmt)
