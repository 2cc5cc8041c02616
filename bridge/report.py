"""Render a plan (text, JSON or Markdown) and a run's result (text or JSON) onto a stream the caller hands in."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from bridge._gc import paused_gc
from bridge.models import EndpointPlan, Finding, Plan
from bridge.redact import escape_control

if TYPE_CHECKING:
    from bridge.apply import ApplyResult

__all__ = [
    "FORMATS",
    "RESULT_FORMATS",
    "blocked_codes",
    "equivalence_summary",
    "next_steps",
    "plural",
    "render",
    "render_changes",
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


def plural(count: int, noun: str) -> str:
    """``1 endpoint``, ``2 endpoints``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _headline(plan: Plan) -> str:
    s = plan.summary
    return f"{plural(s.endpoints, 'endpoint')}: {s.update} to update, {s.unchanged} unchanged, {s.blocked} blocked"


_TABLE_NAMES = {"pools": "GPU pools", "data_centers": "data centers", "cpus": "CPU flavors"}


def _tables_line(plan: Plan) -> str:
    sources = plan.tables.sources or {"pools": plan.tables.gpu_pools}
    parts = [f"{name}: {sources[key]}" for key, name in _TABLE_NAMES.items() if key in sources]
    overrides = ", ".join(plan.tables.overrides) or "none"
    return f"Tables: {'; '.join(parts)}; overrides: {overrides}"


def _target_title(plan: Plan) -> str:
    reason = f" [{plan.target_reason}]" if plan.target_reason else ""
    return f"{_TARGET_NAME[plan.target]}{reason}"


def _escaping(fh: TextIO) -> Callable[[str], object]:
    """``fh.write`` that prints control characters (an escape sequence in a name) as visible escapes."""
    return lambda text: fh.write(escape_control(text, keep_newlines=True))


# What JSON leaves raw with ensure_ascii=False but a terminal may still act on: C1 controls, DEL, bidi overrides.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _json_controls(text: str) -> str:
    """Write those as ``\\uXXXX`` escapes: the same JSON value, harmless on a terminal."""
    if text.isascii() and "\x7f" not in text:  # the common case, checked at C speed
        return text
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def equivalence_summary(plan: Plan) -> str:
    """The equivalence counts (issue 14): ``equivalence: 3 proved equivalent, 5 with frozen lists, ...``."""
    s = plan.summary
    return (
        f"equivalence: {s.equivalent} proved equivalent, {s.equivalent_frozen} equivalent with frozen lists, "
        f"{s.explained} differing as reported, {s.not_equivalent} not equivalent (blocked)"
    )


def _equivalence(ep: EndpointPlan) -> str | None:
    return f"equivalence: {ep.equivalence.describe()}" if ep.equivalence is not None else None


def _label(ep: EndpointPlan) -> str:
    return f"{ep.id}  {json.dumps(ep.name, ensure_ascii=False)}" if ep.name is not None else ep.id


def render_text(plan: Plan, fh: TextIO) -> None:
    """Write a report readable at a glance: summary first, blocked endpoints impossible to miss."""
    w = _escaping(fh)
    w(f"bridge plan for {_target_title(plan)} ({plan.generated_at})\n")
    w(f"{_headline(plan)}\n")
    w(f"{equivalence_summary(plan)}\n")
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
            if (line := _equivalence(ep)) is not None:
                w(f"       {line}\n")
            if status == "update":
                _write_changes(ep, w)
            if status != "unchanged":
                for finding in _findings(ep):
                    if finding.code == "field-not-carried":
                        continue
                    w(f"       {finding.severity}: {finding.code} ({finding.field}): {finding.message}\n")
                kept = [f.field for f in ep.findings if f.code == "field-not-carried"]
                if kept:
                    w(f"       info: not carried, left as they are: {', '.join(kept)}\n")
    if plan.summary.blocked:
        w(f"\n{plural(plan.summary.blocked, 'endpoint')} BLOCKED. Fix the errors above or add --mappings overrides.\n")


def _write_changes(ep: EndpointPlan, w: Callable[[str], object]) -> None:
    width = max((len(c.field) for c in ep.changes), default=0)
    for change in ep.changes:
        w(f"       {change.field.ljust(width)}  {_value(change.from_)} -> {_value(change.to)}\n")


def render_changes(plan: Plan, fh: TextIO, limit: int | None = None) -> None:
    """Write what a run would send, as in the text plan: each endpoint to update, its fields old -> new.

    ``limit``: show that many endpoints, then a count of the rest (shown all with ``--show-all``).
    """
    w = _escaping(fh)  # the consent prompt's diff meets the terminal too: a name's C1 or bidi controls escaped
    updates = [ep for ep in plan.endpoints if ep.status == "update"]
    shown = updates if limit is None else updates[:limit]
    for ep in shown:
        w(f"  -> {_label(ep)}\n")
        _write_changes(ep, w)
    if len(shown) < len(updates):
        rest = len(updates) - len(shown)
        w(f"  ... and {plural(rest, 'more endpoint')} to update (--show-all lists them)\n")


_ENDPOINTS_KEY = '\n  "endpoints": [],\n'


def _dump(plan: Plan) -> str:
    return plan.model_dump_json(indent=2, by_alias=True) + "\n"


def render_json(plan: Plan, fh: TextIO) -> None:
    """Write the plan as JSON (SPEC §6) with its digest, one endpoint at a time.

    Streaming keeps one endpoint's text in memory instead of the whole document (218 MB at 100,000 endpoints);
    the digest (:class:`bridge.integrity.PlanDigest`) is taken over the same text on the way.
    """
    from bridge.integrity import PlanDigest

    digest = PlanDigest(plan)
    empty = plan.model_copy(update={"endpoints": [], "digest": None})
    head, found, _ = _dump(empty).partition(_ENDPOINTS_KEY)
    if not plan.endpoints or not found:
        fh.write(_json_controls(_dump(plan.model_copy(update={"digest": PlanDigest.of(plan)}))))
        return
    w = fh.write
    w(_json_controls(head) + '\n  "endpoints": [\n    ')
    separator = ""
    with paused_gc():
        for ep in plan.endpoints:
            text = ep.model_dump_json(indent=2, by_alias=True)
            digest.add(ep)
            # A JSON text has no raw newline inside strings: indenting every line nests the endpoint one level.
            w(separator + _json_controls(text).replace("\n", "\n    "))
            separator = ",\n    "
    _, _, tail = _dump(empty.model_copy(update={"digest": digest.hexdigest()})).partition(_ENDPOINTS_KEY)
    w("\n  ],\n" + _json_controls(tail))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan, fh: TextIO) -> None:
    """Write the plan as Markdown, for pasting into a pull request."""
    w = _escaping(fh)
    w(f"## bridge plan for {_md(_target_title(plan))}\n\n")
    w(f"**{_headline(plan)}** · {_md(_tables_line(plan))} · generated {plan.generated_at}\n\n")
    w(f"{equivalence_summary(plan)}\n\n")
    w("| status | endpoint | name | changes | findings | equivalence |\n| --- | --- | --- | --- | --- | --- |\n")
    order = {"blocked": 0, "update": 1, "unchanged": 2}
    for ep in sorted(plan.endpoints, key=lambda e: order[e.status]):
        status = "**BLOCKED**" if ep.blocked else ep.status
        changes = "<br>".join(f"`{c.field}`: {_md(_value(c.from_))} → {_md(_value(c.to))}" for c in ep.changes)
        findings = "<br>".join(
            f"{f.severity} `{f.code}`: {_md(f.message)}" for f in _findings(ep) if f.code != "field-not-carried"
        )
        equivalence = _md(ep.equivalence.describe()) if ep.equivalence is not None else ""
        w(f"| {status} | `{ep.id}` | {_md(ep.name or '')} | {changes} | {findings} | {equivalence} |\n")


FORMATS: dict[str, Callable[[Plan, TextIO], None]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}


def render(plan: Plan, fh: TextIO, fmt: str = "text") -> None:
    """Render ``plan`` in format ``fmt`` (text, json or markdown) onto ``fh``; another format is a ValueError."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown plan format {fmt!r}: use one of {', '.join(FORMATS)}")
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
    stopped = 0
    for outcome in result.outcomes:
        if outcome.status == "not-attempted" and result.stopped and result.stopped in outcome.detail:
            stopped += 1  # said once below, not once per endpoint
        elif outcome.status in ("failed", "stale", "not-attempted"):
            label = f"{outcome.id} {json.dumps(outcome.name)}" if outcome.name else outcome.id
            w(f"  {outcome.status}: {label}: {outcome.detail}\n")
    if result.stopped:
        w(f"  the run stopped: {result.stopped} ({plural(stopped, 'endpoint')} not attempted)\n")
    for note in result.notes:
        w(f"  note: {note}\n")
    counts = result.counts()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in ("updated", "failed"))
    w(f"bridge: {parts}\n")
    files = [f"journal {result.journal_path}"] if result.journal_path else []
    files += [f"backup {result.backup_path}"] if result.backup_path else []
    w(f"bridge: {', '.join(files) if files else 'nothing was written, no state files kept'}\n")
    for step in next_steps(result):
        w(f"next: {step}\n")


def next_steps(result: ApplyResult) -> list[str]:
    """What to do after a run: how to undo it, and how to finish it when endpoints are left."""
    import shlex

    counts = result.counts()
    steps: list[str] = []
    left = counts["failed"] + counts["not-attempted"]
    if left:
        done = counts["updated"] + counts["unchanged"]
        steps.append(f"{done} done, {left} left: run the same command again to finish")
    if counts["stale"]:
        steps.append(
            f"{plural(counts['stale'], 'endpoint')} changed since the plan (stale): look at them, then plan again "
            "or run again with --force to write them anyway"
        )
    if result.backup_path is not None:
        what = "rollback" if result.backup_path.name.startswith("rollback-") else "run"
        steps.append(f"to undo this {what}: bridge rollback {shlex.quote(str(result.backup_path))}")
    return steps


def _result_json(result: ApplyResult, fh: TextIO) -> None:
    fh.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")


RESULT_FORMATS: dict[str, Callable[[ApplyResult, TextIO], None]] = {"text": _result_text, "json": _result_json}


def render_result(result: ApplyResult, fh: TextIO, fmt: str = "text") -> None:
    """Render the result of ``apply``, ``migrate`` or ``rollback`` in format ``fmt`` (text or json) onto ``fh``."""
    if fmt not in RESULT_FORMATS:
        raise ValueError(f"unknown result format {fmt!r}: use one of {', '.join(RESULT_FORMATS)}")
    RESULT_FORMATS[fmt](result, fh)
