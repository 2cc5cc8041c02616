"""Shared test helpers (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.config import Settings
from bridge.models import LegacyEndpoint
from bridge.tables import Tables, build_tables, bundled_tables

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SAMPLE = FIXTURES / "sample-account.json"
SHARED = ROOT.parent / "shared" / "reference"

# Every secret planted in the sample account starts with this marker.
SECRET_MARK = "SECRET-"
# The installed command, for tests that run bridge as a user would: a real process.
BRIDGE = str(Path(sys.executable).parent / "bridge")

if TYPE_CHECKING:
    from bridge.emulator import Emulator


def run_bridge(
    emu: Emulator, cwd: Path, *args: str, key: str, timeout: float = 180, command: Sequence[str] = (BRIDGE,)
) -> subprocess.CompletedProcess[str]:
    """Run the installed bridge command (or ``command``, e.g. a harness around it) against the emulator with
    ``key``, with no terminal on stdin."""
    env = {**os.environ, **emu.env, "RUNPOD_API_KEY": key}
    return subprocess.run(
        [*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def offline_settings(key: str, concurrency: int) -> Settings:
    """Settings for tests whose answers come from ``httpx.MockTransport``: the hosts are never resolved."""
    return Settings(
        api_key=key,
        graphql_url="https://gql.test/graphql",
        rest_url="https://rest.test/v1",
        rest_v2_url="https://api.test/v2",
        concurrency=concurrency,
    )


class VirtualTime:
    """A clock that only moves when someone sleeps, so backoff and pauses cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def sample_doc() -> dict[str, Any]:
    """Return the sample account document."""
    return json.loads(SAMPLE.read_text())  # type: ignore[no-any-return]


def sample_tables() -> Tables:
    """Return the tables the sample account plans with (its own pool table)."""
    pools = {p["id"]: p["gpuTypeIds"] for p in sample_doc()["data"]["serverlessGpuPools"]}
    return build_tables(pools=pools)


def endpoint(**fields: Any) -> LegacyEndpoint:
    """Build a legacy GPU endpoint with sensible defaults, overridden by ``fields``."""
    base: dict[str, Any] = {"id": "ep0000000000001", "name": "worker", "gpuIds": "AMPERE_16"}
    base.update(fields)
    return LegacyEndpoint.model_validate(base)


def tables() -> Tables:
    """Return the bundled tables."""
    return bundled_tables()


def v2_spec() -> dict[str, Any]:
    """Return the stored REST v2 OpenAPI document (shared/ beside the checkout, else the package copy)."""
    for path in (
        SHARED / "runpod-rest-v2-openapi.json",
        ROOT / "bridge/emulator/schemas/runpod-rest-v2-openapi.json",
    ):
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    raise FileNotFoundError("runpod-rest-v2-openapi.json")


def v1_spec() -> dict[str, Any]:
    """Return the stored REST v1 OpenAPI document (shared/ beside the checkout, else the package copy)."""
    for path in (
        SHARED / "runpod-rest-openapi.json",
        ROOT / "bridge/emulator/schemas/runpod-rest-openapi.json",
    ):
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    raise FileNotFoundError("no stored REST v1 OpenAPI spec found")
