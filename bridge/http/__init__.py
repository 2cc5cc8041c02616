"""bridge's HTTP layer (httpx), one module per concept, shared by REST and GraphQL::

    session.py   Http: the run's clients, the retry loop, the counters, key scrubbing
    retry.py     RetryPolicy: budgets, backoff, Retry-After, what a transport failure means
    pacing.py    Pacer: bounded concurrency, pauses after 429, AIMD send rate, RateLimit headers
    answers.py   the server's reason for an error answer, and the typed error for its status

The endpoint operations on top of it are in :mod:`bridge.rest`; the errors in :mod:`bridge.errors`.
"""

from __future__ import annotations

from bridge.http.answers import USER_AGENT, Api, clip, error_for, is_html, server_reason
from bridge.http.pacing import Pacer, parse_rate_limit
from bridge.http.retry import RetryPolicy, parse_retry_after
from bridge.http.session import Counters, Http, gather_all

__all__ = [
    "USER_AGENT",
    "Api",
    "Counters",
    "Http",
    "Pacer",
    "RetryPolicy",
    "clip",
    "error_for",
    "gather_all",
    "is_html",
    "parse_rate_limit",
    "parse_retry_after",
    "server_reason",
]
