"""Render a scan: text, JSON, Markdown (here) and SARIF 2.1.0 (:mod:`bridge.scan.sarif`)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from bridge.scan.core import RULES, Replacement, ScanFinding, ScanResult

__all__ = ["FORMATS", "render_scan"]

FORMATS = ("text", "json", "markdown", "sarif")


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _legacy(finding: ScanFinding) -> str:
    return " ".join(f"{k}={_compact(v)}" for k, v in finding.legacy.items()) or "(nothing statically known)"


def _summary(result: ScanResult) -> str:
    n = len(result.findings)
    text = f"{n} legacy configuration{'' if n == 1 else 's'} found in {result.files_scanned} files scanned"
    extra = [f"{result.files_skipped} skipped (not code, binary or too large)"]
    if result.unreadable:
        extra.append(f"{len(result.unreadable)} unreadable")
    return f"{text} ({', '.join(extra)})"


def _request(label: str, rep: Replacement) -> list[str]:
    lines = [f"  {label}: {rep.method} {rep.path}  [{rep.status}]"]
    if rep.status != "blocked":
        lines.append(f"    {_compact(rep.body)}")
    if rep.equivalence is not None:
        lines.append(f"    equivalence: {rep.equivalence.describe()}")
    lines += [f"    {f.severity} {f.code} ({f.field}): {f.message}" for f in rep.findings]
    return lines


def _text(result: ScanResult, out: TextIO) -> None:
    for f in result.findings:
        out.write(f"{f.path}:{f.line}:{f.column}: {f.rule}: {RULES[f.kind][1]} ({f.context})\n")
        out.write(f"  legacy: {_legacy(f)}\n")
        for name, source in f.not_static.items():
            out.write(f"  not statically known: {name} = {source}\n")
        out.write("\n".join([*_request("REST v2", f.v2), *_request("REST v1", f.v1)]) + "\n\n")
    for u in result.unreadable:
        out.write(f"unreadable: {u.path}: {u.reason}\n")
    out.write(_summary(result) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(result: ScanResult, out: TextIO) -> None:
    out.write("# bridge scan\n\n" + _summary(result) + "\n")
    if result.findings:
        out.write("\n| Location | Rule | Legacy values | REST v2 | v1 |\n|---|---|---|---|---|\n")
        for f in result.findings:
            cells = [
                f"`{f.path}:{f.line}:{f.column}`",
                f.rule,
                _cell(_legacy(f)),
                f"{f.v2.method} `{f.v2.path}` ({f.v2.status})",
                f.v1.status,
            ]
            out.write("| " + " | ".join(cells) + " |\n")
    for f in result.findings:
        out.write(f"\n## `{f.path}:{f.line}:{f.column}`\n\n{RULES[f.kind][1]} ({f.context}).\n\n")
        for name, source in f.not_static.items():
            out.write(f"- not statically known: `{name}` = `{_cell(source)}`\n")
        for label, rep in (("REST v2", f.v2), ("REST v1", f.v1)):
            out.write(f"\n{label}: `{rep.method} {rep.path}` ({rep.status})\n\n")
            if rep.equivalence is not None:
                out.write(f"- equivalence: {_cell(rep.equivalence.describe())}\n")
            for item in rep.findings:
                out.write(f"- {item.severity} `{item.code}` ({item.field}): {_cell(item.message)}\n")
            if rep.status != "blocked":
                out.write("\n```json\n" + json.dumps(rep.body, indent=2, ensure_ascii=False) + "\n```\n")
    if result.unreadable:
        out.write("\n## Unreadable files\n\n")
        for u in result.unreadable:
            out.write(f"- `{u.path}`: {_cell(u.reason)}\n")


def render_scan(result: ScanResult, out: TextIO, fmt: str = "text") -> None:
    """Write ``result`` to ``out`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        out.write(result.model_dump_json(indent=2) + "\n")
    elif fmt == "markdown":
        _markdown(result, out)
    elif fmt == "sarif":
        from bridge.scan.sarif import sarif

        out.write(json.dumps(sarif(result), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "text":
        _text(result, out)
    else:
        raise ValueError(f"unknown scan format {fmt!r}; choose one of {', '.join(FORMATS)}")
