"""bridge's HTTP layer (httpx), one module per concept, shared by REST and GraphQL::

    session.py   Http: the run's transport, the retry loop, the deadline, the answer cap, the counters, safe messages
    transport.py httpx over aiohttp (imported only when a session opens it), its error mapping, proxy routing
    retry.py     RetryPolicy: budgets, backoff, Retry-After, what a transport failure means
    pacing.py    Pacer: bounded concurrency, pauses after 429, AIMD send rate, RateLimit windows, quota_status()
    answers.py   the server's reason for an error answer, and the typed error for its status
    capped.py    reading an answer with a cap on its decoded size (a gzip bomb is an error naming the URL)
    proxies.py   proxies from the environment, for https origins only (CONNECT); SOCKS needs its extra

The endpoint operations on top of it are in :mod:`bridge.rest`; the errors in :mod:`bridge.errors`.
"""

from __future__ import annotations

from bridge.http.answers import USER_AGENT, Api, clip, error_for, is_html, server_reason
from bridge.http.pacing import Pacer, QuotaWindow, parse_rate_limit
from bridge.http.retry import RetryPolicy, parse_retry_after
from bridge.http.session import Counters, Http, gather_all

__all__ = [
    "USER_AGENT",
    "Api",
    "Counters",
    "Http",
    "Pacer",
    "QuotaWindow",
    "RetryPolicy",
    "clip",
    "error_for",
    "gather_all",
    "is_html",
    "parse_rate_limit",
    "parse_retry_after",
    "server_reason",
]
