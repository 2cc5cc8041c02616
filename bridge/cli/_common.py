"""Options and error handling shared by the commands."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bridge.cli._consent import Cancelled, cancelled
from bridge.cli._scrub import OutputLost

if TYPE_CHECKING:
    from bridge.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

TARGET = click.option(
    "--target",
    type=click.Choice(["auto", "v1", "v2"]),
    default="auto",
    show_default=True,
    help="REST API version to write for. auto: v1 offline (plan/export --from); live, v1 while RunPod serves it "
    "and v2 once v1 answers 410 Gone. v1/v2 are never switched (v2 keeps pools and priority FlashBoot).",
)
MAPPINGS = click.option(
    "--mappings",
    "mappings",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Override file ([pools], [locations]); repeatable, later files win.",
)
ENDPOINT = click.option("--endpoint", "endpoint_ids", multiple=True, help="Only this endpoint id; repeatable.")
KEEP_FB = click.option(
    "--keep-fb-suffix", is_flag=True, help="Keep a trailing -fb in endpoint names instead of removing it."
)
FROM = click.option(
    "--from",
    "from_file",
    type=click.Path(dir_okay=False),
    help="Read a snapshot file instead of the live account ('sample': the bundled sample account).",
)
DEBUG = click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr (shown only on a terminal).")

# True when bridge runs as the program (``bridge`` or ``python -m bridge``), not invoked with arguments in
# another program's process (click's CliRunner, a script): set by the command group.
own_process = False


def settle_heap() -> None:
    """Exempt everything alive now (the account read, its plan) from the cyclic collector's later passes.

    For a command about to write, in its own short process: the read and the plan live until the process ends,
    and a full collection walks all of them (65 ms for a 1,000-endpoint account, paid between the plan and the
    first write, and again later). Garbage made after this is collected as usual; cycles already garbage are kept
    until the process ends. Never for ``import bridge``: a library must not freeze its caller's heap, nor a test
    runner invoking a command.
    """
    import gc

    if own_process:
        gc.freeze()


# The one exit-code table: every command's --help ends with it, and the README's "Exit codes" repeats it.
EXIT_CODES = """\b
Exit codes (the same for every command):
  0    done: nothing blocked, nothing left to do
  1    failure at run time: network, API, an endpoint that failed, went stale or was not attempted
  2    bad usage or input, or no consent: nothing was written
  3    some endpoints are blocked (nothing was sent for them)
  4    plan --check / scan --check: something would be written or was found
       (like terraform plan -detailed-exitcode's 2; plan --check gives 4 even when some are blocked)
  130  interrupted (Ctrl-C)
  141  stdout was closed before the end (piped into head)"""


@dataclass(frozen=True)
class Connection:
    """Where the RunPod APIs are and which key file to use (never the key itself), as the options gave them."""

    api_key_file: str | None
    graphql_url: str | None
    rest_url: str | None
    rest_v2_url: str | None
    concurrency: int

    def settings(self) -> Settings:
        """Resolve :class:`bridge.config.Settings` (options, then environment, then defaults)."""
        from bridge.config import Settings

        return Settings.resolve(
            api_key_file=self.api_key_file,
            graphql_url=self.graphql_url,
            rest_url=self.rest_url,
            rest_v2_url=self.rest_v2_url,
            concurrency=self.concurrency,
        )


_CONNECTION_FIELDS = ("api_key_file", "graphql_url", "rest_url", "rest_v2_url", "concurrency")


def connection_options(func: F) -> F:
    """Add the connection options; the command gets them as one ``connection: Connection`` parameter."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        connection = Connection(**{name: kwargs.pop(name) for name in _CONNECTION_FIELDS})
        return func(*args, connection=connection, **kwargs)

    options = [
        click.option(
            "--api-key-file",
            type=click.Path(dir_okay=False),
            help="File holding the API key (default: the RUNPOD_API_KEY variable).",
        ),
        click.option("--graphql-url", help="Legacy GraphQL URL [env RUNPOD_GRAPHQL_URL]."),
        click.option("--rest-url", help="REST v1 base URL [env RUNPOD_REST_URL]."),
        click.option("--rest-v2-url", help="REST v2 base URL [env RUNPOD_REST_V2_URL]."),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Requests in flight.",
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def fail(message: str, code: int) -> None:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"bridge: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and a documented exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bridge.errors import BridgeError

        debug = bool(kwargs.get("debug"))
        try:
            return func(*args, **kwargs)
        except BridgeError as exc:
            if debug:  # the traceback, then the same line and exit code as without --debug
                traceback.print_exc()
            fail(str(exc), exc.exit_code)
        except Cancelled as exc:
            cancelled(exc.code)
        except KeyboardInterrupt:
            click.echo("bridge: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`bridge plan | head`): nothing left to report, and nothing more may be
            # flushed to the closed pipe at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)  # as a shell reports a process killed by SIGPIPE
        except OutputLost as exc:  # `bridge plan > /dev/full`: the report was lost, say so and fail
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            fail(str(exc.strerror), 1)
        except Exception as exc:
            if debug:
                raise
            fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for details)", 1)

    from bridge.cli._scrub import scrubbed_output

    return scrubbed_output(wrapper)  # type: ignore[return-value]  # every line printed is scrubbed of the key (one place, every command)
