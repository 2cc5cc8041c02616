"""The emulator's rate-limit windows and the RateLimit headers REST v2 sends with them (bridge.emulator.faults)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.emulator.faults import EXAMPLE_POLICY, FaultCounters, Faults, Window, parse_policy
from bridge.http import parse_rate_limit


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_parse_policy_reads_the_v2_example_policy() -> None:
    assert parse_policy(EXAMPLE_POLICY) == (
        Window("minute", 60, 60),
        Window("hour", 3000, 3600),
        Window("day", 50000, 86400),
    )
    for bad in ('"minute";q=60', "minute;q=60;w=60", '"m";q=0;w=60', '"m";q=1;w=1, "m";q=2;w=2', ""):
        with pytest.raises(ValueError, match="rate_policy"):
            parse_policy(bad)


def test_faults_validate_the_new_settings() -> None:
    faults = Faults()
    faults.update({"rate_policy": EXAMPLE_POLICY, "graphql_max_complexity": 500})
    assert faults.windows() == parse_policy(EXAMPLE_POLICY)
    assert Faults(rate_limit=5, rate_policy='"minute";q=60;w=60').windows() == (
        Window("second", 5, 1),
        Window("minute", 60, 60),
    )
    with pytest.raises(ValueError, match="rate_policy"):
        faults.update({"rate_policy": '"minute";q=sixty;w=60'})
    with pytest.raises(ValueError, match="graphql_max_complexity"):
        faults.update({"graphql_max_complexity": 0})
    assert faults.rate_policy == EXAMPLE_POLICY and faults.graphql_max_complexity == 500  # unchanged


def test_every_window_counts_and_the_first_full_one_refuses() -> None:
    clock = Clock(3600.0 * 1000)  # the start of a minute and of an hour
    counters = FaultCounters(clock=clock)
    faults = Faults(rate_policy='"minute";q=3;w=60, "hour";q=5;w=3600')
    answers = [counters.decide(faults) for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    refused = answers[-1]
    assert refused.exceeded == "minute" and refused.detail == "rate limit exceeded for the minute window"
    assert refused.reset_s == 60 and refused.remaining == 0
    assert [(s.window.name, s.remaining) for s in refused.windows] == [("minute", 0), ("hour", 2)]
    clock.now += 60  # a new minute: the hour still counts the first three
    assert [counters.decide(faults).allowed for _ in range(3)] == [True, True, False]
    hour_full = counters.decide(faults)
    assert hour_full.exceeded == "hour" and hour_full.reset_s == 3540


def test_v2_headers_list_one_member_per_window_in_the_spec_form() -> None:
    clock = Clock(86400.0 * 10 + 48)  # 12 s before the minute resets
    decision = FaultCounters(clock=clock).decide(Faults(rate_policy=EXAMPLE_POLICY))
    headers = dict(decision.headers())
    assert headers["RateLimit-Policy"] == EXAMPLE_POLICY
    assert headers["RateLimit"] == '"minute";r=59;t=12, "hour";r=2999;t=3552, "day";r=49999;t=86352'
    # bridge's own parser reads them back, window by window
    assert parse_rate_limit(headers["RateLimit-Policy"]) == {
        "minute": {"q": 60, "w": 60},
        "hour": {"q": 3000, "w": 3600},
        "day": {"q": 50000, "w": 86400},
    }
    assert parse_rate_limit(headers["RateLimit"])["day"] == {"r": 49999, "t": 86352}


def test_rate_limit_alone_keeps_its_one_second_window_and_headers() -> None:
    counters = FaultCounters(clock=Clock(5.5))
    first = counters.decide(Faults(rate_limit=2))
    assert dict(first.headers()) == {"RateLimit": '"second";r=1;t=1', "RateLimit-Policy": '"second";q=2;w=1'}
    assert counters.decide(Faults(rate_limit=2)).allowed
    assert not counters.decide(Faults(rate_limit=2)).allowed
    unlimited = FaultCounters().decide(Faults())
    assert unlimited.allowed and dict(unlimited.headers())["RateLimit-Policy"] == '"second";q=1000000;w=1'


def test_the_served_v2_api_announces_every_window_and_names_the_one_that_refused(make_emulator: Any) -> None:
    """Over real sockets: v2 answers carry one RateLimit member per window; the 429 names the full window."""
    import httpx
    from conftest import EMULATOR_KEY

    emu = make_emulator(faults=Faults(rate_policy='"burst";q=2;w=60, "hour";q=3000;w=3600'))
    auth = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    answers = [httpx.get(f"{emu.url}/v2/serverless", headers=auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert parse_rate_limit(answers[0].headers["RateLimit-Policy"]) == {
        "burst": {"q": 2, "w": 60},
        "hour": {"q": 3000, "w": 3600},
    }
    assert parse_rate_limit(answers[1].headers["RateLimit"])["burst"]["r"] == 0
    assert answers[2].json()["detail"] == "rate limit exceeded for the burst window"


def test_the_served_graphql_api_applies_the_complexity_limit(make_emulator: Any) -> None:
    import httpx
    from conftest import EMULATOR_KEY

    emu = make_emulator(faults=Faults(graphql_max_complexity=1))
    auth = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    answer = httpx.post(f"{emu.url}/graphql", headers=auth, json={"query": "{ myself { endpoints { id name } } }"})
    assert answer.status_code == 400 and "exceeds the maximum complexity of 1" in answer.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-policy", "minute;q=60;w=60"], "rate_policy"),
        (["--rate-policy", '"m";q=0;w=60'], "rate_policy"),
        (["--graphql-max-complexity", "0"], "--graphql-max-complexity"),
    ],
)
def test_emulator_cli_refuses_bad_limits_in_one_line(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from bridge.cli.emulator import emulator

    result = CliRunner().invoke(emulator, [*args, "--port", "0"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
