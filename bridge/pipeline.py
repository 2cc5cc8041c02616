"""The whole dry run in one call: read (snapshot or live), build tables, plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.models import Finding, LegacyEndpoint, Plan, Target
from bridge.plan import build_plan
from bridge.snapshot import load_snapshot, select
from bridge.tables import Override, Tables, build_tables, load_override
from bridge.translate import Rule

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.http import Http
    from bridge.live import LiveAccount

__all__ = ["PlanInputs", "make_plan", "read_account_for_plan", "read_account_live"]


@dataclass
class PlanInputs:
    """What a plan is made from: legacy endpoints, tables, and the REST state when read live."""

    endpoints: list[LegacyEndpoint]
    tables: Tables
    rest_state: dict[str, dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    extra_findings: dict[str, list[Finding]] = field(default_factory=dict)


def read_account_for_plan(
    *,
    from_file: str | Path | None = None,
    settings: Settings | None = None,
    mappings: Sequence[str | Path | Override] = (),
    endpoint_ids: Sequence[str] = (),
    target: Target = "v1",
    with_rest_state: bool = True,
) -> PlanInputs:
    """Read the account from ``from_file`` or, without one, live with ``settings``."""
    overrides = [m if isinstance(m, Override) else load_override(m) for m in mappings]
    if from_file is not None:
        snapshot = load_snapshot(from_file)
        tables = build_tables(pools=snapshot.pools, pool_source="snapshot", overrides=overrides)
        return PlanInputs(select(snapshot.endpoints, endpoint_ids, str(from_file)), tables)
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
    target: Target = "v1",
) -> PlanInputs:
    """Read the live account over an open session, so that a run's writes keep the pacing its reads learned."""
    from bridge.live import read_live

    overrides = [m if isinstance(m, Override) else load_override(m) for m in mappings]
    return _live_account(await read_live(http, target=target, endpoint_ids=endpoint_ids), overrides)


def _live_account(live: LiveAccount, overrides: Sequence[Override]) -> PlanInputs:
    tables = (
        build_tables(pools=live.pools, pool_source="live", overrides=overrides)
        if live.pools is not None
        else build_tables(overrides=overrides)
    )
    return PlanInputs(
        endpoints=live.endpoints,
        tables=tables,
        rest_state=live.rest_state,
        notes=list(live.notes),
        extra_findings=dict(live.extra_findings),
    )


def make_plan(
    account: PlanInputs,
    *,
    target: Target = "v1",
    keep_fb_suffix: bool = False,
    rules: Sequence[Rule] = (),
    generated_at: str | None = None,
) -> Plan:
    """Plan ``account`` for ``target``."""
    return build_plan(
        account.endpoints,
        account.tables,
        target=target,
        rest_state=account.rest_state,
        keep_fb_suffix=keep_fb_suffix,
        rules=rules,
        generated_at=generated_at,
        extra_findings=account.extra_findings,
    )
