"""Build a plan: translate every endpoint, compare with REST state, set statuses and fingerprints (SPEC §6)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from bridge._gc import paused_gc
from bridge.equivalence_plan import check_endpoint
from bridge.models import (
    Change,
    EndpointPlan,
    Finding,
    LegacyEndpoint,
    Plan,
    PlanSummary,
    PlanTables,
    Target,
    has_errors,
    split_commas,
)
from bridge.tables import Tables
from bridge.targets import RestTarget, get_target
from bridge.targets.base import diff, fingerprint
from bridge.translate import Rule, Translation, analyse

__all__ = ["build_plan", "legacy_changes", "plan_endpoint", "timestamp", "translate"]

_CONVERTED = frozenset({"networkVolumeIds", "networkVolumes", "allowedCudaVersions"})


def timestamp(now: datetime | None = None) -> str:
    """Return an ISO 8601 UTC time; ``SOURCE_DATE_EPOCH`` makes it reproducible."""
    if now is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        now = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _legacy_value(ep: LegacyEndpoint, key: str, legacy_fields: Mapping[str, str]) -> Any:
    if key in ("networkVolumeIds", "networkVolumes"):
        return [ref.networkVolumeId for ref in ep.networkVolumeIds or ()]
    if key == "allowedCudaVersions" and isinstance(ep.allowedCudaVersions, str):
        return split_commas(ep.allowedCudaVersions)
    return getattr(ep, legacy_fields.get(key, key), None)


def legacy_changes(ep: LegacyEndpoint, body: Mapping[str, Any], legacy_fields: Mapping[str, str]) -> list[Change]:
    """Changes of ``body`` against the legacy record (used when no REST state is known).

    ``legacy_fields`` names the legacy field each renamed body field came from (the target's own map).
    """
    changes = []
    for key, value in body.items():
        # Most fields pass through unchanged: compare those without building the legacy value.
        if key not in legacy_fields and key not in _CONVERTED and getattr(ep, key, None) == value:
            continue
        before = _legacy_value(ep, key, legacy_fields)
        if before != value:
            changes.append(Change(field=key, from_=before, to=value))
    return changes


def translate(
    ep: LegacyEndpoint, tables: Tables, *, target: Target = "v1", keep_fb_suffix: bool = False
) -> Translation:
    """Translate one legacy endpoint into ``target``'s update body and findings (SPEC §4)."""
    return get_target(target).build(analyse(ep, tables, keep_fb_suffix=keep_fb_suffix), tables)


def _run_rule(rule: Rule, ep: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
    """Run a custom rule; one that raises (or answers something else than a body and findings) is one error."""
    from bridge.errors import BridgeError

    name = getattr(rule, "__qualname__", None) or repr(rule)
    try:
        new_body, extra = rule(ep, dict(body))
        found = list(extra)
        if not isinstance(new_body, dict) or not all(isinstance(f, Finding) for f in found):
            raise TypeError("expected (body dict, findings) back")
    except Exception as exc:
        raise BridgeError(f"custom rule {name} failed on endpoint {ep.id}: {type(exc).__name__}: {exc}") from exc
    return new_body, found


def plan_endpoint(
    ep: LegacyEndpoint,
    tables: Tables,
    target: RestTarget,
    *,
    state: Mapping[str, Any] | None = None,
    keep_fb_suffix: bool = False,
    rules: Sequence[Rule] = (),
) -> EndpointPlan:
    """Plan one endpoint: translate, run custom rules, compare with ``state`` when given."""
    translation = target.build(analyse(ep, tables, keep_fb_suffix=keep_fb_suffix), tables)
    body, findings = translation.body, list(translation.findings)
    draft: dict[str, Any] | None = None
    changed_by: list[str] = []
    if rules:
        draft = copy.deepcopy(body)
        for rule in rules:
            before = copy.deepcopy(body)
            body, extra = _run_rule(rule, ep, dict(body))
            findings.extend(extra)
            if body != before:
                changed_by.append(getattr(rule, "__name__", type(rule).__name__))
        findings.extend(target.check_body(body, tables))
    normalized = target.normalize_state(state) if state is not None else None
    equivalence = None
    if not has_errors(findings):
        # Issue 14: prove the body selects what the legacy form does; an unexplained difference blocks.
        equivalence, gaps = check_endpoint(ep, tables, target.name, body, findings, draft=draft, rules=changed_by)
        findings.extend(gaps)
    if has_errors(findings):
        return EndpointPlan(
            id=ep.id,
            name=ep.name,
            status="blocked",
            body={},
            changes=[],
            fingerprint=fingerprint(normalized, target.set_fields) if normalized is not None else None,
            findings=findings,
            equivalence=equivalence,
        )
    if normalized is None:
        return EndpointPlan(
            id=ep.id,
            name=ep.name,
            status="update",
            body=body,
            changes=legacy_changes(ep, body, target.legacy_fields),
            fingerprint=None,
            findings=findings,
            equivalence=equivalence,
        )
    changes = diff(body, normalized, target.set_fields)
    return EndpointPlan(
        id=ep.id,
        name=ep.name,
        status="update" if changes else "unchanged",
        body=body,
        changes=changes,
        fingerprint=fingerprint(normalized, target.set_fields),
        findings=findings,
        equivalence=equivalence,
    )


def build_plan(
    endpoints: Iterable[LegacyEndpoint],
    tables: Tables,
    *,
    target: Target = "v1",
    rest_state: Mapping[str, Mapping[str, Any]] | None = None,
    keep_fb_suffix: bool = False,
    rules: Sequence[Rule] = (),
    generated_at: str | None = None,
    extra_findings: Mapping[str, Sequence[Finding]] | None = None,
    target_reason: str | None = None,
) -> Plan:
    """Plan every endpoint for ``target``. ``rest_state`` maps endpoint id to its REST read, when known.

    ``rules`` run after the built-in rules, in order; each gets the legacy endpoint and the draft body
    and returns the new body and any findings. Bodies changed by rules are checked against the target's
    update schema again.
    """
    spec = get_target(target)
    plans = []
    with paused_gc():
        for ep in endpoints:
            state = rest_state.get(ep.id) if rest_state is not None else None
            plan = plan_endpoint(ep, tables, spec, state=state, keep_fb_suffix=keep_fb_suffix, rules=rules)
            if extra_findings and ep.id in extra_findings:
                plan = plan.model_copy(update={"findings": [*plan.findings, *extra_findings[ep.id]]})
            plans.append(plan)
    counts = {"update": 0, "unchanged": 0, "blocked": 0}
    proofs = {"equivalent": 0, "equivalent_frozen": 0, "explained": 0, "not_equivalent": 0}
    for plan in plans:
        counts[plan.status] += 1
        if plan.equivalence is not None:
            proofs[_proof(plan)] += 1
    return Plan(
        target=target,
        target_reason=target_reason,
        generated_at=generated_at or timestamp(),
        tables=PlanTables(gpu_pools=tables.pool_source, overrides=list(tables.overrides), sources=dict(tables.sources)),
        endpoints=plans,
        summary=PlanSummary(endpoints=len(plans), **counts, **proofs),
    )


def _proof(plan: EndpointPlan) -> str:
    """Which equivalence count ``plan`` adds to (issue 14); only called for plans with an equivalence."""
    eq = plan.equivalence
    if plan.blocked:
        return "not_equivalent"
    if eq is not None and eq.equivalent:
        return "equivalent_frozen" if eq.frozen else "equivalent"
    return "explained"
