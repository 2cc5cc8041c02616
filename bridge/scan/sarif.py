"""SARIF 2.1.0 for GitHub code scanning: one result per finding, rule ids per finding code."""

from __future__ import annotations

import json
import posixpath
from typing import Any
from urllib.parse import quote

from bridge.scan.core import RULES, ScanFinding, ScanResult

__all__ = ["SARIF_SCHEMA", "sarif"]

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_HELP = {"text": "See the section 'Scanning code' of the bridge README."}
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _location(f: ScanFinding) -> dict[str, Any]:
    path = f.path
    uri = ("file://" + quote(path)) if posixpath.isabs(path) else quote(path)
    artifact: dict[str, Any] = {"uri": uri}
    if not posixpath.isabs(path):
        artifact["uriBaseId"] = "%SRCROOT%"
    return {
        "physicalLocation": {
            "artifactLocation": artifact,
            "region": {"startLine": f.line, "startColumn": f.column},
        }
    }


def _message(f: ScanFinding) -> str:
    legacy = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in f.legacy.items())
    parts = [f"{RULES[f.kind][1]} ({f.context}): {legacy or 'nothing statically known'}."]
    if f.not_static:
        parts.append("Not statically known: " + ", ".join(f"{k} = {v}" for k, v in f.not_static.items()) + ".")
    for label, rep in (("REST v2", f.v2), ("REST v1", f.v1)):
        if rep.status == "blocked":
            parts.append(f"{label}: blocked, see the findings.")
        else:
            body = json.dumps(rep.body, ensure_ascii=False, separators=(",", ":"))
            parts.append(f"Replace with {label} {rep.method} {rep.path} and body {body}.")
    return " ".join(parts)


def sarif(result: ScanResult) -> dict[str, Any]:
    """The SARIF log of ``result`` as a JSON-ready dict."""
    from bridge import __version__

    rules: dict[str, dict[str, Any]] = {}
    for kind, (rule_id, text) in RULES.items():
        rules[rule_id] = {
            "id": rule_id,
            "name": kind.title().replace("-", ""),
            "shortDescription": {"text": text},
            "help": _HELP,
            "defaultConfiguration": {"level": "warning"},
        }
    results: list[dict[str, Any]] = []
    for f in result.findings:
        results.append(
            {
                "ruleId": f.rule,
                "level": "error" if f.v2.status == "blocked" else "warning",
                "message": {"text": _message(f)},
                "locations": [_location(f)],
                "properties": {
                    "legacy": f.legacy,
                    "notStatic": f.not_static,
                    "v2": f.v2.model_dump(),
                    "v1": f.v1.model_dump(),
                },
            }
        )
        seen = set()
        for label, rep in (("REST v2", f.v2), ("REST v1", f.v1)):
            for item in rep.findings:
                if item.severity == "info" or (item.code, item.field) in seen:
                    continue
                seen.add((item.code, item.field))
                rules.setdefault(
                    item.code,
                    {"id": item.code, "shortDescription": {"text": item.code.replace("-", " ")}, "help": _HELP},
                )
                results.append(
                    {
                        "ruleId": item.code,
                        "level": _LEVEL[item.severity],
                        "message": {"text": f"{label}, {item.field}: {item.message}"},
                        "locations": [_location(f)],
                    }
                )
    ordered = sorted(rules.values(), key=lambda r: (r["id"] not in {v[0] for v in RULES.values()}, r["id"]))
    index = {rule["id"]: i for i, rule in enumerate(ordered)}
    for res in results:
        res["ruleIndex"] = index[res["ruleId"]]
    notifications = [
        {"level": "warning", "message": {"text": f"{u.path}: {u.reason} (not scanned)"}} for u in result.unreadable
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "bridge", "version": __version__, "rules": ordered}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "results": results,
            }
        ],
    }
