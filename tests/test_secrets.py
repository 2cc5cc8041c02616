"""No secret leaves bridge: planted key, aiKey and env values never appear in any output, file or URL (SPEC §9).

Every command runs as a real process against the emulator (or a hostile server that echoes the key back in
every answer), with and without ``--debug``; stdout, stderr, every file under the working directory and
every URL the server saw are scanned for each planted value, raw and in its JSON-escaped and URL-encoded
forms. State files must be mode 0600.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import BRIDGE, SAMPLE, SECRET_MARK, sample_doc

from bridge.emulator import Emulator, Faults
from bridge.redact import REDACTED, redact_endpoint, redact_text

KEY = "PLANTED-KEY-7f3c9e1a5b2d4c6e"
RUNS: Counter[str] = Counter()  # command runs scanned, for the figures of the full mode
# Odd secrets: JSON escapes, unicode, a value that looks like a header.
ODD = ['SECRET-quote"back\\slash', "SECRET-ünïcødé-🔑", "SECRET-Bearer abc", "SECRET-" + "x" * 500]


def planted_account() -> dict[str, Any]:
    """The sample account with more secrets planted: odd values in env, aiKey and template env."""
    doc = sample_doc()
    endpoints = doc["data"]["myself"]["endpoints"]
    for index, ep in enumerate(endpoints):
        ep["aiKey"] = ep.get("aiKey") or f"SECRET-aikey-planted-{index:03d}"
        ep["env"] = [*(ep.get("env") or []), {"key": "ODD", "value": ODD[index % len(ODD)]}]
        ep["template"] = {
            **(ep.get("template") or {"id": f"tpl{index:05d}", "name": "t"}),
            "env": [{"key": "TPL_TOKEN", "value": f"SECRET-template-{index:03d}"}],
        }
    return doc


def secrets_of(doc: dict[str, Any]) -> set[str]:
    """Every secret value in a snapshot document."""
    found: set[str] = set()
    for ep in doc["data"]["myself"]["endpoints"]:
        if ep.get("aiKey"):
            found.add(ep["aiKey"])
        for holder in (ep, ep.get("template") or {}):
            env = holder.get("env") or []
            items = env.items() if isinstance(env, dict) else [(e.get("key"), e.get("value")) for e in env]
            found.update(str(v) for _, v in items if v)
    return found


def forms(secret: str) -> set[str]:
    """The ways a secret could show up in text: raw, JSON-escaped, URL-encoded."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret)}


class Scan:
    """Collects every text bridge produced and checks it for the planted values."""

    def __init__(self, secrets: set[str]) -> None:
        self.secrets = secrets | {KEY}
        self.texts: dict[str, str] = {}
        self.commands = 0

    def add(self, name: str, text: str) -> None:
        self.texts[f"{name}#{len(self.texts)}"] = text

    def files(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.add(str(path.relative_to(root)), path.read_bytes().decode("utf-8", errors="replace"))

    def leaks(self) -> list[str]:
        out = []
        for name, text in self.texts.items():
            if SECRET_MARK in text:
                at = text.index(SECRET_MARK)
                out.append(f"{name}: {text[max(0, at - 60) : at + 40]!r}")
            for secret in self.secrets:
                for form in forms(secret):
                    if form in text:
                        out.append(f"{name}: {form[:30]!r}")
        return out


def run(scan: Scan, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed bridge command; record its stdout and stderr in ``scan``."""
    proc = subprocess.run(
        [BRIDGE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    scan.commands += 1
    RUNS["commands"] += 1
    scan.add(f"{' '.join(args)} stdout", proc.stdout)
    scan.add(f"{' '.join(args)} stderr", proc.stderr)
    return proc


def emulator_urls(scan: Scan, emu: Emulator) -> None:
    """Every URL the emulator saw, and every header but Authorization, go into the scan."""
    for entry in emu.requests:
        scan.add("emulator url", f"{entry['path']}?{entry['query']}")
        headers = {k: v for k, v in entry["headers"].items() if k.lower() != "authorization"}
        scan.add("emulator headers", json.dumps(headers))
        scan.add("emulator body", entry["body"])
        sent = {k.lower(): v for k, v in entry["headers"].items()}  # header names are case-insensitive
        assert sent.get("authorization") == f"Bearer {KEY}"


def assert_private(root: Path) -> None:
    """Every file bridge wrote is mode 0600; every directory it created (state, export) is 0700."""
    for path in root.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in root.rglob("*"):
        if directory.is_dir():
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


@pytest.mark.slow
@pytest.mark.parametrize("target", ["v1", "v2"])
def test_every_command_keeps_every_secret(tmp_path: Path, target: str) -> None:
    """fetch, plan (all formats), export, migrate, apply and rollback leak no planted value anywhere."""
    doc = planted_account()
    scan = Scan(secrets_of(doc))
    assert len(scan.secrets) > 30
    work = tmp_path / "work"
    work.mkdir()
    with Emulator(doc, api_key=KEY) as emu:
        env = {**emu.env, "RUNPOD_API_KEY": KEY}
        t = ["--target", target]
        assert run(scan, work, env, "fetch", "-o", "snap.json", *t).returncode == 0
        assert run(scan, work, env, "plan", *t).returncode == 3
        for fmt in ("json", "markdown"):
            run(scan, work, env, "plan", "--format", fmt, "-o", f"report.{fmt}", *t)
            run(scan, work, env, "plan", "--format", fmt, "--from", "snap.json", *t)
        assert run(scan, work, env, "export", "--out", "exp", *t).returncode == 3
        assert run(scan, work, env, "migrate", "--dry-run", *t).returncode == 3
        migrated = run(scan, work, env, "migrate", "--yes", "--state-dir", "state", "--debug", *t)
        assert migrated.returncode == 3, migrated.stderr
        (backup,) = (work / "state").glob("backup-*.json")
        assert REDACTED in backup.read_text()
        rolled = run(scan, work, env, "rollback", str(backup), "--yes", "--state-dir", "state")
        assert rolled.returncode == 0 and "Traceback" not in rolled.stderr, rolled.stdout + rolled.stderr
        assert run(scan, work, env, "apply", "exp", "--yes", "--state-dir", "state", "--format", "json").returncode == 3
        key_file = tmp_path / "key"
        key_file.write_text(KEY + "\n")
        no_env = {k: v for k, v in env.items() if k != "RUNPOD_API_KEY"}
        assert run(scan, work, no_env, "plan", "--api-key-file", str(key_file), *t).returncode == 3
        emulator_urls(scan, emu)
    scan.files(work)
    assert scan.commands >= 12 and len(scan.texts) > 40
    assert scan.leaks() == []
    assert_private(work)


ERROR_CASES = {
    "wrong key": ({"api_key": "another-key-000000000"}, ["migrate", "--yes"]),
    "retired v1": ({"faults": Faults(retire_v1=True)}, ["migrate", "--yes", "--target", "v1", "--state-dir", "state"]),
    "always 503": ({"faults": Faults(fail_every=1)}, ["plan"]),
    "503 on writes": ({"faults": Faults(fail_every=3)}, ["migrate", "--yes", "--state-dir", "state"]),
}


@pytest.mark.slow
def test_error_paths_keep_every_secret(tmp_path: Path) -> None:
    """A rejected key, a retired API and failing servers end with messages free of any planted value.

    Each case with and without --debug, concurrently (they mostly wait on retries); each has its emulator.
    """
    from concurrent.futures import ThreadPoolExecutor

    doc = planted_account()
    scan = Scan(secrets_of(doc))
    bad: list[str] = []

    def one(case: tuple[str, bool]) -> None:
        name, debug = case
        options, args = ERROR_CASES[name]
        cwd = tmp_path / f"{name.replace(' ', '-')}-{debug}"
        cwd.mkdir()
        with Emulator(doc, **{"api_key": KEY, **options}) as emu:
            env = {**emu.env, "RUNPOD_API_KEY": KEY}
            proc = run(scan, cwd, env, *args, *(["--debug"] if debug else []))
            if proc.returncode not in (1, 3) or not proc.stderr.strip():
                bad.append(f"{case}: exit {proc.returncode}: {proc.stderr[-300:]}")
            if not debug and "Traceback" in proc.stderr:
                bad.append(f"{case}: traceback without --debug")
            if options.get("api_key") is None:
                emulator_urls(scan, emu)

    cases = [(name, debug) for name in sorted(ERROR_CASES) for debug in (False, True)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, cases))
    assert bad == []
    scan.files(tmp_path)
    assert scan.commands == len(cases)
    assert scan.leaks() == []
    for cwd in tmp_path.iterdir():  # each case's working directory is the test's; what bridge made is inside
        assert_private(cwd)


def test_input_errors_keep_secrets(tmp_path: Path) -> None:
    """A broken snapshot full of secrets, and a key file with a line break, give messages without them."""
    doc = planted_account()
    doc["data"]["myself"]["endpoints"][3]["workersMax"] = {"nested": doc["data"]["myself"]["endpoints"][3]["aiKey"]}
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    scan = Scan(secrets_of(doc))
    for debug in ([], ["--debug"]):
        proc = run(scan, tmp_path, {}, "plan", "--from", "broken.json", *debug)
        assert proc.returncode == 2 and "workersMax" in proc.stderr
    (tmp_path / "key").write_text(f"{KEY}\nsecond line\n")
    proc = run(scan, tmp_path, {"RUNPOD_GRAPHQL_URL": "http://127.0.0.1:9/graphql"}, "plan", "--api-key-file", "key")
    assert proc.returncode == 2 and "line break" in proc.stderr
    assert scan.leaks() == []


# -- a hostile server that echoes the key and secrets back ------------------------------------------------


class Echo(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a body repeating the Authorization header and a secret."""

    protocol_version = "HTTP/1.1"
    status = 400
    kind = "json"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        key = auth.partition(" ")[2]
        # The key straddles the 300-character cut of a clipped reason, and appears whole, and as a header.
        long_reason = "y" * 275 + " your key " + key + " is not valid"
        if self.kind == "json":
            body = json.dumps(
                {
                    "error": long_reason,
                    "errors": [{"message": "z" * 380 + f" bad token {key}", "extensions": {"code": "BAD"}}],
                    "detail": f"{auth} and again {key}",
                }
            ).encode()
            ctype = "application/json"
        elif self.kind == "html":
            body = f"<html><head><title>Denied {key}</title></head><body>{auth}</body></html>".encode()
            ctype = "text/html"
        else:
            body = (long_reason + "\n" + auth).encode()
            ctype = "text/plain"
        self.send_response(self.status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Retry-After", "999" if self.status == 429 else "0")
        self.send_header("Location", f"https://evil.test/?api_key={key}")
        self.send_header("X-Echo", key)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer


class QuietServer(ThreadingHTTPServer):
    """A server that does not print the connections bridge closes on it (after a give-up or a kill)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def serve(status: int, kind: str) -> ThreadingHTTPServer:
    """Start a hostile server answering ``status`` with bodies of ``kind``; the caller shuts it down."""
    handler = type("EchoCase", (Echo,), {"status": status, "kind": kind})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


HOSTILE_STATUSES = [200, 302, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503]
HOSTILE_COMMANDS = [
    ["plan"],
    ["fetch", "-o", "snap.json"],
    ["migrate", "--yes", "--state-dir", "state"],
    ["apply", "exported", "--yes", "--state-dir", "state"],
]


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every piece of ``secret`` of ``size`` characters: a clipped message must not keep half a key."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.slow
def test_hostile_echoes_are_scrubbed(tmp_path: Path) -> None:
    """A server echoing the key in bodies, titles and headers, under every status, never gets a piece printed.

    Every status x body kind x command, with and without --debug (a subset unless BRIDGE_FULL=1); the runs
    go concurrently (they mostly wait on retries). Each ends with exit 1; without --debug, no traceback and
    at most one error line on stderr.
    """
    from concurrent.futures import ThreadPoolExecutor

    exported = tmp_path / "exported"
    subprocess.run([BRIDGE, "export", "--from", str(SAMPLE), "--out", str(exported)], capture_output=True, check=False)
    assert (exported / "plan.json").exists()
    full = bool(os.environ.get("BRIDGE_FULL"))
    cases = [
        (status, kind, command, debug)
        for status in HOSTILE_STATUSES
        for kind in ("json", "html", "text")
        for command in HOSTILE_COMMANDS
        for debug in (False, True)
        if full
        or (
            status in (200, 401, 404, 409, 429, 503)
            and command[0] in ("plan", "migrate", "apply")
            and (command == ["plan"] or (kind == "json" and not debug))
            and (kind == "json" or not debug)
        )
    ]
    servers = {(status, kind): serve(status, kind) for status, kind, _, _ in cases}
    scan = Scan(set())
    bad: list[str] = []

    def one(case: tuple[int, str, list[str], bool]) -> None:
        status, kind, command, debug = case
        base = f"http://127.0.0.1:{servers[status, kind].server_address[1]}"
        env = {
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_GRAPHQL_URL": base + "/graphql",
            "RUNPOD_REST_URL": base + "/v1",
            "RUNPOD_REST_V2_URL": base + "/v2",
        }
        cwd = tmp_path / f"{status}-{kind}-{command[0]}-{debug}"
        cwd.mkdir()
        # The cases run at once against shared servers: each is another user, or the account lock (which keeps
        # runs on one account apart) would refuse all but one.
        env["XDG_STATE_HOME"] = str(cwd / "user-state")
        (cwd / "exported").symlink_to(exported)
        proc = run(scan, cwd, env, *command, "--concurrency", "2", *(["--debug"] if debug else []))
        errors = [line for line in proc.stderr.splitlines() if line.startswith("bridge: error:")]
        if proc.returncode != 1 or (not debug and ("Traceback" in proc.stderr or len(errors) > 1)):
            bad.append(f"{case}: exit {proc.returncode}: {proc.stderr[-300:]}")

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, cases))
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
    for cwd in tmp_path.iterdir():
        if cwd.is_dir() and cwd.name != "exported":
            scan.files(cwd)
    assert bad == []
    assert scan.leaks() == []
    pieces = [(name, p) for name, text in scan.texts.items() for p in fragments(KEY) if p in text]
    assert pieces == []
    assert scan.commands == len(cases) >= 36


def test_redact_text_and_endpoint() -> None:
    """redact_text removes known values, api_key parameters and bearer tokens; redact_endpoint every env shape."""
    text = redact_text(f"GET https://x/?api_key={KEY}&a=1 Authorization: Bearer abc.def {KEY}", [KEY])
    assert KEY not in text and "abc.def" not in text and "a=1" in text
    assert redact_text("Unauthorized: invalid bearer token") == "Unauthorized: invalid bearer token"
    shapes: list[Any] = [
        [{"key": "A", "value": "SECRET-1"}],
        {"A": "SECRET-2"},
        "A=SECRET-3",
        ["A=SECRET-4"],
        [{"name": "A", "val": "SECRET-5"}],
        [["A", "SECRET-6"]],
    ]
    for env in shapes:
        out = redact_endpoint({"id": "x", "env": env, "aiKey": "SECRET-7", "template": {"env": env}})
        assert SECRET_MARK not in json.dumps(out), env


def test_the_planted_values_are_really_there() -> None:
    """The planted account carries every kind of secret, so the scans above can fail."""
    doc = planted_account()
    secrets = secrets_of(doc)
    text = json.dumps(doc, ensure_ascii=False)
    assert all(s in text or json.dumps(s, ensure_ascii=False)[1:-1] in text for s in secrets)
    assert any(s.startswith("SECRET-template-") for s in secrets) and any("aikey" in s for s in secrets)
    assert set(ODD) <= secrets and SAMPLE.exists()


@pytest.mark.parametrize("kind", ["json", "text", "html", "graphql"])
def test_a_key_the_clip_would_cut_is_scrubbed_first(kind: str) -> None:
    """A key echoed where the message clip would cut it in half is scrubbed before the clip: no piece is left."""
    import asyncio

    import httpx

    from bridge.config import Settings
    from bridge.errors import ApiError
    from bridge.http import RetryPolicy
    from bridge.live import read_live_account

    reason = "y" * 285 + " " + KEY + " tail"

    def handler(request: httpx.Request) -> httpx.Response:
        if kind == "json":
            return httpx.Response(400, json={"error": reason})
        if kind == "html":
            return httpx.Response(400, html=f"<html><title>{'t' * 110} {KEY}</title></html>")
        if kind == "graphql":
            return httpx.Response(200, json={"errors": [{"message": "z" * 390 + " " + KEY}]})
        return httpx.Response(400, text=reason)

    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    settings = Settings(api_key=KEY, graphql_url="https://g.test/graphql", rest_url="https://r.test/v1")
    with pytest.raises(ApiError) as caught:
        read_live_account(settings, transport=httpx.MockTransport(handler), policy=RetryPolicy(sleep=no_sleep))
    message = str(caught.value)
    assert not [piece for piece in fragments(KEY) if piece in message], message[-200:]


def test_print_secret_figures() -> None:
    """Report how many command runs were scanned (the README's figure in the full mode)."""
    if os.environ.get("BRIDGE_FULL"):
        print(f"\nsecrets: {RUNS['commands']} command runs scanned, 0 leaks")
    assert RUNS["commands"] >= 0
