"""``bridge apply``, ``bridge migrate`` and ``bridge rollback``: the commands that write to RunPod."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from bridge._aio import run as run_async
from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    EXIT_CODES,
    KEEP_FB,
    MAPPINGS,
    QUIET,
    TARGET,
    Connection,
    connection_options,
    handle_errors,
    settle_heap,
)
from bridge.cli._consent import ask, require_consent_possible
from bridge.cli._interrupted import interruptible
from bridge.cli._progress import progress_shown

if TYPE_CHECKING:
    from bridge.apply import ApplyResult
    from bridge.config import Settings
    from bridge.journal import Backup
    from bridge.models import Plan, TargetChoice

STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default="./bridge-state",
    show_default=True,
    help="Where the backup and the journal of each run are written.",
)
YES = click.option("--yes", "-y", is_flag=True, help="Write without asking (needed without a terminal).")
FORCE = click.option(
    "--force",
    is_flag=True,
    help="Write endpoints that changed since the file was made, and use a file edited since bridge wrote it.",
)
SHOW_ALL = click.option(
    "--show-all", is_flag=True, help=f"Before asking, list every endpoint to write, not only the first {50}."
)
FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Result format."
)
TARGET_OF_FILE = click.option(
    "--target",
    type=click.Choice(["v1", "v2"]),
    default=None,
    help="Refuse to run unless the file was made for this REST version.",
)


SHOWN = 50  # endpoints listed above the question without --show-all
T = TypeVar("T")


def _hold(settings: Settings, state_dir: str) -> Settings:
    """Hold the account and the state directory until the command ends: a second run is refused before asking."""
    from bridge.migrate import run_locks

    click.get_current_context().with_resource(run_locks(settings, state_dir))
    return settings


def _finish(result: ApplyResult, fmt: str) -> NoReturn:
    """Print the result (stdout) and exit with its code."""
    from bridge.report import render_result

    render_result(result, sys.stdout, fmt)
    sys.exit(result.exit_code)


def _ask_plan(plan: Plan, show_all: bool) -> None:
    from bridge.report import plural, render_changes

    def show() -> None:
        click.echo("bridge: these changes will be written:", err=True)
        render_changes(plan, sys.stderr, None if show_all else SHOWN)

    ask(f"Write {plural(plan.summary.update, 'endpoint update')} to RunPod?", show)


def _ask_rollback(backup: Backup, show_all: bool) -> None:
    import json

    from bridge.apply import rollback_items
    from bridge.report import plural
    from bridge.targets import get_target

    items, _ = rollback_items(backup, get_target(backup.target))

    def show() -> None:
        click.echo("bridge: these fields will be put back:", err=True)
        for item in items if show_all else items[:SHOWN]:
            now = next((e.body for e in backup.entries if e.id == item.id), {})
            click.echo(f"  <- {item.id}" + (f"  {json.dumps(item.name)}" if item.name else ""), err=True)
            changed = {key: value for key, value in item.body.items() if not _same(now.get(key), value)}
            width = max((len(key) for key in changed), default=0)
            for key, value in changed.items():
                old, new = json.dumps(now.get(key), sort_keys=True), json.dumps(value, sort_keys=True)
                click.echo(f"       {key.ljust(width)}  {old} -> {new}", err=True)
        if not show_all and len(items) > SHOWN:
            click.echo(f"  ... and {plural(len(items) - SHOWN, 'more endpoint')} (--show-all lists them)", err=True)

    ask(f"Put back {plural(len(items), 'endpoint')} as they were before that run?", show)


def _same(a: object, b: object) -> bool:
    """Equal, lists compared as sets (as the engine's read-back does)."""
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(repr, a)) == sorted(map(repr, b))
    return a == b


def _last_backup(state_dir: str) -> str:
    """The newest migration backup (``backup-<time>.json``, never a rollback's own) in ``state_dir``."""
    from bridge.errors import InputError

    found = sorted(Path(state_dir).glob("backup-*.json"))
    if not found:
        raise InputError(f"--last: no migration backup (backup-*.json) in {state_dir}; give the backup file instead")
    return str(found[-1])


def _load_as(load: Callable[[], T], path: str, wanted: str) -> T:
    """``load()`` the file at ``path``; when it refuses the file, say what the file is if it is another kind
    (:func:`_wrong_file`), else let the refusal stand."""
    from bridge.errors import InputError, SnapshotError

    try:
        return load()
    except SnapshotError:
        what = _wrong_file(path, wanted)
        if what is None:
            raise
        raise InputError(f"{path}: this is {what}, not a {wanted}") from None


def _wrong_file(path: str, wanted: str) -> str | None:
    """Say what a file given to ``apply`` or ``rollback`` is when it is not the ``wanted`` kind, and where it goes.

    Read only after the file was refused, so a valid plan or backup is never read twice.
    """
    import json

    file = Path(path) / "plan.json" if Path(path).is_dir() else Path(path)
    try:
        if not file.is_file() or file.stat().st_size > 256 * 1024 * 1024:
            return None
        text = file.read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, UnicodeDecodeError, RecursionError):
        return None
    except json.JSONDecodeError:
        if not text.lstrip().startswith('{"event": '):
            return None
        backup = file.with_name(file.name.replace("journal-", "backup-", 1).removesuffix("l"))
        beside = f"; its run's backup is {backup}" if wanted == "backup" and backup.is_file() else ""
        return f"a bridge journal (a run's record{beside})"
    if not isinstance(doc, dict):
        return None
    if doc.get("format") == "bridge-backup":
        kind = "backup"
        what = "a bridge backup (give it to `bridge rollback`)"
    elif "format_version" in doc and "generated_at" in doc and "tables" in doc:
        kind = "plan"
        what = "a bridge plan (give it to `bridge apply`)"
    elif "data" in doc or isinstance(doc.get("endpoints"), list):
        kind = "snapshot"
        what = f"a snapshot of an account (plan it with `bridge plan --from {path}`)"
    else:
        return None
    return None if kind == wanted else what


@click.command(epilog=EXIT_CODES)
@click.argument("plan_or_dir", type=click.Path(exists=True))
@YES
@FORCE
@TARGET_OF_FILE
@STATE_DIR
@QUIET
@SHOW_ALL
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
    show_all: bool,
    fmt: str,
    connection: Connection,
    debug: bool,
) -> None:
    """Send the bodies of an exported plan (a plan.json or an export directory), and nothing else.

    Each endpoint is re-read first: one already at its target is not written, one that changed since the
    plan was made is skipped as stale (--force writes it anyway). Every write is read back and compared.
    """
    from bridge.errors import InputError
    from bridge.integrity import load_plan
    from bridge.migrate import apply_plan_async
    from bridge.report import summary_line

    plan = _load_as(lambda: load_plan(plan_or_dir, force=force), plan_or_dir, "plan")
    if target and target != plan.target:
        raise InputError(f"{plan_or_dir}: the plan was made for REST {plan.target}, not {target}: plan again")
    if plan.summary.update:
        require_consent_possible(yes)
    settings = _hold(connection.settings(), state_dir)
    click.echo(f"bridge: plan {plan_or_dir}: {summary_line(plan)}", err=True)
    if any(ep.status == "update" and ep.fingerprint is None for ep in plan.endpoints):
        click.echo(
            "bridge: warning: the plan was made from a snapshot (no REST state): an endpoint changed since cannot "
            "be told apart, so it is not skipped as stale; plan live (without --from) to get that check",
            err=True,
        )
    if not plan.summary.update:
        click.echo("bridge: nothing to write", err=True)
    elif not yes:
        _ask_plan(plan, show_all)
    settle_heap()
    with interruptible(state_dir), progress_shown(quiet):
        result = run_async(apply_plan_async(plan, settings, state_dir=state_dir, force=force))
    _finish(result, fmt)


@click.command(epilog=EXIT_CODES)
@click.option("--dry-run", is_flag=True, help="Stop after the plan: nothing is written.")
@YES
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
@STATE_DIR
@QUIET
@SHOW_ALL
@FORMAT
@click.option(
    "--from",
    "from_file",
    hidden=True,
    help="Not for migrate, which reads the live account: use plan --from FILE, or export + apply.",
)
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
    show_all: bool,
    fmt: str,
    from_file: str | None,
    connection: Connection,
    debug: bool,
) -> None:
    """One shot: read the live account, plan, ask, apply, verify, summarise.

    Running it again after an interruption finishes the rest: endpoints already done come back unchanged.
    """
    from bridge.errors import InputError
    from bridge.migrate import run_migration
    from bridge.report import blocked_codes, render, summary_line

    if from_file is not None:
        raise InputError(
            "migrate reads the live account and has no --from: to plan a snapshot, run "
            f"`bridge plan --from {from_file}`; to send reviewed bodies, "
            f"`bridge export --from {from_file} --out DIR` then `bridge apply DIR`"
        )
    if not dry_run:
        require_consent_possible(yes)

    def confirm(plan: Plan, notes: Sequence[str]) -> bool:
        if shown is not None:
            shown.clear()
        for note in notes:
            click.echo(f"bridge: warning: {note}", err=True)
        if dry_run:
            render(plan, sys.stdout, fmt)
            return False
        click.echo(f"bridge: {summary_line(plan)}", err=True)
        for endpoint_id, codes in blocked_codes(plan):
            click.echo(f"bridge: blocked {endpoint_id}: {codes} (see `bridge plan`)", err=True)
        if plan.summary.update and not yes:
            _ask_plan(plan, show_all)
        settle_heap()
        return True

    with interruptible(state_dir), progress_shown(quiet) as shown:
        migration = run_migration(
            connection.settings(),
            confirm=confirm,
            target=target,
            mappings=mappings,
            endpoint_ids=endpoint_ids,
            keep_fb_suffix=keep_fb_suffix,
            state_dir=state_dir,
        )
    if migration.result is None:
        sys.exit(3 if migration.plan.summary.blocked else 0)
    _finish(migration.result, fmt)


@click.command(epilog=EXIT_CODES)
@click.argument("backup_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--last", is_flag=True, help="Roll back the newest migration backup in --state-dir.")
@YES
@FORCE
@TARGET_OF_FILE
@STATE_DIR
@QUIET
@SHOW_ALL
@FORMAT
@connection_options
@DEBUG
@handle_errors
def rollback(
    backup_file: str | None,
    last: bool,
    yes: bool,
    force: bool,
    target: str | None,
    state_dir: str,
    quiet: bool,
    show_all: bool,
    fmt: str,
    connection: Connection,
    debug: bool,
) -> None:
    """Put back the REST fields a migration changed, from its backup (BACKUP_FILE, or --last).

    An endpoint changed again since that run is skipped as stale (--force writes it anyway). Fields the
    backup's read did not show (e.g. flashboot) are named as not restorable. The rollback writes its own
    backup (STATE_DIR/rollback-backup-*.json), so it can be undone in turn.
    """
    from bridge.errors import InputError
    from bridge.journal import load_backup, written_only
    from bridge.migrate import rollback_async
    from bridge.report import plural

    if last == (backup_file is not None):
        raise click.UsageError("give either a BACKUP_FILE or --last")
    path = backup_file if backup_file is not None else _last_backup(state_dir)
    loaded = _load_as(lambda: load_backup(path, force=force), path, "backup")
    backup = written_only(loaded, force=force)  # what its run sent, nothing else
    if target and target != backup.target:
        raise InputError(f"{path}: the backup is of a REST {backup.target} run")
    if backup.entries:
        require_consent_possible(yes)
    settings = _hold(connection.settings(), state_dir)
    click.echo(f"bridge: backup {path}: {plural(len(backup.entries), 'endpoint')}", err=True)
    if backup.entries and not yes:
        _ask_rollback(backup, show_all)
    with interruptible(state_dir), progress_shown(quiet):
        result = run_async(rollback_async(backup, settings, state_dir=state_dir, force=force))
    _finish(result, fmt)
