"""bridge: move RunPod Serverless endpoints off the legacy GraphQL settings onto the REST API.

Public functions (``from bridge import load_snapshot, build_plan, ...``):

    load_snapshot(path) -> Snapshot             read and validate a snapshot file
    parse_snapshot(doc, where) -> Snapshot      the same, from a decoded document
    build_tables(pools=, overrides=) -> Tables  GPU pool and location tables, with overrides
    bundled_tables() / load_override(path) / parse_override(doc)
    build_plan(endpoints, tables, target=, rules=) -> Plan   translate and compare: the dry run
    translate(endpoint, tables) / analyse(endpoint, tables)  one endpoint
    render(plan, fh, "text"|"json"|"markdown")  write a plan report
    export_plan(plan, directory)                one body file per endpoint, plus plan.json
    run_migration(settings, confirm=) -> Migration           read, plan, confirm, apply, verify
    apply_plan_async(plan, settings, state_dir=) / rollback_async(backup, settings, state_dir=)
    render_result(result, fh, "text"|"json")    write a run's result
    get_target("v1"|"v2") -> RestTarget         a REST target's schema, checks and normalization

The classes (Plan, EndpointPlan, Finding, Settings, ...) and errors (BridgeError and its family) are listed
in ``bridge.__all__``. Progress of a run is told through :mod:`bridge.progress`. An example::

    import bridge

    snapshot = bridge.load_snapshot("fixtures/sample-account.json")
    tables = bridge.build_tables(pools=snapshot.pools, overrides=[{"locations": {"EU": ["EU-RO-1"]}}])
    plan = bridge.build_plan(snapshot.endpoints, tables)
    bridge.render(plan, sys.stdout, "text")

Names are imported on first use, so ``import bridge`` (and ``bridge --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ApiError": "bridge.errors",
    "ApplyResult": "bridge.apply",
    "AuthError": "bridge.errors",
    "BridgeError": "bridge.errors",
    "Change": "bridge.models",
    "ConsentError": "bridge.errors",
    "EndpointPlan": "bridge.models",
    "Finding": "bridge.models",
    "InputError": "bridge.errors",
    "Intent": "bridge.translate",
    "LegacyEndpoint": "bridge.models",
    "Migration": "bridge.migrate",
    "NotFoundError": "bridge.errors",
    "Override": "bridge.tables",
    "Plan": "bridge.models",
    "RestTarget": "bridge.targets",
    "RetiredError": "bridge.errors",
    "Rule": "bridge.translate",
    "Settings": "bridge.config",
    "Snapshot": "bridge.snapshot",
    "SnapshotError": "bridge.errors",
    "TARGETS": "bridge.targets",
    "TableError": "bridge.errors",
    "Tables": "bridge.tables",
    "Translation": "bridge.translate",
    "WriteOutcomeUnknown": "bridge.errors",
    "analyse": "bridge.translate",
    "apply_plan_async": "bridge.migrate",
    "build_plan": "bridge.plan",
    "build_tables": "bridge.tables",
    "bundled_tables": "bridge.tables",
    "export_plan": "bridge.export",
    "get_target": "bridge.targets",
    "load_override": "bridge.tables",
    "load_snapshot": "bridge.snapshot",
    "parse_override": "bridge.tables",
    "parse_snapshot": "bridge.snapshot",
    "render": "bridge.report",
    "render_result": "bridge.report",
    "rollback_async": "bridge.migrate",
    "run_migration": "bridge.migrate",
    "translate": "bridge.plan",
}

# A literal, sorted list, so that type checkers see what `from bridge import ...` offers (a test keeps it
# equal to _EXPORTS).
__all__ = [  # noqa: RUF022 (plainly sorted, as sorted() sorts, not isort-style)
    "ApiError",
    "ApplyResult",
    "AuthError",
    "BridgeError",
    "Change",
    "ConsentError",
    "EndpointPlan",
    "Finding",
    "InputError",
    "Intent",
    "LegacyEndpoint",
    "Migration",
    "NotFoundError",
    "Override",
    "Plan",
    "RestTarget",
    "RetiredError",
    "Rule",
    "Settings",
    "Snapshot",
    "SnapshotError",
    "TARGETS",
    "TableError",
    "Tables",
    "Translation",
    "WriteOutcomeUnknown",
    "__version__",
    "analyse",
    "apply_plan_async",
    "build_plan",
    "build_tables",
    "bundled_tables",
    "export_plan",
    "get_target",
    "load_override",
    "load_snapshot",
    "parse_override",
    "parse_snapshot",
    "render",
    "render_result",
    "rollback_async",
    "run_migration",
    "translate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from bridge.apply import ApplyResult
    from bridge.config import Settings
    from bridge.errors import (
        ApiError,
        AuthError,
        BridgeError,
        ConsentError,
        InputError,
        NotFoundError,
        RetiredError,
        SnapshotError,
        TableError,
        WriteOutcomeUnknown,
    )
    from bridge.export import export_plan
    from bridge.migrate import Migration, apply_plan_async, rollback_async, run_migration
    from bridge.models import Change, EndpointPlan, Finding, LegacyEndpoint, Plan
    from bridge.plan import build_plan, translate
    from bridge.report import render, render_result
    from bridge.snapshot import Snapshot, load_snapshot, parse_snapshot
    from bridge.tables import Override, Tables, build_tables, bundled_tables, load_override, parse_override
    from bridge.targets import TARGETS, RestTarget, get_target
    from bridge.translate import Intent, Rule, Translation, analyse
