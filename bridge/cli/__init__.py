"""The ``bridge`` command line: a thin click shell over the library.

This package is the only place that imports click or prints. Commands live one per module and are
loaded on first use, so ``bridge --help`` stays as fast as importing click (gql, httpx and pydantic
are imported only by the commands that need them).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from bridge.cli import _common
from bridge.cli._common import EXIT_CODES

__all__ = ["main"]

# command name -> (module, attribute, one-line help shown by `bridge --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "fetch": ("bridge.cli.fetch", "fetch", "Read the live account and write a snapshot."),
    "plan": ("bridge.cli.plan", "plan", "Translate and report what would change (dry run)."),
    "export": ("bridge.cli.plan", "export", "Write one REST body file per endpoint, plus plan.json."),
    "apply": ("bridge.cli.apply", "apply", "Send the bodies of an exported plan."),
    "migrate": ("bridge.cli.apply", "migrate", "One shot: fetch, plan, confirm, apply, verify."),
    "rollback": ("bridge.cli.apply", "rollback", "Put back the REST fields a migration changed."),
    "scan": ("bridge.cli.scan", "scan", "Find legacy endpoint configuration in code and translate it."),
    "emulator": ("bridge.cli.emulator", "emulator", "Serve a local stand-in for the RunPod APIs."),
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported only when they run (or their help is asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in _COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(_COMMANDS), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else f"; the commands are {', '.join(sorted(_COMMANDS))}"
            raise click.UsageError(f"no command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run as click does, but say a usage error in one line (``bridge: error: ...``), exit code 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        if args is None:  # the program's own command line: this process is bridge's alone
            _common.own_process = True
        if not (sys.argv[1:] if args is None else list(args)):  # `bridge` alone: the help, and success
            args = ["--help"]
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            given = sys.argv[1:] if args is None else list(args)
            command = exc.ctx.command_path if exc.ctx is not None else _command_path(given)
            where = f" (see '{command} --help')" if command else ""
            message = exc.format_message().rstrip(".")
            if message == "Option '--from' requires an argument" and command in ("bridge plan", "bridge export"):
                message += " (a snapshot file, or 'sample': the bundled sample account)"
            click.echo(f"bridge: error: {message}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("bridge: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _command_path(args: Sequence[str]) -> str:
    """``bridge COMMAND`` for the first known command among ``args`` (click leaves a parser error without it)."""
    for arg in args:
        if arg in _COMMANDS:
            return f"bridge {arg}"
        if not arg.startswith("-"):
            break
    return "bridge"


@click.group(cls=_LazyGroup, name="bridge", context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(package_name="runpod-bridge", prog_name="bridge")
def main(**_: Any) -> None:
    """Move RunPod Serverless endpoints off the legacy GraphQL settings onto the REST API.

    Start with a dry run on the bundled sample: bridge plan --from sample
    """
