"""The REST targets bridge can write for, by name: one module each (``v1``, ``v2``), sharing :mod:`.base`."""

from __future__ import annotations

from bridge.targets.base import RestTarget
from bridge.targets.v1 import V1
from bridge.targets.v2 import V2

__all__ = ["TARGETS", "V1", "V2", "RestTarget", "get_target"]

TARGETS: dict[str, RestTarget] = {"v1": V1, "v2": V2}
"""Every target, by the name ``--target`` takes."""


def get_target(name: str) -> RestTarget:
    """Return the target called ``name`` (``v1`` or ``v2``)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}: use {' or '.join(TARGETS)}") from None
