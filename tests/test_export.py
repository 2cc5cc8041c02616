"""Export directories: `apply DIR` sends exactly the reviewed body files, or refuses when they disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EMULATOR_KEY
from helpers import SAMPLE

from bridge.apply import load_plan
from bridge.cli import main
from bridge.emulator import Emulator
from bridge.errors import InputError

# Should the check ever let the plan through, requests go to a closed loopback port, never to RunPod.
NOWHERE = {
    "RUNPOD_API_KEY": "k",
    "RUNPOD_REST_URL": "http://127.0.0.1:9/v1",
    "RUNPOD_REST_V2_URL": "http://127.0.0.1:9/v2",
    "RUNPOD_GRAPHQL_URL": "http://127.0.0.1:9/graphql",
}


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    out = tmp_path / "plan"
    result = CliRunner().invoke(main, ["export", "--from", str(SAMPLE), "--out", str(out)])
    assert result.exit_code == 3, result.output
    return out


def test_untouched_export_dir_loads(export_dir: Path) -> None:
    """A directory as export wrote it loads as its plan.json."""
    plan = load_plan(export_dir)
    assert plan == load_plan(export_dir / "plan.json")


def test_edited_body_file_is_refused(export_dir: Path) -> None:
    """A body file edited after the export is named, and nothing is loaded (it would not be what is sent)."""
    body_file = export_dir / "sdxl0worker0ab.json"
    body = json.loads(body_file.read_text())
    body["workersMax"] = 9
    body_file.write_text(json.dumps(body))
    with pytest.raises(InputError, match=r"sdxl0worker0ab\.json: differs from the body in plan\.json"):
        load_plan(export_dir)


def test_removed_body_file_is_refused(export_dir: Path) -> None:
    """A body file removed after the export is named: removing it does not stop plan.json's write."""
    (export_dir / "i02xupws21hp6i.json").unlink()
    with pytest.raises(InputError, match=r"i02xupws21hp6i\.json: missing"):
        load_plan(export_dir)


def test_extra_body_file_is_refused(export_dir: Path) -> None:
    """A body file plan.json does not know is named, not silently ignored."""
    (export_dir / "someone0else.json").write_text("{}")
    with pytest.raises(InputError, match=r"someone0else\.json: not an endpoint of plan\.json"):
        load_plan(export_dir)


def test_apply_cli_refuses_edited_dir_with_exit_2(export_dir: Path) -> None:
    """`bridge apply DIR` on a directory that disagrees with its plan.json exits 2 with one line, writing nothing."""
    (export_dir / "i02xupws21hp6i.json").write_text('{"name": "edited"}')
    result = CliRunner().invoke(main, ["apply", str(export_dir), "--yes"], env=NOWHERE)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "i02xupws21hp6i.json" in result.output


def test_apply_warns_when_the_plan_has_no_fingerprints(emulator: Emulator, tmp_path: Path) -> None:
    """Applying a plan made from a snapshot says stale endpoints cannot be detected; a live plan does not."""
    env = {**emulator.env, "RUNPOD_API_KEY": EMULATOR_KEY}
    runner = CliRunner()
    for source, warned in (([], False), (["--from", str(SAMPLE)], True)):  # live first: it has updates to make
        out = tmp_path / ("offline" if warned else "live")
        assert runner.invoke(main, ["export", *source, "--out", str(out)], env=env).exit_code == 3
        state = str(tmp_path / "state")
        result = runner.invoke(main, ["apply", str(out), "--yes", "--state-dir", state], env=env)
        assert result.exit_code == 3, result.stderr
        assert ("made from a snapshot" in result.stderr) is warned
