"""The legacy GraphQL API: ``schema.graphql`` executed with graphql-core over the emulated account.

Errors follow Apollo Server, which RunPod runs: a document that does not parse or validate is answered
400 with ``{"errors": [{"message", "locations", "extensions": {"code": ...}}]}``; execution errors come
back 200 beside ``data``. Introspection is refused, as in production.

A complexity limit (``max_complexity``, off by default) refuses a document whose cost is too high, the way an
Apollo server with graphql-query-complexity does: 400, ``GRAPHQL_VALIDATION_FAILED``, "The query exceeds the
maximum complexity of N. Actual complexity is M". The cost is the simple estimator's: one per field selected,
fragments expanded where they are spread, so an aliased batch of k endpoint reads costs about k times the
fragment's fields.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from bridge._resources import package_path
from bridge.emulator.records import GRAPHQL_CAP, USER_ID, is_cpu, template_of
from bridge.emulator.state import Account

__all__ = ["GraphQLApi", "GraphQLReply", "complexity"]

GraphQLReply = tuple[int, dict[str, Any]]

_CACHE_SIZE = 256
# graphql-core quotes names with '...'; graphql-js (Apollo, RunPod) writes "...".
_QUOTED_NAME = re.compile(r"'([^'\s]+)'")


def _myself(_root: Any, _info: GraphQLResolveInfo[Account]) -> dict[str, Any]:
    return {"id": USER_ID, "email": "emulator@example.invalid"}


def _endpoints(_user: Any, info: GraphQLResolveInfo[Account]) -> list[dict[str, Any]]:
    return info.context.ordered(0, GRAPHQL_CAP)


def _endpoint(_user: Any, info: GraphQLResolveInfo[Account], id: str) -> dict[str, Any] | None:
    return info.context.find(id)


def _pools(_root: Any, info: GraphQLResolveInfo[Account]) -> list[dict[str, Any]]:
    return info.context.pool_list()


def _compute_type(record: Mapping[str, Any], _info: GraphQLResolveInfo[Account]) -> str:
    return "CPU" if is_cpu(record) else "GPU"


def _template(record: Mapping[str, Any], _info: GraphQLResolveInfo[Account]) -> dict[str, Any] | None:
    if record.get("templateId") is None and record.get("template") is None:
        return None
    return template_of(record)


def _network_volume(record: Mapping[str, Any], _info: GraphQLResolveInfo[Account]) -> dict[str, Any] | None:
    volume = record.get("networkVolumeId")
    return {"id": volume, "dataCenterId": None} if volume else None


def _pods(record: Mapping[str, Any], _info: GraphQLResolveInfo[Account]) -> list[Any]:
    pods = record.get("pods")
    return list(pods) if isinstance(pods, list) else []


def _user_id(record: Mapping[str, Any], _info: GraphQLResolveInfo[Account]) -> str:
    return str(record.get("userId") or USER_ID)


_RESOLVERS: dict[tuple[str, str], Any] = {
    ("Query", "myself"): _myself,
    ("Query", "serverlessGpuPools"): _pools,
    ("User", "endpoints"): _endpoints,
    ("User", "endpoint"): _endpoint,
    ("Endpoint", "computeType"): _compute_type,
    ("Endpoint", "template"): _template,
    ("Endpoint", "networkVolume"): _network_volume,
    ("Endpoint", "pods"): _pods,
    ("Endpoint", "userId"): _user_id,
}


def _object_type(schema: GraphQLSchema, name: str) -> GraphQLObjectType:
    graphql_type = schema.type_map[name]
    if not isinstance(graphql_type, GraphQLObjectType):
        raise ValueError(f"{name} is not an object type")
    return graphql_type


def build(drop_fields: Iterable[str] = ()) -> GraphQLSchema:
    """Build the schema, minus ``drop_fields`` (``"workersStandby"`` or ``"Type.field"``)."""
    schema = build_schema(package_path("emulator", "schema.graphql").read_text(encoding="utf-8"))
    for (type_name, field_name), resolver in _RESOLVERS.items():
        _object_type(schema, type_name).fields[field_name].resolve = resolver
    for spec in drop_fields:
        type_name, _, field_name = spec.rpartition(".")
        type_name = type_name or "Endpoint"
        fields = _object_type(schema, type_name).fields if type_name in schema.type_map else {}
        if field_name not in fields:
            raise ValueError(f"drop_fields: {spec!r} is not a field of the emulator's schema")
        if (type_name, field_name) == ("Endpoint", "id"):
            raise ValueError("drop_fields: Endpoint.id cannot be removed")
        del fields[field_name]
    return schema


def _error(message: str, code: str, locations: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if locations:
        error["locations"] = locations
    error["extensions"] = {"code": code}
    return error


def _formatted(errors: Iterable[GraphQLError], code: str) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item: dict[str, Any] = dict(err.formatted)
        item["message"] = _QUOTED_NAME.sub(r'"\1"', str(item["message"]))
        item["extensions"] = {**dict(item.get("extensions") or {}), "code": code}
        out.append(item)
    return out


def complexity(document: DocumentNode, operation_name: str | None = None) -> int:
    """The cost of the operation (named, else the largest): one per field selected, fragments expanded."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def cost(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += 1 + cost(selection.selection_set, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += cost(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:  # a cycle does not validate anyway
                    total += cost(fragments[name].selection_set, seen | {name})
        return total

    costs = [
        cost(d.selection_set, frozenset())
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    ]
    return max(costs, default=0)


def too_complex_error(limit: int, actual: int) -> dict[str, Any]:
    """The error an Apollo server with graphql-query-complexity answers for a document over its limit."""
    return _error(
        f"The query exceeds the maximum complexity of {limit}. Actual complexity is {actual}",
        "GRAPHQL_VALIDATION_FAILED",
    )


class GraphQLApi:
    """Execute GraphQL requests; parsed and validated documents are cached by their text."""

    def __init__(
        self,
        account: Account,
        *,
        drop_fields: Iterable[str] = (),
        introspection: bool = False,
        max_complexity: int | None = None,
    ) -> None:
        self.account = account
        self.max_complexity = max_complexity  # None: no limit
        self.schema = build(drop_fields)
        self._rules = tuple(specified_rules) + (() if introspection else (NoSchemaIntrospectionCustomRule,))
        self._cache: OrderedDict[str, tuple[DocumentNode | None, list[dict[str, Any]], int]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _prepare(self, query: str) -> tuple[DocumentNode | None, list[dict[str, Any]], int]:
        with self._cache_lock:
            hit = self._cache.get(query)
            if hit is not None:
                self._cache.move_to_end(query)
                return hit
        try:
            document = parse(query)
        except GraphQLError as exc:
            prepared: tuple[DocumentNode | None, list[dict[str, Any]], int] = (
                None,
                _formatted([exc], "GRAPHQL_PARSE_FAILED"),
                400,
            )
        else:
            errors = validate(self.schema, document, self._rules)
            prepared = (None, _formatted(errors, "GRAPHQL_VALIDATION_FAILED"), 400) if errors else (document, [], 200)
        with self._cache_lock:
            self._cache[query] = prepared
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return prepared

    def execute(self, request: Any, *, max_complexity: int | None = None) -> GraphQLReply:
        """Run one request body (``{"query", "variables", "operationName"}``); return (status, JSON body).

        ``max_complexity`` (else :attr:`max_complexity`) refuses a document that costs more with 400.
        """
        if not isinstance(request, dict):
            return 400, {"errors": [_error("POST body must be a JSON object", "BAD_REQUEST")]}
        query = request.get("query")
        if not isinstance(query, str) or not query.strip():
            return 400, {"errors": [_error("GraphQL operations must contain a non-empty `query`.", "BAD_REQUEST")]}
        variables = request.get("variables")
        operation = request.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            return 400, {"errors": [_error("`variables` must be an object", "BAD_REQUEST")]}
        if operation is not None and not isinstance(operation, str):
            return 400, {"errors": [_error("`operationName` must be a string", "BAD_REQUEST")]}
        document, errors, status = self._prepare(query)
        if document is None:
            return status, {"errors": errors}
        limit = max_complexity if max_complexity is not None else self.max_complexity
        if limit is not None:
            cost = complexity(document, operation)
            if cost > limit:
                return 400, {"errors": [too_complex_error(limit, cost)]}
        result = execute_sync(
            self.schema,
            document,
            context_value=self.account,
            variable_values=variables,
            operation_name=operation,
        )
        if result.data is None and result.errors:
            return 400, {"errors": _formatted(result.errors, "BAD_USER_INPUT")}
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = _formatted(result.errors, "INTERNAL_SERVER_ERROR")
        return 200, body
