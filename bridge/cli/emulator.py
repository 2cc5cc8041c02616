"""``bridge emulator``: serve the local stand-in for the RunPod APIs until Ctrl-C."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from bridge.cli._common import EXIT_CODES

__all__ = ["emulator"]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"bridge: error: {message}", err=True)
    sys.exit(code)


def _read_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        _fail(f"{path}: cannot read the API key file: {exc.strerror or exc}", 2)
    if not key:
        _fail(f"{path}: the API key file is empty", 2)
    return key


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.option(
    "--from",
    "snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Seed from this snapshot (default: the bundled sample account).",
)
@click.option("--generate", type=click.IntRange(min=0), help="Seed with N generated endpoints instead.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for --generate.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    envvar="BRIDGE_EMULATOR_API_KEY",
    help="The only key to accept (also BRIDGE_EMULATOR_API_KEY). Default: any non-empty key.",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the key to accept from this file.",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Delay every API answer.")
@click.option("--rate-limit", type=click.IntRange(min=1), help="Requests per second; more get 429.")
@click.option(
    "--rate-policy",
    metavar="POLICY",
    help='Rate-limit windows as REST v2 announces them, e.g. \'"minute";q=60;w=60, "hour";q=3000;w=3600\' '
    "(fixed windows; a request over any of them gets 429).",
)
@click.option(
    "--no-rate-headers",
    is_flag=True,
    help="Enforce the limits (429) without announcing them: no RateLimit headers on v2 answers.",
)
@click.option(
    "--graphql-max-complexity",
    type=click.IntRange(min=1),
    help="Refuse a GraphQL document costing more than N (400, Apollo's complexity error).",
)
@click.option("--fail-every", type=click.IntRange(min=1), help="Answer every Nth API request 503.")
@click.option(
    "--drop-every",
    type=click.IntRange(min=1),
    help="Apply every Nth write, then close the connection without answering.",
)
@click.option("--retire-v1", is_flag=True, help="Answer every /v1 request 410 Gone.")
@click.option("--dc-ids-as-string", is_flag=True, help="v1 reads give dataCenterIds as a comma string.")
@click.option("--omit-flashboot", is_flag=True, help="v1 reads leave out flashboot.")
@click.option("--drop-field", multiple=True, help="Remove a field from the GraphQL schema (repeatable).")
@click.option(
    "--v2-page-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Endpoints per page of the REST v2 list.",
)
def emulator(
    snapshot: Path | None,
    generate: int | None,
    seed: int,
    port: int,
    api_key: str | None,
    api_key_file: Path | None,
    latency_ms: float,
    rate_limit: int | None,
    rate_policy: str | None,
    no_rate_headers: bool,
    graphql_max_complexity: int | None,
    fail_every: int | None,
    drop_every: int | None,
    retire_v1: bool,
    dc_ids_as_string: bool,
    omit_flashboot: bool,
    drop_field: tuple[str, ...],
    v2_page_size: int,
) -> None:
    """Serve RunPod's GraphQL, REST v1 and REST v2 APIs on 127.0.0.1, seeded from a snapshot.

    Prints the environment variables that point bridge at it, then serves until Ctrl-C. In another
    terminal: paste those lines, then run `bridge plan` or `bridge migrate`.
    """
    from bridge.emulator import Emulator, Faults, generate_account
    from bridge.errors import BridgeError
    from bridge.report import plural

    if snapshot is not None and generate is not None:
        _fail("--from and --generate cannot be used together", 2)
    if api_key_file is not None:
        api_key = _read_key(api_key_file)
    if api_key is not None and not api_key.strip():
        api_key = None
    source: Any = generate_account(generate, seed=seed) if generate is not None else snapshot
    try:
        faults = Faults(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            rate_policy=rate_policy,
            rate_headers=not no_rate_headers,
            graphql_max_complexity=graphql_max_complexity,
            fail_every=fail_every,
            drop_every=drop_every,
            retire_v1=retire_v1,
        )
        emu = Emulator(
            source,
            api_key=api_key,
            faults=faults,
            drop_fields=drop_field,
            dc_ids_as_string=dc_ids_as_string,
            omit_flashboot=omit_flashboot,
            v2_page_size=v2_page_size,
        )
    except BridgeError as exc:
        _fail(str(exc), exc.exit_code)
    except ValueError as exc:
        _fail(str(exc), 2)
    try:
        emu.start(port)
    except OSError as exc:
        hint = " (is another emulator running? --port 0 picks a free port)" if port else ""
        _fail(f"emulator: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}{hint}", 1)

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        for name, value in emu.env.items():
            click.echo(f"export {name}={shlex.quote(value)}")
        if api_key_file is not None:  # a key read from a file is never printed: it may be a real one
            click.echo(f'export RUNPOD_API_KEY="$(cat {shlex.quote(str(api_key_file))})"')
        else:
            click.echo(f"export RUNPOD_API_KEY={shlex.quote(api_key or 'emulator-any-key')}")
        what = f"a generated account (--seed {seed})" if generate is not None else str(snapshot or "the sample account")
        click.echo(
            f"bridge emulator: serving {plural(len(emu.account), 'endpoint')} from {what} at {emu.url} "
            "(Ctrl-C to stop)",
            err=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    click.echo("bridge emulator: stopped", err=True)
