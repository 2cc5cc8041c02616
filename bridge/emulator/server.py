"""The ``Emulator`` handle: seeding, lifecycle, fault settings, the request log and the state open to tests.

The HTTP side is in ``http_server.py`` (routing, auth, faults) and ``routes.py`` (the API handlers); the
v2 catalogs (``/v2/catalog/{gpus,datacenters,cpus}``) are answered by ``catalog.py``.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bridge.emulator.catalog import Catalog
from bridge.emulator.faults import FaultCounters, Faults
from bridge.emulator.graphql_api import GraphQLApi
from bridge.emulator.http_server import HOST, EmulatorServer
from bridge.emulator.state import (
    Account,
    Record,
    UnknownEndpointError,
    ViewOptions,
    is_cpu,
    load_seed,
)

__all__ = ["Emulator", "requests_by_kind"]


def requests_by_kind(log: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Count a request log (:attr:`Emulator.requests`) by kind: graphql, list (the endpoint list and its pages),
    read (one endpoint), write, other (the catalogs)."""
    out = {"graphql": 0, "list": 0, "read": 0, "write": 0, "other": 0}
    for entry in log:
        path = entry["path"]
        if entry["api"] == "graphql":
            out["graphql"] += 1
        elif entry["method"] in ("POST", "PATCH"):
            out["write"] += 1
        elif path in ("/v1/endpoints", "/v2/serverless"):
            out["list"] += 1
        elif path.startswith(("/v1/endpoints/", "/v2/serverless/")):
            out["read"] += 1
        else:
            out["other"] += 1
    return out


class Emulator:
    """A local stand-in for RunPod's GraphQL, REST v1 and REST v2 APIs, served on 127.0.0.1.

    >>> with Emulator(api_key="test-key") as emu:          # doctest: +SKIP
    ...     httpx.get(emu.url + "/v1/endpoints", headers={"Authorization": "Bearer test-key"})

    ``snapshot`` is a snapshot file, a parsed snapshot document, or None for the bundled sample account.
    ``pools`` replaces the pool table (default: the snapshot's ``serverlessGpuPools``, else the bundled one).
    ``drop_fields`` removes fields from the GraphQL schema (``"workersStandby"`` or ``"Type.field"``).
    ``catalog_pools`` gives ``GET /v2/catalog/gpus`` its own pool table (default: the same as GraphQL's);
    ``catalogs=False`` answers 404 on ``/v2/catalog/*``, as a server without the catalogs would.
    """

    def __init__(
        self,
        snapshot: str | Path | Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        api_key: str | None = None,
        faults: Faults | None = None,
        pools: Mapping[str, Sequence[str]] | None = None,
        drop_fields: Iterable[str] = (),
        dc_ids_as_string: bool = False,
        omit_flashboot: bool = False,
        v2_page_size: int = 100,
        introspection: bool = False,
        log_limit: int | None = 100_000,
        catalog_pools: Mapping[str, Sequence[str]] | None = None,
        catalogs: bool = True,
    ) -> None:
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must be a non-empty string or None (any key accepted)")
        if v2_page_size < 1:
            raise ValueError("v2_page_size must be >= 1")
        records, seed_pools = load_seed(snapshot)
        options = ViewOptions(dc_ids_as_string=dc_ids_as_string, omit_flashboot=omit_flashboot)
        self.account = Account(records, pools if pools is not None else seed_pools, options=options)
        self.graphql = GraphQLApi(self.account, drop_fields=drop_fields, introspection=introspection)
        self.catalog = Catalog.build(catalog_pools if catalog_pools is not None else self.account.pools)
        self.serve_catalogs = catalogs
        self.api_key = api_key
        self.v2_page_size = v2_page_size
        self.counters = FaultCounters()
        self._faults = faults if faults is not None else Faults()
        self._log_lock = threading.Lock()
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=log_limit)
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, port: int = 0) -> Emulator:
        """Listen on 127.0.0.1:``port`` (0 = a free port) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = EmulatorServer(port, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-serve", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self if self._server is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point bridge at this emulator (the key is not included)."""
        base = self.url
        return {
            "RUNPOD_GRAPHQL_URL": f"{base}/graphql",
            "RUNPOD_REST_URL": f"{base}/v1",
            "RUNPOD_REST_V2_URL": f"{base}/v2",
        }

    # -- faults -----------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live fault settings: change a field, or assign a new ``Faults``, at any time."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        value.validate()
        self._faults = value

    # -- request log ------------------------------------------------------------------------------

    def _record_request(
        self, api: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": time.time(),
            "api": api,
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "status": None,
            "dropped": False,
        }
        with self._log_lock:
            self._log.append(entry)
        return entry

    def _finish(self, entry: dict[str, Any], status: int | None, *, dropped: bool) -> None:
        with self._log_lock:
            entry["status"] = status
            entry["dropped"] = dropped

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the API request log, oldest first: time, api, method, path, query, headers, body,
        status (None while in flight or when dropped) and dropped."""
        with self._log_lock:
            return [{**entry, "headers": dict(entry["headers"])} for entry in self._log]

    def clear_requests(self) -> int:
        """Empty the request log; return how many entries it had."""
        with self._log_lock:
            count = len(self._log)
            self._log.clear()
        return count

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Record]:
        """A deep copy of every legacy record by id, oldest ``createdAt`` first."""
        return self.account.copy_records()

    def record(self, endpoint_id: str) -> Record:
        """A deep copy of one legacy record. Raises KeyError for an unknown id."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return copy.deepcopy(record)

    def v1_view(self, endpoint_id: str) -> dict[str, Any]:
        """What ``GET /v1/endpoints/{id}`` returns now."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return self.account.v1_view(record)

    def v2_view(self, endpoint_id: str) -> dict[str, Any]:
        """What ``GET /v2/serverless/{id}`` returns now."""
        record = self.account.find(endpoint_id)
        if record is None:
            raise KeyError(endpoint_id)
        return self.account.v2_view(record)

    def write_count(self, endpoint_id: str | None = None) -> int:
        """REST writes applied to one endpoint (or to all when no id is given), dropped ones included."""
        return self.account.write_count(endpoint_id)

    def write_counts(self) -> dict[str, int]:
        """REST writes applied, per endpoint."""
        return self.account.write_counts()

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint (e.g. between a plan and its apply). Raises KeyError for an unknown id."""
        try:
            self.account.delete(endpoint_id)
        except UnknownEndpointError:
            raise KeyError(endpoint_id) from None

    def snapshot(self) -> dict[str, Any]:
        """The current state as a snapshot document (usable as ``bridge plan --from``), plus write counts."""
        records = [{**rec, "computeType": "CPU" if is_cpu(rec) else "GPU"} for rec in self.state.values()]
        return {
            "data": {"myself": {"endpoints": records}, "serverlessGpuPools": self.account.pool_list()},
            "writeCounts": self.write_counts(),
        }
