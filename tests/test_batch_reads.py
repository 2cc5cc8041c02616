"""Aliased batch reads of legacy endpoints (bridge.batch_reads), against the emulator over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from conftest import EMULATOR_KEY
from graphql import FieldNode, OperationDefinitionNode, parse, validate

from bridge.batch_reads import (
    BatchError,
    Rebuild,
    build_batch,
    default_fragment,
    is_too_complex,
    parse_batch,
    read_batched,
    smaller_size,
)
from bridge.emulator import Emulator
from bridge.emulator.generate import generate_account
from bridge.emulator.graphql_api import complexity
from bridge.source import Fragment

MakeEmulator = Callable[..., Emulator]
ENDPOINT_QUERY = (
    default_fragment()
    + """
query Endpoint($id: String!) { myself { endpoint(id: $id) { ...LegacyEndpoint } } }
"""
)


def _sender(emu: Emulator, log: list[dict[str, Any]]) -> Any:
    """A ``send`` that POSTs the document to the emulator and returns the decoded answer, logging each one."""

    async def send(document: str, variables: dict[str, str]) -> Mapping[str, Any]:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {EMULATOR_KEY}"}) as client:
            answer = await client.post(f"{emu.url}/graphql", json={"query": document, "variables": variables})
        doc: dict[str, Any] = answer.json()
        log.append({"status": answer.status_code, "size": len(variables), "answer": doc})
        return doc

    return send


def _one(emu: Emulator, endpoint_id: str) -> Any:
    answer = httpx.post(
        f"{emu.url}/graphql",
        json={"query": ENDPOINT_QUERY, "variables": {"id": endpoint_id}},
        headers={"Authorization": f"Bearer {EMULATOR_KEY}"},
    )
    return answer.json()["data"]["myself"]["endpoint"]


@pytest.fixture
def big(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator(generate_account(60, seed=7))


def test_build_batch_aliases_one_read_per_id_and_passes_ids_as_variables(emulator: Emulator) -> None:
    hostile = 'x") { id } } mutation { deleteEndpoint(id: "y'
    document, variables = build_batch(["ep-1", hostile, "ep-3"])
    assert variables == {"e0": "ep-1", "e1": hostile, "e2": "ep-3"}
    assert hostile not in document and "ep-1" not in document  # ids travel only as variables
    tree = parse(document)
    assert not validate(emulator.graphql.schema, tree)
    operation = next(d for d in tree.definitions if isinstance(d, OperationDefinitionNode))
    assert [v.variable.name.value for v in operation.variable_definitions] == ["e0", "e1", "e2"]
    myself = operation.selection_set.selections[0]
    assert isinstance(myself, FieldNode) and myself.name.value == "myself" and myself.selection_set
    reads = [s for s in myself.selection_set.selections if isinstance(s, FieldNode)]
    assert [(r.alias.value if r.alias else None, r.name.value) for r in reads] == [
        ("e0", "endpoint"),
        ("e1", "endpoint"),
        ("e2", "endpoint"),
    ]
    with pytest.raises(ValueError):
        build_batch([])


def test_batched_read_answers_what_single_reads_answer(big: Emulator) -> None:
    ids = [*sorted(big.state)[:25], "no-such-endpoint"]
    log: list[dict[str, Any]] = []
    result = asyncio.run(read_batched([*ids, ids[0]], _sender(big, log), size=10))
    assert list(result.records) == ids  # asked order, duplicate once
    assert result.records["no-such-endpoint"] is None
    for endpoint_id in ids[:-1]:
        assert result.records[endpoint_id] == _one(big, endpoint_id)
    assert result.requests == len(log) == 3 and not result.shrunk
    assert sorted(entry["size"] for entry in log) == [6, 10, 10]  # the first alone, then the rest concurrently


def test_emulator_refuses_a_document_over_its_complexity_limit_like_apollo(big: Emulator) -> None:
    document, variables = build_batch(sorted(big.state)[:4])
    cost = complexity(parse(document))
    big.graphql.max_complexity = cost - 1
    answer = httpx.post(
        f"{big.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {EMULATOR_KEY}"},
    )
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["message"] == f"The query exceeds the maximum complexity of {cost - 1}. Actual complexity is {cost}"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert is_too_complex(answer.json()["errors"])
    big.graphql.max_complexity = cost
    assert (
        httpx.post(
            f"{big.url}/graphql",
            json={"query": document, "variables": variables},
            headers={"Authorization": f"Bearer {EMULATOR_KEY}"},
        ).json()["data"]["myself"]["e3"]["id"]
        == sorted(big.state)[3]
    )


def test_complexity_grows_with_each_aliased_read() -> None:
    one = complexity(parse(build_batch(["a"])[0]))
    assert complexity(parse(build_batch(["a", "b", "c"])[0])) == 1 + 3 * (one - 1)


def test_a_refused_batch_shrinks_and_later_batches_start_smaller(big: Emulator) -> None:
    ids = sorted(big.state)[:40]
    fits = complexity(parse(build_batch(ids[:7])[0]))  # 7 reads fit, 8 do not
    big.graphql.max_complexity = fits
    log: list[dict[str, Any]] = []
    result = asyncio.run(read_batched(ids, _sender(big, log), size=16))
    assert list(result.records) == ids and all(result.records[i] == _one(big, i) for i in ids)
    # The error names the limit and the cost: one refusal, then straight to the size that fits.
    assert result.shrunk and result.size == 7
    assert [entry["size"] for entry in log if entry["status"] == 400] == [16]
    assert sorted(entry["size"] for entry in log if entry["status"] == 200) == [2, 3, 7, 7, 7, 7, 7]
    assert result.requests == len(log) == 8 and result.refused == 1


def test_without_numbers_in_the_error_a_refused_batch_halves(big: Emulator) -> None:
    ids = sorted(big.state)[:20]
    inner = _sender(big, [])
    sizes: list[int] = []

    async def send(document: str, variables: dict[str, str]) -> Mapping[str, Any]:
        sizes.append(len(variables))
        if len(variables) > 5:
            return {"errors": [{"message": "Query is too complex", "extensions": {"code": "BAD_USER_INPUT"}}]}
        return await inner(document, variables)

    result = asyncio.run(read_batched(ids, send, size=12))
    assert sizes[:3] == [12, 6, 6] and result.size == 3 and result.refused == 3
    assert list(result.records) == ids and all(r is not None for r in result.records.values())
    assert smaller_size(1, []) == 1 and smaller_size(2, []) == 1 and smaller_size(9, []) == 5


def test_one_endpoint_refused_as_too_complex_is_an_error(big: Emulator) -> None:
    big.graphql.max_complexity = 3
    with pytest.raises(BatchError, match="refuses even one endpoint per document as too complex"):
        asyncio.run(read_batched(sorted(big.state)[:4], _sender(big, []), size=4))


def test_send_can_drop_a_rejected_field_and_have_the_batch_rebuilt(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_account(12, seed=3), drop_fields=["workersStandby"])
    fragment = Fragment(default_fragment())
    inner = _sender(emu, [])

    async def send(document: str, variables: dict[str, str]) -> Mapping[str, Any]:
        answer = await inner(document, variables)
        for error in answer.get("errors") or []:
            if 'Cannot query field "workersStandby"' in error["message"]:
                fragment.drop("Endpoint", "workersStandby")
                raise Rebuild
        return answer

    ids = sorted(emu.state)
    result = asyncio.run(read_batched(ids, send, fragment=fragment.text, size=5))
    assert fragment.dropped == ["Endpoint.workersStandby"]
    assert all(r is not None and "workersStandby" not in r and r["id"] == i for i, r in result.records.items())
    assert result.requests == 4  # the first batch twice, then two more


def test_other_errors_are_raised_with_the_errors(big: Emulator) -> None:
    async def send(document: str, variables: dict[str, str]) -> Mapping[str, Any]:
        return {"data": None, "errors": [{"message": "Something broke", "path": ["myself", "e0"]}]}

    with pytest.raises(BatchError, match="Something broke") as caught:
        asyncio.run(read_batched(["a", "b"], send))
    assert caught.value.errors[0]["path"] == ["myself", "e0"]


def test_parse_batch_refuses_answers_of_the_wrong_shape() -> None:
    assert parse_batch({"myself": {"e0": {"id": "a", "name": "x"}, "e1": None}}, ["a", "b"]) == {
        "a": {"id": "a", "name": "x"},
        "b": None,
    }
    with pytest.raises(BatchError, match="no myself object"):
        parse_batch({"myself": None}, ["a"])
    with pytest.raises(BatchError, match="lacks e1"):
        parse_batch({"myself": {"e0": None}}, ["a", "b"])
    with pytest.raises(BatchError, match="asked for endpoint a and answered 'b'"):
        parse_batch({"myself": {"e0": {"id": "b"}}}, ["a"])
    with pytest.raises(BatchError, match="answered 'list'"):
        parse_batch({"myself": {"e0": []}}, ["a"])


@pytest.mark.parametrize(
    ("message", "too_complex"),
    [
        ("The query exceeds the maximum complexity of 500. Actual complexity is 612", True),
        ("Query is too complex: 1200. Maximum allowed complexity: 1000", True),
        ("Syntax Error: Aliases limit of 15 exceeded, found 16.", True),
        ('Cannot query field "workersStandby" on type "Endpoint".', False),
        ("Too many requests", False),
    ],
)
def test_is_too_complex_reads_the_usual_wordings(message: str, too_complex: bool) -> None:
    assert is_too_complex([{"message": message}]) is too_complex
    assert not is_too_complex([])
    assert not is_too_complex([{"message": message}, {"message": "Something else"}])  # every error must say so
