"""``bridge plan`` and ``bridge export``: the dry run."""

from __future__ import annotations

import sys
from typing import Any

import click

from bridge.cli._common import (
    DEBUG,
    ENDPOINT,
    FROM,
    KEEP_FB,
    MAPPINGS,
    TARGET,
    connection_options,
    handle_errors,
    settings_from,
)

EXIT_BLOCKED = 3
EXIT_CHECK = 4


def _plan(kwargs: dict[str, Any]) -> Any:
    from bridge.pipeline import make_plan, read_account_for_plan

    from_file = kwargs["from_file"]
    account = read_account_for_plan(
        from_file=from_file,
        settings=None if from_file else settings_from(kwargs),
        mappings=kwargs["mappings"],
        endpoint_ids=kwargs["endpoint_ids"],
        target=kwargs["target"],
    )
    for note in account.notes:
        click.echo(f"bridge: warning: {note}", err=True)
    return make_plan(account, target=kwargs["target"], keep_fb_suffix=kwargs["keep_fb_suffix"])


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
def plan(**kwargs: Any) -> None:
    """Translate every endpoint and report what would change. Nothing is written to RunPod.

    Reads the live account (RUNPOD_API_KEY) and compares with the REST state, or reads a snapshot
    with --from. Exit codes: 0 nothing blocked, 3 some endpoints blocked, 4 with --check when any
    endpoint would change, 2 bad input, 1 API failure.
    """
    from bridge._gc import paused_gc

    # The account, the plan and the report are built in one pass and all survive until the end: the cyclic
    # collector would only rescan them. The plan is dropped inside the block, so turning it back on is cheap.
    with paused_gc():
        code = _report(kwargs)
    if code:
        sys.exit(code)


def _report(kwargs: dict[str, Any]) -> int:
    """Plan, write the report, and return the exit code."""
    from bridge.report import render

    result = _plan(kwargs)
    if kwargs["output"]:
        from bridge.files import write_private

        try:
            write_private(kwargs["output"], lambda fh: render(result, fh, kwargs["fmt"]))
        except OSError as exc:
            from bridge.errors import InputError

            raise InputError(f"{kwargs['output']}: cannot write: {exc.strerror or exc}") from None
    else:
        render(result, sys.stdout, kwargs["fmt"])
    if result.summary.blocked:
        return EXIT_BLOCKED
    if kwargs["check"] and result.summary.update:
        return EXIT_CHECK
    return 0


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
def export(**kwargs: Any) -> None:
    """Write DIR/<endpoint id>.json with the exact body of each unblocked endpoint, plus DIR/plan.json."""
    from bridge.export import export_plan

    result = _plan(kwargs)
    written = export_plan(result, kwargs["out_dir"])
    s = result.summary
    click.echo(
        f"bridge: wrote {len(written) - 1} body files and plan.json to {kwargs['out_dir']} "
        f"({s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked)",
        err=True,
    )
    if s.blocked:
        sys.exit(EXIT_BLOCKED)
