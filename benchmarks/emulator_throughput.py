"""How many REST reads per second the emulator answers: is it fast enough never to be a benchmark's bottleneck?

Starts ``bridge emulator --port 0 --generate 1000`` in its own process (so client and server do not share a
GIL), then keeps CONCURRENCY keep-alive connections busy with ``GET /v1/endpoints/{id}`` for SECONDS and prints
one JSON line per setting: requests per second and, with latency, the concurrency bound
(connections / latency) it is measured against.

    python benchmarks/emulator_throughput.py                     # 0 ms x 16, 20 ms x 16, 20 ms x 32
    python benchmarks/emulator_throughput.py --latency-ms 20 --concurrency 16 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

BRIDGE = str(Path(sys.executable).parent / "bridge")


def start_emulator(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    """Start the emulator on a free port and return it with its REST v1 URL."""
    proc = subprocess.Popen(
        [BRIDGE, "emulator", "--port", "0", "--generate", "1000", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"RUNPOD_REST_URL=(\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise SystemExit("the emulator did not print its URL")


async def hammer(url: str, concurrency: int, seconds: float) -> int:
    """Keep ``concurrency`` connections busy for ``seconds``; return how many reads were answered 200."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={"Authorization": "Bearer bench"}, limits=limits) as client:
        ids = [ep["id"] for ep in (await client.get(f"{url}/endpoints")).json()]
        done = 0
        stop = time.monotonic() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            while time.monotonic() < stop:
                response = await client.get(f"{url}/endpoints/{ids[(done + offset) % len(ids)]}")
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done


def measure(latency_ms: float, concurrency: int, seconds: float) -> dict[str, object]:
    proc, url = start_emulator(latency_ms)
    try:
        started = time.monotonic()
        done = asyncio.run(hammer(url, concurrency, seconds))
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(10)
    bound = concurrency / (latency_ms / 1000) if latency_ms else None
    rps = done / elapsed
    return {
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "requests": done,
        "requests_per_second": round(rps),
        "bound_per_second": round(bound) if bound else None,
        "of_bound": round(rps / bound, 2) if bound else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, action="append")
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.latency_ms or args.concurrency:
        settings = [(lat, conc) for lat in args.latency_ms or [0.0] for conc in args.concurrency or [16]]
    else:
        settings = [(0.0, 16), (20.0, 16), (20.0, 32)]
    for latency_ms, concurrency in settings:
        print(json.dumps(measure(latency_ms, concurrency, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
