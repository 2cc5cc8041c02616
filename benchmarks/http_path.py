"""CPU per request of the HTTP paths bridge could use, side by side in one process (issue 17).

    python benchmarks/http_path.py                          # 2,000 GETs per path, 20 ms, --concurrency 16, 3 rounds
    python benchmarks/http_path.py --requests 500 --rounds 1 --json out.json

Starts ``bridge emulator --generate 200 --latency-ms 20`` in its own process (its own GIL: its CPU is not
counted here), then sends the same ``GET /v1/endpoints/{id}`` requests, ``concurrency`` at a time over
keep-alive connections, through each path:

- ``aiohttp``: a bare ``aiohttp.ClientSession`` (the floor);
- ``httpx``: a plain ``httpx.AsyncClient`` (httpcore's async pool);
- ``httpx + httpx-aiohttp``: the same client with ``httpx_aiohttp.AiohttpTransport``;
- ``bridge Http``: bridge's session today (``bridge.http.Http.request`` and ``decode``: pacing, retries,
  counters, one httpcore pool per 16 requests in flight);
- ``bridge Http + httpx-aiohttp``: the same session given an ``AiohttpTransport``.

Every path reads and JSON-decodes each answer and checks its status. CPU is ``time.process_time()`` of this
process over the measured requests (after a warm-up that opens the connections); the rounds rotate the order of
the paths, and the median round is reported. :func:`measure` is what ``benchmarks/run.py`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KEY = "bench-key"
WARM_UP = 64


@dataclass
class PathResult:
    """What one path cost over ``requests`` requests (median round), and every round's CPU per request."""

    name: str
    requests: int
    cpu_ms_per_request: float
    wall_s: float
    bound_s: float  # requests x latency / concurrency
    rounds_ms: list[float]

    @property
    def wall_over_bound(self) -> float:
        return self.wall_s / self.bound_s if self.bound_s else 0.0


# -- the paths ------------------------------------------------------------------------------------
# Each is built inside the event loop of its round from the key and the concurrency; ``fetch(url)`` sends one
# GET and returns the decoded answer; ``aclose()`` closes its connections.


class _Aiohttp:
    name = "aiohttp"

    def __init__(self, key: str, concurrency: int) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
        )

    async def fetch(self, url: str) -> Any:
        async with self.session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url}: HTTP {response.status}")
            return json.loads(body)

    async def aclose(self) -> None:
        await self.session.close()


class _Httpx:
    name = "httpx"

    def __init__(self, key: str, concurrency: int, transport: Any = None) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    async def fetch(self, url: str) -> Any:
        response = await self.client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
        return json.loads(response.content)

    async def aclose(self) -> None:
        await self.client.aclose()


def _aiohttp_transport(concurrency: int) -> Any:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))


class _HttpxAiohttp(_Httpx):
    name = "httpx + httpx-aiohttp"

    def __init__(self, key: str, concurrency: int) -> None:
        super().__init__(key, concurrency, transport=_aiohttp_transport(concurrency))


class _TransportOnly:
    """httpx's Request and Response over the aiohttp transport, without ``AsyncClient`` (its URL merging,
    auth and redirect flow, cookies and hooks): what a session layer that calls the transport itself costs."""

    name = "httpx Request + httpx-aiohttp, no AsyncClient"

    def __init__(self, key: str, concurrency: int) -> None:
        import httpx

        self.httpx = httpx
        self.transport = _aiohttp_transport(concurrency)
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self.timeout = httpx.Timeout(30.0, connect=10.0).as_dict()

    async def fetch(self, url: str) -> Any:
        request = self.httpx.Request("GET", url, headers=self.headers, extensions={"timeout": self.timeout})
        response = await self.transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
        return json.loads(response.content)

    async def aclose(self) -> None:
        await self.transport.aclose()


class _Bridge:
    name = "bridge Http"

    def __init__(self, key: str, concurrency: int, transport: Any = None) -> None:
        from bridge.config import Settings
        from bridge.http import Http

        self.http = Http(Settings(api_key=key, concurrency=concurrency), transport=transport)

    async def fetch(self, url: str) -> Any:
        response = await self.http.request("GET", url, api="v1")
        return self.http.decode("GET", url, response)

    async def aclose(self) -> None:
        await self.http.aclose()


class _BridgeAiohttp(_Bridge):
    name = "bridge Http + httpx-aiohttp"

    def __init__(self, key: str, concurrency: int) -> None:
        super().__init__(key, concurrency, transport=_aiohttp_transport(concurrency + 4))


def _direct_http(key: str, concurrency: int) -> Any:
    """A prototype of the session layer issue 17 asks for: bridge's ``Http`` (the same ``request``: pacing,
    retries, counters, errors) whose ``_send`` builds the ``httpx.Request`` itself and hands it to the
    ``AiohttpTransport`` (any ``httpx.AsyncBaseTransport``: ``MockTransport`` in unit tests), without
    ``AsyncClient``; one pool, and ``asyncio.timeout`` rather than ``wait_for`` (no task per request). The
    transport is ``bridge.aiohttp_transport.Transport``, httpx-aiohttp's with bridge's error mapping."""
    import httpx

    from bridge.config import Settings
    from bridge.http import USER_AGENT, Http
    from bridge.http.retry import DEADLINE_FACTOR

    class DirectHttp(Http):
        def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport) -> None:
            super().__init__(settings, transport=transport)
            self.transport = transport
            self.headers = httpx.Headers(
                {"Authorization": f"Bearer {settings.api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
            )
            self.timeouts = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)).as_dict()

        async def _send(
            self, method: str, url: str, json_body: Any, params: Any
        ) -> tuple[httpx.Response | None, httpx.TransportError | None]:
            async with self.pacer.slot():
                self.counters.requests += 1
                request = httpx.Request(
                    method, url, params=params, json=json_body, headers=self.headers,
                    extensions={"timeout": self.timeouts},
                )  # fmt: skip
                deadline = self.settings.timeout * DEADLINE_FACTOR
                try:
                    async with asyncio.timeout(deadline):
                        response = await self.transport.handle_async_request(request)
                        try:
                            await response.aread()
                        finally:
                            await response.aclose()
                except httpx.TransportError as exc:
                    return None, exc
                except TimeoutError:
                    return None, httpx.ReadTimeout(f"no complete answer within {deadline:.0f} s")
                response.request = request
                self.counters.by_status[response.status_code] += 1
                self.pacer.on_answer(response.status_code, response.headers)
                return response, None

    from bridge.aiohttp_transport import Transport

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    return DirectHttp(Settings(api_key=key, concurrency=concurrency), Transport(limits=limits))


class _BridgeDirect(_Bridge):
    name = "bridge Http, transport called directly (prototype)"

    def __init__(self, key: str, concurrency: int) -> None:
        self.http = _direct_http(key, concurrency)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.http.transport.aclose()


PATHS: tuple[type[Any], ...] = (
    _Aiohttp,
    _Httpx,
    _HttpxAiohttp,
    _TransportOnly,
    _Bridge,
    _BridgeAiohttp,
    _BridgeDirect,
)
NAMES = tuple(p.name for p in PATHS)


async def _round(path: type[Any], key: str, urls: Sequence[str], concurrency: int) -> tuple[float, float]:
    """Warm the path up, then send ``urls`` with ``concurrency`` workers; return (CPU s, wall s)."""
    client = path(key, concurrency)
    try:

        async def drain(todo: Iterator[str]) -> None:
            for url in todo:
                await client.fetch(url)

        async def run(batch: Sequence[str]) -> None:
            todo = iter(batch)
            await asyncio.gather(*(drain(todo) for _ in range(concurrency)))

        await run(urls[:WARM_UP])
        cpu, wall = time.process_time(), time.perf_counter()
        await run(urls[WARM_UP:])
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await client.aclose()


def endpoint_urls(rest_url: str, key: str, requests: int) -> list[str]:
    """``requests`` endpoint URLs, cycling through the account's endpoints."""
    import httpx

    answer = httpx.get(f"{rest_url}/endpoints", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    doc = answer.raise_for_status().json()
    ids = [item["id"] for item in (doc["endpoints"] if isinstance(doc, dict) else doc)]
    if not ids:
        raise RuntimeError(f"{rest_url}/endpoints: the account has no endpoints")
    return [f"{rest_url}/endpoints/{ids[i % len(ids)]}" for i in range(requests + WARM_UP)]


def measure(
    rest_url: str,
    key: str,
    *,
    requests: int = 2_000,
    concurrency: int = 16,
    latency_ms: float = 20.0,
    rounds: int = 3,
    names: Sequence[str] = NAMES,
    say: Callable[[str], None] = lambda _m: None,
) -> list[PathResult]:
    """Measure each path in ``names`` against the emulator at ``rest_url`` (REST v1), all in this process.

    The rounds rotate the order of the paths so that none always runs first or last; each path's result is
    its median round (by CPU per request).
    """
    paths = [p for p in PATHS if p.name in names]
    urls = endpoint_urls(rest_url, key, requests)
    samples: dict[str, list[tuple[float, float]]] = {p.name: [] for p in paths}
    for r in range(rounds):
        for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
            cpu, wall = asyncio.run(_round(path, key, urls, concurrency))
            samples[path.name].append((cpu, wall))
            say(f"round {r + 1}: {path.name}: {cpu / requests * 1e3:.2f} ms CPU per request, wall {wall:.2f} s")
    bound = requests * latency_ms / 1000 / concurrency
    results = []
    for path in paths:
        runs = sorted(samples[path.name])
        cpu, wall = runs[len(runs) // 2]
        results.append(
            PathResult(
                name=path.name,
                requests=requests,
                cpu_ms_per_request=cpu / requests * 1e3,
                wall_s=wall,
                bound_s=bound,
                rounds_ms=[c / requests * 1e3 for c, _ in samples[path.name]],
            )
        )
    return results


def table(results: Sequence[PathResult]) -> str:
    """The results as a Markdown table, with each path's CPU per request against bare aiohttp."""
    floor = next((r.cpu_ms_per_request for r in results if r.name == "aiohttp"), None)
    lines = [
        "| path | CPU per request (median) | rounds | vs aiohttp | wall | wall / bound |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ratio = f"{r.cpu_ms_per_request / floor:.2f}x" if floor else ""
        rounds = " / ".join(f"{x:.2f}" for x in r.rounds_ms)
        lines.append(
            f"| {r.name} | {r.cpu_ms_per_request:.2f} ms | {rounds} | {ratio} | {r.wall_s:.2f} s | "
            f"{r.wall_over_bound:.2f}x |"
        )
    return "\n".join(lines)


@contextmanager
def emulator(latency_ms: float, endpoints: int = 200) -> Iterator[str]:
    """A ``bridge emulator --generate`` in its own process; yields its REST v1 URL."""
    script = Path(sys.executable).parent / "bridge"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]
    cmd += ["emulator", "--port", "0", "--generate", str(endpoints), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"RUNPOD_REST_URL=(\S+)", line)
            if match:
                yield match.group(1).strip("'")
                return
        raise RuntimeError("the emulator did not start")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=NAMES)
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    with emulator(args.latency_ms) as rest_url:
        results = measure(
            rest_url,
            KEY,
            requests=args.requests,
            concurrency=args.concurrency,
            latency_ms=args.latency_ms,
            rounds=args.rounds,
            names=args.only or NAMES,
            say=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
        )
    print(
        f"{args.requests} GETs per path, {args.latency_ms:g} ms latency, concurrency {args.concurrency}, "
        f"median of {args.rounds} round(s)\n"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
