"""``bridge scan``: find legacy endpoint configuration in code and show what replaces it."""

from __future__ import annotations

import sys
from typing import Any

import click

from bridge.cli._common import DEBUG, EXIT_CODES, KEEP_FB, MAPPINGS, handle_errors

EXIT_FOUND = 4


@click.command(epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "sarif"]),
    default="text",
    show_default=True,
    help="Report format (sarif for GitHub code scanning).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--check", is_flag=True, help="Exit 4 when anything legacy was found (a CI gate).")
@click.option(
    "--max-size",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Skip files larger than this many bytes.",
)
@MAPPINGS
@KEEP_FB
@DEBUG
@handle_errors
def scan(**kwargs: Any) -> None:
    """Find legacy endpoint configuration in PATHS and show the REST request that replaces each one.

    Reads saveEndpoint mutations (.graphql files and strings in Python, JS/TS, shell and curl lines),
    runpod-python create_endpoint() calls, gpuIds/locations keys and -fb names in JSON/YAML, and the
    code blocks of Markdown files; directories are walked honouring .gitignore. Nothing is sent
    anywhere.
    """
    from bridge import build_tables, load_override
    from bridge.errors import InputError
    from bridge.scan import render_scan
    from bridge.scan import scan as run_scan

    overrides = [load_override(path) for path in kwargs["mappings"]]
    tables = build_tables(overrides=overrides)
    result = run_scan(kwargs["paths"], tables, keep_fb_suffix=kwargs["keep_fb_suffix"], max_size=kwargs["max_size"])
    if kwargs["output"]:
        from bridge.files import write_private

        try:
            write_private(kwargs["output"], lambda fh: render_scan(result, fh, kwargs["fmt"]))
        except OSError as exc:
            raise InputError(f"{kwargs['output']}: cannot write: {exc.strerror or exc}") from None
    else:
        render_scan(result, sys.stdout, kwargs["fmt"])
    for item in result.unreadable:
        click.echo(f"bridge: warning: {item.path}: {item.reason} (not scanned)", err=True)
    if kwargs["check"] and result.findings:
        sys.exit(EXIT_FOUND)
