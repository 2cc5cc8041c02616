"""Every answer RunPod can give has a defined behaviour: retried or not, stops the run or not, which message.

Each case drives the apply engine through the real REST client over ``httpx.MockTransport`` (or over real
loopback sockets for refused connections and TLS errors), with one endpoint answering the case under test
and a second, healthy endpoint showing whether the run went on. The README table "What bridge does for each
API answer" is this file in prose.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import VirtualTime, offline_settings

from bridge.apply import ApplyResult, WorkItem, run_items
from bridge.cli import main
from bridge.config import Settings
from bridge.emulator import Emulator
from bridge.http import RetryPolicy
from bridge.journal import read_journal
from bridge.rest import open_rest
from bridge.targets import V1, get_target

KEY = "test-key-ANSWERS-0123456789"
SETTINGS = offline_settings(KEY, concurrency=1)
BAD, GOOD = "epbad000000001", "epgood00000002"
LIST = "(list)"  # the log's name for a GET of the endpoint list
BODY = {"name": "after"}
BEFORE = {"name": "before"}


def touching(ep: str) -> tuple[str, ...]:
    """The log names of requests that touch ``ep``: the state before the writes and the run's final read-back
    come from the endpoint list, which holds BAD and answers BAD's case."""
    return (ep, LIST) if ep == BAD else (ep,)


class Server:
    """A mock RunPod with two endpoints; ``BAD`` answers ``answer`` on the chosen operation, once or always."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response], on: str, times: int | None = None) -> None:
        self.answer = answer
        self.on = on  # "read" or "write"
        self.times = times  # None: always
        self.state = {BAD: dict(BEFORE, id=BAD), GOOD: dict(BEFORE, id=GOOD)}
        self.log: list[tuple[str, str]] = []  # (method, endpoint id)
        self.applied: dict[str, int] = {BAD: 0, GOOD: 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        ep = parts[3] if len(parts) > 3 else LIST
        op = "read" if request.method == "GET" else "write"
        self.log.append((request.method, ep))
        # The endpoint list holds BAD: a read answer under test is the list's answer too.
        if ep in (BAD, LIST) and op == self.on and (self.times is None or self.times > 0):
            if self.times is not None:
                self.times -= 1
            return self.answer(request)
        if ep == LIST:
            items = list(self.state.values())
            return httpx.Response(200, json=items if parts[1] == "v1" else {"endpoints": items})
        if op == "write":
            self.state[ep].update(json.loads(request.content))
            self.applied[ep] += 1
        return httpx.Response(200, json=self.state[ep])

    def requests(self, ep: str, method: str | None = None) -> int:
        """Requests that touched ``ep``: its own, and for BAD (the endpoint under test) the list reads too."""
        return sum(1 for m, e in self.log if e in touching(ep) and (method is None or m == method))


def engine(server: Server, tmp_path: Path, target: str = "v1") -> tuple[ApplyResult, VirtualTime]:
    """Apply ``BODY`` to BAD then GOOD through the real client over the mock server."""
    vt = VirtualTime()
    policy = RetryPolicy(sleep=vt.sleep, clock=vt.clock, rng=random.Random(3))
    items = [WorkItem(id=BAD, body=dict(BODY)), WorkItem(id=GOOD, body=dict(BODY))]

    async def go() -> ApplyResult:
        transport = httpx.MockTransport(server)
        async with open_rest(SETTINGS, target, policy=policy, transport=transport) as rest:  # type: ignore[arg-type]
            return await run_items(
                rest, get_target(target), items, state_dir=tmp_path, concurrency=1, secrets=[KEY], sleep=vt.sleep
            )

    return asyncio.run(go()), vt


def status(code: int, reason: str = "the server's own reason", **headers: str) -> Callable[[httpx.Request], Any]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, json={"error": reason}, headers=headers)

    return answer


def raise_(exc: Exception) -> Callable[[httpx.Request], Any]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


def outcome(result: ApplyResult, ep: str) -> Any:
    return next(o for o in result.outcomes if o.id == ep)


def check_common(result: ApplyResult) -> None:
    """Whatever happened, the key is in no message and the journal accounts for every write attempt."""
    if result.journal_path is None:  # nothing was sent: no journal is kept
        assert result.backup_path is None and all(o.writes == 0 for o in result.outcomes)
        assert KEY not in json.dumps(result.to_dict())
        return
    text = json.dumps(result.to_dict()) + result.journal_path.read_text()
    assert KEY not in text
    events = list(read_journal(result.journal_path))
    assert events[0]["event"] == "run-start" and events[-1]["event"] == "run-end"
    for o in result.outcomes:
        attempts = [e for e in events if e["event"] == "attempt" and e.get("endpoint") == o.id]
        assert len(attempts) == o.writes, o.id


# -- 4xx answers that are never retried ---------------------------------------------------------------------


@pytest.mark.parametrize("on", ["read", "write"])
def test_400_fails_that_endpoint_with_the_servers_reason(tmp_path: Path, on: str) -> None:
    """400 is not retried; the endpoint fails with the server's reason shown; the run goes on."""
    server = Server(status(400, "invalid input: workersMax must be <= 100"), on)
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "HTTP 400" in bad.detail and "workersMax must be <= 100" in bad.detail
    assert server.requests(BAD, "POST") == (1 if on == "write" else 0)
    assert outcome(result, GOOD).status == "updated" and result.stopped is None and result.exit_code == 1
    check_common(result)


@pytest.mark.parametrize("code", [401, 403])
@pytest.mark.parametrize("on", ["read", "write"])
def test_401_403_stop_the_run(tmp_path: Path, code: int, on: str) -> None:
    """401/403 are not retried and stop the run: the key is bad, so nothing else is sent."""
    server = Server(status(code, "bad key"), on)
    result, _ = engine(server, tmp_path)
    assert result.stopped and f"rejected the API key (HTTP {code})" in result.stopped
    assert outcome(result, GOOD).status == "not-attempted" and server.applied[GOOD] == 0
    assert server.requests(BAD) == (1 if on == "read" else 2)
    assert result.exit_code == 1
    check_common(result)


@pytest.mark.parametrize("on", ["read", "write"])
def test_404_says_the_endpoint_was_deleted(tmp_path: Path, on: str) -> None:
    """404 (endpoint deleted between plan and apply) is not retried; the endpoint fails saying it is gone."""
    server = Server(status(404, "endpoint not found"), on)
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "no longer exists" in bad.detail and "404" in bad.detail
    # A read: the list (404), BAD's own read (404), the final list (404). A write: the list, the final list.
    assert server.requests(BAD, "GET") == (3 if on == "read" else 2)
    assert outcome(result, GOOD).status == "updated" and result.exit_code == 1
    check_common(result)


def test_404_between_plan_and_apply_on_the_emulator(tmp_path: Path) -> None:
    """An endpoint deleted from the emulator after `export` fails by name in `apply`; the others are written."""
    from helpers import SAMPLE

    with Emulator(SAMPLE, api_key=KEY) as emu:
        env = {**emu.env, "RUNPOD_API_KEY": KEY}
        out = tmp_path / "plan"
        runner = CliRunner()
        runner.invoke(main, ["export", "--out", str(out)], env=env, catch_exceptions=False)
        plan = json.loads((out / "plan.json").read_text())
        gone = next(ep["id"] for ep in plan["endpoints"] if ep["status"] == "update")
        emu.delete_endpoint(gone)
        res = runner.invoke(
            main,
            ["apply", str(out), "--yes", "--state-dir", str(tmp_path / "s"), "--format", "json"],
            env=env,
            catch_exceptions=False,
        )
        assert res.exit_code == 1, res.stderr
        doc = json.loads(res.stdout)
        failed = {e["id"]: e["detail"] for e in doc["endpoints"] if e["status"] == "failed"}
        assert set(failed) == {gone} and "no longer exists" in failed[gone]
        assert doc["summary"]["updated"] >= 1 and gone not in emu.write_counts()


def test_422_fails_that_endpoint_with_each_validation_error(tmp_path: Path) -> None:
    """422 (v2 validation) is not retried; the endpoint fails naming the server's errors; the run goes on."""

    def answer(request: httpx.Request) -> httpx.Response:
        doc = {"title": "Unprocessable Entity", "detail": "Request validation failed.", "errors": ["gpu.pools: bad"]}
        return httpx.Response(422, json=doc, headers={"content-type": "application/problem+json"})

    server = Server(answer, "write")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "422" in bad.detail and "gpu.pools: bad" in bad.detail
    assert server.requests(BAD, "POST") == 1 and outcome(result, GOOD).status == "updated"
    check_common(result)


@pytest.mark.parametrize("on", ["read", "write"])
def test_410_on_v1_stops_the_run_pointing_to_v2(tmp_path: Path, on: str) -> None:
    """410 Gone on v1 is not retried and stops the run with "use --target v2"."""
    server = Server(status(410, "REST API v1 has been retired"), on)
    result, _ = engine(server, tmp_path)
    assert result.stopped and "--target v2" in result.stopped
    assert server.applied[GOOD] == 0 and result.exit_code == 1
    check_common(result)


def test_410_on_v2_fails_that_endpoint(tmp_path: Path) -> None:
    """410 on v2 (not a retired API) is not retried; that endpoint fails, the run goes on."""
    server = Server(status(410, "gone"), "write")
    result, _ = engine(server, tmp_path, target="v2")
    assert outcome(result, BAD).status == "failed" and "410" in outcome(result, BAD).detail
    assert server.requests(BAD, "PATCH") == 1 and result.stopped is None
    check_common(result)


# -- answers that are retried ---------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["read", "write"])
def test_409_conflict_is_retried_then_succeeds(tmp_path: Path, on: str) -> None:
    """409 (a change in progress) surely was not applied: it is retried with backoff and then succeeds."""
    server = Server(status(409, "endpoint is being updated"), on, times=2)
    result, vt = engine(server, tmp_path)
    assert outcome(result, BAD).status == "updated" and server.applied[BAD] == 1
    assert len([s for s in vt.sleeps if s > 0]) >= 1
    check_common(result)


def test_409_forever_fails_after_the_write_budget(tmp_path: Path) -> None:
    """A write answered 409 every time is sent 3 times, then the endpoint fails naming the conflict."""
    server = Server(status(409, "endpoint is being updated"), "write")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "409" in bad.detail and "being updated" in bad.detail
    assert server.requests(BAD, "POST") == 3 and server.applied[BAD] == 0
    assert outcome(result, GOOD).status == "updated"
    check_common(result)


@pytest.mark.parametrize("on", ["read", "write"])
def test_429_waits_for_retry_after_then_succeeds(tmp_path: Path, on: str) -> None:
    """429 is retried after Retry-After (the whole run pauses); the write is applied once."""
    server = Server(status(429, "slow down", **{"Retry-After": "7"}), on, times=2)
    result, vt = engine(server, tmp_path)
    assert outcome(result, BAD).status == "updated" and server.applied[BAD] == 1
    assert sum(1 for s in vt.sleeps if s >= 6.9) >= 1
    check_common(result)


def test_429_asking_too_long_stops_the_run_resumably(tmp_path: Path) -> None:
    """A Retry-After above 120 s stops the run cleanly, saying to run the same command again later."""
    server = Server(status(429, "slow down", **{"Retry-After": "600"}), "write")
    result, vt = engine(server, tmp_path)
    assert result.stopped and "run the same command again" in result.stopped
    assert server.applied == {BAD: 0, GOOD: 0} and not [s for s in vt.sleeps if s >= 100]
    check_common(result)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_reads_are_retried(tmp_path: Path, code: int) -> None:
    """A 5xx on a read is retried with backoff (up to 5 attempts); two of them are survived."""
    server = Server(status(code, "upstream trouble"), "read", times=2)
    result, _ = engine(server, tmp_path)
    assert outcome(result, BAD).status == "updated" and server.applied[BAD] == 1
    check_common(result)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_reads_give_up_after_five(tmp_path: Path, code: int) -> None:
    """A read that always answers 5xx is tried 5 times; the endpoint fails naming the status; nothing written."""
    server = Server(status(code, "upstream trouble"), "read")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and f"HTTP {code}" in bad.detail and "gave up after 5 attempts" in bad.detail
    # 5 tries each: the endpoint list, then BAD's own read (the list failed), then the final list read-back
    assert server.requests(BAD, "GET") == 15 and server.applied[BAD] == 0
    assert any("could not read the endpoint list" in n for n in result.notes)
    assert any("final read-back failed" in n for n in result.notes)
    check_common(result)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_writes_are_reread_before_any_retry(tmp_path: Path, code: int) -> None:
    """A write answered 5xx may have been applied: it is re-read, and written again only if it was not."""
    server = Server(status(code, "upstream trouble"), "write", times=1)
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "updated" and bad.writes == 2 and server.applied[BAD] == 1
    methods = [m for m, e in server.log if e in touching(BAD)]
    assert methods == ["GET", "POST", "GET", "POST", "GET"]  # list, write, re-read of BAD, write, final list
    check_common(result)


def test_5xx_writes_forever_give_up_after_three(tmp_path: Path) -> None:
    """A write that always answers 503 is sent 3 times (each followed by a read), then the endpoint fails."""
    server = Server(status(503, "unavailable"), "write")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "gave up after 3 writes" in bad.detail and "503" in bad.detail
    assert server.requests(BAD, "POST") == 3
    check_common(result)


def test_html_502_from_a_proxy_is_explained(tmp_path: Path) -> None:
    """A proxy's HTML 502 page on a read is retried, then reported by its title, not as HTML soup."""

    def answer(request: httpx.Request) -> httpx.Response:
        html = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
        return httpx.Response(502, text=html, headers={"content-type": "text/html"})

    result, _ = engine(Server(answer, "read"), tmp_path)
    detail = outcome(result, BAD).detail
    assert '"502 Bad Gateway"' in detail and "not an answer of the RunPod API" in detail and "<" not in detail
    check_common(result)


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected without sending a response.")],
    ids=["timeout", "dropped"],
)
def test_timeouts_and_drops_on_writes_are_reread(tmp_path: Path, exc: Exception) -> None:
    """A write that times out or loses its connection is re-read before it is sent again."""
    server = Server(raise_(exc), "write", times=1)
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "updated" and bad.writes == 2
    assert [m for m, e in server.log if e in touching(BAD)] == ["GET", "POST", "GET", "POST", "GET"]
    check_common(result)


def test_timeouts_on_reads_are_retried(tmp_path: Path) -> None:
    """A read that times out is retried; after 5 timeouts the endpoint fails saying it timed out."""
    server = Server(raise_(httpx.ReadTimeout("timed out")), "read")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "timed out waiting for the answer" in bad.detail
    assert server.requests(BAD, "GET") == 15  # 5 each: the list, BAD's own read, the final list read-back
    check_common(result)


def test_truncated_answer_to_a_read_is_a_clear_error(tmp_path: Path) -> None:
    """A 200 whose JSON is cut short fails the endpoint with "not JSON", quoting the start of it."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"id": "epbad000000001", "workersMax": 3, "na')

    result, _ = engine(Server(answer, "read"), tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "not JSON" in bad.detail and server_free(bad.detail)
    check_common(result)


def server_free(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text


def test_truncated_answer_to_a_write_is_verified_by_reading(tmp_path: Path) -> None:
    """A 200 to a write with an unreadable body is not trusted nor failed: the endpoint is read back."""

    def answer(request: httpx.Request) -> httpx.Response:
        server.state[BAD].update(json.loads(request.content))
        server.applied[BAD] += 1
        return httpx.Response(200, content=b'{"id": "epb')

    server = Server(answer, "write")
    result, _ = engine(server, tmp_path)
    assert outcome(result, BAD).status == "updated" and server.applied[BAD] == 1
    check_common(result)


# -- real sockets: refused connections and TLS ---------------------------------------------------------------


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A plain-HTTP server on loopback (speaking TLS to it is a TLS error)."""

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def real(url: str, tmp_path: Path) -> tuple[ApplyResult, VirtualTime]:
    vt = VirtualTime()
    settings = Settings(api_key=KEY, graphql_url=url + "/graphql", rest_url=url + "/v1", rest_v2_url=url + "/v2")
    policy = RetryPolicy(sleep=vt.sleep, clock=vt.clock, rng=random.Random(3))
    items = [WorkItem(id=BAD, body=dict(BODY)), WorkItem(id=GOOD, body=dict(BODY))]

    async def go() -> ApplyResult:
        async with open_rest(settings, "v1", policy=policy) as rest:
            return await run_items(rest, V1, items, state_dir=tmp_path, concurrency=1, secrets=[KEY], sleep=vt.sleep)

    return asyncio.run(go()), vt


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    """Connection refused (nothing listens) is retried with backoff, then each endpoint fails saying so."""
    result, vt = real(f"http://127.0.0.1:{free_port()}", tmp_path)
    for o in result.outcomes:
        assert o.status == "failed" and "cannot connect" in o.detail and "gave up after 5 attempts" in o.detail
    assert len(vt.sleeps) >= 8
    check_common(result)


def test_tls_error_stops_the_run_without_retrying(tmp_path: Path, plain_http: int) -> None:
    """A TLS handshake failure is not retried and stops the run with a message naming TLS and the URL."""
    result, vt = real(f"https://127.0.0.1:{plain_http}", tmp_path)
    assert result.stopped and "TLS" in result.stopped and f"https://127.0.0.1:{plain_http}/v1" in result.stopped
    assert all(o.status == "not-attempted" for o in result.outcomes)
    assert not [s for s in vt.sleeps if s > 0]
    check_common(result)


def test_tls_certificate_error_is_named(tmp_path: Path) -> None:
    """A certificate that does not verify is reported as a TLS certificate problem, not retried."""
    import ssl

    def answer(request: httpx.Request) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed") from cause

    server = Server(answer, "read")
    result, _ = engine(server, tmp_path)
    assert result.stopped and "TLS" in result.stopped and "certificate" in result.stopped
    assert server.requests(BAD) == 1
    check_common(result)


# httpcore 1.0 leaves the socket of a TLS handshake that is *cancelled* unclosed (its start_tls closes the
# stream on Exception only): when one read fails, its siblings are cancelled mid-handshake. Collected here so
# the ResourceWarning lands in this test, not in whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("url_var", "expect"),
    [("refused", "cannot connect"), ("tls", "TLS")],
)
def test_cli_network_errors_are_one_line_exit_1(tmp_path: Path, plain_http: int, url_var: str, expect: str) -> None:
    """`bridge plan` against a dead or wrong-scheme URL prints one line naming the URL and exits 1."""
    base = f"http://127.0.0.1:{free_port()}" if url_var == "refused" else f"https://127.0.0.1:{plain_http}"
    env = {
        "RUNPOD_API_KEY": KEY,
        "RUNPOD_GRAPHQL_URL": base + "/graphql",
        "RUNPOD_REST_URL": base + "/v1",
        "RUNPOD_REST_V2_URL": base + "/v2",
    }
    res = CliRunner().invoke(main, ["plan"], env=env, catch_exceptions=False)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bridge: error:") and expect in lines[0], res.stderr
    assert "127.0.0.1" in lines[0] and KEY not in res.stderr
    del res
    gc.collect()


def test_every_status_in_the_readme_table_is_tested() -> None:
    """The README's table of API answers lists exactly the cases this module covers."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### What bridge does for each API answer", 1)[1].split("\n#", 1)[0]
    for case in ("400", "401", "403", "404", "409", "410", "422", "429", "500", "502", "503", "504"):
        assert f"| {case}" in section or f", {case}" in section or f"/{case}" in section, case
    for words in ("timeout", "connection refused", "TLS"):
        assert words in section.lower() or words in section, words


def test_answer_for_another_endpoint_is_not_its_state(tmp_path: Path) -> None:
    """A read answered with another endpoint (or an object without id) fails; it never counts as done."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=dict(BODY, id=GOOD))

    result, _ = engine(Server(answer, "read"), tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and f"expected endpoint '{BAD}'" in bad.detail
    check_common(result)


def test_read_without_any_body_field_is_not_counted_done(tmp_path: Path) -> None:
    """A read of the right endpoint that shows none of the fields to write fails instead of passing as unchanged."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": BAD, "somethingElse": 1})

    server = Server(answer, "read")
    result, _ = engine(server, tmp_path)
    bad = outcome(result, BAD)
    assert bad.status == "failed" and "shows none of the fields" in bad.detail
    assert server.applied[BAD] == 0
    check_common(result)


def test_endless_v2_paging_is_stopped() -> None:
    """A v2 list that keeps handing out new cursors with empty pages ends with an error instead of hanging."""
    from bridge.errors import ApiError

    pages = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        pages["n"] += 1
        return httpx.Response(200, json={"endpoints": [], "nextCursor": f"c{pages['n']}"})

    async def go() -> Any:
        vt = VirtualTime()
        policy = RetryPolicy(sleep=vt.sleep, clock=vt.clock)
        async with open_rest(SETTINGS, "v2", policy=policy, transport=httpx.MockTransport(handler)) as rest:  # type: ignore[arg-type]
            return await rest.list_endpoints()

    with pytest.raises(ApiError, match="next cursor after an empty page"):
        asyncio.run(go())
    assert pages["n"] == 1


@pytest.mark.parametrize("cloudflare", [True, False], ids=["cloudflare-1010", "proxy-page"])
def test_html_403_from_a_proxy_stops_the_run(tmp_path: Path, cloudflare: bool) -> None:
    """A 403 HTML page (Cloudflare's 1010 block or a proxy's) is named as such and stops the run like a bad key."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = (
            "<html><title>Access denied | error code: 1010</title>cloudflare</html>"
            if cloudflare
            else ("<html><title>Forbidden by corporate proxy</title></html>")
        )
        return httpx.Response(403, text=body, headers={"content-type": "text/html"})

    server = Server(answer, "read")
    result, _ = engine(server, tmp_path)
    assert result.stopped and ("1010" in result.stopped if cloudflare else "corporate proxy" in result.stopped)
    assert server.requests(BAD) == 1 and server.applied[GOOD] == 0
    check_common(result)


def test_an_answer_that_never_ends_is_a_timeout(tmp_path: Path) -> None:
    """A server that never finishes its answer (a trickle, a stall) meets the per-request deadline: no hang."""

    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    server = Server(status(200), "never")  # answers everything but BAD's reads
    vt = VirtualTime()
    quick = Settings(api_key=KEY, rest_url="https://rest.test/v1", concurrency=1, timeout=0.02)
    items = [WorkItem(id=BAD, body=dict(BODY)), WorkItem(id=GOOD, body=dict(BODY))]

    async def handler(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if (len(parts) <= 3 or parts[3] == BAD) and request.method == "GET":  # the list, and BAD's read
            return await answer(request)
        return server(request)

    async def go() -> ApplyResult:
        policy = RetryPolicy(sleep=vt.sleep, clock=vt.clock)
        async with open_rest(quick, "v1", policy=policy, transport=httpx.MockTransport(handler)) as rest:  # type: ignore[arg-type]
            return await run_items(rest, V1, items, state_dir=tmp_path, concurrency=1, secrets=[KEY], sleep=vt.sleep)

    result = asyncio.run(go())
    bad = outcome(result, BAD)
    # One deadline for all the attempts of the request (timeout x 3): the stall used it up, no second try.
    assert bad.status == "failed" and "timed out" in bad.detail
    assert "gave up: no answer within 0.06 s over 1 attempt)" in bad.detail
    assert outcome(result, GOOD).status == "updated"
    check_common(result)
