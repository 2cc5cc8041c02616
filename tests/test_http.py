"""The HTTP layer (bridge.http): retries, pacing, reading error answers, the session and its counters."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from helpers import VirtualTime
from mock_api import ENDPOINT, KEY, SETTINGS, Recorder, call, ok

from bridge.errors import ApiError, AuthError, NotFoundError, RateLimitedError, RetiredError, WriteOutcomeUnknown
from bridge.http import Http, Pacer, gather_all, parse_rate_limit, parse_retry_after
from bridge.rest import RestClient

CLOUDFLARE_1010 = (
    "<!DOCTYPE html><html><head><title>Access denied | api.runpod.io used Cloudflare to restrict access</title>"
    "</head><body><h1>Error 1010</h1><p>The owner of this website has banned your access based on your "
    "browser's signature.</p><p>Cloudflare Ray ID: 8a1b</p></body></html>"
)


def test_5xx_reads_are_retried_with_full_jitter_backoff() -> None:
    """Two 503s then a 200: the read succeeds, with backoff sleeps within base * 2^n."""
    vt = VirtualTime()
    server = Recorder(httpx.Response(503), httpx.Response(503), ok(ENDPOINT))
    assert call(server, lambda rest: rest.get_endpoint("ep1"), vt=vt) == ENDPOINT
    assert len(server.requests) == 3
    assert len(vt.sleeps) == 2 and 0 <= vt.sleeps[0] <= 0.5 and 0 <= vt.sleeps[1] <= 1.0


def test_reads_give_up_after_five_attempts() -> None:
    """A server that always answers 503 fails the read after 5 attempts, naming method, URL and status."""
    server = Recorder(httpx.Response(503, json={"error": "service unavailable", "status": 503}))
    with pytest.raises(ApiError) as info:
        call(server, lambda rest: rest.get_endpoint("ep1"))
    assert len(server.requests) == 5
    message = str(info.value)
    assert "GET https://rest.test/v1/endpoints/ep1: HTTP 503" in message
    assert "service unavailable" in message and "gave up after 5 attempts" in message


def test_timeouts_and_dropped_connections_are_retried_for_reads() -> None:
    """A read timeout and a dropped connection are retried; the third attempt succeeds."""
    server = Recorder(httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), ok(ENDPOINT))
    vt = VirtualTime()
    assert call(server, lambda rest: rest.get_endpoint("ep1"), vt=vt) == ENDPOINT
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    """400, 401, 403, 404, 410 and 422 are answered once: no retry."""
    server = Recorder(httpx.Response(status, json={"error": "nope", "status": status}))
    with pytest.raises(ApiError):
        call(server, lambda rest: rest.get_endpoint("ep1"))
    assert len(server.requests) == 1


def test_401_says_the_key_was_rejected_without_the_key() -> None:
    """401 raises AuthError 'RunPod rejected the API key (HTTP 401) at GET <url>', even if the server echoes the key."""
    server = Recorder(httpx.Response(401, json={"error": f"bad key {KEY}", "status": 401}))
    with pytest.raises(AuthError) as info:
        call(server, lambda rest: rest.list_endpoints())
    message = str(info.value)
    assert message.startswith("RunPod rejected the API key (HTTP 401) at GET https://rest.test/v1/endpoints")
    assert KEY not in message and info.value.exit_code == 1


def test_410_on_v1_points_to_v2() -> None:
    """410 Gone on v1 raises RetiredError telling the user to run with --target v2."""
    server = Recorder(httpx.Response(410, json={"error": "REST API v1 has been retired", "status": 410}))
    with pytest.raises(RetiredError, match="RunPod has retired REST v1: run again with --target v2"):
        call(server, lambda rest: rest.list_endpoints())


def test_404_is_a_distinct_not_found_error() -> None:
    """404 raises NotFoundError carrying the server's reason."""
    server = Recorder(httpx.Response(404, json={"error": "endpoint not found", "status": 404}))
    with pytest.raises(NotFoundError, match=r"GET https://rest.test/v1/endpoints/nope: HTTP 404 Not Found: endpoint"):
        call(server, lambda rest: rest.get_endpoint("nope"))


def test_v2_problem_details_are_reported() -> None:
    """A v2 problem+json answer gives its detail and each validation error."""
    problem = {
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Request validation failed.",
        "errors": ["$: additional properties 'bogus' not allowed"],
    }
    server = Recorder(httpx.Response(422, json=problem, headers={"content-type": "application/problem+json"}))
    with pytest.raises(ApiError) as info:
        call(server, lambda rest: rest.send_update("ep1", {"bogus": 1}), target="v2")
    assert str(info.value) == (
        "PATCH https://api.test/v2/serverless/ep1: HTTP 422 Unprocessable Entity: "
        "Request validation failed.; $: additional properties 'bogus' not allowed"
    )


def test_cloudflare_1010_is_explained_as_a_user_agent_block() -> None:
    """403 with Cloudflare's 1010 page is not a key problem: the message says the client signature was refused."""
    server = Recorder(
        httpx.Response(403, text=CLOUDFLARE_1010, headers={"content-type": "text/html", "server": "cloudflare"})
    )
    with pytest.raises(ApiError) as info:
        call(server, lambda rest: rest.list_endpoints())
    assert not isinstance(info.value, AuthError)
    message = str(info.value)
    assert "Cloudflare (error 1010)" in message and "User-Agent" in message and "\n" not in message
    assert len(server.requests) == 1


def test_html_error_pages_are_retried_then_explained() -> None:
    """A proxy's 502 HTML page is retried like any 5xx and then reported in one line, by its title."""
    page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
    server = Recorder(httpx.Response(502, text=page, headers={"content-type": "text/html"}))
    with pytest.raises(ApiError) as info:
        call(server, lambda rest: rest.list_endpoints())
    assert len(server.requests) == 5
    assert 'an HTML page "502 Bad Gateway" from a proxy or gateway, not an answer of the RunPod API' in str(info.value)


def test_html_page_with_200_is_an_error() -> None:
    """A 200 answer that is an HTML page (a captive portal) is refused with a clear message."""
    server = Recorder(httpx.Response(200, text="<!doctype html><title>Sign in</title>"))
    with pytest.raises(ApiError, match='HTTP 200: answered with an HTML page "Sign in"'):
        call(server, lambda rest: rest.list_endpoints())


def test_429_pauses_everyone_for_retry_after() -> None:
    """A 429 with Retry-After: 3 holds the request (and the run) for 3 s, then it succeeds."""
    vt = VirtualTime()
    start = vt.now
    server = Recorder(httpx.Response(429, headers={"Retry-After": "3"}), ok(ENDPOINT))

    async def fn(rest: RestClient) -> Any:
        result = await rest.get_endpoint("ep1")
        assert rest.counters.rate_limited == 1 and rest.counters.retries == 1
        assert rest.http.pacer.rate is not None  # the send rate is now limited
        return result

    assert call(server, fn, vt=vt) == ENDPOINT
    assert vt.now - start >= 3.0


def test_retry_after_longer_than_the_cap_stops_cleanly() -> None:
    """Retry-After above 120 s raises RateLimitedError (resumable) without waiting or retrying."""
    vt = VirtualTime()
    server = Recorder(httpx.Response(429, headers={"Retry-After": "600"}))
    with pytest.raises(RateLimitedError, match="asked to wait 600 s"):
        call(server, lambda rest: rest.list_endpoints(), vt=vt)
    assert len(server.requests) == 1 and vt.sleeps == []


def test_parse_retry_after() -> None:
    """Retry-After is read as delta seconds or as an HTTP date; junk is ignored."""
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)
    later = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("-3") is None


def test_parse_rate_limit_headers() -> None:
    """The v2 RateLimit and RateLimit-Policy structured lists parse into windows and numbers."""
    assert parse_rate_limit('"minute";r=0;t=12, "hour";r=2800;t=1812') == {
        "minute": {"r": 0, "t": 12},
        "hour": {"r": 2800, "t": 1812},
    }
    assert parse_rate_limit('"second";q=50;w=1') == {"second": {"q": 50, "w": 1}}
    assert parse_rate_limit(None) == {} and parse_rate_limit("garbage;x") == {"garbage": {}}


def test_pacer_aimd() -> None:
    """A 429 cuts the rate to 90% of what the server accepted in the last second; successes raise it slowly."""
    vt = VirtualTime()
    pacer = Pacer(8, clock=vt.clock, sleep=vt.sleep)
    for _ in range(50):
        vt.now += 0.01
        pacer.on_answer(200, {})
    assert pacer.rate is None
    pacer.on_rate_limited(1.0)
    assert pacer.rate == pytest.approx(45.0)
    pacer.on_rate_limited(1.0)  # the same episode: no second cut
    assert pacer.rate == pytest.approx(45.0)
    vt.now += 2
    pacer.on_answer(200, {})
    assert 45.0 < pacer.rate < 45.1


def test_pacer_follows_rate_limit_policy_and_remaining() -> None:
    """RateLimit-Policy and RateLimit are read into windows; RateLimit with nothing left pauses until the reset."""
    vt = VirtualTime()
    pacer = Pacer(8, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(
        200, {"ratelimit-policy": '"second";q=50;w=1, "hour";q=36000;w=3600', "ratelimit": '"second";r=10;t=1'}
    )
    status = {w.name: w for w in pacer.quota_status()}
    assert status["second"].limit == 50 and status["second"].remaining == 10 and status["second"].reset == 1
    assert status["hour"].limit == 36000 and status["hour"].remaining == 36000 and status["hour"].seconds == 3600
    pacer.on_answer(200, {"ratelimit": '"minute";r=0;t=12'})

    async def enter() -> None:
        async with pacer.slot():
            pass

    before = vt.now
    asyncio.run(enter())
    assert vt.now - before >= 12


def test_concurrency_is_bounded() -> None:
    """No more than settings.concurrency requests are in flight at once."""
    inflight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.005)
        inflight -= 1
        return ok({**ENDPOINT, "id": request.url.path.rsplit("/", 1)[-1]})

    async def fn(rest: RestClient) -> list[Any]:
        return await gather_all(rest.get_endpoint(f"ep{i}") for i in range(30))

    assert len(call(handler, fn)) == 30
    assert peak == SETTINGS.concurrency


def test_write_retried_on_429_and_refused_connection() -> None:
    """A write answered 429, or refused before it was sent, surely was not applied: it is sent again."""
    server = Recorder(
        httpx.Response(429, headers={"Retry-After": "1"}), httpx.ConnectError("refused"), ok({"id": "ep1"})
    )
    assert call(server, lambda rest: rest.send_update("ep1", {"name": "x"})) == {"id": "ep1"}
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "answer", [httpx.Response(503), httpx.Response(500), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone")]
)
def test_write_with_unknown_outcome_is_not_retried(answer: httpx.Response | Exception) -> None:
    """A 5xx, a timeout or a dropped connection after a write raises WriteOutcomeUnknown after one request."""
    server = Recorder(answer)
    with pytest.raises(WriteOutcomeUnknown, match=r"POST https://rest.test/v1/endpoints/ep1/update"):
        call(server, lambda rest: rest.send_update("ep1", {"name": "x"}))
    assert len(server.requests) == 1


def test_write_4xx_raises_typed_errors() -> None:
    """A 400 on a write is an ApiError with the server's reason; 401 an AuthError."""
    server = Recorder(httpx.Response(400, json={"error": "invalid input: idleTimeout", "status": 400}))
    with pytest.raises(ApiError, match="HTTP 400 Bad Request: invalid input: idleTimeout"):
        call(server, lambda rest: rest.send_update("ep1", {"idleTimeout": 0}))
    with pytest.raises(AuthError):
        call(Recorder(httpx.Response(401)), lambda rest: rest.send_update("ep1", {"name": "x"}))


def test_counters_as_dict() -> None:
    """Counters report requests, 429s, retries, statuses and kinds as JSON data."""
    server = Recorder(httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(503), ok(ENDPOINT))

    async def fn(rest: RestClient) -> dict[str, Any]:
        await rest.get_endpoint("ep1")
        return rest.counters.as_dict()

    assert call(server, fn) == {
        "requests": 3,
        "rate_limited": 1,
        "retries": 2,
        "failures": 1,
        "by_status": {"200": 1, "429": 1, "503": 1},
        "by_kind": {"read": 3},  # every attempt, by what it was for
    }


def test_gather_all_cancels_the_rest_on_failure() -> None:
    """When one task fails, gather_all cancels the others and raises the failure."""
    cancelled: list[int] = []

    async def slow(i: int) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async def boom() -> int:
        await asyncio.sleep(0)
        raise ApiError("boom")

    async def main() -> None:
        with pytest.raises(ApiError, match="boom"):
            await gather_all([slow(1), boom(), slow(2)])

    asyncio.run(main())
    assert sorted(cancelled) == [1, 2]


def test_http_closes_its_client() -> None:
    """Leaving the Http context closes the connection pool."""

    async def main() -> Http:
        async with Http(SETTINGS, transport=httpx.MockTransport(Recorder(ok([])))) as http:
            pass
        return http

    assert asyncio.run(main()).is_closed


def test_gzipped_error_answer_echoing_the_key_is_scrubbed_not_a_crash() -> None:
    """A gzipped 5xx page that echoes the key is quoted scrubbed: the write's outcome is unknown, not a crash."""
    import gzip

    page = gzip.compress(f"upstream failed for Bearer {KEY}".encode())
    server = Recorder(httpx.Response(502, headers={"Content-Encoding": "gzip"}, content=page))
    with pytest.raises(WriteOutcomeUnknown) as info:
        call(server, lambda rest: rest.send_update("ep1", {"name": "x"}))
    assert "502" in str(info.value) and "upstream failed" in str(info.value) and KEY not in str(info.value)


def test_pacer_spends_each_window_instead_of_averaging_the_tightest() -> None:
    """Under the v2 example policy (60/minute, 3000/hour, 50000/day) a run sends the minute's quota at once
    while the hour and day allow it, then waits for the minute's reset, not one request per 1.8 s (the day's
    average); quota_status reports every window with what remains."""
    from bridge.emulator.faults import EXAMPLE_POLICY

    vt = VirtualTime()
    pacer = Pacer(1, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(
        200,
        {
            "ratelimit-policy": EXAMPLE_POLICY,
            "ratelimit": '"minute";r=59;t=60, "hour";r=2999;t=3600, "day";r=49999;t=86400',
        },
    )
    sent: list[float] = []

    async def enter(n: int) -> None:
        for _ in range(n):
            async with pacer.slot():
                sent.append(vt.now)

    asyncio.run(enter(59))
    assert sent[-1] - sent[0] == 0  # the minute's 59 left, at once
    status = {w.name: w for w in pacer.quota_status()}
    assert (status["minute"].remaining, status["minute"].limit) == (0, 60)
    assert (status["hour"].remaining, status["day"].remaining) == (2940, 49940)
    asyncio.run(enter(1))  # the minute is spent: wait for its reset, then the full quota again
    assert sent[-1] == pytest.approx(sent[0] + 60)
    assert {w.name: w for w in pacer.quota_status()}["minute"].remaining == 59


def test_pacer_never_sends_a_window_s_quota_twice_within_one_window_after_a_rounded_reset() -> None:
    """The server's window turns somewhere within the second its rounded-up ``t`` names. When answers no longer
    speak of the window (REST v1, its policy learnt from a v2 catalog read), no span of one window, wherever its
    edges, holds more than the quota of our sends, until an answer says where the window stands again."""
    vt = VirtualTime()
    pacer = Pacer(16, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(200, {"ratelimit-policy": '"second";q=50;w=1', "ratelimit": '"second";r=50;t=1'})  # a catalog
    pacer.on_answer(200, {})  # then REST v1 answers, which carry no RateLimit
    sent: list[float] = []

    async def burst(n: int, spacing: float) -> None:
        for _ in range(n):
            async with pacer.slot():
                sent.append(vt.now)
            vt.now += spacing

    # The server's window turns somewhere in the next second: at 0.3 s, say. Sending the next 50 at 1.0 s would
    # put 100 into its window [0.3, 1.3).
    vt.now += 0.5
    asyncio.run(burst(50, 0.001))  # the first window's quota, in 50 ms
    asyncio.run(burst(300, 0.001))  # then no answer says anything more (REST v1 sends no RateLimit headers)
    for i in range(len(sent) - 50):
        assert sent[i + 50] - sent[i] >= 1.0  # any 51 consecutive sends span at least one window
    assert sent[-1] - sent[0] < 6.5  # and the quota is spent: 50 a window (and its 50 ms guard), not 50 every 2 s
    pacer.on_answer(200, {"ratelimit": '"second";r=40;t=1'}, sent_at=vt.now)  # the server speaks again
    assert pacer.quota_status()[0].remaining == 40


def test_pacer_waits_for_the_hour_when_the_hour_is_spent() -> None:
    vt = VirtualTime()
    pacer = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(
        200,
        {
            "ratelimit-policy": '"minute";q=60;w=60, "hour";q=100;w=3600',
            "ratelimit": '"minute";r=60;t=60, "hour";r=2;t=90',
        },
    )

    async def enter() -> None:
        async with pacer.slot():
            pass

    async def three() -> None:
        for _ in range(3):
            await enter()

    start = vt.now
    asyncio.run(three())
    assert vt.now - start == pytest.approx(90)  # two went at once, the third after the hour's reset (capped wait)


@pytest.mark.slow
def test_a_run_against_a_window_policy_is_paced_without_429s(make_emulator: Any) -> None:
    """Against the emulator's fixed windows over real sockets, the pacer keeps every window's quota: 150 reads
    under a 40-per-second window meet no 429 (nor would a run average the tightest window: it bursts)."""
    from bridge.config import Settings
    from bridge.emulator.faults import Faults

    emu = make_emulator(faults=Faults(rate_policy='"second";q=40;w=1, "hour";q=100000;w=3600'))
    endpoint_id = next(iter(emu.state))
    settings = Settings(api_key=emu.api_key, rest_v2_url=f"{emu.url}/v2", concurrency=8)

    async def main() -> Http:
        async with Http(settings) as http:
            url = f"{emu.url}/v2/serverless/{endpoint_id}"
            await gather_all(http.request("GET", url, api="v2") for _ in range(150))
            return http

    http = asyncio.run(main())
    assert http.counters.requests == 150 and http.counters.rate_limited == 0
    hour = {w.name: w for w in http.quota_status()}["hour"]
    assert hour.limit == 100000 and hour.remaining is not None and hour.remaining <= 100000 - 150 + 8


def test_pacer_ignores_an_old_windows_answer_after_the_reset_and_keeps_the_lowest_within_one() -> None:
    """An answer to a request sent before a window rolled over speaks of the old window (r=0): it must not
    pause the new one. Within one window the lowest remaining and the earliest reset win (t is rounded up)."""
    vt = VirtualTime()
    pacer = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    policy = '"minute";q=10;w=60'
    pacer.on_answer(200, {"ratelimit-policy": policy, "ratelimit": '"minute";r=5;t=60'}, sent_at=vt.now)
    vt.now += 10
    pacer.on_answer(200, {"ratelimit": '"minute";r=7;t=51'}, sent_at=vt.now)  # rounded: a later reset, more left
    (minute,) = pacer.quota_status()
    assert (minute.remaining, minute.reset) == (5, 50)
    old_send = vt.now + 49.9
    vt.now += 50.5  # the window rolled over
    pacer.on_answer(200, {"ratelimit": '"minute";r=0;t=1'}, sent_at=old_send)
    (minute,) = pacer.quota_status()
    assert minute.remaining == 10 and minute.reset == pytest.approx(59.5)
    pacer.on_answer(200, {"ratelimit": '"minute";r=9;t=60'}, sent_at=vt.now)
    assert pacer.quota_status()[0].remaining == 9


def test_a_silent_window_counts_only_the_sends_its_reset_leaves_in_doubt() -> None:
    """The reset is known to a second: sends earlier than that before it were in the window before, which the
    server's r allowed. A minute that resets 5 s after a burst of its 60 is open again at 5 s, not at 60."""
    vt = VirtualTime()
    pacer = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(200, {"ratelimit-policy": '"minute";q=60;w=60', "ratelimit": '"minute";r=60;t=5'})
    pacer.on_answer(200, {})  # a REST v1 answer: no RateLimit
    sent: list[float] = []

    async def send(n: int) -> None:
        for _ in range(n):
            async with pacer.slot():
                sent.append(vt.now - 1000)

    asyncio.run(send(61))
    assert sent[59] == 0 and sent[60] == pytest.approx(5)


@pytest.mark.parametrize("policy", ['"s";q=0.5;w=1', '"s";q=2.5;w=1'])
def test_a_fractional_quota_paces_without_crashing(policy: str) -> None:
    """A policy's q below 1 (or not whole) from an odd server allows its whole part, and never none."""
    vt = VirtualTime()
    pacer = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(200, {"ratelimit-policy": policy})
    sent: list[float] = []

    async def send(n: int) -> None:
        for _ in range(n):
            async with pacer.slot():
                sent.append(vt.now)

    asyncio.run(send(6))
    per_window = max(1, int(float(policy.split("q=")[1].split(";")[0])))
    for i in range(len(sent) - per_window):
        assert sent[i + per_window] - sent[i] >= 1.0


def test_counters_count_requests_by_kind() -> None:
    """A list read, a read of one endpoint and a write are counted as list, read and write."""
    server = Recorder(ok([ENDPOINT]), ok(ENDPOINT), ok(ENDPOINT))

    async def fn(rest: RestClient) -> dict[str, int]:
        await rest.list_endpoints()
        await rest.get_endpoint("ep1")
        await rest.send_update("ep1", {"name": "x"})
        return dict(rest.counters.by_kind)

    assert call(server, fn) == {"list": 1, "read": 1, "write": 1}


def test_a_429_under_published_windows_pauses_but_does_not_cut_the_rate() -> None:
    """With RateLimit windows known (v2), a 429 pauses for its Retry-After and the windows go on pacing; no AIMD
    rate is set, so the run is back at the window's pace as soon as it reopens (v1, with no windows, still cuts)."""
    vt = VirtualTime()
    pacer = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    pacer.on_answer(200, {"ratelimit-policy": '"second";q=50;w=1', "ratelimit": '"second";r=0;t=1'})
    pacer.on_rate_limited(1.0)
    assert pacer.rate is None

    v1 = Pacer(4, clock=vt.clock, sleep=vt.sleep)
    for _ in range(20):
        v1.on_answer(200, {})
    v1.on_rate_limited(1.0)
    assert v1.rate is not None and v1.rate < 20
