"""Prove each translation: compare what the legacy endpoint selects with what the REST body selects (issue 14).

Translation validation, as compilers do it: two small evaluators written from the APIs' meaning
(:mod:`bridge.equivalence_eval` for the legacy form, :mod:`bridge.equivalence_rest` for a body; neither uses
:mod:`bridge.translate` or the targets) each say what one side selects, under the same tables, and
:func:`compare` says, per aspect, whether the body keeps the selection::

    legacy = legacy_selection(endpoint, tables)
    rest = rest_selection(plan.body, "v1", tables)
    eq = compare(legacy, rest)
    eq.to_dict()   # {"gpu": "same", ..., "frozen": ["gpu"]}
    unexplained(eq, plan.findings)  # aspects no finding explains: a not-equivalent endpoint

Aspects: ``gpu`` (the GPU types in priority order, and gpuCount), ``locations`` (data centers, or anywhere),
``flashboot`` (OFF / FLASHBOOT / PRIORITY_FLASHBOOT), ``cpu`` ((flavor, vCPU) pairs), ``scaling`` (scaler type and
value, idleTimeout), ``workers`` (min, max), ``other`` (execution timeout, CUDA versions, network volumes,
template, name without its ``-fb`` markers). Verdicts: ``same``, ``narrower`` (the body selects a subset),
``wider`` (a superset), ``different`` (neither, or a value changed), ``not-applicable`` (a GPU aspect of a CPU
endpoint and the reverse). A setting the body leaves out is kept by the endpoint, so it counts as ``same``.

``frozen`` names the aspects that follow a table in the legacy form and are a fixed list in the body (a pool
expanded into v1 ``gpuTypeIds``; a country expanded into data centers): a card or data center RunPod adds later
will not be used. ``unpinned`` is the reverse (a single GPU type sent as a v2 pool: a card added to that pool
later becomes eligible).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from bridge.equivalence_eval import KEPT, CpuPair, Kept, Selection, legacy_selection
from bridge.equivalence_rest import rest_selection
from bridge.models import Finding

__all__ = [
    "ASPECTS",
    "EXPLAINED_BY",
    "KEPT",
    "ORDER_EXPLAINED_BY",
    "Aspect",
    "Equivalence",
    "Selection",
    "Verdict",
    "compare",
    "explanations",
    "legacy_selection",
    "rest_selection",
    "unexplained",
]

Aspect = Literal["gpu", "locations", "flashboot", "cpu", "scaling", "workers", "other"]
Verdict = Literal["same", "narrower", "wider", "different", "not-applicable"]
ASPECTS: tuple[Aspect, ...] = ("gpu", "locations", "flashboot", "cpu", "scaling", "workers", "other")

EXPLAINED_BY: Mapping[str, tuple[Aspect, ...]] = {
    "flashboot-priority-lost": ("flashboot",),  # v1 cannot say priority: PRIORITY_FLASHBOOT -> FLASHBOOT
    "cpu-vcpu-mismatch": ("cpu",),  # v1 takes one vcpuCount for every flavor
}
"""Finding codes that explain a difference on an aspect (the translation reported the loss itself)."""

ORDER_EXPLAINED_BY: Mapping[str, tuple[Aspect, ...]] = {
    "gpu-priority-order-changed": ("gpu",),  # v2: a GPU type sent as its pool takes that pool's place
}
"""Finding codes that explain only a changed priority order (the same members) on an aspect."""

_MAX_NAMES = 6
_OK: frozenset[str] = frozenset({"same", "not-applicable"})


@dataclass(frozen=True, slots=True)
class Equivalence:
    """The verdict per aspect, what differs, and which aspects were frozen into fixed lists."""

    gpu: Verdict
    locations: Verdict
    flashboot: Verdict
    cpu: Verdict
    scaling: Verdict
    workers: Verdict
    other: Verdict
    frozen: tuple[Aspect, ...] = ()
    unpinned: tuple[Aspect, ...] = ()
    details: tuple[tuple[Aspect, str], ...] = ()  # (aspect, "lost NVIDIA RTX A6000") for each non-same aspect
    reordered: tuple[Aspect, ...] = ()  # differing aspects whose only difference is the priority order

    def verdict(self, aspect: Aspect) -> Verdict:
        """Return the verdict on one aspect."""
        value: Verdict = getattr(self, aspect)
        return value

    @property
    def equivalent(self) -> bool:
        """Whether every aspect is ``same`` or ``not-applicable``."""
        ok = _OK
        return (
            self.gpu in ok
            and self.locations in ok
            and self.flashboot in ok
            and self.cpu in ok
            and self.scaling in ok
            and self.workers in ok
            and self.other in ok
        )

    @property
    def differing(self) -> tuple[Aspect, ...]:
        """The aspects that are neither ``same`` nor ``not-applicable``."""
        return tuple(a for a in ASPECTS if self.verdict(a) not in _OK)

    def detail(self, aspect: Aspect) -> str | None:
        """What differs on ``aspect`` (``"lost NVIDIA RTX A6000"``), or None."""
        return next((text for name, text in self.details if name == aspect), None)

    def lines(self) -> list[str]:
        """One line per differing aspect: ``gpu: narrower, lost NVIDIA RTX A6000``."""
        out = []
        for aspect in self.differing:
            text = self.detail(aspect)
            out.append(f"{aspect}: {self.verdict(aspect)}" + (f", {text}" if text else ""))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The plan-JSON shape (SPEC §6): each aspect's verdict and ``frozen``; ``unpinned``/``details`` if any."""
        out: dict[str, Any] = {aspect: self.verdict(aspect) for aspect in ASPECTS}
        out["frozen"] = list(self.frozen)
        if self.unpinned:
            out["unpinned"] = list(self.unpinned)
        if self.details:
            out["details"] = dict(self.details)
        return out

    def describe(self) -> str:
        """One line for reports: ``equivalent``, ``equivalent, frozen: gpu`` or ``not equivalent: gpu: ...``."""
        if self.equivalent:
            notes = [f"frozen: {', '.join(self.frozen)}"] if self.frozen else []
            if self.unpinned:
                notes.append(f"unpinned: {', '.join(self.unpinned)}")
            return "; ".join(["equivalent", *notes]) if notes else "equivalent"
        return "not equivalent: " + "; ".join(self.lines())


def explanations(equivalence: Equivalence, findings: Iterable[Finding]) -> dict[Aspect, str]:
    """The finding code that explains each differing aspect it explains (see :data:`EXPLAINED_BY`)."""
    if equivalence.equivalent:
        return {}
    out: dict[Aspect, str] = {}
    for f in findings:
        aspects = EXPLAINED_BY.get(f.code, ())
        aspects += tuple(a for a in ORDER_EXPLAINED_BY.get(f.code, ()) if a in equivalence.reordered)
        for aspect in aspects:
            if aspect in equivalence.differing:
                out.setdefault(aspect, f.code)
    return out


def unexplained(equivalence: Equivalence, findings: Iterable[Finding]) -> tuple[Aspect, ...]:
    """The differing aspects that no finding in ``findings`` explains (see :data:`EXPLAINED_BY`)."""
    if equivalence.equivalent:
        return ()
    explained = explanations(equivalence, findings)
    return tuple(a for a in equivalence.differing if a not in explained)


# --- compare -----------------------------------------------------------------------------------------------

_Part = tuple[Verdict, str]
_SAME: _Part = ("same", "")


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMES])
    return shown + (f" and {len(items) - _MAX_NAMES} more" if len(items) > _MAX_NAMES else "")


def _sets(legacy: Sequence[str], rest: Sequence[str]) -> _Part:
    """Compare two selections as sets: the verdict and the members lost and gained."""
    have, want = set(legacy), set(rest)
    lost = [x for x in legacy if x not in want]
    gained = [x for x in rest if x not in have]
    if lost and gained:
        return "different", f"lost {_names(lost)}; gained {_names(gained)}"
    if lost:
        return "narrower", f"lost {_names(lost)}"
    if gained:
        return "wider", f"gained {_names(gained)}"
    return "same", ""


def _merge(parts: Sequence[_Part]) -> _Part:
    """One verdict for several parts of an aspect: any mix of changes is ``different``."""
    changed = [part for part in parts if part[0] != "same"]
    if not changed:
        return _SAME
    verdicts = {verdict for verdict, _ in changed}
    text = "; ".join(text for _, text in changed if text)
    return (verdicts.pop() if len(verdicts) == 1 else "different"), text


def _value(label: str, legacy: Any, rest: Any, show: Callable[[Any], str] = repr) -> _Part:
    if rest is KEPT or rest == legacy:
        return _SAME
    return "different", f"{label} {show(legacy)} -> {show(rest)}"


def _set_value(label: str, legacy: frozenset[str] | Kept | None, rest: frozenset[str] | Kept | None) -> _Part:
    if rest is KEPT or rest == legacy:
        return "same", ""
    have = sorted(legacy) if isinstance(legacy, frozenset) else []
    _, text = _sets(have, sorted(rest or ()))
    return "different", f"{label} {text}"


_GPU = attrgetter("gpu_types", "gpu_count")
_OTHER = attrgetter("execution_timeout_ms", "allowed_cuda", "min_cuda", "volumes", "template_id", "name")


def _kept_or_equal(get: Callable[[Selection], tuple[Any, ...]], legacy: Selection, rest: Selection) -> bool:
    """The fast path: every value of the body is kept or equal to the legacy one (the usual case)."""
    for have, want in zip(get(legacy), get(rest), strict=True):  # noqa: SIM110 - no generator on a hot path
        if want is not KEPT and want != have:
            return False
    return True


def _problems(side: str, selection: Selection, aspect: Aspect) -> list[_Part]:
    if not selection.problems:
        return []
    return [("different", f"{side}: {text}") for name, text in selection.problems if name == aspect]


def _gpu(legacy: Selection, rest: Selection) -> _Part:
    if legacy.compute == "cpu":
        if isinstance(rest.gpu_types, tuple) and rest.gpu_types:
            return "different", f"the body selects GPU types for a CPU endpoint: {_names(rest.gpu_types)}"
        return "not-applicable", ""
    if rest.compute == "cpu":
        return "different", "the body selects CPU instances for a GPU endpoint"
    if not legacy.problems and not rest.problems and _kept_or_equal(_GPU, legacy, rest):
        return _SAME
    parts = [*_problems("legacy", legacy, "gpu"), *_problems("body", rest, "gpu")]
    if isinstance(rest.gpu_types, tuple) and isinstance(legacy.gpu_types, tuple):
        part = _sets(legacy.gpu_types, rest.gpu_types)
        if part[0] == "same" and legacy.gpu_types != rest.gpu_types:
            old, new = _names(legacy.gpu_types), _names(rest.gpu_types)
            part = ("different", f"priority order changed: {old} -> {new}")
        parts.append(part)
    parts.append(_value("gpuCount", legacy.gpu_count, rest.gpu_count))
    return _merge(parts)


def _locations(legacy: Selection, rest: Selection) -> _Part:
    parts = [*_problems("legacy", legacy, "locations"), *_problems("body", rest, "locations")]
    have, want = legacy.data_centers, rest.data_centers
    if want is KEPT or have is KEPT or have == want:
        parts.append(("same", ""))
    elif have is None:
        parts.append(("narrower", f"anywhere -> only {_names(want or ())}"))
    elif want is None:
        parts.append(("wider", f"gained anywhere (was {_names(have)})"))
    else:
        parts.append(_sets(sorted(have), sorted(want)))
    return _merge(parts)


def _flashboot(legacy: Selection, rest: Selection) -> _Part:
    parts = [*_problems("legacy", legacy, "flashboot"), *_problems("body", rest, "flashboot")]
    if rest.flashboot is KEPT:
        if legacy.flashboot_from_name and rest.name is not KEPT and not rest.name_has_suffix:
            parts.append(
                ("different", "FlashBoot came from the -fb name suffix, which the body drops without flashboot")
            )
    else:
        parts.append(_value("", legacy.flashboot, rest.flashboot, str))
    verdict, text = _merge(parts)
    return verdict, text.strip()


def _pair(pair: CpuPair) -> str:
    flavor, vcpus = pair
    return f"{flavor or '(kept flavor)'} {vcpus if vcpus is not None else '(kept)'} vCPU"


def _resolve(rest: frozenset[CpuPair], legacy: frozenset[CpuPair]) -> set[CpuPair]:
    """Fill the kept half of a partial v1 pair from the legacy pairs it keeps."""
    out: set[CpuPair] = set()
    for flavor, vcpus in rest:
        if flavor is not None and vcpus is not None:
            out.add((flavor, vcpus))
            continue
        matches = {(f, v) for f, v in legacy if (flavor is None or f == flavor) and (vcpus is None or v == vcpus)}
        out |= {(flavor or f, vcpus or v) for f, v in matches} or {(flavor, vcpus)}
    return out


def _cpu(legacy: Selection, rest: Selection) -> _Part:
    if legacy.compute != "cpu":
        if isinstance(rest.cpu, frozenset) and rest.cpu:
            return "different", "the body selects CPU instances for a GPU endpoint"
        return "not-applicable", ""
    if rest.compute == "gpu":
        return "different", "the body selects GPU types for a CPU endpoint"
    parts = [*_problems("legacy", legacy, "cpu"), *_problems("body", rest, "cpu")]
    if isinstance(rest.cpu, frozenset) and isinstance(legacy.cpu, frozenset):
        have = sorted(map(_pair, legacy.cpu))
        want = sorted(map(_pair, _resolve(rest.cpu, legacy.cpu)))
        parts.append(_sets(have, want))
    return _merge(parts)


def _plain(**labels: str) -> Callable[[Selection, Selection], _Part]:
    """Compare an aspect made of plain values (label=attribute): same when every body value is kept or
    equal, else each value that differs."""
    get = attrgetter(*labels.values())

    def compare(legacy: Selection, rest: Selection) -> _Part:
        if _kept_or_equal(get, legacy, rest):
            return _SAME
        pairs = zip(labels, get(legacy), get(rest), strict=True)
        return _merge([_value(label, have, want) for label, have, want in pairs])

    return compare


_workers = _plain(workersMin="workers_min", workersMax="workers_max")
_scaling = _plain(scalerType="scaler_type", scalerValue="scaler_value", idleTimeout="idle_timeout")


def _other(legacy: Selection, rest: Selection) -> _Part:
    if not legacy.problems and not rest.problems and _kept_or_equal(_OTHER, legacy, rest):
        return _SAME
    parts = [*_problems("legacy", legacy, "other"), *_problems("body", rest, "other")]
    parts += [
        _value("executionTimeoutMs", legacy.execution_timeout_ms, rest.execution_timeout_ms),
        _set_value("allowedCudaVersions", legacy.allowed_cuda, rest.allowed_cuda),
        _value("minCudaVersion", legacy.min_cuda, rest.min_cuda),
        _set_value("networkVolumes", legacy.volumes, rest.volumes),
        _value("templateId", legacy.template_id, rest.template_id),
        _value("name", legacy.name, rest.name),
    ]
    verdict, text = _merge(parts)
    return ("different" if verdict != "same" else "same"), text


def _reordered_only(legacy: Selection, rest: Selection) -> bool:
    """The body selects the same GPU types and count, in another priority order."""
    have, want = legacy.gpu_types, rest.gpu_types
    return (
        isinstance(have, tuple)
        and isinstance(want, tuple)
        and have != want
        and set(have) == set(want)
        and (rest.gpu_count is KEPT or rest.gpu_count == legacy.gpu_count)
        and not any(name == "gpu" for name, _ in (*legacy.problems, *rest.problems))
    )


_COMPARERS: tuple[tuple[Aspect, Callable[[Selection, Selection], _Part]], ...] = (
    ("gpu", _gpu),
    ("locations", _locations),
    ("flashboot", _flashboot),
    ("cpu", _cpu),
    ("scaling", _scaling),
    ("workers", _workers),
    ("other", _other),
)


def compare(legacy: Selection, rest: Selection) -> Equivalence:
    """Compare a legacy selection with a body's selection, aspect by aspect (see the module docstring)."""
    verdicts: dict[Aspect, Verdict] = {}
    details: list[tuple[Aspect, str]] = []
    for aspect, judge in _COMPARERS:
        verdict, text = judge(legacy, rest)
        verdicts[aspect] = verdict
        if text and verdict not in _OK:
            details.append((aspect, text))
    frozen: list[Aspect] = []
    unpinned: list[Aspect] = []
    reordered: tuple[Aspect, ...] = ()
    if verdicts["gpu"] == "different" and _reordered_only(legacy, rest):
        reordered = ("gpu",)
    if legacy.compute == "gpu" and isinstance(rest.gpu_types, tuple) and isinstance(rest.gpu_pools, tuple):
        pools = legacy.gpu_pools if isinstance(legacy.gpu_pools, tuple) else ()
        if any(pool not in rest.gpu_pools for pool in pools):
            frozen.append("gpu")
        if any(pool not in pools for pool in rest.gpu_pools):
            unpinned.append("gpu")
    if legacy.location_regions and isinstance(rest.data_centers, tuple):
        frozen.append("locations")
    return Equivalence(
        gpu=verdicts["gpu"],
        locations=verdicts["locations"],
        flashboot=verdicts["flashboot"],
        cpu=verdicts["cpu"],
        scaling=verdicts["scaling"],
        workers=verdicts["workers"],
        other=verdicts["other"],
        frozen=tuple(frozen),
        unpinned=tuple(unpinned),
        details=tuple(details),
        reordered=reordered,
    )
