"""``bridge fetch``: read the live account and save it as a snapshot."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from bridge.cli._common import DEBUG, ENDPOINT, EXIT_CODES, QUIET, TARGET, Connection, connection_options, handle_errors

if TYPE_CHECKING:
    from bridge.models import TargetChoice


@click.command(epilog=EXIT_CODES)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Snapshot file to write (mode 0600)."
)
@TARGET
@ENDPOINT
@QUIET
@connection_options
@DEBUG
@handle_errors
def fetch(
    output: str, target: TargetChoice, endpoint_ids: tuple[str, ...], quiet: bool, connection: Connection, debug: bool
) -> None:
    """Read every endpoint (past GraphQL's 400-row cap) and the GPU pools, and write a snapshot.

    The file is the GraphQL "view your endpoints" answer with data.serverlessGpuPools and the v2
    catalogs (GPU types, data centers, CPU flavors), secrets (aiKey, env values) redacted; `bridge plan
    --from FILE` plans from it offline. --target says which REST list finds the endpoints past the cap
    (auto: v1, or v2 once v1 answers 410 Gone).
    """
    from bridge.cli._progress import progress_shown
    from bridge.errors import InputError
    from bridge.files import write_private
    from bridge.live import read_live_account, snapshot_document
    from bridge.report import plural

    with progress_shown(quiet) as shown:

        def say(message: str) -> None:
            if shown is not None:
                shown.clear()
            click.echo(f"bridge: {message}", err=True)

        live = read_live_account(
            connection.settings(), target=target, endpoint_ids=endpoint_ids, with_rest_state=False, progress=say
        )
    for note in live.notes:
        click.echo(f"bridge: warning: {note}", err=True)
    document = snapshot_document(live)
    try:
        write_private(output, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    pools = "GraphQL GPU pools" if live.pools is not None else "no GraphQL pool table"
    catalogs = ", ".join(document.get("catalogs", {})) or "none"
    click.echo(
        f"bridge: wrote {plural(len(live.raw_endpoints), 'endpoint')}, {pools} "
        f"and v2 catalogs ({catalogs}) to {output}",
        err=True,
    )
