"""What a scan finds, where, and how each finding is translated (through the public planning API)."""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.models import EquivalenceResult, Finding, LegacyEndpoint
from bridge.scan.gql import MUTATION_FIELD, Dyn, Parts, find_mutations

__all__ = [
    "Candidate",
    "FileText",
    "Replacement",
    "ScanFinding",
    "ScanResult",
    "Unreadable",
    "literal_mutations",
    "translate_candidates",
]

Kind = Literal["graphql-mutation", "create-endpoint", "config-keys"]

# Legacy fields a finding may carry; secrets (aiKey, env) are never read from code.
LEGACY_FIELDS = frozenset(LegacyEndpoint.model_fields) - {"aiKey", "env", "id"}

RULES: dict[str, tuple[str, str]] = {
    "graphql-mutation": ("legacy-graphql-mutation", "Legacy GraphQL saveEndpoint mutation"),
    "create-endpoint": ("legacy-create-endpoint", "runpod-python create_endpoint (sends saveEndpoint)"),
    "config-keys": ("legacy-endpoint-config", "Legacy gpuIds/locations/-fb endpoint configuration"),
}


@dataclass
class Candidate:
    """A piece of legacy configuration found in a file, before translation."""

    path: str
    line: int
    column: int
    kind: Kind
    context: str
    values: dict[str, Any]
    unknown: dict[str, str] = field(default_factory=dict)
    endpoint_id: str | None = None
    notes: list[Finding] = field(default_factory=list)


class FileText:
    """A file's text with offset -> (line, column) lookups, both 1-based (columns count characters)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.lines = text.split("\n")

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1

    def offset(self, line: int, column: int) -> int:
        """Offset of 1-based ``line`` and 0-based character ``column``."""
        return self._starts[min(line - 1, len(self._starts) - 1)] + column

    def nth(self, start: int, end: int, index: int, word: str = MUTATION_FIELD) -> int:
        """Offset of the ``index``-th ``word`` in ``text[start:end]``, or ``start`` when it is spelt otherwise."""
        pos = start - 1
        for _ in range(index + 1):
            pos = self.text.find(word, pos + 1, end)
            if pos < 0:
                return start
        return pos


_TOKEN = "__bridge_dyn_{}__"
_TOKEN_RE = re.compile(r"__bridge_dyn_(\d+)__")


def _json_body(parts: Parts) -> tuple[Parts, Any] | None:
    """``{"query": ..., "variables": ...}`` (JSON, maybe with run-time pieces inside its strings)."""
    dyns = [p for p in parts if isinstance(p, Dyn)]
    text = "".join(_TOKEN.format(dyns.index(p)) if isinstance(p, Dyn) else p for p in parts)
    if not text.lstrip().startswith("{"):
        return None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    pieces: list[str | Dyn] = []
    last = 0
    query: str = body["query"]
    for match in _TOKEN_RE.finditer(query):
        pieces.append(query[last : match.start()])
        pieces.append(dyns[int(match.group(1))])
        last = match.end()
    pieces.append(query[last:])
    variables = body.get("variables")
    if isinstance(variables, str) and _TOKEN_RE.search(variables):
        variables = None
    return pieces, variables if isinstance(variables, dict) else None


def literal_mutations(
    ft: FileText,
    start: int,
    end: int,
    parts: Parts,
    context: str,
    variables: Mapping[str, Any] | None = None,
) -> list[Candidate]:
    """Candidates for the mutations in one string literal spanning ``ft.text[start:end]``."""
    if not any(isinstance(p, str) and MUTATION_FIELD in p for p in parts):
        return []
    body = _json_body(parts)
    if body is not None:
        parts, variables = body[0], body[1] if body[1] is not None else variables
        context += " (JSON body)"
    found = []
    for mutation in find_mutations(parts, variables):
        line, column = ft.position(ft.nth(start, end, mutation.index))
        values = {k: v for k, v in mutation.values.items() if k in LEGACY_FIELDS or k == "id"}
        unknown = {k: v for k, v in mutation.unknown.items() if k in LEGACY_FIELDS or k in ("id", "*", "input")}
        endpoint_id = values.pop("id", None)
        if endpoint_id is None and "id" in unknown:
            endpoint_id = unknown["id"]  # shown as the code spells it, e.g. {endpoint_id} or $id
        found.append(
            Candidate(
                path=ft.path,
                line=line,
                column=column,
                kind="graphql-mutation",
                context=context,
                values=values,
                unknown=unknown,
                endpoint_id=endpoint_id if isinstance(endpoint_id, str) and endpoint_id else None,
            )
        )
    return found


class Replacement(BaseModel):
    """The REST request that replaces a finding for one target."""

    model_config = ConfigDict(frozen=True)
    method: Literal["PATCH", "POST"]
    path: str
    status: Literal["update", "unchanged", "blocked"]
    body: dict[str, Any]
    findings: list[Finding]
    equivalence: EquivalenceResult | None = None  # what the plan proved of the body (issue 14)


class ScanFinding(BaseModel):
    """One piece of legacy endpoint configuration in code, with its translation."""

    model_config = ConfigDict(frozen=True)
    path: str
    line: int
    column: int
    kind: Kind
    rule: str
    context: str
    endpoint_id: str | None
    legacy: dict[str, Any]
    not_static: dict[str, str]
    v2: Replacement
    v1: Replacement


class Unreadable(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    reason: str


class ScanResult(BaseModel):
    """Everything ``bridge scan`` reports (the format of ``--format json``)."""

    model_config = ConfigDict(frozen=True)
    format_version: Literal[1] = 1
    files_scanned: int
    files_skipped: int
    findings: list[ScanFinding]
    unreadable: list[Unreadable]


def _endpoint(index: int, cand: Candidate) -> tuple[LegacyEndpoint, list[Finding]]:
    """A LegacyEndpoint from the statically known values; a value of the wrong type becomes a finding."""
    values = dict(cand.values)
    notes = list(cand.notes)
    for name, source in cand.unknown.items():
        what = "the rest of the input" if name in ("*", "input") else name
        notes.append(
            Finding(
                severity="warning",
                code="not-static",
                field=name,
                message=f"{what} is not statically known ({source}): check its run-time value by hand",
            )
        )
    for _ in range(len(values) + 1):
        try:
            return LegacyEndpoint.model_validate({**values, "id": f"scan-{index}"}), notes
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            if not bad & set(values):
                raise
            for name in sorted(bad & set(values)):
                notes.append(
                    Finding(
                        severity="warning",
                        code="bad-value",
                        field=name,
                        message=f"{name} = {values.pop(name)!r} is not a value the legacy API takes: left out",
                    )
                )
    raise AssertionError("unreachable")  # pragma: no cover


def _explain(finding: Finding, cand: Candidate) -> Finding:
    """Say why there is no GPU selection when the code does not spell one out statically."""
    if finding.code != "no-gpu-types" or "gpuIds" in cand.values:
        return finding
    unknown = {"gpuIds", "*", "input"} & set(cand.unknown)
    why = "is not statically known" if unknown else "is not given"
    message = f"gpuIds {why} here: no REST body can be built without the GPU selection"
    return finding.model_copy(update={"message": message})


def _replacement(target: str, cand: Candidate, plan: Any) -> Replacement:
    base = "/v2/serverless" if target == "v2" else "/v1/endpoints"
    endpoint_id = cand.endpoint_id
    return Replacement(
        method="PATCH" if endpoint_id else "POST",
        path=f"{base}/{endpoint_id}" if endpoint_id else base,
        status=plan.status,
        body=plan.body,
        findings=[_explain(f, cand) for f in plan.findings],
        equivalence=plan.equivalence,
    )


def translate_candidates(
    candidates: Sequence[Candidate], tables: Any, *, keep_fb_suffix: bool = False
) -> list[ScanFinding]:
    """Translate every candidate with ``bridge.build_plan`` for REST v2 and v1, as live endpoints are."""
    from bridge import build_plan  # the public API

    endpoints = []
    extra: dict[str, list[Finding]] = {}
    for index, cand in enumerate(candidates):
        endpoint, notes = _endpoint(index, cand)
        endpoints.append(endpoint)
        extra[endpoint.id] = notes
    plans = {
        target: build_plan(endpoints, tables, target=target, keep_fb_suffix=keep_fb_suffix, extra_findings=extra)
        for target in ("v2", "v1")
    }
    results = []
    for index, cand in enumerate(candidates):
        endpoint = endpoints[index]
        legacy = endpoint.model_dump(exclude_none=True, exclude={"id"})
        results.append(
            ScanFinding(
                path=cand.path,
                line=cand.line,
                column=cand.column,
                kind=cand.kind,
                rule=RULES[cand.kind][0],
                context=cand.context,
                endpoint_id=cand.endpoint_id,
                legacy=legacy,
                not_static=dict(cand.unknown),
                v2=_replacement("v2", cand, plans["v2"].endpoints[index]),
                v1=_replacement("v1", cand, plans["v1"].endpoints[index]),
            )
        )
    return results
