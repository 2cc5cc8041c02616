"""What a person meets around the engine (issue 16): exit codes, help, refusals, words, progress, library."""

from __future__ import annotations

import ast
import io
import pydoc
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from conftest import EMULATOR_KEY
from helpers import BRIDGE, ROOT, SAMPLE, run_bridge
from test_report import sample_plan

import bridge
from bridge.cli import _COMMANDS, main
from bridge.cli._common import EXIT_CODES
from bridge.cli._progress import TerminalProgress
from bridge.emulator import Emulator
from bridge.errors import BridgeError
from bridge.migrate import run_migration
from bridge.progress import advance, phase, reporting
from bridge.report import render, render_result

README = (ROOT / "README.md").read_text()


def cli(*args: str, **kwargs: Any) -> Any:
    return CliRunner().invoke(main, list(args), **kwargs)


def blocked_and_updated() -> tuple[str, str]:
    plan = sample_plan()
    blocked = next(ep.id for ep in plan.endpoints if ep.status == "blocked")
    update = next(ep.id for ep in plan.endpoints if ep.status == "update")
    return blocked, update


# -- exit codes: plan --check as a drift gate, one table everywhere ------------------------------------------


def test_plan_check_is_a_drift_gate(tmp_path: Path) -> None:
    """4 when anything would be written, whatever is blocked; 3 when only blocked; 0 when nothing to do."""
    blocked, update = blocked_and_updated()
    sample = str(SAMPLE)
    assert cli("plan", "--from", sample, "--check").exit_code == 4  # updates and blocked ones
    assert cli("plan", "--from", sample, "--check", "--endpoint", update).exit_code == 4
    assert cli("plan", "--from", sample, "--check", "--endpoint", blocked).exit_code == 3
    empty = tmp_path / "empty.json"
    empty.write_text('{"endpoints": []}')
    assert cli("plan", "--from", str(empty), "--check").exit_code == 0
    # Without --check: 3 while anything is blocked, else 0.
    assert cli("plan", "--from", sample).exit_code == 3
    assert cli("plan", "--from", sample, "--endpoint", update).exit_code == 0


def test_one_exit_code_table_in_every_help_and_the_readme() -> None:
    lines = [line.strip() for line in EXIT_CODES.splitlines()[2:]]
    assert any("-detailed-exitcode" in line for line in lines)
    for name in ["", *_COMMANDS]:
        result = cli(*([name] if name else []), "--help")
        assert result.exit_code == 0
        flat = " ".join(result.output.split())
        for line in lines:
            assert " ".join(line.split()) in flat, (name, line)
    for line in lines:  # the README's table carries the same words
        code, _, words = line.partition(" ")
        if code.isdigit():
            assert f"| `{code}` | {words.strip()}" in README, line


def test_every_option_has_help_text() -> None:
    for name in _COMMANDS:
        command = main.get_command(click.Context(main), name)
        assert command is not None and command.epilog == EXIT_CODES, name
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"bridge {name} {param.opts[0]} has no help text"


# -- commands a person mistypes, files given in the wrong place -----------------------------------------------


def test_bridge_alone_prints_help_and_succeeds() -> None:
    proc = subprocess.run([BRIDGE], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Commands:" in proc.stdout and proc.stderr == ""


@pytest.mark.parametrize(("typed", "meant"), [("pln", "plan"), ("migrat", "migrate"), ("rolback", "rollback")])
def test_unknown_command_suggests_the_closest(typed: str, meant: str) -> None:
    proc = subprocess.run([BRIDGE, typed], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"bridge: error: no command '{typed}'; did you mean {meant}?")


def test_migrate_from_points_to_plan_and_apply() -> None:
    result = cli("migrate", "--from", "account.json")
    assert result.exit_code == 2
    assert "migrate reads the live account" in result.output and "bridge plan --from account.json" in result.output
    assert "bridge apply" in result.output


def test_bridge_files_given_as_snapshots_are_named(emulator: Emulator, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--from", str(SAMPLE), "--format", "json", "-o", str(plan_file)).exit_code == 3
    run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY)
    backup = next((tmp_path / "bridge-state").glob("backup-*.json"))
    journal = next((tmp_path / "bridge-state").glob("journal-*.jsonl"))
    for path, what in [(plan_file, "a bridge plan"), (backup, "a bridge backup"), (journal, "a bridge journal")]:
        result = cli("plan", "--from", str(path))
        assert result.exit_code == 2, result.output
        assert f"{path}: this is {what}" in result.output and "not a snapshot" in result.output


def test_files_given_to_apply_and_rollback_are_named_with_their_command(emulator: Emulator, tmp_path: Path) -> None:
    """The other way round: a snapshot, backup or journal given to apply, a plan or snapshot to rollback."""
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--from", str(SAMPLE), "--format", "json", "-o", str(plan_file)).exit_code == 3
    run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY)
    backup = next((tmp_path / "bridge-state").glob("backup-*.json"))
    journal = next((tmp_path / "bridge-state").glob("journal-*.jsonl"))
    cases = [
        ("apply", SAMPLE, f"a snapshot of an account (plan it with `bridge plan --from {SAMPLE}`), not a plan"),
        ("apply", backup, "a bridge backup (give it to `bridge rollback`), not a plan"),
        ("apply", journal, "a bridge journal (a run's record), not a plan"),
        ("rollback", plan_file, "a bridge plan (give it to `bridge apply`), not a backup"),
        ("rollback", SAMPLE, "a snapshot of an account"),
        ("rollback", journal, f"a bridge journal (a run's record; its run's backup is {backup}), not a backup"),
    ]
    for command, path, what in cases:
        result = cli(command, str(path), "--yes")
        assert result.exit_code == 2, result.output
        assert result.output == f"bridge: error: {path}: this is {what}\n" or f"{path}: this is {what}" in result.output
    other = tmp_path / "other.json"
    other.write_text('{"x": 1}')
    assert "not a bridge plan" in cli("apply", str(other), "--yes").output
    assert "not a bridge backup" in cli("rollback", str(other), "--yes").output


def test_option_missing_its_value_names_the_command_help_and_from_names_sample() -> None:
    proc = subprocess.run([BRIDGE, "plan", "--from"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == (
        "bridge: error: Option '--from' requires an argument (a snapshot file, or 'sample': the bundled sample "
        "account) (see 'bridge plan --help')\n"
    )
    proc = subprocess.run([BRIDGE, "export", "--out"], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "bridge: error: Option '--out' requires an argument (see 'bridge export --help')\n"


def test_emulator_names_a_generated_account_once() -> None:
    proc = subprocess.Popen(
        [BRIDGE, "emulator", "--generate", "3", "--seed", "7", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert line.startswith("bridge emulator: serving 3 endpoints from a generated account (--seed 7) at http")


def test_empty_snapshot_says_it_holds_no_endpoints(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text('{"endpoints": []}')
    result = cli("plan", "--from", str(empty))
    assert result.exit_code == 0 and f"{empty} holds no endpoints" in result.output
    assert "0 endpoints:" in result.output


def test_from_sample_reaches_the_bundled_sample_anywhere(tmp_path: Path) -> None:
    proc = subprocess.run(
        [BRIDGE, "plan", "--from", "sample"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3 and "16 endpoints: 9 to update, 0 unchanged, 7 blocked" in proc.stdout


def test_plan_output_file_is_confirmed_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [BRIDGE, "plan", "--from", "sample", "--format", "markdown", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr == f"bridge: wrote the markdown plan of 16 endpoints to {out}\n"
    assert out.read_text().startswith("## bridge plan")


def test_emulator_port_taken_is_one_bridge_error_with_a_hint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([BRIDGE, "emulator", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"bridge: error: emulator: cannot listen on 127.0.0.1:{port}")
    assert "--port 0 picks a free port" in proc.stderr and "Traceback" not in proc.stderr


# -- consent before reading, no journal for nothing, next steps, rollback --last ------------------------------


def test_no_terminal_and_no_yes_refuses_before_reading(tmp_path: Path) -> None:
    """Nothing answers at these URLs: a refusal that came after a read would be a connection error instead."""
    env = {
        "RUNPOD_API_KEY": "k",
        "RUNPOD_GRAPHQL_URL": "http://127.0.0.1:9/graphql",
        "RUNPOD_REST_URL": "http://127.0.0.1:9/v1",
        "RUNPOD_REST_V2_URL": "http://127.0.0.1:9/v2",
    }
    assert cli("export", "--from", str(SAMPLE), "--out", str(tmp_path / "plan")).exit_code == 3
    for command in (["migrate"], ["apply", str(tmp_path / "plan")]):
        result = cli(*command, "--state-dir", str(tmp_path / "state"), env=env, input="")
        assert result.exit_code == 2, result.output
        assert "no terminal to ask for consent; run again with --yes" in result.output
        assert "127.0.0.1:9" not in result.output
    assert not (tmp_path / "state").exists()


def test_a_run_that_writes_nothing_keeps_no_journal(emulator: Emulator, tmp_path: Path) -> None:
    first = run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY)
    assert first.returncode == 3, first.stderr
    state = tmp_path / "bridge-state"
    assert len(list(state.glob("journal-*"))) == 1
    again = run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY)
    assert again.returncode == 3
    assert len(list(state.glob("journal-*"))) == 1, "the second run wrote nothing"
    assert "nothing was written, no state files kept" in again.stdout
    assert "next: to undo" not in again.stdout


def test_rollback_last_picks_the_newest_migration_backup(emulator: Emulator, tmp_path: Path) -> None:
    assert run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY).returncode == 3
    state = tmp_path / "bridge-state"
    (newest,) = (p.relative_to(tmp_path) for p in state.glob("backup-*.json"))
    undo = run_bridge(emulator, tmp_path, "rollback", "--last", "--yes", key=EMULATOR_KEY)
    assert undo.returncode == 0, undo.stderr
    assert f"bridge: backup {newest}: 3 endpoints" in undo.stderr
    (own,) = (p.relative_to(tmp_path) for p in state.glob("rollback-backup-*.json"))
    assert f"next: to undo this rollback: bridge rollback {own}" in undo.stdout
    # The rollback's own backup is never what --last picks: it still names the migration's.
    again = run_bridge(emulator, tmp_path, "rollback", "--last", "--yes", key=EMULATOR_KEY)
    assert f"bridge: backup {newest}:" in again.stderr
    both = cli("rollback", str(tmp_path / newest), "--last")
    assert both.exit_code == 2 and "either a BACKUP_FILE or --last" in both.output
    none = cli("rollback", "--last", "--state-dir", str(tmp_path / "elsewhere"))
    assert none.exit_code == 2 and "--last: no migration backup" in none.output


def test_a_stopped_run_is_one_line_and_says_how_to_finish(emulator: Emulator, tmp_path: Path) -> None:
    """A rejected key stops the run: one line for it, not the same 401 per endpoint, and what to do next."""
    from bridge.apply import ApplyResult, Outcome

    reason = "RunPod rejected the API key (HTTP 401) at GET https://rest.test/v1/endpoints/a"
    result = ApplyResult(
        target="v1",
        outcomes=[Outcome("a", None, "updated", "verified", 1)]
        + [Outcome(i, None, "not-attempted", "the run stopped: " + reason) for i in "bcd"],
        journal_path=Path("s/journal-1.jsonl"),
        backup_path=Path("s/backup-1.json"),
        stopped=reason,
    )
    out = io.StringIO()
    render_result(result, out)
    text = out.getvalue()
    assert text.count("401") == 1
    assert "the run stopped: " + reason + " (3 endpoints not attempted)" in text
    assert "next: 1 done, 3 left: run the same command again to finish" in text
    assert "next: to undo this run: bridge rollback s/backup-1.json" in text


# -- progress -------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_comes_from_the_current_phase_only() -> None:
    clock = Clock()
    shown = TerminalProgress(io.StringIO(), clock=clock)
    shown.phase("reading endpoints", 2000)
    clock.now = 2.0
    shown.advance(1000)  # 500 a second
    assert shown.line() == "bridge: reading endpoints 1000/2000  ETA 0:02"
    shown.phase("writing", 100)  # slower: its own rate, not the reads'
    clock.now = 12.0
    shown.advance(10)
    assert shown.line() == "bridge: writing 10/100  ETA 1:30"
    shown.phase("reading REST state")
    assert shown.line() == "bridge: reading REST state..."


def test_no_eta_before_the_phase_has_a_rate() -> None:
    clock = Clock()
    shown = TerminalProgress(io.StringIO(), clock=clock)
    shown.phase("writing", 10)
    clock.now = 0.2
    shown.advance()
    assert shown.line() == "bridge: writing 1/10"


def test_live_reads_and_the_engine_tell_their_phases(emulator: Emulator, tmp_path: Path) -> None:
    """The library tells a reporter; it prints nothing itself."""
    told: list[tuple[str, int | None, int]] = []

    class Record:
        def phase(self, label: str, total: int | None = None) -> None:
            told.append((label, total, 0))

        def advance(self, count: int = 1) -> None:
            label, total, done = told[-1]
            told[-1] = (label, total, done + count)

    from bridge.config import Settings

    settings = Settings.resolve(environ={**emulator.env, "RUNPOD_API_KEY": EMULATOR_KEY})
    with reporting(Record()):
        run_migration(settings, confirm=lambda plan, notes: True, state_dir=tmp_path)
    labels = [label for label, _, _ in told]
    assert labels[0] == "reading endpoints" and "reading REST state" in labels
    assert ("checking endpoints", 3, 3) in told and ("writing", 3, 3) in told
    phase("outside", 1)  # no reporter: nothing happens
    advance()


def test_progress_is_not_drawn_without_a_terminal(emulator: Emulator, tmp_path: Path) -> None:
    proc = run_bridge(emulator, tmp_path, "migrate", "--yes", key=EMULATOR_KEY)
    assert "\r" not in proc.stderr and "writing" not in proc.stderr


# -- library --------------------------------------------------------------------------------------------------


def test_all_is_a_static_sorted_list_of_the_exports() -> None:
    tree = ast.parse((ROOT / "bridge" / "__init__.py").read_text())
    (literal,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
    ]
    assert literal == bridge.__all__
    assert set(literal) == {*bridge._EXPORTS, "__version__"}
    assert literal == sorted(literal)


def test_help_of_the_package_starts_with_the_public_functions() -> None:
    text = pydoc.render_doc(bridge, renderer=pydoc.plaintext)
    description = text[text.index("DESCRIPTION") :]
    assert description.splitlines()[1].strip().startswith("Public functions")
    for name in ("load_snapshot", "build_plan", "render", "run_migration", "render_result"):
        assert f"    {name}(" in description[:1500], name


def test_render_with_an_unknown_format_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="unknown plan format 'yaml': use one of text, json, markdown"):
        render(sample_plan(), io.StringIO(), "yaml")


@pytest.mark.parametrize(
    "rule",
    [
        lambda ep, body: 1 / 0,
        lambda ep, body: ("not a body", []),
        lambda ep, body: (body, ["not a finding"]),
    ],
)
def test_a_custom_rule_that_fails_is_one_error_naming_rule_and_endpoint(rule: Callable[..., Any]) -> None:
    snapshot = bridge.load_snapshot(SAMPLE)
    tables = bridge.build_tables(pools=snapshot.pools)
    with pytest.raises(BridgeError) as caught:
        bridge.build_plan(snapshot.endpoints, tables, rules=[rule])
    message = str(caught.value)
    assert message.startswith("custom rule ") and "<lambda>" in message
    assert f"on endpoint {snapshot.endpoints[0].id}: " in message
    assert "\n" not in message


# -- network words ----------------------------------------------------------------------------------------------


def test_connection_refused_is_said_as_the_readme_says() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "RUNPOD_API_KEY": "k",
        "RUNPOD_GRAPHQL_URL": f"http://127.0.0.1:{port}/graphql",
        "RUNPOD_REST_URL": f"http://127.0.0.1:{port}/v1",
    }
    result = cli("plan", env=env)
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}/" in result.output and "cannot connect ([Errno 111] Connection refused)" in result.output
    assert "cannot connect ([Errno 111] Connection refused)" in README


def test_a_host_name_that_does_not_resolve_is_not_retried() -> None:
    import httpx
    from helpers import offline_settings

    from bridge.errors import ApiError
    from bridge.http import RetryPolicy
    from bridge.live import read_live_account

    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("All connection attempts failed", request=request) from exc

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(ApiError) as caught:
        read_live_account(
            offline_settings("k", 4), transport=httpx.MockTransport(handler), policy=RetryPolicy(sleep=no_sleep)
        )
    assert "cannot resolve the host name ([Errno -2] Name or service not known)" in str(caught.value)
    assert "gave up" not in str(caught.value)
    # one attempt per request in flight (endpoints, pools, REST list, the three v2 catalogs), not five each
    assert calls <= 6


def test_a_closed_stdin_is_no_consent(tmp_path: Path) -> None:
    env_lines = "RUNPOD_API_KEY=k RUNPOD_GRAPHQL_URL=http://127.0.0.1:9/graphql"
    proc = subprocess.run(
        ["sh", "-c", f"{env_lines} {BRIDGE} migrate <&-"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "nothing was written" in proc.stderr and "unexpected" not in proc.stderr
