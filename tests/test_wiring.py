"""Issue 15, wired end to end: the key hidden anywhere in an account never reaches a file or stream bridge writes;
edited plans and backups are refused; rollback writes only what its run wrote; runs on one account exclude each
other; a GraphQL "Invalid token" inside a 200 is a rejected key.

Every command runs as a real process against the emulator, so the scrubbing tested is the one a user gets.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers import BRIDGE, run_bridge, sample_doc

from bridge.emulator import Emulator
from bridge.redact import MIN_FRAGMENT, REDACTED

# A key with characters that JSON and percent-encoding both change, so each encoded form is a distinct string.
KEY = 'rpa_W15+k/y"q\\z0123456789ABCDEFGHIJKLMNOP'


def key_forms() -> set[str]:
    """The key as it could be written: raw, JSON-escaped, percent-encoded (both hex cases), form-encoded."""
    encoded = quote(KEY, safe="")
    return {KEY, json.dumps(KEY)[1:-1], encoded, encoded.lower(), quote(KEY), KEY.replace(" ", "+")}


def leaks(text: str) -> list[str]:
    """Every form of the key and every piece of it MIN_FRAGMENT long found in ``text``."""
    found = [f for f in key_forms() if f in text]
    for form in (KEY, quote(KEY, safe=""), json.dumps(KEY)[1:-1]):
        found += [
            form[i : i + MIN_FRAGMENT]
            for i in range(len(form) - MIN_FRAGMENT + 1)
            if form[i : i + MIN_FRAGMENT] in text
        ]
    return found


def hidden_key_account() -> dict[str, Any]:
    """The sample account with the key hidden in names (raw, JSON-escaped, percent-encoded, a piece of it), in
    docker args and start commands (REST v2 reads them back as ``args``), and in nested env values."""
    doc = sample_doc()
    eps = doc["data"]["myself"]["endpoints"]
    names = [
        f"svc --api-key {KEY} -fb",
        "percent " + quote(KEY, safe=""),
        "json " + json.dumps(KEY)[1:-1],
        f"piece {KEY[6:22]} -fb",
    ]
    for ep, name in zip(eps, names, strict=False):
        ep["name"] = name
    for i, ep in enumerate(eps[:6]):
        ep["template"] = {
            "id": f"tpl{i}",
            "name": "t",
            "dockerArgs": f"python serve.py --api-key={KEY}" if i % 2 else f"--token {quote(KEY, safe='')}",
            "startCommand": f"curl -H 'Authorization: Bearer {KEY}'",
            "env": [{"key": "NESTED", "value": json.dumps({"auth": {"key": KEY}})}],
        }
        ep["env"] = [*(ep.get("env") or []), {"key": "RUNPOD_API_KEY", "value": KEY}]
    return doc


def scan_all(tmp_path: Path, outputs: list[str]) -> list[str]:
    """Leaks in every stream given and in every file under ``tmp_path``."""
    found = [f"stream {i}: {leak!r}" for i, text in enumerate(outputs) for leak in leaks(text)]
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.relative_to(tmp_path)}: {leak!r}" for leak in leaks(text)]
    return found


@pytest.mark.parametrize("target", [pytest.param("v1", marks=pytest.mark.slow), "v2"])
def test_the_key_hidden_anywhere_is_in_no_file_and_no_stream(tmp_path: Path, target: str) -> None:
    """fetch, plan (every format, -o), export, migrate --dry-run, migrate, rollback: no form or piece of the key
    in any stdout, stderr or file; a plan or backup holding a scrubbed value is never sent back."""
    outputs: list[str] = []
    with Emulator(hidden_key_account(), api_key=KEY) as emu:

        def bridge(*args: str) -> subprocess.CompletedProcess[str]:
            proc = run_bridge(emu, tmp_path, *args, "--target", target, key=KEY)
            outputs.extend((proc.stdout, proc.stderr))
            return proc

        assert bridge("fetch", "-o", "snap.json").returncode == 0
        for fmt in ("text", "json", "markdown"):
            assert bridge("plan", "--format", fmt).returncode in (0, 3)
            assert bridge("plan", "--format", fmt, "-o", f"report.{fmt}").returncode in (0, 3)
        assert bridge("plan", "--from", "snap.json", "--format", "json").returncode in (0, 3)
        assert bridge("export", "--out", "exported").returncode in (0, 3)
        assert bridge("migrate", "--dry-run", "--format", "json").returncode in (0, 3)
        applied = bridge("apply", "exported", "--yes", "--state-dir", "state")
        assert applied.returncode == 2 and "redacted value" in applied.stderr  # the scrubbed name is not sent
        done = bridge("migrate", "--yes", "--state-dir", "state", "--format", "json")
        assert done.returncode in (0, 3), done.stderr
        assert emu.write_counts()
        backup = next((tmp_path / "state").glob("backup-*.json"))
        undone = bridge("rollback", str(backup), "--yes", "--state-dir", "state2", "--format", "json")
        assert undone.returncode == 0, undone.stderr
        assert "the backup holds it redacted" in undone.stdout  # the name is not put back as "<redacted>"
        names = [emu.v1_view(endpoint_id).get("name") for endpoint_id in emu.state]
        assert names and not any(REDACTED in str(n) for n in names)
    assert REDACTED in (tmp_path / "snap.json").read_text()
    assert scan_all(tmp_path, outputs) == []


def make_plan(tmp_path: Path, emu: Emulator) -> Path:
    proc = run_bridge(emu, tmp_path, "plan", "--format", "json", "-o", "plan.json", key="test-key-0123456789")
    assert proc.returncode in (0, 3), proc.stderr
    return tmp_path / "plan.json"


def edit_plan(path: Path, how: str) -> None:
    doc = json.loads(path.read_text())
    updates = [ep for ep in doc["endpoints"] if ep["status"] == "update"]
    if how == "out-of-range":
        updates[0]["body"]["idleTimeout"] = 100_000  # over an hour: out of the schema's range
    elif how == "unknown-field":
        updates[0]["body"]["dockerArgs"] = "rm -rf /"
    elif how == "wrong-type":
        updates[0]["body"]["workersMax"] = "many"
    elif how == "redacted-env":
        updates[0]["body"]["env"] = {"HF_TOKEN": REDACTED}
    elif how == "unchanged-to-update":
        other = next(ep for ep in doc["endpoints"] if ep["status"] == "unchanged")
        other["status"] = "update"
    elif how == "value-in-range":
        updates[0]["body"]["workersMax"] = updates[0]["body"].get("workersMax", 1) + 1
    path.write_text(json.dumps(doc, indent=2))


@pytest.mark.parametrize(
    ("how", "forced_codes"),
    [
        (
            "out-of-range",
            (0, 1, 3),
        ),  # --force sends it (bridge's tables may be behind RunPod's); 3: the sample has blocked endpoints
        ("unknown-field", (0, 1, 3)),
        ("wrong-type", (0, 1, 3)),
        ("redacted-env", (2,)),  # never sent, even with --force
        ("unchanged-to-update", (0, 1, 3)),
        ("value-in-range", (0, 1, 3)),
    ],
)
def test_an_edited_plan_is_refused_without_force(tmp_path: Path, how: str, forced_codes: tuple[int, ...]) -> None:
    """Each kind of edit: one line naming the file (and the endpoint and field when a body is wrong), exit 2,
    nothing sent; --force lets through all but a redacted value."""
    with Emulator(sample_doc(), api_key="test-key-0123456789") as emu:
        plan = make_plan(tmp_path, emu)
        if how == "unchanged-to-update" and not any(
            ep["status"] == "unchanged" for ep in json.loads(plan.read_text())["endpoints"]
        ):
            migrate = run_bridge(emu, tmp_path, "migrate", "--yes", "--state-dir", "s0", key="test-key-0123456789")
            assert migrate.returncode in (0, 3)
            plan = make_plan(tmp_path, emu)
        before = dict(emu.write_counts())
        edit_plan(plan, how)
        proc = run_bridge(emu, tmp_path, "apply", str(plan), "--yes", "--state-dir", "s1", key="test-key-0123456789")
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("bridge: error:")]
        assert len(errors) == 1 and "plan.json" in errors[0] and "Traceback" not in proc.stderr
        assert emu.write_counts() == before
        if how in ("out-of-range", "unknown-field", "wrong-type", "redacted-env"):
            assert "endpoint " in errors[0]
        forced = run_bridge(
            emu, tmp_path, "apply", str(plan), "--yes", "--force", "--state-dir", "s2", key="test-key-0123456789"
        )
        assert forced.returncode in forced_codes, forced.stderr
        assert "Traceback" not in forced.stderr
        if how == "redacted-env":
            assert "redacted value" in forced.stderr and emu.write_counts() == before


def migrated_backup(tmp_path: Path, emu: Emulator) -> Path:
    proc = run_bridge(emu, tmp_path, "migrate", "--yes", "--state-dir", "state", key="test-key-0123456789")
    assert proc.returncode in (0, 3), proc.stderr
    return next((tmp_path / "state").glob("backup-*.json"))


@pytest.mark.parametrize("how", ["extra-field", "changed-value", "added-endpoint", "no-digest", "truncated"])
def test_an_edited_backup_is_refused_without_force(tmp_path: Path, how: str) -> None:
    """An edited backup: one line, exit 2, nothing written; with --force, still only the fields the run's
    journal shows it wrote are put back (an added field or endpoint is never written)."""
    with Emulator(sample_doc(), api_key="test-key-0123456789") as emu:
        backup = migrated_backup(tmp_path, emu)
        doc = json.loads(backup.read_text())
        entry = doc["endpoints"][0]
        candidates = ["vcpuCount", "minCudaVersion", "templateId", "networkVolumeIds", "flashboot", "workersMin"]
        extra = next(k for k in candidates if k not in entry["body"])
        if how == "extra-field":  # a field the run never sent
            entry["rest"][extra] = entry["body"][extra] = 7
        elif how == "changed-value":
            entry["rest"]["name"] = "hijacked"
        elif how == "added-endpoint":
            doc["endpoints"].append({**entry, "id": "someone-else"})
        elif how == "no-digest":
            doc.pop("digest")
        text = json.dumps(doc, indent=2)
        backup.write_text(text[: len(text) // 2] if how == "truncated" else text)
        writes = dict(emu.write_counts())
        proc = run_bridge(
            emu, tmp_path, "rollback", str(backup), "--yes", "--state-dir", "r1", key="test-key-0123456789"
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("bridge: error:") == 1 and str(backup.name) in proc.stderr
        assert emu.write_counts() == writes
        if how == "truncated":
            return
        forced = run_bridge(
            emu, tmp_path, "rollback", str(backup), "--yes", "--force", "--state-dir", "r2", key="test-key-0123456789"
        )
        assert forced.returncode in (0, 1), forced.stderr
        journal = next((tmp_path / "r2").glob("journal-*.jsonl"))
        sent = [json.loads(line) for line in journal.read_text().splitlines()]
        bodies = [e for e in sent if e.get("event") == "attempt"]
        assert all(e["endpoint"] != "someone-else" for e in bodies)
        assert all(extra not in e["body"] for e in bodies)


def test_rollback_without_its_journal_is_refused_unless_forced(tmp_path: Path) -> None:
    """No journal beside the backup: rollback cannot tell which fields its run wrote, and says so (exit 2)."""
    with Emulator(sample_doc(), api_key="test-key-0123456789") as emu:
        backup = migrated_backup(tmp_path, emu)
        next((tmp_path / "state").glob("journal-*.jsonl")).unlink()
        proc = run_bridge(
            emu, tmp_path, "rollback", str(backup), "--yes", "--state-dir", "r", key="test-key-0123456789"
        )
        assert proc.returncode == 2 and "journal" in proc.stderr and "--force" in proc.stderr
        forced = run_bridge(
            emu, tmp_path, "rollback", str(backup), "--yes", "--force", "--state-dir", "r", key="test-key-0123456789"
        )
        assert forced.returncode == 0, forced.stderr


def test_rollback_puts_back_only_fields_its_run_wrote(tmp_path: Path) -> None:
    """A backup naming fields its run never sent (the run stopped before some endpoints): only the journal's
    endpoints and fields are written back."""
    from bridge.journal import Backup, BackupEntry, fields_written, journal_of, write_backup, written_only

    state = tmp_path / "state"
    state.mkdir()
    backup_path = state / "backup-20260101T000000.000000Z.json"
    entries = [
        BackupEntry(id="a", rest={"name": "A0", "workersMax": 1}, body={"name": "A1", "workersMax": 2}),
        BackupEntry(id="b", rest={"name": "B0"}, body={"name": "B1"}),
    ]
    write_backup(backup_path, Backup(target="v1", created_at="x", entries=entries))
    journal_of(backup_path).write_text(
        json.dumps({"event": "attempt", "endpoint": "a", "attempt": 1, "body": {"name": "A1"}}) + "\n"
    )
    assert fields_written(journal_of(backup_path)) == {"a": {"name"}}
    from bridge.journal import load_backup

    cut = written_only(load_backup(backup_path))
    assert [(e.id, e.body) for e in cut.entries] == [("a", {"name": "A1"})]


def test_two_runs_with_different_state_dirs_on_one_account(tmp_path: Path) -> None:
    """While a migrate holds the account, a second one from another directory (another --state-dir) is refused
    at once, exit 2, before reading the account; rollback and apply too. Once the first ends, the next runs."""
    holder_code = """
import sys, time
from bridge.config import Settings
from bridge.migrate import run_locks
with run_locks(Settings.resolve(), sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""
    with Emulator(sample_doc(), api_key="test-key-0123456789") as emu:
        backup = migrated_backup(tmp_path, emu)
        env = {**os.environ, **emu.env, "RUNPOD_API_KEY": "test-key-0123456789"}
        python = str(Path(BRIDGE).parent / "python")
        holder = subprocess.Popen(
            [python, "-c", holder_code, str(tmp_path / "one")], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            requests = len(emu.requests)
            other = tmp_path / "elsewhere"
            other.mkdir()
            for args in (
                ["migrate", "--yes", "--state-dir", "two"],
                ["migrate", "--dry-run", "--state-dir", "two"],
                ["rollback", str(backup), "--yes", "--state-dir", "three"],
            ):
                proc = run_bridge(emu, other, *args, key="test-key-0123456789")
                assert proc.returncode == 2, (args, proc.stderr)
                assert re.search(rf"another bridge run \(pid {holder.pid},", proc.stderr), proc.stderr
                assert proc.stderr.count("\n") == 1
            assert len(emu.requests) == requests  # refused before reading anything
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(30)
            assert holder.stdout is not None
            holder.stdout.close()
        time.sleep(0.1)
        proc = run_bridge(emu, tmp_path, "migrate", "--yes", "--state-dir", "two", key="test-key-0123456789")
        assert proc.returncode in (0, 3), proc.stderr


@pytest.mark.parametrize(
    "message",
    [
        "Invalid token",
        "invalid bearer token",
        "Unauthenticated",
        "API key is invalid",
        "Token expired",
        "invalid_token",
    ],
)
def test_graphql_invalid_token_in_a_200_is_a_rejected_key(message: str) -> None:
    """However RunPod words it, a rejected key inside an HTTP 200 is an AuthError (exit 1, run stopped)."""
    import asyncio

    from bridge.config import Settings
    from bridge.errors import AuthError
    from bridge.http import RetryPolicy
    from bridge.live import read_live_account

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"myself": None}, "errors": [{"message": message}]})

    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    settings = Settings(api_key="rpa_" + "x" * 30, graphql_url="https://g.test/graphql", rest_url="https://r.test/v1")
    with pytest.raises(AuthError, match="RunPod rejected the API key") as info:
        read_live_account(settings, transport=httpx.MockTransport(handler), policy=RetryPolicy(sleep=no_sleep))
    assert info.value.exit_code == 1


def test_a_field_error_is_not_a_rejected_key() -> None:
    """ "token" in an ordinary message (a field called tokenCount) is not mistaken for a rejected key."""
    from bridge.source import _AUTH_WORDS

    assert not _AUTH_WORDS.search("Cannot query field 'tokenCount' on type 'Endpoint'")
    assert not _AUTH_WORDS.search("token limit reached for this model")


def test_a_live_report_cut_short_by_its_reader_is_quiet(tmp_path: Path) -> None:
    """`bridge plan | head`: the scrubbed stdout meets a closed pipe; bridge ends without a traceback or an
    'Exception ignored' from the interpreter's last flush."""
    from bridge.emulator import generate_account

    with Emulator(generate_account(600, seed=3), api_key="test-key-0123456789") as emu:
        env = {**os.environ, **emu.env, "RUNPOD_API_KEY": "test-key-0123456789"}
        proc = subprocess.run(
            f"'{BRIDGE}' plan --format json | head -c 100 >/dev/null; echo $" + "{PIPESTATUS[0]}",
            shell=True,
            executable="/bin/bash",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert proc.stdout.strip() in ("0", "1", "3", "141"), proc.stdout  # 141: SIGPIPE, as a shell tool
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-500:]
