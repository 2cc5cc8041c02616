"""Verify a run's writes without one read per endpoint (SPEC §8, issue 17).

Each write is first checked against its own answer (v1 update and v2 PATCH answer with the endpoint), in
:mod:`bridge.apply`. :func:`read_back` then reads the endpoint list once at the end of the run: it catches a
server that changed an endpoint after answering the write (RunPod once wiped v2 exclusions on PATCH), and a body
field that neither the answer nor the read-back shows is named as unverified rather than silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bridge.errors import ApiError
from bridge.journal import Journal
from bridge.targets import RestTarget
from bridge.targets.base import diff

if TYPE_CHECKING:
    from bridge.apply import EndpointApi, Outcome, WorkItem

__all__ = ["mismatch", "read_back", "unshown_fields"]


def unshown_fields(body: Mapping[str, Any], state: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields of ``body`` that ``state`` does not show (so cannot be compared)."""
    out: list[str] = []
    for key, want in body.items():
        if key not in state:
            out.append(prefix + key)
        elif isinstance(want, Mapping) and isinstance(state[key], Mapping):
            out.extend(unshown_fields(want, state[key], f"{prefix}{key}."))
    return out


def mismatch(target: RestTarget, body: Mapping[str, Any], normalized: Mapping[str, Any]) -> list[str]:
    """Fields of ``body`` the normalized REST read differs in (a read showing none of them differs in all)."""
    if body and not any(key in normalized for key in body):
        # Fields a read leaves out are skipped; a read that shows none of them proves nothing.
        return [f"{', '.join(body)} (the read shows none of them)"]
    return [c.field for c in diff(body, normalized, target.set_fields)]


async def read_back(
    api: EndpointApi,
    target: RestTarget,
    journal: Journal,
    written: Sequence[tuple[WorkItem, Outcome]],
    notes: list[str],
) -> None:
    """Verify the run's ``updated`` writes with one final list read, changing their outcomes in place.

    A field the read shows differing from the body fails the endpoint (changed on the server after the write
    was answered); a field neither the answer nor this read shows stays in ``outcome.unverified`` and is named
    in its detail and in ``notes``. An endpoint the list lacks is read on its own (the list may lag behind).
    """
    updated = [(item, outcome) for item, outcome in written if outcome.status == "updated"]
    if not updated:
        return
    try:
        listed = {row["id"]: row for row in await api.list_endpoints() if isinstance(row.get("id"), str)}
    except ApiError as exc:
        notes.append(f"the run's final read-back failed ({exc}): the writes were verified from their answers only")
        listed = {}
    for item, outcome in updated:
        state = listed.get(item.id)
        if state is None and listed:
            try:
                state = await api.get_endpoint(item.id)
            except ApiError:
                state = None
        if state is not None:
            normalized = target.normalize_state(state)
            differs = mismatch(target, item.body, normalized)
            if differs:
                outcome.status = "failed"
                outcome.detail = (
                    f"the run's read-back differs in: {', '.join(differs)} "
                    "(changed on the server after the write was answered)"
                )
            still = set(unshown_fields(item.body, normalized))
            outcome.unverified = [name for name in outcome.unverified if name in still]
        if outcome.status == "failed":  # the outcome changed: journaled as such
            journal.record("outcome", endpoint=item.id, status="failed", detail=outcome.detail, writes=outcome.writes)
        elif outcome.unverified:
            outcome.detail += f"; unverified: {', '.join(outcome.unverified)} (neither the answer nor a read shows it)"
    # One line (one fsync) for the whole read-back, not one per endpoint.
    journal.record(
        "verify",
        endpoints=len(updated),
        read_back=bool(listed),
        failed=[item.id for item, o in updated if o.status == "failed"],
        unverified={item.id: o.unverified for item, o in updated if o.status == "updated" and o.unverified},
    )
    unverified = sorted({name for _, o in updated if o.status == "updated" for name in o.unverified})
    if unverified:
        count = sum(1 for _, o in updated if o.status == "updated" and o.unverified)
        notes.append(
            f"{count} endpoint(s) written with field(s) no answer or read shows, so unverified: {', '.join(unverified)}"
        )
