"""``bridge plan`` and ``bridge export``: the dry run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    EXIT_CODES,
    FROM,
    KEEP_FB,
    MAPPINGS,
    QUIET,
    TARGET,
    Connection,
    connection_options,
    handle_errors,
)

if TYPE_CHECKING:
    from bridge.models import Plan, TargetChoice

EXIT_BLOCKED = 3
EXIT_CHECK = 4


def _plan(
    from_file: str | None,
    connection: Connection,
    *,
    target: TargetChoice,
    mappings: tuple[str, ...],
    endpoint_ids: tuple[str, ...],
    keep_fb_suffix: bool,
    quiet: bool,
) -> Plan:
    from bridge.cli._progress import progress_shown
    from bridge.pipeline import make_plan, read_account_for_plan

    with progress_shown(quiet=quiet or bool(from_file)):
        inputs = read_account_for_plan(
            from_file=sample_path(from_file),
            settings=None if from_file else connection.settings(),
            mappings=mappings,
            endpoint_ids=endpoint_ids,
            target=target,
        )
    if from_file and not inputs.endpoints:
        click.echo(f"bridge: {from_file} holds no endpoints: there is nothing to plan", err=True)
    for note in inputs.notes:
        click.echo(f"bridge: warning: {note}", err=True)
    return make_plan(inputs, target=target, keep_fb_suffix=keep_fb_suffix)


@click.command(epilog=EXIT_CODES)
@FROM
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Report format (json is the plan file that apply reads).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option(
    "--check",
    is_flag=True,
    help="Drift gate: exit 4 when anything would be written (even if some are blocked), 3 when only blocked.",
)
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
@QUIET
@connection_options
@DEBUG
@handle_errors
def plan(
    from_file: str | None,
    fmt: str,
    output: str | None,
    check: bool,
    target: TargetChoice,
    mappings: tuple[str, ...],
    endpoint_ids: tuple[str, ...],
    keep_fb_suffix: bool,
    quiet: bool,
    connection: Connection,
    debug: bool,
) -> None:
    """Translate every endpoint and report what would change. Nothing is written to RunPod.

    Reads the live account (RUNPOD_API_KEY) and compares with the REST state, or reads a snapshot
    with --from (--from sample: the bundled sample account). With --check, the exit code says what an
    apply would do, as terraform plan -detailed-exitcode: 4 something to write, 3 only blocked
    endpoints left, 0 nothing to do.
    """
    from bridge._gc import paused_gc

    # The account, the plan and the report are built in one pass and all survive until the end: the cyclic
    # collector would only rescan them. The plan is dropped inside the block, so turning it back on is cheap.
    with paused_gc():
        result = _plan(
            from_file,
            connection,
            target=target,
            mappings=mappings,
            endpoint_ids=endpoint_ids,
            keep_fb_suffix=keep_fb_suffix,
            quiet=quiet,
        )
        _write_report(result, fmt, output)
        code = plan_exit_code(result, check)
        del result
    if code:
        sys.exit(code)


def plan_exit_code(result: Plan, check: bool) -> int:
    """--check: 4 when anything would be written (whatever is blocked), else 3 when blocked, else 0."""
    if check and result.summary.update:
        return EXIT_CHECK
    return EXIT_BLOCKED if result.summary.blocked else 0


def sample_path(from_file: str | None) -> str | None:
    """``--from sample`` is the bundled sample account, wherever bridge is installed."""
    if from_file != "sample":
        return from_file
    from pathlib import Path

    from bridge._resources import data_path

    return from_file if Path(from_file).exists() else str(data_path("sample-account.json"))


def _write_report(result: Plan, fmt: str, output: str | None) -> None:
    """Render the plan onto stdout, or into ``output`` (mode 0600)."""
    from bridge.report import render

    if output is None:
        render(result, sys.stdout, fmt)
        return
    from bridge.files import write_private

    try:
        write_private(output, lambda fh: render(result, fh, fmt))
    except OSError as exc:
        from bridge.errors import InputError

        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    from bridge.report import plural

    click.echo(f"bridge: wrote the {fmt} plan of {plural(result.summary.endpoints, 'endpoint')} to {output}", err=True)


@click.command(epilog=EXIT_CODES)
@FROM
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write.")
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
@QUIET
@connection_options
@DEBUG
@handle_errors
def export(
    from_file: str | None,
    out_dir: str,
    target: TargetChoice,
    mappings: tuple[str, ...],
    endpoint_ids: tuple[str, ...],
    keep_fb_suffix: bool,
    quiet: bool,
    connection: Connection,
    debug: bool,
) -> None:
    """Write DIR/<endpoint id>.json with the exact body of each unblocked endpoint, plus DIR/plan.json."""
    from bridge.export import export_plan

    result = _plan(
        from_file,
        connection,
        target=target,
        mappings=mappings,
        endpoint_ids=endpoint_ids,
        keep_fb_suffix=keep_fb_suffix,
        quiet=quiet,
    )
    written = export_plan(result, out_dir)
    s = result.summary
    from bridge.report import plural

    click.echo(
        f"bridge: wrote {plural(len(written) - 1, 'body file')} and plan.json to {out_dir} "
        f"({s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked)",
        err=True,
    )
    if s.blocked:
        sys.exit(EXIT_BLOCKED)
