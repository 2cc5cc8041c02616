"""Pydantic models: the legacy endpoint as GraphQL returns it, findings, and the plan (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

__all__ = [
    "Change",
    "EndpointPlan",
    "Finding",
    "LegacyEndpoint",
    "NetworkVolumeRef",
    "Plan",
    "PlanSummary",
    "PlanTables",
    "Severity",
    "Status",
    "Target",
    "TargetChoice",
    "has_errors",
    "split_commas",
]

Severity = Literal["error", "warning", "info"]
Status = Literal["update", "unchanged", "blocked"]
Target = Literal["v1", "v2"]
TargetChoice = Literal["auto", "v1", "v2"]
"""What ``--target`` takes: a REST version, or ``auto`` (v1 while RunPod serves it, v2 once it answers 410)."""

_TOLERANT = ConfigDict(extra="ignore", frozen=True)


def split_commas(value: str) -> list[str]:
    """The non-empty, stripped tokens of a comma-separated value (``"a, b,,c"`` -> ``["a", "b", "c"]``)."""
    return [token for token in (part.strip() for part in value.split(",")) if token]


def has_errors(findings: Iterable[Finding]) -> bool:
    """Tell whether any finding is an error: such an endpoint is blocked and nothing is sent for it."""
    return any(f.severity == "error" for f in findings)


class NetworkVolumeRef(BaseModel):
    """One entry of the legacy ``networkVolumeIds`` read shape."""

    model_config = _TOLERANT
    networkVolumeId: str
    dataCenterId: str | None = None


class LegacyEndpoint(BaseModel):
    """A serverless endpoint as the legacy GraphQL API returns it. Unknown and missing fields are fine.

    Numbers are strict: GraphQL's ``Int`` never arrives as ``true`` or ``"2"``, and coercing such a value
    would send a setting the legacy record does not hold.
    """

    model_config = _TOLERANT
    id: str = Field(min_length=1)
    name: str | None = None
    gpuIds: str | None = None
    gpuCount: StrictInt | None = None
    instanceIds: list[str] | None = None
    computeType: str | None = None
    locations: str | None = None
    networkVolumeId: str | None = None
    networkVolumeIds: list[NetworkVolumeRef] | None = None
    idleTimeout: StrictInt | None = None
    scalerType: str | None = None
    scalerValue: StrictInt | StrictFloat | None = None
    workersMin: StrictInt | None = None
    workersMax: StrictInt | None = None
    templateId: str | None = None
    executionTimeoutMs: StrictInt | None = None
    allowedCudaVersions: str | list[str] | None = None
    minCudaVersion: str | None = None
    flashBootType: str | None = None
    # Read for reporting only: these have no REST v1 update field.
    type: str | None = None
    workersStandby: int | None = None
    workersPFBTarget: int | None = None
    modelReferences: list[str] | None = None
    compliance: list[str] | None = None
    aiKey: str | None = None
    env: list[dict[str, Any]] | dict[str, Any] | None = None
    hubReleaseId: str | None = None
    requestTTL: int | None = None  # newer saveEndpoint field (runpod-mcp writes it); no REST equivalent
    flashEnvironmentId: str | None = None  # Flash bookkeeping


class Finding(BaseModel):
    """Something translation noticed: an ``error`` blocks the endpoint."""

    model_config = ConfigDict(frozen=True)
    severity: Severity
    code: str
    field: str
    message: str


class Change(BaseModel):
    """One field whose value the update changes."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)
    field: str
    from_: Any = Field(alias="from")
    to: Any


class EndpointPlan(BaseModel):
    """What bridge will do for one endpoint."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str | None
    status: Status
    body: dict[str, Any]
    changes: list[Change]
    fingerprint: str | None
    findings: list[Finding]

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


class PlanTables(BaseModel):
    """Which tables the plan was made with."""

    model_config = ConfigDict(frozen=True)
    gpu_pools: Literal["bundled", "snapshot", "live"]
    overrides: list[str]
    sources: dict[str, str] = {}  # table -> where it came from: "live v2 catalog", "snapshot", "bundled", ...


class PlanSummary(BaseModel):
    """Counts by status."""

    model_config = ConfigDict(frozen=True)
    endpoints: int
    update: int
    unchanged: int
    blocked: int


class Plan(BaseModel):
    """A dry-run plan: the format of ``plan.json`` and ``bridge plan --format json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format_version: Literal[1] = 1
    target: Target
    target_reason: str | None = None  # why this target: "--target v2", "auto: REST v1 answered 410 Gone", ...
    generated_at: str
    tables: PlanTables
    endpoints: list[EndpointPlan]
    summary: PlanSummary

    def to_json(self) -> str:
        """Return the plan as indented JSON text (SPEC §6), ending in a newline."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"
