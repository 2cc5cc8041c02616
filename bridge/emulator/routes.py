"""The API handlers behind the emulator's routing: GraphQL, REST v1, REST v2 (with the catalogs) and the
``/_emulator`` inspection paths. Each takes the ``Emulator`` and a parsed request and returns a ``Reply``;
auth, faults and the request log are handled before them (``http_server.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from bridge.emulator.catalog import CatalogError
from bridge.emulator.replies import Reply, decode_cursor, encode_cursor, gql_error, json_body, problem, v1_error
from bridge.emulator.schemas import v1_update_errors, v2_update_errors
from bridge.emulator.state import RuleError, UnknownEndpointError

if TYPE_CHECKING:
    from bridge.emulator.server import Emulator

__all__ = ["admin", "graphql", "v1", "v2"]


def graphql(emulator: Emulator, method: str, query: Mapping[str, list[str]], body: bytes) -> Reply:
    if method == "GET":
        request: Any = {"query": (query.get("query") or [""])[0]}
        if query.get("operationName"):
            request["operationName"] = query["operationName"][0]
        if query.get("variables"):
            ok, request["variables"] = json_body(query["variables"][0].encode())
            if not ok:
                return gql_error(400, "`variables` is not valid JSON", "BAD_REQUEST")
    elif method == "POST":
        ok, request = json_body(body)
        if not ok:
            return gql_error(400, "POST body is not valid JSON", "BAD_REQUEST")
    else:
        reply = gql_error(405, f"{method} is not supported: use POST", "METHOD_NOT_ALLOWED")
        reply.headers.append(("Allow", "GET, POST"))
        return reply
    status, result = emulator.graphql.execute(request, max_complexity=emulator.faults.graphql_max_complexity)
    return Reply(status, result)


def v1(emulator: Emulator, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> Reply:
    account = emulator.account
    parts = [unquote(p) for p in path.split("/")[2:]]
    template = (query.get("includeTemplate") or ["false"])[0].lower() == "true"
    workers = (query.get("includeWorkers") or ["false"])[0].lower() == "true"
    if parts == ["endpoints"]:
        if method != "GET":
            return v1_error(405, f"{method} /v1/endpoints is not supported by the emulator")
        views = [account.v1_view(rec, include_template=template) for rec in account.ordered()]
        if workers:
            for view in views:
                view["workers"] = []
        return Reply(200, views)
    if len(parts) == 2 and parts[0] == "endpoints" and method in ("GET", "PATCH"):
        endpoint_id = parts[1]
        if method == "GET":
            record = account.find(endpoint_id)
            if record is None:
                return v1_error(404, "endpoint not found")
            view = account.v1_view(record, include_template=template)
            if workers:
                view["workers"] = []
            return Reply(200, view)
        return v1_update(emulator, endpoint_id, body)
    if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "update" and method == "POST":
        return v1_update(emulator, parts[1], body)
    if parts[:1] == ["endpoints"] and len(parts) in (2, 3):
        return v1_error(405, f"{method} is not allowed on {path}")
    return v1_error(404, f"no such path: {path}")


def v1_update(emulator: Emulator, endpoint_id: str, body: bytes) -> Reply:
    account = emulator.account
    if account.find(endpoint_id) is None:
        return v1_error(404, "endpoint not found")
    ok, data = json_body(body)
    if not ok:
        return v1_error(400, "invalid input: the body is not valid JSON")
    errors = v1_update_errors(data, {"dataCenterIds": account.dc_ids, "gpuTypeIds": account.known_types})
    if errors:
        return v1_error(400, "invalid input: " + "; ".join(errors))
    try:
        record = account.apply_v1(endpoint_id, data)
    except UnknownEndpointError:
        return v1_error(404, "endpoint not found")
    except RuleError as exc:
        return v1_error(400, f"invalid input: {exc}")
    return Reply(200, account.v1_view(record), write=True)


def v2(emulator: Emulator, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> Reply:
    account = emulator.account
    parts = [unquote(p) for p in path.split("/")[2:]]
    if parts[:1] == ["catalog"]:
        return catalog(emulator, method, parts, query)
    if parts == ["serverless"]:
        if method != "GET":
            reply = problem(405, "The requested method is not allowed for this path.")
            reply.headers.append(("Allow", "GET"))
            return reply
        return v2_list(emulator, query)
    if len(parts) == 2 and parts[0] == "serverless":
        endpoint_id = parts[1]
        if method == "GET":
            record = account.find(endpoint_id)
            if record is None:
                return problem(404, "endpoint not found")
            return Reply(200, account.v2_view(record))
        if method == "PATCH":
            return v2_patch(emulator, endpoint_id, body)
        reply = problem(405, "The requested method is not allowed for this path.")
        reply.headers.append(("Allow", "GET, PATCH"))
        return reply
    return problem(404, f"no such path: {path}")


def catalog(emulator: Emulator, method: str, parts: list[str], query: Mapping[str, list[str]]) -> Reply:
    if not emulator.serve_catalogs or len(parts) != 2 or parts[1] not in ("gpus", "datacenters", "cpus"):
        return problem(404, f"no such path: /v2/{'/'.join(parts)}")
    if method != "GET":
        reply = problem(405, "The requested method is not allowed for this path.")
        reply.headers.append(("Allow", "GET"))
        return reply
    try:
        return Reply(200, emulator.catalog.answer(parts[1], query))
    except CatalogError as exc:
        return problem(exc.status, str(exc))


def v2_list(emulator: Emulator, query: Mapping[str, list[str]]) -> Reply:
    limit = emulator.v2_page_size
    if query.get("limit"):
        raw = query["limit"][0]
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            return problem(400, "limit must be an integer from 1 to 1000")
        limit = int(raw)
    offset = 0
    if query.get("cursor") and query["cursor"][0]:
        decoded = decode_cursor(query["cursor"][0])
        if decoded is None:
            return problem(400, "invalid cursor")
        offset = decoded
    total = len(emulator.account)
    records = emulator.account.ordered(offset, offset + limit)
    next_cursor = encode_cursor(offset + limit) if offset + limit < total else None
    return Reply(200, {"endpoints": [emulator.account.v2_view(r) for r in records], "nextCursor": next_cursor})


def v2_patch(emulator: Emulator, endpoint_id: str, body: bytes) -> Reply:
    account = emulator.account
    if account.find(endpoint_id) is None:
        return problem(404, "endpoint not found")
    ok, data = json_body(body)
    if not ok:
        return problem(400, "the request body is not valid JSON")
    errors = v2_update_errors(data)
    if errors:
        return problem(422, "Request validation failed.", errors)
    try:
        record = account.apply_v2(endpoint_id, data)
    except UnknownEndpointError:
        return problem(404, "endpoint not found")
    except RuleError as exc:
        return problem(400, str(exc))
    reply = Reply(200, account.v2_view(record), write=True)
    if emulator.faults.wipe_v2_exclusions:
        account.wipe_exclusions(endpoint_id)  # after the answer was made: it shows what was asked for
    return reply


# -- inspection ---------------------------------------------------------------------------------


def admin(emulator: Emulator, method: str, path: str, body: bytes) -> Reply:
    if path == "/_emulator/state" and method == "GET":
        return Reply(200, emulator.snapshot())
    if path == "/_emulator/requests" and method == "GET":
        return Reply(200, {"requests": emulator.requests})
    if path == "/_emulator/requests" and method == "DELETE":
        return Reply(200, {"cleared": emulator.clear_requests()})
    if path == "/_emulator/faults" and method == "GET":
        return Reply(200, emulator.faults.to_dict())
    if path == "/_emulator/faults" and method == "POST":
        ok, data = json_body(body)
        if not ok or not isinstance(data, dict):
            return Reply(400, {"error": "the body must be a JSON object of fault settings"})
        try:
            emulator.faults.update(data)
        except (TypeError, ValueError) as exc:
            return Reply(400, {"error": str(exc)})
        return Reply(200, emulator.faults.to_dict())
    return Reply(404, {"error": f"no such path: {method} {path}"})
