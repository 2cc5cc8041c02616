"""The command line: plan and export through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BRIDGE, FIXTURES, SAMPLE, SECRET_MARK, sample_doc

from bridge.cli import _COMMANDS, main


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run bridge in-process; return (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write_snapshot(tmp_path: Path, endpoints: list[dict[str, object]]) -> str:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps({"endpoints": endpoints}))
    return str(path)


def test_every_command_has_help() -> None:
    """Every command answers --help with a description and exit 0."""
    for name in _COMMANDS:
        code, out, _ = invoke(name, "--help")
        assert code == 0, name
        assert "Usage:" in out and len(out.splitlines()) > 3, name


def test_top_level_help_lists_commands() -> None:
    """`bridge --help` lists every command."""
    code, out, _ = invoke("--help")
    assert code == 0
    for name in _COMMANDS:
        assert name in out


def test_plan_text_on_sample_exits_3_for_blocked() -> None:
    """The sample has blocked endpoints: the report is printed and the exit code is 3."""
    code, out, err = invoke("plan", "--from", str(SAMPLE))
    assert code == 3
    assert "16 endpoints: 9 to update, 0 unchanged, 7 blocked" in out
    assert err == ""


def test_plan_json_matches_library(tmp_path: Path) -> None:
    """`plan --format json -o FILE` writes the plan; stdout stays empty; the file is private."""
    out_file = tmp_path / "plan.json"
    code, out, _ = invoke("plan", "--from", str(SAMPLE), "--format", "json", "-o", str(out_file))
    assert code == 3 and out == ""
    doc = json.loads(out_file.read_text())
    assert doc["summary"]["endpoints"] == 16
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


def test_endpoint_filter_and_check(tmp_path: Path) -> None:
    """--endpoint narrows the plan; --check exits 4 when an endpoint would change."""
    code, out, _ = invoke("plan", "--from", str(SAMPLE), "--endpoint", "anywhere000016", "--format", "json")
    assert code == 0
    assert [e["id"] for e in json.loads(out)["endpoints"]] == ["anywhere000016"]
    code, _, _ = invoke("plan", "--from", str(SAMPLE), "--endpoint", "anywhere000016", "--check")
    assert code == 4


def test_check_passes_when_nothing_to_do(tmp_path: Path) -> None:
    """--check exits 0 when the account has no endpoints left to migrate."""
    code, out, _ = invoke("plan", "--from", write_snapshot(tmp_path, []), "--check")
    assert code == 0 and "0 endpoints" in out


def test_unknown_endpoint_filter_is_exit_2() -> None:
    """An --endpoint id that is not in the snapshot is an input error naming it."""
    code, _, err = invoke("plan", "--from", str(SAMPLE), "--endpoint", "missing")
    assert code == 2 and "endpoint missing" in err


def test_mappings_override_unblocks(tmp_path: Path) -> None:
    """An override file can define a pool that unblocks an endpoint, and the plan names it."""
    override = tmp_path / "my.toml"
    override.write_text('[pools]\nAMPERE_20 = ["NVIDIA RTX A4500"]\n')
    code, out, _ = invoke(
        "plan",
        "--from",
        str(SAMPLE),
        "--mappings",
        str(override),
        "--endpoint",
        "typo0pool00007",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["tables"]["overrides"] == [str(override)]
    assert doc["endpoints"][0]["body"]["gpuTypeIds"] == ["NVIDIA RTX A4500"]


def test_keep_fb_suffix_flag() -> None:
    """--keep-fb-suffix keeps the -fb suffix in names."""
    _, out, _ = invoke("plan", "--from", str(SAMPLE), "--keep-fb-suffix", "--format", "json")
    names = {e["id"]: e["body"].get("name") for e in json.loads(out)["endpoints"]}
    assert names["i02xupws21hp6i"] == "Generated Endpoint -fb"


@pytest.mark.parametrize("bad", sorted(p.name for p in (FIXTURES / "bad").glob("snapshot-*.json")))
def test_broken_snapshot_one_line_exit_2(bad: str) -> None:
    """A broken snapshot gives exactly one line on stderr, exit 2, no traceback."""
    code, out, err = invoke("plan", "--from", str(FIXTURES / "bad" / bad))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert bad in err


@pytest.mark.parametrize("bad", sorted(p.name for p in (FIXTURES / "bad").glob("override-*.toml")))
def test_broken_override_one_line_exit_2(bad: str) -> None:
    """A broken override file gives one line naming it, exit 2."""
    code, _, err = invoke("plan", "--from", str(SAMPLE), "--mappings", str(FIXTURES / "bad" / bad))
    assert code == 2 and len(err.strip().splitlines()) == 1 and bad in err


def test_bad_option_is_exit_2() -> None:
    """A bad option value is a usage error, exit 2."""
    code, _, err = invoke("plan", "--from", str(SAMPLE), "--format", "yaml")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--format" in err and "bridge plan --help" in err


def test_directory_as_snapshot_is_one_line_exit_2(tmp_path: Path) -> None:
    """A directory given as --from is named in one line, exit 2."""
    code, _, err = invoke("plan", "--from", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(tmp_path) in err


def test_live_plan_without_key_is_exit_2() -> None:
    """Without --from and without a key, plan says which variable to set and exits 2."""
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    code, _, err = invoke("plan", env={**env, "RUNPOD_API_KEY": ""})
    assert code == 2 and "RUNPOD_API_KEY" in err


def test_export_writes_exact_bodies(tmp_path: Path) -> None:
    """export writes <id>.json with exactly the plan's body for each unblocked endpoint, plus plan.json."""
    out_dir = tmp_path / "out"
    code, _, err = invoke("export", "--from", str(SAMPLE), "--out", str(out_dir))
    assert code == 3 and "wrote 9 body files" in err
    plan = json.loads((out_dir / "plan.json").read_text())
    files = sorted(p.name for p in out_dir.iterdir())
    unblocked = [e for e in plan["endpoints"] if e["status"] != "blocked"]
    assert files == sorted([*(f"{e['id']}.json" for e in unblocked), "plan.json"])
    for ep in unblocked:
        assert json.loads((out_dir / f"{ep['id']}.json").read_text()) == ep["body"]
        assert stat.S_IMODE((out_dir / f"{ep['id']}.json").stat().st_mode) == 0o600
    assert SECRET_MARK not in "".join(p.read_text() for p in out_dir.iterdir())


def test_export_again_removes_stale_bodies(tmp_path: Path) -> None:
    """Exporting a narrower plan into the same directory removes body files the plan no longer has."""
    out_dir = tmp_path / "out"
    invoke("export", "--from", str(SAMPLE), "--out", str(out_dir))
    code, _, _ = invoke("export", "--from", str(SAMPLE), "--out", str(out_dir), "--endpoint", "anywhere000016")
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["anywhere000016.json", "plan.json"]


def test_export_leaves_no_temporary_files(tmp_path: Path) -> None:
    """An export leaves only finished files: no temporary leftovers."""
    out_dir = tmp_path / "out"
    invoke("export", "--from", str(SAMPLE), "--out", str(out_dir))
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def test_export_into_a_file_is_exit_2(tmp_path: Path) -> None:
    """--out naming an existing file is an input error."""
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = invoke("export", "--from", str(SAMPLE), "--out", str(target))
    assert code == 2 and str(target) in err


def test_reader_closing_the_pipe_early_is_quiet(tmp_path: Path) -> None:
    """`bridge plan | head -1` on a large plan ends without an error message once the reader has gone."""
    from bridge.emulator import generate_account

    snapshot = tmp_path / "big.json"
    snapshot.write_text(json.dumps(generate_account(3000, seed=1)))
    proc = subprocess.Popen(
        [BRIDGE, "plan", "--from", str(snapshot), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"{\n"
    proc.stdout.close()  # the reader goes away while bridge is still writing
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) == 141 and err == ""  # as other tools killed by SIGPIPE report it


def test_installed_command_as_subprocess(tmp_path: Path) -> None:
    """The installed `bridge` script plans the sample from any directory (tables found from the package)."""
    proc = subprocess.run(
        [BRIDGE, "plan", "--from", str(SAMPLE), "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["summary"]["blocked"] == 7
    assert SECRET_MARK not in proc.stdout + proc.stderr


def test_python_dash_m_bridge(tmp_path: Path) -> None:
    """`python -m bridge` runs the same CLI."""
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "plan", "--from", str(SAMPLE), "--endpoint", "anywhere000016"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "1 endpoint: 1 to update" in proc.stdout


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    """A broken snapshot as a real process: one stderr line, exit 2."""
    proc = subprocess.run(
        [BRIDGE, "plan", "--from", str(FIXTURES / "bad" / "snapshot-truncated.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_sample_secrets_are_planted() -> None:
    """The sample really carries secrets, so the no-leak assertions above can fail."""
    assert SECRET_MARK in json.dumps(sample_doc())
