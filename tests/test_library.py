"""The library surface: `import bridge`, custom rules, and the README's Python examples."""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
from typing import Any

from helpers import ROOT, SAMPLE, sample_tables

import bridge
from bridge.models import Finding, LegacyEndpoint


def test_all_is_sorted_and_importable() -> None:
    """`bridge.__all__` is sorted and every name in it resolves."""
    assert bridge.__all__ == sorted(bridge.__all__)
    for name in bridge.__all__:
        assert getattr(bridge, name) is not None, name


def test_public_modules_declare_all() -> None:
    """Each library module declares `__all__` and every listed name exists."""
    names = ["errors", "models", "tables", "translate", "plan", "snapshot", "report", "export", "apply", "journal"]
    names += ["targets", "targets.base", "targets.v1", "targets.v2", "targets.v2_checks", "http", "rest", "migrate"]
    names += ["http.session", "http.retry", "http.pacing", "http.answers", "live", "source", "pipeline"]
    for name in names:
        module = importlib.import_module(f"bridge.{name}")
        for item in module.__all__:
            assert hasattr(module, item), (name, item)


def test_import_is_lazy() -> None:
    """`import bridge` and the CLI group import neither pydantic, httpx nor gql."""
    code = "import sys, bridge, bridge.cli; print(sorted(m for m in ('pydantic', 'httpx', 'gql') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_custom_rule_runs_after_builtins() -> None:
    """A custom rule sees the draft body, can change it, and its findings join the plan."""
    seen: list[dict[str, Any]] = []

    def pin_workers(ep: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
        seen.append(dict(body))
        body["workersMax"] = 1
        return body, [Finding(severity="info", code="team-policy", field="workersMax", message="capped")]

    snap = bridge.load_snapshot(SAMPLE)
    plan = bridge.build_plan(snap.endpoints, sample_tables(), rules=[pin_workers], generated_at="t")
    updates = [e for e in plan.endpoints if e.status == "update"]
    assert updates and all(e.body["workersMax"] == 1 for e in updates)
    assert all(any(f.code == "team-policy" for f in e.findings) for e in updates)
    assert "flashboot" in seen[0]  # built-in rules ran first


def test_rule_producing_invalid_body_blocks() -> None:
    """A body a rule breaks (unknown key, bad value) is checked again and blocked."""

    def bad(ep: LegacyEndpoint, body: dict[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
        return {**body, "idleTimeout": 0, "colour": "red"}, []

    snap = bridge.load_snapshot(SAMPLE)
    plan = bridge.build_plan(snap.endpoints[:1], sample_tables(), rules=[bad], generated_at="t")
    (ep,) = plan.endpoints
    assert ep.status == "blocked"
    assert {f.field for f in ep.findings if f.severity == "error"} == {"idleTimeout", "colour"}


def test_render_to_any_stream() -> None:
    """Renderers write to the stream they are handed."""
    snap = bridge.load_snapshot(SAMPLE)
    plan = bridge.build_plan(snap.endpoints, sample_tables(), generated_at="t")
    buffer = io.StringIO()
    bridge.render(plan, buffer, "markdown")
    assert buffer.getvalue().startswith("## bridge plan")


def test_readme_python_examples_run(tmp_path: Any, monkeypatch: Any) -> None:
    """Every ```python block in the README runs as written (from the checkout root)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(ROOT)
    for block in blocks:
        stdout = io.StringIO()
        monkeypatch.setattr(sys, "stdout", stdout)
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
        monkeypatch.undo()
        monkeypatch.chdir(ROOT)
