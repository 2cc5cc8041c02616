"""Snapshots: the three accepted shapes, pool tables, unknown fields, broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FIXTURES, SAMPLE, sample_doc

from bridge.errors import SnapshotError
from bridge.snapshot import load_snapshot, parse_snapshot, select


def test_graphql_response_shape_with_pools() -> None:
    """The GraphQL response document gives endpoints and its pool table."""
    snap = load_snapshot(SAMPLE)
    assert len(snap.endpoints) == 16
    assert (
        snap.pools is not None
        and "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb" in snap.pools["ADA_48_PRO"]
    )


def test_endpoints_object_and_bare_list_shapes() -> None:
    """{"endpoints": [...]} and a bare list read the same endpoints."""
    endpoints = sample_doc()["data"]["myself"]["endpoints"]
    a = parse_snapshot({"endpoints": endpoints})
    b = parse_snapshot(endpoints)
    assert [e.id for e in a.endpoints] == [e.id for e in b.endpoints] == [e["id"] for e in endpoints]
    assert a.pools is None and b.pools is None


def test_docs_example_without_optional_fields() -> None:
    """The RunPod docs' own 'view your endpoints' answer reads, with unknown fields ignored."""
    doc = {
        "data": {
            "myself": {
                "endpoints": [
                    {
                        "gpuIds": "AMPERE_16",
                        "id": "i02xupws21hp6i",
                        "idleTimeout": 5,
                        "locations": "US",
                        "name": "Generated Endpoint -fb",
                        "networkVolumeId": None,
                        "pods": [],
                        "scalerType": "QUEUE_DELAY",
                        "scalerValue": 4,
                        "templateId": "xkhgg72fuo",
                        "workersMax": 0,
                        "workersMin": 0,
                    }
                ],
                "serverlessDiscount": None,
            }
        }
    }
    (ep,) = parse_snapshot(doc).endpoints
    assert ep.name == "Generated Endpoint -fb" and ep.flashBootType is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("snapshot-truncated.json", "not valid JSON"),
        ("snapshot-html.json", "an HTML page"),
        ("snapshot-no-endpoints.json", "data.myself.endpoints: missing"),
        ("snapshot-graphql-errors.json", "GraphQL error answer"),
        ("snapshot-wrong-type.json", "endpoint abc: gpuIds"),
        ("snapshot-missing-id.json", "endpoints[0]: id"),
        ("snapshot-duplicate-id.json", "endpoint dup: listed twice"),
        ("snapshot-bad-pools.json", "serverlessGpuPools[0]"),
        ("snapshot-graphql-errors-null-data.json", "GraphQL error answer"),
        ("snapshot-bool-as-int.json", "endpoint coerce1: idleTimeout: Input should be a valid integer"),
        ("snapshot-string-as-number.json", "endpoint coerce2: scalerValue: Input should be a valid integer"),
        ("snapshot-pool-dash-member.json", "serverlessGpuPools[0]: '-NVIDIA GeForce RTX 4090' is not a valid id"),
        ("snapshot-pool-twice.json", "serverlessGpuPools[1]: pool ADA_24 is listed twice"),
    ],
)
def test_broken_snapshot_names_file_and_problem(name: str, expected: str) -> None:
    """Each broken snapshot fails with one message naming the file and what is wrong."""
    path = FIXTURES / "bad" / name
    with pytest.raises(SnapshotError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


@pytest.mark.parametrize("doc", [42, "text", {"data": []}, {"endpoints": {"a": 1}}, {"foo": 1}])
def test_unexpected_documents(doc: object, tmp_path: Path) -> None:
    """Documents of any other shape are rejected with a clear error."""
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=str(path)):
        load_snapshot(path)


def test_deep_nesting_is_an_input_error(tmp_path: Path) -> None:
    """Pathologically nested JSON is an input error, not a crash."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SnapshotError):
        load_snapshot(path)


def test_select_filters_and_rejects_unknown_ids() -> None:
    """--endpoint keeps the named endpoints; an unknown id is an input error naming it."""
    snap = load_snapshot(SAMPLE)
    assert [e.id for e in select(snap.endpoints, ["anywhere000016"], "f")] == ["anywhere000016"]
    with pytest.raises(SnapshotError, match="endpoint nope is not in the account"):
        select(snap.endpoints, ["nope"], "f")
