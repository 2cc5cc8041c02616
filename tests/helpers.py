"""Shared test helpers (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.models import LegacyEndpoint
from bridge.tables import Tables, build_tables, bundled_tables

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SAMPLE = FIXTURES / "sample-account.json"
SHARED = ROOT.parent / "shared" / "reference"

# Every secret planted in the sample account starts with this marker.
SECRET_MARK = "SECRET-"


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


def v1_spec() -> dict[str, Any]:
    """Return the stored REST v1 OpenAPI document (shared/ beside the checkout, else the package copy)."""
    for path in (
        SHARED / "runpod-rest-openapi.json",
        ROOT / "bridge/emulator/schemas/runpod-rest-openapi.json",
    ):
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    raise FileNotFoundError("no stored REST v1 OpenAPI spec found")
