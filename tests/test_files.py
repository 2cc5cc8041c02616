"""Output files: devices and FIFOs written in place, private directories whatever the umask, names checked
first, every I/O error naming its file."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EMULATOR_KEY
from helpers import BRIDGE, SAMPLE

from bridge.cli import main
from bridge.emulator import Emulator
from bridge.errors import BridgeError, InputError, SnapshotError
from bridge.export import export_plan
from bridge.files import MAX_NAME_BYTES, check_file_name, private_dir, write_private
from bridge.integrity import load_plan
from bridge.journal import Journal
from bridge.models import Plan
from bridge.redact import REDACTED, Scrubber

KEY = "rpa_FILESKEY0123456789ABCDEFGHIJ"


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277, 0o777])
def test_directories_created_are_0700_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    """Every directory private_dir creates, parents included, is 0700; an existing one is left alone."""
    (tmp_path / "exists").mkdir(mode=0o755)
    os.chmod(tmp_path / "exists", 0o755)
    old = os.umask(mask)
    try:
        leaf = private_dir(tmp_path / "exists" / "a" / "b" / "c")
        write_private(tmp_path / "exists" / "x" / "y" / "f.json", "{}")
    finally:
        os.umask(old)
    for d in (leaf, leaf.parent, leaf.parent.parent, tmp_path / "exists" / "x", tmp_path / "exists" / "x" / "y"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE((tmp_path / "exists").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "exists" / "x" / "y" / "f.json").stat().st_mode) == 0o600


def test_dev_null_and_links_to_it_are_written_in_place(tmp_path: Path) -> None:
    """/dev/null stays the device (bridge runs as root in containers); a symlink to it stays a symlink."""
    link = tmp_path / "out.json"
    link.symlink_to("/dev/null")
    for path in (Path("/dev/null"), link):
        write_private(path, "{}\n")
        write_private(path, lambda fh: fh.write("streamed\n"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_IMODE(os.stat("/dev/null").st_mode) == 0o666
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert list(tmp_path.iterdir()) == [link]  # no temporary file left beside it


def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    """A FIFO receives the text and is still a FIFO afterwards."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_private(fifo, "through the pipe\n")
    reader.join(10)
    assert got == ["through the pipe\n"] and stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("where", ["/dev/stdout", "/proc/self/fd/1"])
@pytest.mark.parametrize("redirect", ["file", "pipe"])
def test_dev_stdout_reaches_the_shells_file_or_pipe(tmp_path: Path, where: str, redirect: str) -> None:
    """`-o /dev/stdout` writes into what the shell opened (appending), never replaces it."""
    code = (
        "import sys; from bridge.files import write_private; sys.stdout.write('before\\n'); sys.stdout.flush();"
        f"write_private({where!r}, 'report\\n')"
    )
    if redirect == "file":
        out = tmp_path / "out.txt"
        with out.open("w") as fh:
            subprocess.run([sys.executable, "-c", code], stdout=fh, check=True, timeout=60)
        assert out.read_text() == "before\nreport\n"
        assert not out.is_symlink()
    else:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert proc.stdout == "before\nreport\n"


def test_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    """The link stays a link; the file it names gets the new text, atomically."""
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_private(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_streamed_text_is_scrubbed_across_writes(tmp_path: Path) -> None:
    """A key written in pieces by a renderer is scrubbed: lines are scrubbed whole."""
    path = tmp_path / "report.txt"

    def render(fh: object) -> None:
        for piece in ("args: --key ", KEY[:10], KEY[10:], " done\n", "tail ", KEY[4:20]):
            fh.write(piece)  # type: ignore[attr-defined]

    write_private(path, render, scrub=Scrubber([KEY]))
    text = path.read_text()
    assert KEY[:8] not in text and KEY[4:12] not in text and KEY[12:20] not in text
    assert text == f"args: --key {REDACTED} done\ntail {REDACTED}"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        (".hidden", "'.'"),
        ("..", "'.'"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        ("bell\x07", "control"),
        ("esc\x1b[31m", "control"),
        ("x" * (MAX_NAME_BYTES + 1), "longer"),
        ("é" * (MAX_NAME_BYTES // 2 + 1), "longer"),
        ("plan", "bridge writes"),
        ("PLAN", "bridge writes"),
    ],
)
def test_unsafe_names_are_refused(name: str, problem: str) -> None:
    """Each unsafe file name is refused with its reason."""
    with pytest.raises(ValueError, match=problem):
        check_file_name(name, reserved=frozenset({"plan"}))


def _plan_with_ids(*ids: str) -> Plan:
    doc = json.loads(CliRunner().invoke(main, ["plan", "--from", str(SAMPLE), "--format", "json"]).output)
    template = next(ep for ep in doc["endpoints"] if ep["status"] == "update")
    doc["endpoints"] = [{**template, "id": i} for i in ids]
    doc["summary"] = {"endpoints": len(ids), "update": len(ids), "unchanged": 0, "blocked": 0}
    doc.pop("digest")
    return Plan.model_validate(doc)


@pytest.mark.parametrize(
    "bad",
    [
        ["ok1", "x" * 300],
        ["ok1", "plan"],
        ["ok1", "Plan"],
        ["ok1", "ep-A", "ep-a"],
        ["ok1", "../escape"],
        ["ok1", "a\x1b]0;t\x07"],
    ],
)
def test_export_checks_every_name_before_writing(tmp_path: Path, bad: list[str]) -> None:
    """An unusable id anywhere in the plan: one line (exit 2), and not a single file or directory written."""
    out = tmp_path / "new" / "export"
    with pytest.raises(InputError) as info:
        export_plan(_plan_with_ids(*bad), out)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value) and "\x07" not in str(info.value)
    assert not (tmp_path / "new").exists()


def test_export_error_names_the_file(tmp_path: Path) -> None:
    """A write that fails names the file it was writing, exit 2."""
    out = tmp_path / "export"
    out.mkdir()
    (out / "ok1.json").mkdir()  # a directory where the body file should go
    with pytest.raises(InputError, match=r"ok1\.json: cannot write") as info:
        export_plan(_plan_with_ids("ok1"), out)
    assert info.value.exit_code == 2


def test_scrubbed_export_is_never_applied(tmp_path: Path) -> None:
    """A body holding the key is scrubbed in the files; apply then refuses it, even with force."""
    plan = _plan_with_ids("ep1")
    ep = plan.endpoints[0]
    body = {**ep.body, "name": f"srv --api-key {KEY}"}
    plan = plan.model_copy(update={"endpoints": [ep.model_copy(update={"body": body})]})
    out = tmp_path / "export"
    export_plan(plan, out, scrub=Scrubber([KEY]))
    for path in out.iterdir():
        assert KEY[:8] not in path.read_text() and KEY[-8:] not in path.read_text()
    for force in (False, True):
        with pytest.raises(SnapshotError, match=r"ep1: body\.name holds a redacted value"):
            load_plan(out / "plan.json", force=force)


@pytest.mark.parametrize("failing", ["write", "fsync"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EDQUOT])
def test_journal_write_failure_names_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, code: int
) -> None:
    """A full disk (or an I/O error) while journaling is one line naming the journal file, not an OSError."""
    journal = Journal(tmp_path / "j.jsonl")
    journal.record("first")

    def broken(*_: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(BridgeError, match=r"j\.jsonl: cannot write the journal .*the run stopped at 'attempt'"):
        journal.record("attempt", endpoint="e1")
    monkeypatch.undo()
    journal.close()


def test_journal_on_a_full_device(tmp_path: Path) -> None:
    """/dev/full as the journal: the error names it, and the device keeps its mode."""
    mode = os.stat("/dev/full").st_mode
    with pytest.raises(BridgeError, match=r"/dev/full: cannot write the journal"), Journal("/dev/full") as journal:
        journal.record("run-start")
    assert os.stat("/dev/full").st_mode == mode


def test_journal_in_an_unusable_directory(tmp_path: Path) -> None:
    """A journal whose directory is a file: named, exit 1, nothing sent."""
    (tmp_path / "file").write_text("")
    with pytest.raises(BridgeError, match=r"file/j\.jsonl: cannot write the journal .*nothing was sent"):
        Journal(tmp_path / "file" / "j.jsonl")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [("plan",), ("plan", "--format", "json"), ("plan", "--format", "markdown"), ("migrate", "--dry-run")],
)
def test_stdout_on_a_full_device_is_a_failure_not_a_success(
    tmp_path: Path, emulator: Emulator, args: tuple[str, ...]
) -> None:
    """`bridge plan > plan.json` on a full disk: the report held back for scrubbing is lost at the last flush.
    The run must not end 3 (or 0) as if the report had been written: one line naming stdout, exit 1."""
    env = {**os.environ, **emulator.env, "RUNPOD_API_KEY": EMULATOR_KEY}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [BRIDGE, *args, "-q"], env=env, cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
        )
    assert done.returncode == 1, done.stderr
    assert "stdout: cannot write: No space left on device" in done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_an_offline_report_to_a_full_device_names_stdout(tmp_path: Path, fmt: str) -> None:
    """`bridge plan --from sample > /dev/full` with no key: one line naming stdout, exit 1, not 'unexpected'."""
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [BRIDGE, "plan", "--from", "sample", "--format", fmt],
            env=env,
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "bridge: error: stdout: cannot write: No space left on device"
