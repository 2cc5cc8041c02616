"""Find legacy endpoint configuration in code and translate it (``bridge scan``).

::

    import bridge
    from bridge.scan import scan, render_scan

    result = scan(["."], bridge.build_tables())
    render_scan(result, sys.stdout, "sarif")

Readers: GraphQL documents (``.graphql``/``.gql``) and ``saveEndpoint`` mutations in string literals of
Python (read with :mod:`ast`), JavaScript/TypeScript and shell scripts (curl command lines and their JSON
bodies), parsed with graphql-core; runpod-python ``create_endpoint(...)`` calls; ``gpuIds``/``locations``
keys and ``-fb`` names in JSON and YAML files; and the code blocks of Markdown files. Each finding is
translated by :func:`bridge.build_plan`, for REST v2 and v1, exactly as a live endpoint would be.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bridge.scan.core import Replacement, ScanFinding, ScanResult, Unreadable, translate_candidates
from bridge.scan.report import render_scan
from bridge.scan.walk import DEFAULT_MAX_SIZE

__all__ = [
    "DEFAULT_MAX_SIZE",
    "Replacement",
    "ScanFinding",
    "ScanResult",
    "Unreadable",
    "render_scan",
    "scan",
]


def scan(
    paths: Iterable[str | Path],
    tables: Any,
    *,
    keep_fb_suffix: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
) -> ScanResult:
    """Scan ``paths`` (files or directories) and translate every finding with ``tables``."""
    from bridge.scan.walk import walk_paths

    candidates, walk = walk_paths(paths, max_size=max_size)
    findings = translate_candidates(candidates, tables, keep_fb_suffix=keep_fb_suffix)
    return ScanResult(
        files_scanned=walk.scanned,
        files_skipped=walk.skipped,
        findings=findings,
        unreadable=walk.unreadable,
    )
