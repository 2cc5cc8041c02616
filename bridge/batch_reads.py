"""Read many legacy endpoints per GraphQL request, with aliases, shrinking the batch when RunPod refuses it.

Past the 400-row cap of ``myself { endpoints }`` endpoints are read by id (SPEC §3.2, issue 17). One request
per endpoint spends the account's rate limit; one aliased document reads a whole batch::

    query EndpointBatch($e0: String!, $e1: String!) {
      myself {
        e0: endpoint(id: $e0) { ...LegacyEndpoint }
        e1: endpoint(id: $e1) { ...LegacyEndpoint }
      }
    }
    fragment LegacyEndpoint on Endpoint { ... }

The ids travel as variables (``String!``), never inside the document text, so no id can change the query. The
document is built as a graphql-core AST and printed, from the ``LegacyEndpoint`` fragment text the caller gives
(the shipped ``queries/endpoint_fields.graphql``, minus any fields dropped for schema drift).

:func:`read_batched` is transport-free: it takes ``send(document, variables) -> answer`` (the decoded GraphQL
answer, ``{"data": ..., "errors": [...]}``). When every error of an answer says the document is too complex
(:func:`is_too_complex`), the batch is split into smaller ones (:func:`smaller_size`: the size that fits when the
error names the limit and the cost, else half) that are sent again, and later batches start at the smaller size;
a single endpoint refused as too complex is an error. Other errors are the caller's: ``send`` may handle them
itself (raise :class:`Rebuild` after dropping a rejected field, to have the same ids sent again with a fresh
fragment) or let :func:`read_batched` raise :class:`BatchError` with the errors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
    parse,
    print_ast,
)
from graphql.language import ArgumentNode

from bridge._aio import gather_all
from bridge._resources import package_path
from bridge.errors import ApiError

__all__ = [
    "DEFAULT_BATCH",
    "OPERATION",
    "BatchError",
    "BatchRead",
    "Rebuild",
    "Send",
    "alias",
    "build_batch",
    "is_too_complex",
    "parse_batch",
    "read_batched",
    "smaller_size",
]

OPERATION = "EndpointBatch"
# Endpoints per request to start with. Each costs about 35 fields of the fragment; a refused batch halves.
DEFAULT_BATCH = 50
# Sends of one batch with a rebuilt document (schema drift) before giving up: one per droppable field at most.
MAX_REBUILDS = 40

# What GraphQL servers say when they refuse a document for its cost rather than its content: Apollo with
# graphql-query-complexity ("The query exceeds the maximum complexity of 500. Actual complexity is 612"),
# graphql-armor ("Aliases limit of 15 exceeded"), and the generic "query is too complex / too large".
_TOO_COMPLEX = re.compile(
    r"maximum (query )?complexity|complexity (limit|of \d+ exceeded|is too high)|query is too (complex|large|deep)"
    r"|too (many|complex) (aliases|fields)|aliases limit",
    re.IGNORECASE,
)

# graphql-query-complexity names both numbers: the batch can shrink straight to the size that fits.
_COMPLEXITY_NUMBERS = re.compile(r"maximum complexity of (\d+)\D+complexity is (\d+)", re.IGNORECASE)

Send = Callable[[str, dict[str, str]], Awaitable[Mapping[str, Any]]]
T = TypeVar("T")


class BatchError(ApiError):
    """A batched read failed: the answer carried errors other than "too complex", or had the wrong shape."""

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class Rebuild(Exception):
    """Raised by ``send`` after it changed the fragment (a field dropped for drift): build and send again."""


def alias(index: int) -> str:
    """The alias (and variable name) of the ``index``-th endpoint of a batch: ``e0``, ``e1``, ..."""
    return f"e{index}"


def _name(value: str) -> NameNode:
    return NameNode(value=value)


def _fragment(text: str) -> FragmentDefinitionNode:
    definitions = [d for d in parse(text).definitions if isinstance(d, FragmentDefinitionNode)]
    if len(definitions) != 1:
        raise ValueError("the endpoint fragment text must hold exactly one fragment definition")
    return definitions[0]


def default_fragment() -> str:
    """The shipped ``LegacyEndpoint`` fragment (``bridge/queries/endpoint_fields.graphql``)."""
    return package_path("queries", "endpoint_fields.graphql").read_text(encoding="utf-8")


def build_batch(ids: Sequence[str], fragment_text: str | None = None) -> tuple[str, dict[str, str]]:
    """The aliased document reading ``ids`` (in order, ``e0`` ...) and its variables, ``{"e0": id, ...}``."""
    if not ids:
        raise ValueError("build_batch: no endpoint ids")
    document = _document(len(ids), fragment_text if fragment_text is not None else default_fragment())
    return document, {alias(i): endpoint_id for i, endpoint_id in enumerate(ids)}


@lru_cache(maxsize=64)
def _document(count: int, fragment_text: str) -> str:
    # The text depends only on how many reads and which fragment (the ids are variables): a 1,000-endpoint read
    # prints it once, not once per batch (printing a 50-read AST costs about 6 ms, between the reads and the
    # first write).
    fragment = _fragment(fragment_text)
    spread = SelectionSetNode(selections=(FragmentSpreadNode(name=fragment.name, directives=()),))
    string = NonNullTypeNode(type=NamedTypeNode(name=_name("String")))
    variables = tuple(
        VariableDefinitionNode(variable=VariableNode(name=_name(alias(i))), type=string, directives=())
        for i in range(count)
    )
    reads = tuple(
        FieldNode(
            alias=_name(alias(i)),
            name=_name("endpoint"),
            arguments=(ArgumentNode(name=_name("id"), value=VariableNode(name=_name(alias(i)))),),
            directives=(),
            selection_set=spread,
        )
        for i in range(count)
    )
    myself = FieldNode(
        name=_name("myself"), arguments=(), directives=(), selection_set=SelectionSetNode(selections=reads)
    )
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY,
        name=_name(OPERATION),
        variable_definitions=variables,
        directives=(),
        selection_set=SelectionSetNode(selections=(myself,)),
    )
    return print_ast(DocumentNode(definitions=(operation, fragment)))


def parse_batch(data: Any, ids: Sequence[str], where: str = OPERATION) -> dict[str, dict[str, Any] | None]:
    """The records of an aliased answer's ``data``, by id: a dict, or None when the account has no such endpoint.

    Raises :class:`BatchError` when ``myself`` or an alias is missing, a record is not an object, or a record
    answers another id than the one asked for.
    """
    myself = data.get("myself") if isinstance(data, Mapping) else None
    if not isinstance(myself, Mapping):
        raise BatchError(f"{where}: the answer has no myself object (was the API key accepted?)")
    records: dict[str, dict[str, Any] | None] = {}
    for i, endpoint_id in enumerate(ids):
        key = alias(i)
        if key not in myself:
            raise BatchError(f"{where}: the answer lacks {key} (endpoint {endpoint_id})")
        row = myself[key]
        if row is None:
            records[endpoint_id] = None
            continue
        if not isinstance(row, Mapping) or row.get("id") != endpoint_id:
            have = row.get("id") if isinstance(row, Mapping) else type(row).__name__
            raise BatchError(f"{where}: {key} asked for endpoint {endpoint_id} and answered {have!r}")
        records[endpoint_id] = dict(row)
    return records


def _errors(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    errors = answer.get("errors")
    if not errors:
        return []
    if not isinstance(errors, list):
        return [{"message": str(errors)}]
    return [e if isinstance(e, Mapping) else {"message": str(e)} for e in errors]


def is_too_complex(errors: Iterable[Mapping[str, Any]]) -> bool:
    """True when there are errors and every one refuses the document for its size or cost."""
    errors = list(errors)
    return bool(errors) and all(_TOO_COMPLEX.search(str(e.get("message", ""))) for e in errors)


def smaller_size(size: int, errors: Iterable[Mapping[str, Any]]) -> int:
    """The batch size to try after a batch of ``size`` was refused as too complex.

    When the error names the limit and the document's cost ("maximum complexity of L. Actual complexity is A"),
    the size that fits: the cost grows by the same amount with each read, so ``size * L // A`` reads cost at most
    L. Otherwise, half.
    """
    half = max(1, (size + 1) // 2) if size > 1 else 1
    for error in errors:
        match = _COMPLEXITY_NUMBERS.search(str(error.get("message", "")))
        if match and int(match.group(2)) > int(match.group(1)) > 0:
            return max(1, min(size - 1, size * int(match.group(1)) // int(match.group(2))))
    return min(half, size - 1) if size > 1 else 1


@dataclass
class BatchRead:
    """What :func:`read_batched` found: each id's record (None: no such endpoint), and how it got there."""

    records: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    size: int = DEFAULT_BATCH  # the batch size it ended with
    requests: int = 0  # documents sent, refused ones included
    refused: int = 0  # documents refused as too complex

    @property
    def shrunk(self) -> bool:
        return self.refused > 0


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def read_batched(
    ids: Sequence[str],
    send: Send,
    *,
    fragment: Callable[[], str] = default_fragment,
    size: int = DEFAULT_BATCH,
    where: str = OPERATION,
) -> BatchRead:
    """Read ``ids`` (duplicates once) in aliased batches of at most ``size`` through ``send``.

    The first batch is sent alone, to learn the size the server accepts; the rest are sent concurrently
    (``send`` is expected to bound its own concurrency, as bridge's ``Http`` does). A batch refused as too
    complex is split in half, down to one endpoint; the size reached applies to every batch built after it.
    ``fragment`` is called for each document, so a field ``send`` drops (then raising :class:`Rebuild`) is
    left out of the next one.
    """
    if size < 1:
        raise ValueError("read_batched: size must be at least 1")
    todo = list(dict.fromkeys(ids))
    result = BatchRead(size=size)

    async def one(chunk: Sequence[str]) -> None:
        rebuilds = 0
        while True:
            document, variables = build_batch(chunk, fragment())
            result.requests += 1
            try:
                answer = await send(document, variables)
            except Rebuild:
                rebuilds += 1
                if rebuilds > MAX_REBUILDS:
                    raise BatchError(f"{where}: the document kept changing ({rebuilds} rebuilds)") from None
                continue
            break
        errors = _errors(answer)
        if is_too_complex(errors):
            result.refused += 1
            if len(chunk) == 1:
                message = "; ".join(str(e.get("message", "")) for e in errors)[:300]
                raise BatchError(f"{where}: RunPod refuses even one endpoint per document as too complex: {message}")
            result.size = min(result.size, smaller_size(len(chunk), errors))
            await gather_all(one(part) for part in _chunks(chunk, result.size))
            return
        if errors:
            message = "; ".join(dict.fromkeys(str(e.get("message", "")).strip() for e in errors))[:300]
            raise BatchError(f"{where}: {message}", errors)
        result.records.update(parse_batch(answer.get("data"), chunk, where))

    if todo:
        await one(todo[:size])
        await gather_all(one(chunk) for chunk in _chunks(todo[size:], result.size))
    # The order of the ids asked for, whatever order the batches came back in.
    result.records = {i: result.records[i] for i in todo}
    return result
