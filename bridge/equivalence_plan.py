"""Run the equivalence check for one planned endpoint: its plan-JSON result and any ``not-equivalent`` finding.

:func:`check_endpoint` is what :func:`bridge.plan.build_plan` calls for every endpoint no other error blocks.
A difference is allowed in two cases only: a finding of the translation already reports it
(:data:`bridge.equivalence.EXPLAINED_BY`), or a custom rule made it on purpose (the body the built-in rules
drafted keeps that aspect, the body after the rules does not): the result names the rule. Any other
difference is an error finding ``not-equivalent`` on the aspect's legacy field, which blocks the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.equivalence import Aspect, Equivalence, compare, explanations
from bridge.equivalence_eval import legacy_selection
from bridge.equivalence_rest import rest_selection
from bridge.models import EquivalenceResult, Finding, LegacyEndpoint, Target
from bridge.tables import Tables

__all__ = ["LEGACY_FIELD", "check_endpoint", "result"]

LEGACY_FIELD: Mapping[Aspect, str] = {
    "gpu": "gpuIds",
    "locations": "locations",
    "flashboot": "flashBootType",
    "cpu": "instanceIds",
    "scaling": "scalerType",
    "workers": "workersMax",
    "other": "other",
}
"""The legacy field a ``not-equivalent`` finding on an aspect names."""


_RESULTS: dict[tuple[Equivalence, tuple[tuple[Aspect, str], ...], tuple[str, ...]], EquivalenceResult] = {}
_RESULTS_MAX = 4096


def result(
    eq: Equivalence, explained: Mapping[Aspect, str] | None = None, rules: Sequence[str] = ()
) -> EquivalenceResult:
    """The plan-JSON form of ``eq`` (SPEC §6). Results are frozen and few distinct ones repeat: they are shared."""
    key = (eq, tuple((explained or {}).items()), tuple(rules))
    cached = _RESULTS.get(key)
    if cached is None:
        if len(_RESULTS) >= _RESULTS_MAX:
            _RESULTS.clear()
        cached = _RESULTS[key] = _result(eq, explained, rules)
    return cached


def _result(eq: Equivalence, explained: Mapping[Aspect, str] | None, rules: Sequence[str]) -> EquivalenceResult:
    return EquivalenceResult(
        gpu=eq.gpu,
        locations=eq.locations,
        flashboot=eq.flashboot,
        cpu=eq.cpu,
        scaling=eq.scaling,
        workers=eq.workers,
        other=eq.other,
        frozen=list(eq.frozen),
        unpinned=list(eq.unpinned),
        details=dict(eq.details),
        explained=dict(explained or {}),
        rules=list(rules),
    )


def _finding(eq: Equivalence, aspect: Aspect) -> Finding:
    detail = eq.detail(aspect)
    what = f"{aspect}: {eq.verdict(aspect)}" + (f", {detail}" if detail else "")
    return Finding(
        severity="error",
        code="not-equivalent",
        field=LEGACY_FIELD[aspect],
        message=f"the body does not select what the legacy endpoint selects ({what}) and no finding explains "
        "it: a translation gap, nothing is sent for this endpoint",
    )


def check_endpoint(
    ep: LegacyEndpoint,
    tables: Tables,
    target: Target,
    body: Mapping[str, Any],
    findings: Sequence[Finding],
    *,
    draft: Mapping[str, Any] | None = None,
    rules: Sequence[str] = (),
) -> tuple[EquivalenceResult, list[Finding]]:
    """Compare ``body`` with ``ep``'s legacy selection; return the result and the ``not-equivalent`` findings.

    ``draft`` is the body before custom rules ran, ``rules`` the names of the rules that changed it: an aspect
    the draft keeps and the final body does not is the rules' doing and is not blocked.
    """
    legacy = legacy_selection(ep, tables)
    eq = compare(legacy, rest_selection(body, target, tables))
    if eq.equivalent:
        return result(eq), []
    explained = explanations(eq, findings)
    open_ = [a for a in eq.differing if a not in explained]
    by_rules: list[Aspect] = []
    if open_ and rules and draft is not None:
        before = compare(legacy, rest_selection(draft, target, tables))
        before_open = set(before.differing) - set(explanations(before, findings))
        by_rules = [a for a in open_ if a not in before_open]
        open_ = [a for a in open_ if a in before_open]
    return result(eq, explained, rules if by_rules else ()), [_finding(eq, a) for a in open_]
