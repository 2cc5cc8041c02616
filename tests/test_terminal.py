"""Reports never carry a raw control character: names, ids and messages are escaped in every format."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SAMPLE

from bridge.cli import main
from bridge.integrity import load_plan
from bridge.models import Plan
from bridge.report import render

HOSTILE = [
    "title\x1b]0;owned\x07",
    "red\x1b[31mred",
    "csi\x9b2J",
    "rtl\u202eexe.txt",
    "line\u2028break",
    "bell\x07del\x7f",
]
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _plan(tmp_path: Path) -> Plan:
    doc = json.loads(SAMPLE.read_text())
    for ep, name in zip(doc["data"]["myself"]["endpoints"], HOSTILE, strict=False):
        ep["name"] = name
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["plan", "--from", str(path), "--format", "json", "-o", str(tmp_path / "p.json")])
    assert out.exit_code == 3, out.output
    return load_plan(tmp_path / "p.json")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_no_raw_control_character_in_any_report(tmp_path: Path, fmt: str) -> None:
    """Each hostile name comes out escaped; JSON stays the same values (and its digest still checks)."""
    plan = _plan(tmp_path)
    out = io.StringIO()
    render(plan, out, fmt)
    text = out.getvalue()
    assert not RAW.findall(text)
    if fmt == "json":
        names = {ep["name"] for ep in json.loads(text)["endpoints"]}
        assert {n.removesuffix(" -fb").strip() for n in HOSTILE} & {n for n in names if n}
        (tmp_path / "again.json").write_text(text)
        assert load_plan(tmp_path / "again.json") == plan
    else:
        assert ("\\x1b" in text or "\\u001b" in text) and "\\u202e" in text


@pytest.mark.parametrize("limit", [None, 6])
def test_the_consent_diff_escapes_every_control(tmp_path: Path, limit: int | None) -> None:
    """The diff shown before `migrate` asks goes to the terminal: C1 controls (8-bit CSI), bidi overrides and
    line separators in a name (label and old -> new) come out escaped, as in the text report."""
    from bridge.report import render_changes

    doc = json.loads(SAMPLE.read_text())
    for ep, name in zip(doc["data"]["myself"]["endpoints"], HOSTILE, strict=False):
        ep["name"] = name + " -fb"  # the suffix goes: every hostile name is in the diff, old and new
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["plan", "--from", str(path), "--format", "json", "-o", str(tmp_path / "p.json")])
    plan = load_plan(tmp_path / "p.json")
    updated = [ep for ep in plan.endpoints if ep.status == "update" and ep.name and ep.name[:3] in "".join(HOSTILE)]
    assert len(updated) >= 4, out.output
    text = io.StringIO()
    render_changes(plan, text, limit)
    assert not RAW.findall(text.getvalue())
    assert "\\u009b" in text.getvalue() or "\\x9b" in text.getvalue()
