"""What a REST target is, and what every target shares: diff, fingerprint, canonical form, list reading.

A :class:`RestTarget` carries everything that differs between REST API versions: how a translated
:class:`~bridge.translate.Intent` becomes an update body and which findings that raises, how a body is
checked, how a REST read is brought into the body's vocabulary, and where and how the endpoint API is
reached. The plan, the report, the apply engine and :mod:`bridge.rest` only talk to this protocol, so a
third target is one new module in this package, plus its name in ``TARGETS`` and in :data:`bridge.models.Target`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Protocol

from bridge.config import Settings
from bridge.models import Change, Finding, Target, split_commas
from bridge.tables import Tables
from bridge.translate import Intent, Observation, Translation

__all__ = ["RestTarget", "as_list", "canonical", "dedupe", "diff", "fingerprint", "judge"]


class RestTarget(Protocol):
    """One REST API version: body, checks, state normalisation, URLs and methods."""

    name: Target
    set_fields: frozenset[str]
    """Dotted body fields whose list value is compared as a set (``gpu.pools``)."""
    paged: bool
    """True when the endpoint list comes in cursor pages; False when one answer holds the whole list."""
    write_method: str
    """The HTTP method of an update (``POST``, ``PATCH``)."""
    successor: Target | None
    """The target that lists endpoints instead when this one is retired, if any."""
    legacy_fields: Mapping[str, str]
    """The legacy field each renamed body field comes from (``gpuTypeIds`` -> ``gpuIds``)."""

    def build(self, intent: Intent, tables: Tables) -> Translation:
        """Encode a translated intent as this target's update body, with this target's findings."""
        ...

    def check_body(self, body: Mapping[str, Any], tables: Tables) -> list[Finding]:
        """Return an error finding for every key or value the update schema does not allow."""
        ...

    def normalize_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Return the REST read of an endpoint in the body's vocabulary (only fields it can compare)."""
        ...

    def base_url(self, settings: Settings) -> str:
        """The base URL of this API version for ``settings``, without a trailing slash."""
        ...

    def list_path(self) -> str:
        """The path of the endpoint list, relative to :meth:`base_url`."""
        ...

    def read_path(self, quoted_id: str) -> str:
        """The path of one endpoint (its id already URL-quoted), relative to :meth:`base_url`."""
        ...

    def write_path(self, quoted_id: str) -> str:
        """The path an update of one endpoint is sent to, relative to :meth:`base_url`."""
        ...


def judge(intent: Intent, verdict: Callable[[Observation], Finding | None]) -> list[Finding]:
    """The intent's findings with each :class:`Observation` replaced by ``verdict(observation)`` (None drops it)."""
    out: list[Finding] = []
    for item in intent.findings:
        if isinstance(item, Observation):
            judged = verdict(item)
            if judged is not None:
                out.append(judged)
        else:
            out.append(item)
    return out


def dedupe(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def as_list(value: Any) -> Any:
    """A REST read's list field: a comma-separated string (as some reads give it) split, anything else as is."""
    return split_commas(value) if isinstance(value, str) else value


def diff(
    body: Mapping[str, Any], state: Mapping[str, Any], set_fields: frozenset[str], prefix: str = ""
) -> list[Change]:
    """Fields of ``body`` whose value differs from ``state``; a field the state lacks is skipped.

    Objects are compared key by key (v2's ``gpu``, ``workers``, ``scaling``) with dotted names
    (``gpu.excludedTypes``); a list whose dotted name is in ``set_fields`` is compared as a set.
    """
    changes: list[Change] = []
    for key, want in body.items():
        if key not in state:
            continue
        name = prefix + key
        have = state[key]
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            changes.extend(diff(want, have, set_fields, name + "."))
            continue
        if name in set_fields and isinstance(want, list) and isinstance(have, list):
            if set(map(_hashable, want)) == set(map(_hashable, have)):
                continue
        elif want == have:
            continue
        changes.append(Change(field=name, from_=have, to=want))
    return changes


def _hashable(value: Any) -> Any:
    # A REST read may hold anything (a list in a list, an object): compare those by their JSON text.
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def fingerprint(normalized: Mapping[str, Any], set_fields: frozenset[str]) -> str:
    """Return ``sha256:<hex>`` of a normalized REST state (set fields sorted, keys sorted)."""
    digest = hashlib.sha256(
        json.dumps(canonical(normalized, set_fields), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return f"sha256:{digest}"


def canonical(value: Any, set_fields: frozenset[str], name: str = "") -> Any:
    """``value`` with every list named in ``set_fields`` sorted (dotted names), for comparing and hashing."""
    if isinstance(value, Mapping):
        prefix = name + "." if name else ""
        return {key: canonical(item, set_fields, prefix + key) for key, item in value.items()}
    if name in set_fields and isinstance(value, list):
        return sorted(value, key=_order)
    return value


def _order(item: Any) -> str:
    """A set field's sort key: the item's JSON text (the order fingerprints in saved plans were made with)."""
    if isinstance(item, str):
        return _string_order(item)
    return json.dumps(item, sort_keys=True)


@lru_cache(maxsize=4096)
def _string_order(item: str) -> str:
    # Set fields hold a few dozen distinct ids (GPU types, data centers) across an account: each is encoded once.
    return json.dumps(item)
