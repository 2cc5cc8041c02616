"""Pydantic models: the legacy endpoint as GraphQL returns it, findings, and the plan (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    model_serializer,
)

__all__ = [
    "Change",
    "EndpointPlan",
    "EquivalenceResult",
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
    "Verdict",
    "has_errors",
    "split_commas",
]

Severity = Literal["error", "warning", "info"]
Status = Literal["update", "unchanged", "blocked"]
Target = Literal["v1", "v2"]
TargetChoice = Literal["auto", "v1", "v2"]
"""What ``--target`` takes: a REST version, or ``auto`` (v1 while RunPod serves it, v2 once it answers 410)."""
Verdict = Literal["same", "narrower", "wider", "different", "not-applicable"]

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


class EquivalenceResult(BaseModel):
    """What the body selects against what the legacy form selects, per aspect (issue 14, SPEC §6).

    ``frozen``: aspects that follow a table in the legacy form and are a fixed list in the body.
    ``unpinned``: the reverse (a GPU type sent as a v2 pool). ``details``: what differs, per aspect.
    ``explained``: the finding code that explains an aspect's difference. ``rules``: the custom rules
    that changed the selection on purpose. The last four are left out of the JSON when empty.
    """

    model_config = ConfigDict(frozen=True)
    gpu: Verdict
    locations: Verdict
    flashboot: Verdict
    cpu: Verdict
    scaling: Verdict
    workers: Verdict
    other: Verdict
    frozen: list[str] = []
    unpinned: list[str] = []
    details: dict[str, str] = {}
    explained: dict[str, str] = {}
    rules: list[str] = []

    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("unpinned", "details", "explained", "rules"):
            if not data.get(key):
                data.pop(key, None)
        return data

    @property
    def differing(self) -> list[str]:
        """The aspects that are neither ``same`` nor ``not-applicable``."""
        return [a for a in _ASPECTS if getattr(self, a) not in ("same", "not-applicable")]

    @property
    def equivalent(self) -> bool:
        """Whether every aspect is ``same`` or ``not-applicable``."""
        return not self.differing

    def describe(self) -> str:
        """One compact line: ``same; frozen: gpu, locations`` or the differing aspects with what differs."""
        if self.equivalent:
            parts = ["same"]
        else:
            parts = []
            for aspect in self.differing:
                text = f"{aspect}: {getattr(self, aspect)}"
                if aspect in self.details:
                    text += f", {self.details[aspect]}"
                if aspect in self.explained:
                    text += f" (explained by {self.explained[aspect]})"
                parts.append(text)
            if self.rules:
                parts.append(f"changed by rule {', '.join(self.rules)}")
        if self.frozen:
            parts.append(f"frozen: {', '.join(self.frozen)}")
        if self.unpinned:
            parts.append(f"unpinned: {', '.join(self.unpinned)}")
        return "; ".join(parts)


_ASPECTS = ("gpu", "locations", "flashboot", "cpu", "scaling", "workers", "other")


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
    equivalence: EquivalenceResult | None = None  # None: blocked by another error, or a plan from before issue 14

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
    """Counts by status, and by what the equivalence check proved (issue 14).

    ``equivalent``: unblocked and the body selects exactly what the legacy form does; ``equivalent_frozen``:
    the same, with a pool or country frozen into a fixed list; ``explained``: unblocked, a difference a
    finding or a custom rule accounts for; ``not_equivalent``: blocked by the check (``not-equivalent``).
    """

    model_config = ConfigDict(frozen=True)
    endpoints: int
    update: int
    unchanged: int
    blocked: int
    equivalent: int = 0
    equivalent_frozen: int = 0
    explained: int = 0
    not_equivalent: int = 0


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
    # sha256 over the content, set when the plan is written and checked when it is read (bridge.integrity).
    digest: str | None = None

    def to_json(self) -> str:
        """Return the plan as indented JSON text (SPEC §6) with its digest, ending in a newline."""
        from io import StringIO

        from bridge.report import render_json

        out = StringIO()
        render_json(self, out)
        return out.getvalue()
