"""``bridge plan`` and ``bridge export``: the dry run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    FROM,
    KEEP_FB,
    MAPPINGS,
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
) -> Plan:
    from bridge.pipeline import make_plan, read_account_for_plan

    inputs = read_account_for_plan(
        from_file=from_file,
        settings=None if from_file else connection.settings(),
        mappings=mappings,
        endpoint_ids=endpoint_ids,
        target=target,
    )
    for note in inputs.notes:
        click.echo(f"bridge: warning: {note}", err=True)
    return make_plan(inputs, target=target, keep_fb_suffix=keep_fb_suffix)


@click.command()
@FROM
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--check", is_flag=True, help="Exit 4 when any endpoint would change (a CI gate).")
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
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
    connection: Connection,
    debug: bool,
) -> None:
    """Translate every endpoint and report what would change. Nothing is written to RunPod.

    Reads the live account (RUNPOD_API_KEY) and compares with the REST state, or reads a snapshot
    with --from. Exit codes: 0 nothing blocked, 3 some endpoints blocked, 4 with --check when any
    endpoint would change, 2 bad input, 1 API failure.
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
        )
        _write_report(result, fmt, output)
        code = EXIT_BLOCKED if result.summary.blocked else EXIT_CHECK if check and result.summary.update else 0
        del result
    if code:
        sys.exit(code)


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


@click.command()
@FROM
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write.")
@TARGET
@MAPPINGS
@ENDPOINT
@KEEP_FB
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
    )
    written = export_plan(result, out_dir)
    s = result.summary
    click.echo(
        f"bridge: wrote {len(written) - 1} body files and plan.json to {out_dir} "
        f"({s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked)",
        err=True,
    )
    if s.blocked:
        sys.exit(EXIT_BLOCKED)
