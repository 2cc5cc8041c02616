"""Integrity of the files bridge reads back: a digest over the content, recorded when written, checked when read.

``plan.json`` and ``backup-*.json`` say what will be written to RunPod. An edit made after bridge wrote them (a
value out of range, a redacted ``env``, an ``unchanged`` endpoint switched to ``update``, a field the run never
changed) would otherwise be sent as written. Each file carries ``"digest": "sha256:…"`` over its content; a
file whose content no longer matches, or that has no digest, is refused with one line unless ``--force``.

The digest detects edits, not forgery: anyone who can write the file can compute a new digest. It is there so
that a hand edit, a merge gone wrong or a truncated copy is never sent silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.errors import SnapshotError
from bridge.redact import REDACTED, escape_control

if TYPE_CHECKING:
    from bridge.models import EndpointPlan, Plan

__all__ = [
    "DIGEST_FIELD",
    "PlanDigest",
    "body_problem",
    "canonical_json",
    "check_document",
    "check_plan",
    "document_digest",
    "find_redacted",
    "load_plan",
    "text_digest",
]

DIGEST_FIELD = "digest"
_PREFIX = "sha256:"
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` uses, built once."""


def document_digest(doc: Mapping[str, Any]) -> str:
    """Digest of a JSON document's content (every field but ``digest``), independent of layout and key order."""
    return text_digest(canonical_json({k: v for k, v in doc.items() if k != DIGEST_FIELD}))


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text: keys sorted, no spaces, non-ASCII as it is."""
    return _ENCODER.encode(value)


def text_digest(canonical: str) -> str:
    """The digest of a document whose content's :func:`canonical_json` is ``canonical``."""
    # NaN and lone surrogates are not JSON, but a hostile read can hold them and the backup keeps what was read.
    return _PREFIX + hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _refuse(where: str | Path, what: str, kind: str) -> SnapshotError:
    return SnapshotError(
        f"{where}: {what}: bridge will not send a {kind} it cannot vouch for; make it again, "
        "or pass --force to use it as it is"
    )


def check_document(doc: Mapping[str, Any], where: str | Path, *, kind: str, force: bool = False) -> None:
    """Refuse a document (a backup) whose digest is missing or does not match its content, unless ``force``."""
    if force:
        return
    recorded = doc.get(DIGEST_FIELD)
    if not isinstance(recorded, str):
        raise _refuse(where, "no integrity digest (written by an older bridge, or edited)", kind)
    if recorded != document_digest(doc):
        raise _refuse(where, "edited since bridge wrote it (its digest does not match its content)", kind)


def _canonical(value: Any) -> bytes:
    text = _ENCODER.encode(value)
    return text.encode("utf-8", errors="surrogatepass")


_PARTS: dict[Any, str] = {}
_PARTS_MAX = 4096


def _part(model: Any) -> str:
    """The canonical JSON of a frozen model that many endpoints share (a finding).

    Keyed by the model itself (frozen models compare and hash by every field), so equal models share one text.
    """
    try:
        text = _PARTS.get(model)
    except TypeError:  # a field holds a list or dict: not hashable, serialise it each time
        return _ENCODER.encode(model.model_dump(mode="json", by_alias=True))
    if text is None:
        if len(_PARTS) >= _PARTS_MAX:
            _PARTS.clear()
        text = _PARTS[model] = _ENCODER.encode(model.model_dump(mode="json", by_alias=True))
    return text


def _endpoint_canonical(endpoint: EndpointPlan) -> bytes:
    """``_canonical(endpoint.model_dump(mode="json", by_alias=True))``, byte for byte, built faster.

    The endpoint's own fields are dumped and encoded as before; its findings and its equivalence result repeat
    across endpoints (a few dozen distinct ones in an account), so their canonical text is made once and
    spliced in at its sorted place: the canonical JSON of an object is its members' canonical texts in key
    order, so the members before ``equivalence`` and those after ``findings`` are encoded as two objects.
    """
    data = endpoint.model_dump(mode="json", by_alias=True, exclude={"equivalence", "findings"})
    low = {key: value for key, value in data.items() if key < "equivalence"}
    high = {key: value for key, value in data.items() if key > "findings"}
    if len(low) + len(high) != len(data):  # a field sorting between the two: the plain way
        return _canonical(endpoint.model_dump(mode="json", by_alias=True))
    eq = endpoint.equivalence
    shared = (
        '"equivalence":'
        + ("null" if eq is None else _eq_part(eq))
        + ',"findings":['
        + ",".join(map(_part, endpoint.findings))
        + "]"
    )
    pieces = [_ENCODER.encode(low)[1:-1], shared, _ENCODER.encode(high)[1:-1]]
    return ("{" + ",".join(p for p in pieces if p) + "}").encode("utf-8", errors="surrogatepass")


_EQ_PARTS: dict[int, tuple[Any, str]] = {}


def _eq_part(eq: Any) -> str:
    """The canonical text of an equivalence result; the check shares one object per distinct result."""
    hit = _EQ_PARTS.get(id(eq))
    if hit is not None and hit[0] is eq:
        return hit[1]
    if len(_EQ_PARTS) >= _PARTS_MAX:
        _EQ_PARTS.clear()
    text = _ENCODER.encode(eq.model_dump(mode="json", by_alias=True))
    _EQ_PARTS[id(eq)] = (eq, text)  # the object is kept, so its id is not reused while cached
    return text


class PlanDigest:
    """The digest of a plan, fed one endpoint at a time as a renderer streams it (see :func:`check_plan`).

    It covers the plan's own fields and every endpoint, as canonical JSON (keys sorted), so the same plan
    loaded back has the same digest whatever the file's layout or key order, and any change of a value does not.
    """

    def __init__(self, plan: Plan) -> None:
        head = plan.model_copy(update={"endpoints": [], "digest": None}).model_dump(mode="json", by_alias=True)
        self._hash = hashlib.sha256(_canonical(head))

    def add(self, endpoint: EndpointPlan) -> None:
        """Add the next endpoint."""
        self._hash.update(b"\0" + _endpoint_canonical(endpoint))

    def hexdigest(self) -> str:
        """Return ``sha256:<hex>``."""
        return _PREFIX + self._hash.hexdigest()

    @classmethod
    def of(cls, plan: Plan) -> str:
        """The digest of a whole plan."""
        digest = cls(plan)
        for ep in plan.endpoints:
            digest.add(ep)
        return digest.hexdigest()


def find_redacted(value: Any, where: str = "body") -> str | None:
    """The path of the first string in ``value`` holding ``<redacted>`` (a secret bridge cannot send), or None."""
    if isinstance(value, str):
        return where if REDACTED in value else None
    if isinstance(value, Mapping):
        items: Any = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for path, item in items:
        found = find_redacted(item, path)
        if found:
            return found
    return None


def check_plan(plan: Plan, where: str | Path, *, force: bool = False) -> None:
    """Refuse an edited plan (digest) unless ``force``; refuse always a body holding a redacted value.

    A ``<redacted>`` in a body is where bridge scrubbed a secret (the key, an ``env`` value) on its way to the
    file: sending it would overwrite the real value, so no ``--force`` lets it through. Nor does it let through
    an endpoint listed twice: bridge never writes one so, and its two bodies would be sent at once.
    """
    seen: set[str] = set()
    for ep in plan.endpoints:
        if ep.id in seen:
            raise SnapshotError(
                f"{where}: endpoint {escape_control(ep.id)} is listed twice; bridge writes each endpoint once "
                "(even with --force): make the plan again"
            )
        seen.add(ep.id)
    for ep in plan.endpoints:
        if ep.status == "update":
            found = find_redacted(ep.body)
            if found:
                raise SnapshotError(
                    f"{where}: endpoint {ep.id}: {found} holds a redacted value, which bridge will not send "
                    "(it would replace the real one); write this endpoint with `bridge migrate`"
                )
    problem = body_problem(plan)
    if problem and not force:
        raise SnapshotError(
            f"{where}: {problem}; the plan was edited or made by another bridge: plan again, or pass --force "
            "to send it as it is"
        )
    if force:
        return
    if plan.digest is None:
        raise _refuse(where, "no integrity digest (written by an older bridge, or edited)", "plan")
    if plan.digest != PlanDigest.of(plan):
        raise _refuse(where, "edited since bridge wrote it (its digest does not match its content)", "plan")


# Findings that depend on the GPU pool table the plan was made with (live or from a snapshot), which apply does
# not have: against the bundled table they would refuse a sound plan.
_POOL_CODES = frozenset({"unknown-gpu-pool", "exclusion-not-in-pools"})


def body_problem(plan: Plan) -> str | None:
    """Re-check every ``update`` body against its target's schema (fields, types, ranges, known values).

    A plan bridge wrote passed these checks; one that fails them now was edited (a value out of range, a
    field the API does not take). The first error, as ``endpoint ID: field: message``, or None.
    """
    from bridge.tables import bundled_tables
    from bridge.targets import get_target

    target, tables = get_target(plan.target), bundled_tables()
    for ep in plan.endpoints:
        if ep.status != "update":
            continue
        for finding in target.check_body(ep.body, tables):
            if finding.severity == "error" and not (plan.tables.gpu_pools != "bundled" and finding.code in _POOL_CODES):
                return f"endpoint {ep.id}: {finding.field}: {finding.message}"
    return None


def load_plan(path: str | Path, *, force: bool = False) -> Plan:
    """Read ``plan.json`` (or a directory written by ``export``); anything else is an input error.

    The plan's digest is checked (an edited plan is refused unless ``force``), and so is an export directory
    against its ``plan.json``. The plan returned carries no digest: it is a property of the file.
    """
    from pydantic import ValidationError

    from bridge.models import Plan

    path = Path(path)
    file = path / "plan.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        plan = Plan.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise SnapshotError(f"{file}: not a bridge plan: {where}: {err['msg']}") from None
    check_plan(plan, file, force=force)
    plan = plan.model_copy(update={"digest": None})
    if path.is_dir():
        from bridge.export import check_export_dir

        check_export_dir(path, plan)
    return plan
