"""Export a plan: ``DIR/<endpoint id>.json`` holds the exact body of each unblocked endpoint, plus ``plan.json``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from bridge.errors import InputError
from bridge.files import check_file_name, private_dir, write_private
from bridge.models import Plan
from bridge.redact import Scrubber, escape_control

__all__ = ["check_export_dir", "export_plan"]

# ``plan.json`` is the export's own file: an endpoint called ``plan`` would be overwritten by it.
_RESERVED = frozenset({"plan"})


def export_plan(plan: Plan, out_dir: str | Path, *, scrub: Scrubber | None = None) -> list[Path]:
    """Write the body files and ``plan.json`` (last) into ``out_dir``; return the paths written.

    Every file is written atomically, so an interrupted export leaves no half-written file. Body files
    of an earlier export into the same directory that the new plan no longer has are removed. Every name
    is checked before the first file is written. ``scrub``: remove the key from every file.
    """
    out = Path(out_dir)
    seen: dict[str, str] = {}
    for ep in plan.endpoints:  # every name is checked before the first file is written: no partial export
        if not ep.blocked:
            other = seen.setdefault(_safe_name(ep.id).casefold(), ep.id)
            if other != ep.id:  # one file on a case-insensitive file system (macOS, Windows)
                raise InputError(f"endpoint ids {other!r} and {ep.id!r} would be the same file: export them apart")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: not a directory")
    try:
        private_dir(out)  # the bodies are endpoint state
    except OSError as exc:
        raise InputError(f"{out}: cannot create the directory: {exc.strerror or exc}") from None
    previous = _previous_ids(out / "plan.json")
    written = []
    keep = set()
    where = out
    try:
        for ep in plan.endpoints:
            if ep.blocked:
                continue
            keep.add(ep.id)
            text = json.dumps(ep.body, indent=2, ensure_ascii=False) + "\n"
            where = out / f"{ep.id}.json"
            written.append(write_private(where, text, scrub=scrub))
        for stale in previous - keep:
            with contextlib.suppress(ValueError):  # a name no export could have written is left alone
                where = out / f"{check_file_name(stale, reserved=_RESERVED)}.json"
                where.unlink(missing_ok=True)
        where = out / "plan.json"
        written.append(write_private(where, plan.to_json(), scrub=scrub))
    except OSError as exc:
        raise InputError(f"{where}: cannot write: {exc.strerror or exc}") from None
    return written


def _safe_name(endpoint_id: str) -> str:
    try:
        return check_file_name(endpoint_id, reserved=_RESERVED)
    except ValueError as exc:
        shown = escape_control(endpoint_id if len(endpoint_id) <= 60 else endpoint_id[:59] + "…")
        raise InputError(f"endpoint id {shown!r} cannot be used as a file name ({exc}): nothing was written") from None


def check_export_dir(directory: str | Path, plan: Plan) -> None:
    """Refuse an export directory whose body files no longer say what its ``plan.json`` says.

    ``apply DIR`` promises to send exactly the reviewed bodies. A body file that was edited, removed or
    added after the export would otherwise be silently ignored in favour of ``plan.json``, so any
    difference is an input error naming the file: export again (with ``--mappings`` or a custom rule
    for a deliberate change).
    """
    out = Path(directory)
    expected = {f"{_safe_name(ep.id)}.json": ep.body for ep in plan.endpoints if not ep.blocked}
    present = {p.name for p in out.glob("*.json") if p.name != "plan.json"}
    hint = "the directory no longer matches plan.json: export again"
    for name in sorted(expected.keys() - present):
        raise InputError(f"{out / name}: missing ({hint})")
    for name in sorted(present - expected.keys()):
        raise InputError(f"{out / name}: not an endpoint of plan.json ({hint})")
    for name in sorted(expected):
        try:
            body = json.loads((out / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{out / name}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        if body != expected[name]:
            raise InputError(f"{out / name}: differs from the body in plan.json ({hint})")


def _previous_ids(path: Path) -> set[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {ep["id"] for ep in doc["endpoints"] if ep.get("status") != "blocked" and isinstance(ep.get("id"), str)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
