"""Measure bridge where users feel it (issue 7) and print the results as one Markdown table.

    python benchmarks/run.py             # the full run: every scenario 3 times (about 8 minutes on 2 cores)
    python benchmarks/run.py --quick     # every scenario once, on small accounts, in a few seconds (a smoke run)
    python benchmarks/run.py --runs 5 --json results.json --work /tmp/bench

What it does, all in one run so that every ratio compares numbers measured side by side:

1. generates seeded accounts (``bridge.emulator.generate.generate_account``) of the sizes it needs;
2. **offline plan**: ``bridge plan --from ACCOUNT --format json`` as a whole process, for 1,000, 10,000 and
   100,000 endpoints: wall time and peak memory, and time per endpoint net of the fixed start-up (the same
   command on an empty account). Each output is checked byte for byte against ``Plan.to_json()``;
3. **start-up**: ``bridge --help`` against ``python -c "import click"``, and a check that it imports none of
   gql, httpx and pydantic;
4. **live migration**: ``bridge emulator`` in its own process (20 ms per request, no rate limit) with 1,000
   endpoints that all need a write, ``bridge migrate --concurrency 16``: its requests, first to last answer, against
   the concurrency bound (requests x latency / concurrency, the requests counted in the emulator's log), the whole
   process beside it, and the whole process against
   ``baseline_migrate.py``, the plain sequential httpx loop a user would write (read, update, read back);
5. **rate limit**: the same migration of 500 endpoints against ``--rate-limit 50``: the time from the first
   request to the last answer (the emulator's log) against the ideal ``requests / limit`` (and the whole
   process against it, start-up included, for information), the share answered 429, failed endpoints;
7. **requests**: ``bridge migrate`` of 1,000 endpoints that all need a write, on v1 and on v2, with the requests
   counted by kind in the emulator's log (GraphQL, list, read of one endpoint, write) and per changed endpoint;
6. **HTTP path**: CPU per request of bridge's ``Http`` against a bare aiohttp loop and a plain httpx loop doing
   the same GETs in the same process (``http_path.py``), 20 ms latency, ``--concurrency 16``.

After every live run the emulator's REST state is compared with every planned body. Exit code: 0 when
every check passed and (full run) every target was met, 1 when a correctness check failed, 3 when a
target was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: plans carry this time, so outputs compare byte for byte
KEY = "bench-key"
HEAVY = ("gql", "httpx", "pydantic", "aiohttp")


def bridge_cmd() -> list[str]:
    """The installed ``bridge`` command beside this Python, else ``python -m bridge``."""
    script = Path(sys.executable).parent / "bridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]


def migrate_cmd(state_dir: Path, concurrency: int, target: str | None = None) -> list[str]:
    """``bridge migrate`` as every live scenario runs it: no questions, no progress line, the JSON result."""
    cmd = [*bridge_cmd(), "migrate", "--yes", "--quiet", "--format", "json", "--state-dir", str(state_dir)]
    cmd += ["--concurrency", str(concurrency)]
    return cmd + (["--target", target] if target else [])


@dataclass
class Config:
    """Sizes and repetitions of one benchmark run."""

    runs: int = 3
    startup_runs: int = 15
    plan_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    live_endpoints: int = 1_000
    latency_ms: float = 20.0
    concurrency: int = 16
    limited_endpoints: int = 500
    rate_limit: int = 50
    http_requests: int = 2_000
    quick: bool = False

    @classmethod
    def quick_config(cls) -> Config:
        """Every scenario once on small accounts: proves the script works, not the targets."""
        return cls(
            runs=1,
            startup_runs=3,
            plan_sizes=(100, 1_000),
            live_endpoints=120,
            latency_ms=2.0,
            limited_endpoints=60,
            rate_limit=200,
            http_requests=200,
            quick=True,
        )


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    target: str
    values: list[float]
    unit: str
    baseline: list[float] = field(default_factory=list)
    ratio: float | None = None
    ratio_label: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        """The Markdown cells: scenario, target, median, min, max, baseline, ratio, met."""
        median = statistics.median(self.values)
        base = f"{_fmt(statistics.median(self.baseline), self.unit)}" if self.baseline else ""
        ratio = f"{self.ratio:.2f}{self.ratio_label}" if self.ratio is not None else ""
        met = "" if self.met is None else ("yes" if self.met else "**no**")
        return [
            self.scenario,
            self.target,
            _fmt(median, self.unit),
            _fmt(min(self.values), self.unit),
            _fmt(max(self.values), self.unit),
            base,
            ratio,
            met,
        ]


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "us":
        return f"{value:.1f} µs"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "req/ep":
        return f"{value:.3f}"
    if unit == "req/s":
        return f"{value:.1f} req/s"
    return f"{value:g}"


class Failure(Exception):
    """A correctness check failed: the numbers of that run mean nothing."""


# -- processes ------------------------------------------------------------------------------------


# A small launcher measures each command: the peak memory the kernel reports for a child includes the memory
# of the process that spawned it, and this harness grows large (it generates the accounts), a bare Python does not.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
cpu = usage.ru_utime + usage.ru_stime
sys.stderr.write(f"\\n@measured {wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu}\\n")
"""


def timed(cmd: Sequence[str], *, env: dict[str, str] | None = None, stdout: Path | None = None) -> tuple[float, float]:
    """Run ``cmd`` to the end; return its wall time (s) and peak memory (MB). A non-zero exit is a Failure."""
    wall, peak, _ = timed_cpu(cmd, env=env, stdout=stdout)
    return wall, peak


def timed_cpu(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, stdout: Path | None = None
) -> tuple[float, float, float]:
    """:func:`timed`, plus the CPU time (user + system, s) the process used: on a shared machine the wall time
    also counts the time other processes held the cores, the CPU time does not."""
    out = stdout.open("wb") if stdout else subprocess.DEVNULL
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, *cmd],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        if stdout:
            out.close()  # type: ignore[union-attr]
    err = done.stderr.decode(errors="replace")
    match = re.search(r"@measured (\S+) (\d+) (-?\d+) (\S+)\s*\Z", err)
    if match is None or match.group(3) != "0":
        raise Failure(f"{' '.join(cmd[:3])}…: exit {match.group(3) if match else done.returncode}: {err[-500:]}")
    return float(match.group(1)), int(match.group(2)) / 1024, float(match.group(4))


@dataclass
class Emulator:
    """A ``bridge emulator`` subprocess and the environment that points bridge at it."""

    proc: subprocess.Popen[str]
    env: dict[str, str]

    @property
    def base(self) -> str:
        return self.env["RUNPOD_REST_URL"].removesuffix("/v1")

    def requests(self) -> list[dict[str, Any]]:
        """The emulator's request log."""
        answer = httpx.get(f"{self.base}/_emulator/requests", timeout=60).json()
        return list(answer["requests"])


@contextlib.contextmanager
def emulator(account: Path, latency_ms: float, rate_limit: int | None = None) -> Iterator[Emulator]:
    """Start a fresh emulator in its own process (its own GIL) and stop it at the end."""
    cmd = [*bridge_cmd(), "emulator", "--from", str(account), "--port", "0", "--latency-ms", str(latency_ms)]
    if rate_limit:
        cmd += ["--rate-limit", str(rate_limit)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        for line in proc.stdout:
            match = re.match(r"export (\w+)=(\S+)", line.strip())
            if match:
                env[match.group(1)] = match.group(2).strip("'")
            if "RUNPOD_API_KEY" in line:
                break
        else:
            raise Failure("the emulator did not start")
        env["RUNPOD_API_KEY"] = KEY
        yield Emulator(proc, env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- accounts and checks --------------------------------------------------------------------------


def write_account(path: Path, n: int, seed: int, *, every_one_changes: bool = False) -> Path:
    """Write a seeded account of ``n`` endpoints as a snapshot file.

    ``every_one_changes`` gives every endpoint the legacy ``-fb`` name suffix, so that each one needs a
    write: a migration that writes nothing measures nothing.
    """
    from bridge.emulator.generate import generate_account

    doc = generate_account(n, seed=seed, fb_suffix=every_one_changes)
    path.write_text(json.dumps(doc))
    return path


_LIBRARY_PLAN = """
import sys
from bridge.pipeline import make_plan, read_account_for_plan

sys.stdout.write(make_plan(read_account_for_plan(from_file=sys.argv[1])).to_json())
"""


def same_as_library(account: Path, output: Path) -> bool:
    """Tell whether ``output`` is, byte for byte, the plan the library makes of ``account`` with
    ``Plan.to_json()`` (the whole document at once, where the command streams it endpoint by endpoint)."""
    reference = output.with_suffix(".library.json")
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    with reference.open("wb") as fh:
        subprocess.run([sys.executable, "-c", _LIBRARY_PLAN, str(account)], env=env, stdout=fh, check=True)
    same = filecmp.cmp(reference, output, shallow=False)
    reference.unlink()
    return same


def planned_bodies(account: Path, out: Path) -> dict[str, dict[str, Any]]:
    """Export the offline plan of ``account`` into ``out``; return every body to send, by endpoint id."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    timed([*bridge_cmd(), "export", "--from", str(account), "--out", str(out)], env=env)
    plan = json.loads((out / "plan.json").read_text())
    bodies = {ep["id"]: ep["body"] for ep in plan["endpoints"] if ep["status"] == "update"}
    if len(bodies) != len(plan["endpoints"]):
        raise Failure(f"{account}: {len(plan['endpoints']) - len(bodies)} endpoints not to update")
    return bodies


def _same(want: Any, have: Any) -> bool:
    if isinstance(want, list) and isinstance(have, list):
        return sorted(map(json.dumps, want)) == sorted(map(json.dumps, have))
    return bool(want == have)


def _v1_state(view: dict[str, Any]) -> dict[str, Any]:
    """A v1 read in body terms: CPU endpoints read back as ``instanceIds`` (``FLAVOR-VCPU-MEMORY``)."""
    state = dict(view)
    instances = view.get("instanceIds") or []
    if instances:
        parts = [instance.split("-") for instance in instances]
        state.setdefault("cpuFlavorIds", list(dict.fromkeys(p[0] for p in parts)))
        state.setdefault("vcpuCount", max(int(p[1]) for p in parts))
    return state


def check_state(emu: Emulator, bodies: dict[str, dict[str, Any]]) -> None:
    """Every endpoint's REST v1 state now holds its planned body (lists compared as sets)."""
    answer = httpx.get(f"{emu.env['RUNPOD_REST_URL']}/endpoints", headers={"Authorization": f"Bearer {KEY}"})
    doc = answer.raise_for_status().json()
    views = {item["id"]: _v1_state(item) for item in (doc["endpoints"] if isinstance(doc, dict) else doc)}
    wrong = [
        endpoint_id
        for endpoint_id, body in bodies.items()
        if not all(_same(value, views.get(endpoint_id, {}).get(key)) for key, value in body.items())
    ]
    if wrong:
        raise Failure(f"{len(wrong)} of {len(bodies)} endpoints do not hold their planned body: {wrong[:3]}")


def check_nothing_left(emu: Emulator, target: str, out: Path) -> None:
    """A fresh live plan for ``target`` finds nothing left to update (each endpoint holds its body)."""
    timed([*bridge_cmd(), "plan", "--target", target, "--format", "json"], env=emu.env, stdout=out)
    left = json.loads(out.read_text())["summary"]["update"]
    if left:
        raise Failure(f"after migrate --target {target}, a new plan still has {left} endpoints to update")


def check_migrate(result_file: Path, n: int) -> None:
    """``bridge migrate --format json`` updated every endpoint and failed none."""
    summary = json.loads(result_file.read_text())["summary"]
    if summary.get("updated") != n or summary.get("failed"):
        raise Failure(f"migrate: {summary}, expected {n} updated")


# -- scenarios ------------------------------------------------------------------------------------


def offline_plan(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """Whole-process ``bridge plan --from --format json``: time, memory, and time per endpoint."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    out = work / "plan-out.json"
    empty = write_account(work / "account-0.json", 0, seed=1)
    fixed = [
        timed_cpu([*bridge_cmd(), "plan", "--from", str(empty), "--format", "json"], env=env) for _ in range(cfg.runs)
    ]
    start_up = statistics.median(f[0] for f in fixed)
    start_up_cpu = statistics.median(f[2] for f in fixed)
    rows: list[Row] = []
    per_endpoint: dict[int, float] = {}
    cpu_per_endpoint: dict[int, float] = {}
    for n in cfg.plan_sizes:
        account = write_account(work / f"account-{n}.json", n, seed=1)
        walls, peaks, cpus = [], [], []
        for run in range(cfg.runs):
            cmd = [*bridge_cmd(), "plan", "--from", str(account), "--format", "json"]
            wall, peak, cpu = timed_cpu(cmd, env=env, stdout=out)
            walls.append(wall)
            peaks.append(peak)
            cpus.append(cpu)
            say(f"plan {n:,}: {wall:.2f} s, {cpu:.2f} s CPU, {peak:.0f} MB")
            if run == 0 and not same_as_library(account, out):
                raise Failure(f"plan of {n} endpoints: the output differs from Plan.to_json()")
        label = f"offline plan, {n:,} endpoints"
        if n == 10_000:
            rows.append(Row(label + ": time", "≤ 1.5 s", walls, "s", met=statistics.median(walls) <= 1.5))
            rows.append(Row(label + ": peak memory", "≤ 250 MB", peaks, "MB", met=statistics.median(peaks) <= 250))
        elif n == 100_000:
            rows.append(Row(label + ": time", "≤ 12 s", walls, "s", met=statistics.median(walls) <= 12))
            rows.append(Row(label + ": peak memory", "", peaks, "MB"))
        else:
            rows.append(Row(label + ": time", "", walls, "s"))
        rows.append(Row("… CPU time (user + system; what a shared machine does not inflate)", "", cpus, "s"))
        cpu_per_endpoint[n] = statistics.median((c - start_up_cpu) / n * 1e6 for c in cpus)
        net = [(w - start_up) / n * 1e6 for w in walls]
        per_endpoint[n] = statistics.median(net)
        rows.append(Row(f"… time per endpoint, net of start-up ({start_up:.2f} s)", "flat", net, "us"))
        account.unlink()
    spread = max(per_endpoint.values()) / min(per_endpoint.values())
    sizes = " / ".join(f"{n:,}" for n in per_endpoint)
    cpu_spread = max(cpu_per_endpoint.values()) / min(cpu_per_endpoint.values())
    per_cpu = ", ".join(f"{v:.0f}" for v in cpu_per_endpoint.values())
    rows.append(
        Row(
            f"time per endpoint, largest / smallest of {sizes}",
            "flat (≤ 1.5)",
            [spread],
            "x",
            ratio=spread,
            ratio_label="x",
            met=spread <= 1.5,
        )
    )
    rows.append(
        Row(
            f"… the same in CPU time (net of {start_up_cpu:.2f} s: {per_cpu} µs)",
            "",
            [cpu_spread],
            "x",
            ratio=cpu_spread,
            ratio_label="x",
        )
    )
    out.unlink(missing_ok=True)
    return rows


def startup(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """``bridge --help`` against ``python -c "import click"``; and no heavy import on the way."""
    bridge = [timed([*bridge_cmd(), "--help"])[0] for _ in range(cfg.startup_runs)]
    click = [timed([sys.executable, "-c", "import click"])[0] for _ in range(cfg.startup_runs)]
    trace = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; sys.argv = ['bridge', '--help']; from bridge.cli import main; main()",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in trace.stderr.splitlines() if "|" in line}
    heavy = sorted(imported & set(HEAVY))
    if trace.returncode != 0 or heavy:
        raise Failure(f"bridge --help imports {', '.join(heavy)} (exit {trace.returncode})")
    ratio = statistics.median(bridge) / statistics.median(click)
    say(f"start-up: bridge --help {statistics.median(bridge):.3f} s, import click {statistics.median(click):.3f} s")
    return [
        Row(
            "start-up: `bridge --help` (imports no gql, httpx, pydantic)",
            "≤ 2x `import click`",
            bridge,
            "s",
            baseline=click,
            ratio=ratio,
            ratio_label="x",
            met=ratio <= 2,
        )
    ]


def live(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """``bridge migrate`` against the concurrency bound, and the sequential httpx loop on the same endpoints."""
    n = cfg.live_endpoints
    account = write_account(work / f"live-{n}.json", n, seed=2, every_one_changes=True)
    bodies = planned_bodies(account, work / "live-export")
    walls, spans, bounds, counts, baseline = [], [], [], [], []
    for run in range(cfg.runs):
        with emulator(account, cfg.latency_ms) as emu:
            state = work / f"state-live-{run}"
            result = work / "migrate.json"
            wall, _ = timed(migrate_cmd(state, cfg.concurrency), env=emu.env, stdout=result)
            check_migrate(result, n)
            log = emu.requests()  # before the check's own read
            check_state(emu, bodies)
        requests = len(log)
        bound = requests * cfg.latency_ms / 1000 / cfg.concurrency
        # The bound counts request time: from the first request to the last answer (arrival times in the log,
        # the answer one latency later), not the process start-up before the first request.
        span = max(e["time"] for e in log) - min(e["time"] for e in log) + cfg.latency_ms / 1000
        walls.append(wall)
        spans.append(span)
        bounds.append(bound)
        counts.append(requests)
        say(f"migrate {n}: whole process {wall:.2f} s, requests {span:.2f} s, {requests} requests, bound {bound:.2f} s")
        with emulator(account, cfg.latency_ms) as emu:
            script = [sys.executable, str(HERE / "baseline_migrate.py"), str(work / "live-export")]
            base_wall, _ = timed(script, env=emu.env)
            base_requests = len(emu.requests())
            check_state(emu, bodies)
        baseline.append(base_wall)
        say(f"baseline {n}: {base_wall:.2f} s, {base_requests} requests")
    wall, bound = statistics.median(walls), statistics.median(bounds)
    speedup = statistics.median(baseline) / wall
    label = f"live migrate, {n:,} endpoints, {cfg.latency_ms:g} ms, --concurrency {cfg.concurrency}"
    span = statistics.median(spans)
    return [
        Row(
            f"{label} ({statistics.median(counts):.0f} requests; bound {bound:.2f} s): first request to last answer",
            "≤ 1.5x bound",
            spans,
            "s",
            ratio=span / bound,
            ratio_label="x bound",
            met=span / bound <= 1.5,
        ),
        Row(
            "… the whole process (start-up, planning, backup and report included)",
            "",
            walls,
            "s",
            ratio=wall / bound,
            ratio_label="x bound",
        ),
        Row(
            f"… against the sequential httpx loop ({base_requests} requests)",
            "≥ 10x faster",
            walls,
            "s",
            baseline=baseline,
            ratio=speedup,
            ratio_label="x faster",
            met=speedup >= 10,
        ),
    ]


def rate_limited(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """``bridge migrate`` under the emulator's rate limit, v1 (429 alone) and v2 (``RateLimit`` headers): the time
    against the ideal ``requests / limit``, the 429 share, failed endpoints."""
    n = cfg.limited_endpoints
    account = write_account(work / f"limited-{n}.json", n, seed=3, every_one_changes=True)
    bodies = planned_bodies(account, work / "limited-export")
    rows: list[Row] = []
    for target in ("v1", "v2"):
        ratios, walls, shares, failed = [], [], [], []
        for run in range(cfg.runs):
            with emulator(account, cfg.latency_ms, cfg.rate_limit) as emu:
                result = work / "migrate.json"
                cmd = migrate_cmd(work / f"state-limited-{target}-{run}", cfg.concurrency, target)
                wall, _ = timed(cmd, env=emu.env, stdout=result)
                check_migrate(result, n)
                log = emu.requests()
                if target == "v1":
                    check_state(emu, bodies)
                check_nothing_left(emu, target, work / "replan.json")
            limited = sum(1 for entry in log if entry["status"] == 429)
            summary = json.loads(result.read_text())["summary"]
            ideal = (len(log) - limited) / cfg.rate_limit  # the requests it needed, at the limit
            # The rate limit governs the requests: from the first to the answer of the last (the log's times are
            # arrivals, the answer comes one latency later), not the process start-up before the first.
            span = max(e["time"] for e in log) - min(e["time"] for e in log) + cfg.latency_ms / 1000
            ratios.append(span / ideal)
            walls.append(wall / ideal)
            shares.append(100 * limited / len(log))
            failed.append(float(summary["failed"] + summary["not-attempted"]))
            say(
                f"rate-limited {target} {n}: first to last request {span:.2f} s, whole process {wall:.2f} s "
                f"(ideal {ideal:.2f} s), {len(log)} requests, {limited} × 429"
            )
        ratio = statistics.median(ratios)
        label = f"rate limit {cfg.rate_limit}/s: migrate {n:,} endpoints, {target}"
        rows += [
            Row(
                f"{label}: time from the first request to the last answer, against the ideal `requests / limit`",
                "≤ 1.15x",
                ratios,
                "x",
                ratio=ratio,
                ratio_label="x ideal",
                met=ratio <= 1.15,
            ),
            Row(f"{label}: … the whole process (start-up included) against the same ideal", "", walls, "x"),
            Row(f"{label}: requests answered 429", "< 2%", shares, "%", met=max(shares) < 2),
            Row(f"{label}: failed endpoints", "0", failed, "", met=max(failed) == 0),
        ]
    return rows


def by_kind(log: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The emulator's request log by kind (:func:`bridge.emulator.requests_by_kind`)."""
    from bridge.emulator import requests_by_kind

    return requests_by_kind(log)


def requests_per_write(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """``bridge migrate`` of endpoints that all need a write, v1 and v2: requests by kind, per changed endpoint."""
    n = cfg.live_endpoints
    account = write_account(work / f"requests-{n}.json", n, seed=4, every_one_changes=True)
    bodies = planned_bodies(account, work / "requests-export")
    rows: list[Row] = []
    for target in ("v1", "v2"):
        per, kinds = [], {}
        for run in range(cfg.runs):
            with emulator(account, 0) as emu:
                result = work / "migrate.json"
                cmd = migrate_cmd(work / f"state-requests-{target}-{run}", cfg.concurrency, target)
                timed(cmd, env=emu.env, stdout=result)
                check_migrate(result, n)
                kinds = by_kind(emu.requests())
                if target == "v1":
                    check_state(emu, bodies)
                check_nothing_left(emu, target, work / "replan.json")
            total = sum(kinds.values())
            per.append(total / n)
            say(f"requests {target} {n}: {total} ({kinds})")
        counts = ", ".join(f"{kind} {count}" for kind, count in kinds.items() if count or kind != "other")
        rows.append(
            Row(
                f"requests per changed endpoint, migrate {n:,} endpoints, {target} ({counts})",
                "≤ 1.10",
                per,
                "req/ep",
                met=statistics.median(per) <= 1.10,
            )
        )
    return rows


def http_path(cfg: Config, work: Path, say: Callable[[str], None]) -> list[Row]:
    """CPU per request of bridge's ``Http`` against bare aiohttp and plain httpx, measured in one process."""
    sys.path.insert(0, str(HERE))
    import http_path as paths

    with paths.emulator(cfg.latency_ms) as rest_url:
        results = paths.measure(
            rest_url,
            paths.KEY,
            requests=cfg.http_requests,
            concurrency=cfg.concurrency,
            latency_ms=cfg.latency_ms,
            rounds=cfg.runs,
            say=say,
        )
    by_name = {r.name: r for r in results}
    floor = by_name["aiohttp"]
    label = f"CPU per request, {cfg.http_requests:,} GETs, {cfg.latency_ms:g} ms, concurrency {cfg.concurrency}"
    rows = [Row(f"{label}: bare aiohttp", "", floor.rounds_ms, "ms")]
    for result in results:
        if result is floor:
            continue
        ratio = result.cpu_ms_per_request / floor.cpu_ms_per_request
        target = result.name == "bridge Http"
        rows.append(
            Row(
                f"… {result.name}",
                "≤ 2x bare aiohttp" if target else "",
                result.rounds_ms,
                "ms",
                baseline=floor.rounds_ms,
                ratio=ratio,
                ratio_label="x aiohttp",
                met=ratio <= 2 if target else None,
            )
        )
    ours = by_name["bridge Http"]
    rows.append(
        Row(
            f"… bridge Http wall against the concurrency bound ({ours.bound_s:.2f} s)",
            "≤ 1.5x bound",
            [ours.wall_s],
            "s",
            ratio=ours.wall_over_bound,
            ratio_label="x bound",
            met=ours.wall_over_bound <= 1.5,
        )
    )
    return rows


# -- the run --------------------------------------------------------------------------------------


def machine() -> str:
    """One line about the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table."""
    head = ["scenario", "target", "median", "min", "max", "baseline (median)", "ratio", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every scenario once on small accounts (smoke run)")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3, 1 with --quick)")
    parser.add_argument("--only", action="append", choices=["plan", "startup", "live", "ratelimit", "requests", "http"])
    parser.add_argument("--work", type=Path, help="keep the accounts and outputs in this directory")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    cfg = Config.quick_config() if args.quick else Config()
    if args.runs:
        cfg.runs = args.runs

    def say(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    scenarios = {
        "plan": offline_plan,
        "startup": startup,
        "live": live,
        "ratelimit": rate_limited,
        "requests": requests_per_write,
        "http": http_path,
    }
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bridge-bench-")))
        work.mkdir(parents=True, exist_ok=True)
        for name, scenario in scenarios.items():
            if args.only and name not in args.only:
                continue
            print(f"{name}…", file=sys.stderr, flush=True)
            try:
                rows.extend(scenario(cfg, work, say))
            except Failure as exc:
                print(f"CORRECTNESS CHECK FAILED in {name}: {exc}", file=sys.stderr)
                return 1
    if cfg.quick:  # the sizes are too small for the targets to mean anything
        for row in rows:
            row.met = None
    print(f"Machine: {machine()}{'; --quick (sizes too small for the targets)' if cfg.quick else ''}\n")
    print(table(rows))
    print("\nAll correctness checks passed: every plan equals Plan.to_json(), every endpoint holds its body.")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "config": asdict(cfg), "rows": [asdict(r) for r in rows]})
        )
    missed = [row.scenario for row in rows if row.met is False]
    if missed and not cfg.quick:
        print(f"\nTargets missed: {'; '.join(missed)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
