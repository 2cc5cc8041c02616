"""A mock RunPod HTTP API for the HTTP-layer tests (httpx.MockTransport): recorders, answers, a client runner."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
from helpers import VirtualTime, offline_settings

from bridge.http import RetryPolicy
from bridge.rest import RestClient, open_rest

KEY = "test-key-0123456789"
SETTINGS = offline_settings(KEY, concurrency=4)
Handler = Callable[[httpx.Request], Any]


def policy(vt: VirtualTime, **kwargs: Any) -> RetryPolicy:
    """A retry policy on virtual time with a seeded jitter."""
    return RetryPolicy(sleep=vt.sleep, clock=vt.clock, rng=random.Random(7), **kwargs)


def call(
    handler: Handler, fn: Callable[[RestClient], Any], *, target: str = "v1", vt: VirtualTime | None = None
) -> Any:
    """Run ``fn(client)`` against a mock server answering with ``handler``."""
    vt = vt or VirtualTime()

    async def main() -> Any:
        async with open_rest(SETTINGS, target, policy=policy(vt), transport=httpx.MockTransport(handler)) as rest:
            return await fn(rest)

    return asyncio.run(main())


class Recorder:
    """A mock server that answers from a list (the last answer repeats) and records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(doc: Any, **kwargs: Any) -> httpx.Response:
    """A 200 answer with ``doc`` as JSON."""
    return httpx.Response(200, json=doc, **kwargs)


ENDPOINT = {"id": "ep1", "name": "worker", "gpuTypeIds": ["NVIDIA A40"]}
