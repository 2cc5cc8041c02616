"""Renderers against whole golden outputs. Regenerate with: BRIDGE_UPDATE_GOLDEN=1 pytest tests/test_report.py"""

from __future__ import annotations

import io
import json
import os

import pytest
from helpers import FIXTURES, SAMPLE, SECRET_MARK, sample_tables

from bridge.integrity import PlanDigest
from bridge.models import Plan
from bridge.plan import build_plan
from bridge.report import render, render_result
from bridge.snapshot import load_snapshot

GOLDEN = FIXTURES / "golden"
WHEN = "2026-11-22T10:00:00Z"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md"}


def sample_plan(target: str = "v1") -> Plan:
    """Plan the sample account at a fixed time."""
    return build_plan(load_snapshot(SAMPLE).endpoints, sample_tables(), target=target, generated_at=WHEN)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_golden_report(fmt: str) -> None:
    """Each renderer's whole output for the sample account equals its golden file."""
    out = io.StringIO()
    render(sample_plan(), out, fmt)
    path = GOLDEN / f"sample-plan.{SUFFIX[fmt]}"
    if os.environ.get("BRIDGE_UPDATE_GOLDEN"):
        path.write_text(out.getvalue())
    assert out.getvalue() == path.read_text()


def test_json_plan_follows_spec_shape() -> None:
    """The JSON plan has exactly SPEC §6's keys, in order, and round-trips through the model."""
    doc = json.loads(sample_plan().to_json())
    assert list(doc) == [
        "format_version",
        "target",
        "target_reason",
        "generated_at",
        "tables",
        "endpoints",
        "summary",
        "digest",
    ]
    assert doc["format_version"] == 1 and doc["target"] == "v1" and doc["generated_at"] == WHEN
    sources = {"pools": "snapshot", "data_centers": "bundled", "cpus": "bundled", "rest_v1": "bundled"}
    assert doc["tables"] == {"gpu_pools": "snapshot", "overrides": [], "sources": sources}
    first = doc["endpoints"][0]
    assert list(first) == ["id", "name", "status", "body", "changes", "fingerprint", "findings", "equivalence"]
    assert first["equivalence"] == {
        "gpu": "same",
        "locations": "same",
        "flashboot": "same",
        "cpu": "not-applicable",
        "scaling": "same",
        "workers": "same",
        "other": "same",
        "frozen": ["gpu", "locations"],
    }
    blocked = next(ep for ep in doc["endpoints"] if ep["status"] == "blocked")
    assert blocked["equivalence"] is None  # blocked by another error: no body to prove
    assert first["changes"][0] == {
        "field": "name",
        "from": "Generated Endpoint -fb",
        "to": "Generated Endpoint",
    }
    assert list(first["findings"][0]) == ["severity", "code", "field", "message"]
    assert doc["summary"] == {
        "endpoints": 16,
        "update": 9,
        "unchanged": 0,
        "blocked": 7,
        "equivalent": 2,
        "equivalent_frozen": 6,
        "explained": 1,
        "not_equivalent": 0,
    }
    loaded = Plan.model_validate(doc)
    assert loaded.digest == PlanDigest.of(loaded)
    assert loaded.model_copy(update={"digest": None}) == sample_plan()


def test_blocked_endpoints_lead_the_text_report() -> None:
    """Blocked endpoints come first in the text report and the last line counts them."""
    out = io.StringIO()
    render(sample_plan(), out, "text")
    text = out.getvalue()
    assert text.index("BLOCKED") < text.index("UPDATE (")
    assert text.rstrip().endswith("7 endpoints BLOCKED. Fix the errors above or add --mappings overrides.")


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_secret_in_any_report(fmt: str) -> None:
    """No aiKey or env value of the sample reaches any report."""
    out = io.StringIO()
    render(sample_plan(), out, fmt)
    assert SECRET_MARK not in out.getvalue()


def test_run_result_text_and_json() -> None:
    """A run's result renders problems, notes, counts and state paths as text, and its dict as JSON."""
    from pathlib import Path

    from bridge.apply import ApplyResult, Outcome

    result = ApplyResult(
        target="v1",
        outcomes=[
            Outcome("a", "alpha", "updated", writes=1),
            Outcome("b", None, "failed", "GET x: HTTP 500"),
            Outcome("c", "gamma", "unchanged", "already as planned"),
        ],
        journal_path=Path("state/journal-1.jsonl"),
        backup_path=Path("state/backup-1.json"),
        notes=["not restorable: c: flashboot"],
    )
    text = io.StringIO()
    render_result(result, text)
    assert text.getvalue() == (
        "  failed: b: GET x: HTTP 500\n"
        "  note: not restorable: c: flashboot\n"
        "bridge: 1 updated, 1 unchanged, 1 failed\n"
        "bridge: journal state/journal-1.jsonl, backup state/backup-1.json\n"
        "next: 2 done, 1 left: run the same command again to finish\n"
        "next: to undo this run: bridge rollback state/backup-1.json\n"
    )
    out = io.StringIO()
    render_result(result, out, "json")
    assert json.loads(out.getvalue()) == result.to_dict()
