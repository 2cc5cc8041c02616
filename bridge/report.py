"""Render a plan (text, JSON or Markdown) and a run's result (text or JSON) onto a stream the caller hands in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from bridge._gc import paused_gc
from bridge.models import EndpointPlan, Finding, Plan

if TYPE_CHECKING:
    from bridge.apply import ApplyResult

__all__ = [
    "FORMATS",
    "RESULT_FORMATS",
    "blocked_codes",
    "render",
    "render_json",
    "render_markdown",
    "render_result",
    "render_text",
    "summary_line",
]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_TARGET_NAME = {"v1": "REST v1", "v2": "REST v2"}


def _value(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) if not isinstance(v, str) else v for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _findings(ep: EndpointPlan) -> list[Finding]:
    return sorted(ep.findings, key=lambda f: _SEVERITY_ORDER[f.severity])


def _headline(plan: Plan) -> str:
    s = plan.summary
    return f"{s.endpoints} endpoints: {s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked"


_TABLE_NAMES = {"pools": "GPU pools", "data_centers": "data centers", "cpus": "CPU flavors"}


def _tables_line(plan: Plan) -> str:
    sources = plan.tables.sources or {"pools": plan.tables.gpu_pools}
    parts = [f"{name}: {sources[key]}" for key, name in _TABLE_NAMES.items() if key in sources]
    overrides = ", ".join(plan.tables.overrides) or "none"
    return f"Tables: {'; '.join(parts)}; overrides: {overrides}"


def _target_title(plan: Plan) -> str:
    reason = f" [{plan.target_reason}]" if plan.target_reason else ""
    return f"{_TARGET_NAME[plan.target]}{reason}"


def _label(ep: EndpointPlan) -> str:
    return f"{ep.id}  {json.dumps(ep.name, ensure_ascii=False)}" if ep.name is not None else ep.id


def render_text(plan: Plan, fh: TextIO) -> None:
    """Write a report readable at a glance: summary first, blocked endpoints impossible to miss."""
    w = fh.write
    w(f"bridge plan for {_target_title(plan)} ({plan.generated_at})\n")
    w(f"{_headline(plan)}\n")
    w(f"{_tables_line(plan)}\n")
    groups = [
        ("blocked", "BLOCKED: nothing will be sent for these until the errors are fixed"),
        ("update", "UPDATE"),
        ("unchanged", "UNCHANGED: already as planned, nothing will be sent"),
    ]
    for status, title in groups:
        members = [ep for ep in plan.endpoints if ep.status == status]
        if not members:
            continue
        w(f"\n{title} ({len(members)})\n")
        for ep in members:
            mark = {"blocked": "!!", "update": "->", "unchanged": "=="}[status]
            w(f"  {mark} {_label(ep)}\n")
            if status == "update":
                width = max((len(c.field) for c in ep.changes), default=0)
                for change in ep.changes:
                    w(f"       {change.field.ljust(width)}  {_value(change.from_)} -> {_value(change.to)}\n")
            if status != "unchanged":
                for finding in _findings(ep):
                    if finding.code == "field-not-carried":
                        continue
                    w(f"       {finding.severity}: {finding.code} ({finding.field}): {finding.message}\n")
                kept = [f.field for f in ep.findings if f.code == "field-not-carried"]
                if kept:
                    w(f"       info: not carried, left as they are: {', '.join(kept)}\n")
    if plan.summary.blocked:
        w(f"\n{plan.summary.blocked} endpoint(s) BLOCKED. Fix the errors above or add --mappings overrides.\n")


_ENDPOINTS_KEY = '\n  "endpoints": [],\n'


def render_json(plan: Plan, fh: TextIO) -> None:
    """Write the plan as JSON (SPEC §6), the same text as :meth:`Plan.to_json`, one endpoint at a time.

    Streaming keeps one endpoint's text in memory instead of the whole document (218 MB at 100,000 endpoints).
    """
    head, found, tail = plan.model_copy(update={"endpoints": []}).to_json().partition(_ENDPOINTS_KEY)
    if not plan.endpoints or not found:
        fh.write(plan.to_json())
        return
    w = fh.write
    w(head + '\n  "endpoints": [\n    ')
    separator = ""
    with paused_gc():
        for ep in plan.endpoints:
            # A JSON text has no raw newline inside strings: indenting every line nests the endpoint one level.
            w(separator + ep.model_dump_json(indent=2, by_alias=True).replace("\n", "\n    "))
            separator = ",\n    "
    w("\n  ],\n" + tail)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan, fh: TextIO) -> None:
    """Write the plan as Markdown, for pasting into a pull request."""
    w = fh.write
    w(f"## bridge plan for {_md(_target_title(plan))}\n\n")
    w(f"**{_headline(plan)}** · {_md(_tables_line(plan))} · generated {plan.generated_at}\n\n")
    w("| status | endpoint | name | changes | findings |\n| --- | --- | --- | --- | --- |\n")
    order = {"blocked": 0, "update": 1, "unchanged": 2}
    for ep in sorted(plan.endpoints, key=lambda e: order[e.status]):
        status = "**BLOCKED**" if ep.blocked else ep.status
        changes = "<br>".join(f"`{c.field}`: {_md(_value(c.from_))} → {_md(_value(c.to))}" for c in ep.changes)
        findings = "<br>".join(
            f"{f.severity} `{f.code}`: {_md(f.message)}" for f in _findings(ep) if f.code != "field-not-carried"
        )
        w(f"| {status} | `{ep.id}` | {_md(ep.name or '')} | {changes} | {findings} |\n")


FORMATS: dict[str, Callable[[Plan, TextIO], None]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


def render(plan: Plan, fh: TextIO, fmt: str = "text") -> None:
    """Render ``plan`` in format ``fmt`` (text, json or markdown) onto ``fh``."""
    FORMATS[fmt](plan, fh)


def summary_line(plan: Plan) -> str:
    """One line of counts: ``2 to update, 1 unchanged, 0 blocked (target REST v1)``."""
    s = plan.summary
    why = f", {plan.target_reason}" if plan.target_reason else ""
    return f"{s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked (target REST {plan.target}{why})"


def blocked_codes(plan: Plan) -> list[tuple[str, str]]:
    """``(endpoint id, its error codes)`` for each blocked endpoint, codes sorted and comma-joined."""
    return [
        (ep.id, ", ".join(sorted({f.code for f in ep.findings if f.severity == "error"})))
        for ep in plan.endpoints
        if ep.blocked
    ]


def _result_text(result: ApplyResult, fh: TextIO) -> None:
    w = fh.write
    for outcome in result.outcomes:
        if outcome.status in ("failed", "stale", "not-attempted"):
            label = f"{outcome.id} {json.dumps(outcome.name)}" if outcome.name else outcome.id
            w(f"  {outcome.status}: {label}: {outcome.detail}\n")
    for note in result.notes:
        w(f"  note: {note}\n")
    counts = result.counts()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in ("updated", "failed"))
    w(f"bridge: {parts}" + (f" (stopped: {result.stopped})" if result.stopped else "") + "\n")
    w(
        f"bridge: journal {result.journal_path}"
        + (f", backup {result.backup_path}" if result.backup_path else "")
        + "\n"
    )


def _result_json(result: ApplyResult, fh: TextIO) -> None:
    fh.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")


RESULT_FORMATS: dict[str, Callable[[ApplyResult, TextIO], None]] = {"text": _result_text, "json": _result_json}


def render_result(result: ApplyResult, fh: TextIO, fmt: str = "text") -> None:
    """Render the result of ``apply``, ``migrate`` or ``rollback`` in format ``fmt`` (text or json) onto ``fh``."""
    RESULT_FORMATS[fmt](result, fh)
