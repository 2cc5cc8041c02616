"""The whole dry run in one call: read (snapshot or live), build tables, plan.

Tables, later wins: bundled -> the snapshot's or the live read's (v2 catalogs first; GraphQL
``serverlessGpuPools`` for the pools when the GPU catalog is missing) -> ``--mappings`` overrides.
The target: an explicit ``v1``/``v2`` is kept; ``auto`` is v1 offline and, live, whatever the read found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.catalogs import Catalogs, apply_catalogs, pool_disagreement_findings, pool_disagreements
from bridge.models import Finding, LegacyEndpoint, Plan, Target, TargetChoice
from bridge.plan import build_plan
from bridge.snapshot import load_snapshot, select
from bridge.tables import Override, PoolSource, Tables, build_tables, bundled_tables, load_override
from bridge.translate import Rule

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.http import Http
    from bridge.live import LiveAccount

OFFLINE_REASON = "auto: an offline plan (--from) writes REST v1 bodies"

__all__ = ["PlanInputs", "make_plan", "read_account_for_plan", "read_account_live"]


@dataclass
class PlanInputs:
    """What a plan is made from: legacy endpoints, tables, and the REST state when read live."""

    endpoints: list[LegacyEndpoint]
    tables: Tables
    rest_state: dict[str, dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    extra_findings: dict[str, list[Finding]] = field(default_factory=dict)
    target: Target = "v1"
    target_reason: str | None = None


def layered_tables(
    *,
    catalogs: Catalogs,
    pools: dict[str, list[str]] | None,
    source: PoolSource,
    overrides: Sequence[Override],
    endpoints: Sequence[LegacyEndpoint] = (),
) -> tuple[Tables, list[str], dict[str, list[Finding]]]:
    """Tables from a snapshot's or a live read's catalogs and pool table, then ``overrides``.

    Returns the tables, notes, and the findings of endpoints whose pools the two pool sources disagree on.
    """
    label = "live v2 catalog" if source == "live" else "snapshot"
    base, notes = apply_catalogs(bundled_tables(), catalogs, label)
    catalog_pools = catalogs.pools
    findings: dict[str, list[Finding]] = {}
    if catalog_pools is not None and pools is not None:
        findings = pool_disagreement_findings(endpoints, pool_disagreements(catalog_pools, pools))
    chosen = catalog_pools if catalog_pools is not None else pools
    pool_label = label if catalog_pools is not None or source == "snapshot" else "live GraphQL serverlessGpuPools"
    if chosen is None:
        return build_tables(base=base, overrides=overrides), notes, findings
    tables = build_tables(
        base=base, pools=chosen, pool_source=source, overrides=overrides, sources={"pools": pool_label}
    )
    return tables, notes, findings


def read_account_for_plan(
    *,
    from_file: str | Path | None = None,
    settings: Settings | None = None,
    mappings: Sequence[str | Path | Override] = (),
    endpoint_ids: Sequence[str] = (),
    target: TargetChoice = "auto",
    with_rest_state: bool = True,
) -> PlanInputs:
    """Read the account from ``from_file`` or, without one, live with ``settings``."""
    overrides = [m if isinstance(m, Override) else load_override(m) for m in mappings]
    if from_file is not None:
        snapshot = load_snapshot(from_file)
        endpoints = select(snapshot.endpoints, endpoint_ids, str(from_file))
        tables, notes, findings = layered_tables(
            catalogs=snapshot.catalogs,
            pools=snapshot.pools,
            source="snapshot",
            overrides=overrides,
            endpoints=endpoints,
        )
        concrete: Target = "v1" if target == "auto" else target
        reason = OFFLINE_REASON if target == "auto" else f"--target {target}"
        return PlanInputs(
            endpoints, tables, notes=notes, extra_findings=findings, target=concrete, target_reason=reason
        )
    if settings is None:
        raise ValueError("give from_file or settings")
    from bridge.live import read_live_account

    live = read_live_account(settings, target=target, endpoint_ids=endpoint_ids, with_rest_state=with_rest_state)
    return _live_account(live, overrides)


async def read_account_live(
    http: Http,
    *,
    mappings: Sequence[str | Path | Override] = (),
    endpoint_ids: Sequence[str] = (),
    target: TargetChoice = "auto",
) -> PlanInputs:
    """Read the live account over an open session, so that a run's writes keep the pacing its reads learned."""
    from bridge.live import read_live

    overrides = [m if isinstance(m, Override) else load_override(m) for m in mappings]
    return _live_account(await read_live(http, target=target, endpoint_ids=endpoint_ids), overrides)


def _live_account(live: LiveAccount, overrides: Sequence[Override]) -> PlanInputs:
    tables, notes, findings = layered_tables(
        catalogs=live.catalogs, pools=live.pools, source="live", overrides=overrides, endpoints=live.endpoints
    )
    extra = dict(live.extra_findings)
    for endpoint_id, more in findings.items():
        extra[endpoint_id] = [*extra.get(endpoint_id, ()), *more]
    return PlanInputs(
        endpoints=live.endpoints,
        tables=tables,
        rest_state=live.rest_state,
        notes=[*live.notes, *notes],
        extra_findings=extra,
        target=live.target,
        target_reason=live.target_reason,
    )


def make_plan(
    account: PlanInputs,
    *,
    target: TargetChoice = "auto",
    keep_fb_suffix: bool = False,
    rules: Sequence[Rule] = (),
    generated_at: str | None = None,
) -> Plan:
    """Plan ``account`` for ``target`` (``auto``: the target the read settled on, ``account.target``)."""
    concrete: Target = account.target if target == "auto" else target
    reason = account.target_reason if concrete == account.target else f"--target {concrete}"
    return build_plan(
        account.endpoints,
        account.tables,
        target=concrete,
        target_reason=reason,
        rest_state=account.rest_state,
        keep_fb_suffix=keep_fb_suffix,
        rules=rules,
        generated_at=generated_at,
        extra_findings=account.extra_findings,
    )
