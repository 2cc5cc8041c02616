"""The conversation of the writing commands in a real pseudo-terminal, as a person sees it (issue 16).

pexpect runs the installed ``bridge`` on a pty against the in-process emulator: the diff above ``[y/N]``,
then ``n``, Ctrl-C, EOF (Ctrl-D) or ``y``, and what is (not) written afterwards.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
import pytest

from bridge.emulator import Emulator
from tests.conftest import EMULATOR_KEY
from tests.helpers import BRIDGE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def spawn(emu: Emulator, cwd: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, **emu.env, "RUNPOD_API_KEY": EMULATOR_KEY, "COLUMNS": "200"}
    return pexpect.spawn(BRIDGE, list(args), cwd=str(cwd), env=env, encoding="utf-8", timeout=30, dimensions=(50, 200))


def prompt(child: pexpect.spawn) -> str:
    """Wait for the question; return everything printed before it."""
    child.expect(r"Write 3 endpoint updates to RunPod\? \[y/N\] ")
    return str(child.before)


def finish(child: pexpect.spawn) -> tuple[str, int]:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, child.signalstatus
    return str(child.before), child.exitstatus


def test_the_diff_is_above_the_question_and_n_writes_nothing(emulator: Emulator, tmp_path: Path) -> None:
    child = spawn(emulator, tmp_path, "migrate")
    before = prompt(child)
    # The same lines as the text plan: id, name, each changed field old -> new.
    assert "these changes will be written:" in before
    assert before.count("  -> ") == 3
    assert '"whisper -fb"' in before and 'name  "whisper -fb" -> "whisper"' in before
    assert "3 to update, 6 unchanged, 7 blocked" in before
    child.sendline("n")
    rest, code = finish(child)
    assert "Cancelled: nothing was written." in rest and "Traceback" not in rest
    assert code == 2
    assert emulator.write_counts() == {}
    assert not any((tmp_path / "bridge-state").glob("journal-*")), "a run that wrote nothing keeps no journal"


def test_ctrl_c_at_the_prompt_ends_at_once_with_130(emulator: Emulator, tmp_path: Path) -> None:
    child = spawn(emulator, tmp_path, "migrate")
    prompt(child)
    child.sendintr()  # the first Ctrl-C counts: no second one needed
    rest, code = finish(child)
    assert "Cancelled: nothing was written." in rest and "Traceback" not in rest
    assert code == 130
    assert emulator.write_counts() == {}


def test_eof_at_the_prompt_is_no_consent(emulator: Emulator, tmp_path: Path) -> None:
    child = spawn(emulator, tmp_path, "migrate")
    prompt(child)
    child.sendeof()
    rest, code = finish(child)
    assert "Cancelled: nothing was written." in rest and "unexpected" not in rest
    assert code == 2
    assert emulator.write_counts() == {}


def test_yes_writes_then_says_how_to_undo(emulator: Emulator, tmp_path: Path) -> None:
    child = spawn(emulator, tmp_path, "migrate")
    prompt(child)
    child.sendline("y")
    rest, code = finish(child)
    assert code == 3  # written; the 7 blocked endpoints remain
    assert len(emulator.write_counts()) == 3
    backups = list((tmp_path / "bridge-state").glob("backup-*.json"))
    assert len(backups) == 1
    assert f"next: to undo this run: bridge rollback bridge-state/{backups[0].name}" in rest

    # rollback --last finds that backup and asks about exactly what it puts back.
    child = spawn(emulator, tmp_path, "rollback", "--last")
    child.expect(r"Put back 3 endpoints as they were before that run\? \[y/N\] ")
    assert "these fields will be put back:" in str(child.before)
    child.sendline("y")
    rest, code = finish(child)
    assert code == 0, rest
    own = list((tmp_path / "bridge-state").glob("rollback-backup-*.json"))
    assert len(own) == 1 and f"next: to undo this rollback: bridge rollback bridge-state/{own[0].name}" in rest


def test_apply_shows_the_first_50_and_a_count(make_emulator: object, tmp_path: Path) -> None:
    from bridge.emulator import generate_account

    account = generate_account(80, seed=3)
    emu = make_emulator(account)  # type: ignore[operator]
    (tmp_path / "account.json").write_text(json.dumps(account))
    # From the snapshot (no REST state), every endpoint that is not blocked is to update.
    child = spawn(emu, tmp_path, "export", "--from", "account.json", "--out", "plan")
    out, code = finish(child)
    assert code in (0, 3), out
    child = spawn(emu, tmp_path, "apply", "plan")
    child.expect(r"to RunPod\? \[y/N\] ")
    before = str(child.before)
    assert before.count("  -> ") == 50
    assert "more endpoints to update (--show-all lists them)" in before
    child.sendline("")  # Enter alone is the default: no
    rest, code = finish(child)
    assert code == 2 and "Cancelled: nothing was written." in rest
    assert emu.write_counts() == {}

    child = spawn(emu, tmp_path, "apply", "plan", "--show-all")
    child.expect(r"to RunPod\? \[y/N\] ")
    assert str(child.before).count("  -> ") > 50
    child.sendline("no")
    _, code = finish(child)
    assert code == 2


def test_ctrl_c_during_the_read_writes_nothing(make_emulator: object, tmp_path: Path) -> None:
    from bridge.emulator import Faults, generate_account

    emu = make_emulator(generate_account(600, seed=5), faults=Faults(latency_ms=40))  # type: ignore[operator]
    child = spawn(emu, tmp_path, "migrate")
    child.expect(r"reading endpoints \d+/\d+")  # the progress line, on a terminal
    child.sendintr()
    rest, code = finish(child)
    assert code == 130 and "interrupted: nothing was written" in rest and "Traceback" not in rest
    assert emu.write_counts() == {}
    assert not (tmp_path / "bridge-state").exists() or not any((tmp_path / "bridge-state").glob("journal-*"))


def test_ctrl_c_during_the_writes_says_how_far_and_how_to_finish(make_emulator: object, tmp_path: Path) -> None:
    from bridge.emulator import Faults, generate_account

    account = generate_account(300, seed=6)
    (tmp_path / "account.json").write_text(json.dumps(account))
    emu = make_emulator(account, faults=Faults(latency_ms=40))  # type: ignore[operator]
    child = spawn(emu, tmp_path, "export", "--from", "account.json", "--out", "plan")
    finish(child)
    child = spawn(emu, tmp_path, "apply", "plan", "--yes", "--concurrency", "4")
    child.expect(r"writing [1-9]\d*/\d+")
    child.sendintr()
    rest, code = finish(child)
    assert code == 130, rest
    assert "bridge: interrupted: " in rest and " left: run the same command again to finish" in rest
    assert "next: to undo what was written: bridge rollback bridge-state/backup-" in rest
    assert "Traceback" not in rest and "never awaited" not in rest
    written = emu.write_counts()
    assert written, "the run was stopped during its writes"

    # Running the same command again finishes the rest, writing no endpoint twice.
    child = spawn(emu, tmp_path, "apply", "plan", "--yes")
    rest, code = finish(child)
    assert code in (0, 3), rest
    assert all(count == 1 for count in emu.write_counts().values())
    assert len(emu.write_counts()) > len(written)
