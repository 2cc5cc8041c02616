"""bridge.http.transport: httpx over aiohttp, against the emulator over real sockets, with the errors that
decide whether a write may be sent again."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import pytest
from conftest import EMULATOR_KEY
from helpers import VirtualTime

from bridge.config import Settings
from bridge.emulator import Emulator
from bridge.emulator.faults import Faults
from bridge.errors import ApiError, WriteOutcomeUnknown
from bridge.http import Http, RetryPolicy
from bridge.http.transport import Transport, map_error

MakeEmulator = Callable[..., Emulator]
AUTH = {"Authorization": f"Bearer {EMULATOR_KEY}"}


def _transport() -> Transport:
    return Transport(limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=_transport(), headers=AUTH) as client:
        return await client.request(method, url, **kwargs)


def test_answers_equal_httpcore_answers(emulator: Emulator) -> None:
    endpoint_id = next(iter(emulator.state))
    url = f"{emulator.url}/v1/endpoints/{endpoint_id}"
    answer = asyncio.run(_send("GET", url))
    assert answer.status_code == 200 and answer.json() == httpx.get(url, headers=AUTH).json()
    missing = asyncio.run(_send("GET", f"{emulator.url}/v1/endpoints/no-such"))
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")


def test_a_connection_dropped_after_a_write_may_have_been_applied(make_emulator: MakeEmulator) -> None:
    """httpx-aiohttp alone says ConnectTimeout (never sent); the write was applied, so it must not say that."""
    emu = make_emulator(faults=Faults(drop_every=1))
    endpoint_id = next(iter(emu.state))
    url = f"{emu.url}/v1/endpoints/{endpoint_id}/update"
    with pytest.raises(httpx.TransportError) as caught:
        asyncio.run(_send("POST", url, json={"name": "renamed"}))
    assert type(caught.value) is httpx.RemoteProtocolError
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
    assert emu.write_count(endpoint_id) == 1  # applied

    async def through_bridge() -> None:
        settings = Settings(api_key=EMULATOR_KEY, rest_url=f"{emu.url}/v1", concurrency=2)
        async with Http(settings, transport=_transport()) as http:
            await http.request("POST", url, api="v1", json_body={"name": "again"}, write=True)

    with pytest.raises(WriteOutcomeUnknown, match="the connection was dropped before the answer"):
        asyncio.run(through_bridge())
    assert emu.write_count(endpoint_id) == 2  # sent once, not retried


def test_a_refused_connection_is_a_connect_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1/endpoints"
    with pytest.raises(httpx.ConnectError):
        asyncio.run(_send("GET", url))

    async def through_bridge() -> None:
        vt = VirtualTime()
        settings = Settings(api_key=EMULATOR_KEY, rest_url=url, concurrency=2)
        async with Http(settings, policy=RetryPolicy(sleep=vt.sleep, clock=vt.clock), transport=_transport()) as http:
            await http.request("GET", url, api="v1")

    with pytest.raises(ApiError, match=r"cannot connect .*gave up after 5 attempts"):
        asyncio.run(through_bridge())


def test_a_slow_answer_is_a_read_timeout(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(faults=Faults(latency_ms=400))

    async def slow() -> None:
        async with httpx.AsyncClient(transport=_transport(), headers=AUTH, timeout=httpx.Timeout(0.1)) as client:
            await client.get(f"{emu.url}/v1/endpoints")

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(slow())


def test_map_error_names_what_happened_to_the_request() -> None:
    assert type(map_error(aiohttp.ServerDisconnectedError())) is httpx.RemoteProtocolError
    assert type(map_error(aiohttp.ConnectionTimeoutError())) is httpx.ConnectTimeout
    assert type(map_error(aiohttp.SocketTimeoutError())) is httpx.ReadTimeout
    assert type(map_error(aiohttp.ServerTimeoutError())) is httpx.ReadTimeout
    assert type(map_error(aiohttp.ClientPayloadError("truncated"))) is httpx.ReadError
    assert type(map_error(aiohttp.ClientOSError(104, "reset"))) is httpx.ReadError
    assert map_error(ValueError("not aiohttp's")) is None


def test_aiohttp_is_imported_only_when_a_session_opens_its_own_transport() -> None:
    """`bridge --help`, `import bridge.http` and a session given a MockTransport import no aiohttp; a session
    that opens its own transport does (and sends over it)."""
    import subprocess
    import sys

    code = (
        "import sys; from bridge.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "import bridge.http, httpx\n"
        "from bridge.config import Settings\n"
        "bridge.http.Http(Settings(api_key='k'), transport=httpx.MockTransport(lambda r: httpx.Response(200)))\n"
        "before = 'aiohttp' in sys.modules\n"
        "bridge.http.Http(Settings(api_key='k'))\n"
        "print(before, 'aiohttp' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "False True"


def test_map_error_tells_a_name_that_does_not_resolve_and_a_refused_proxy() -> None:
    from types import SimpleNamespace

    from bridge.http.retry import NameNotResolved

    key: Any = SimpleNamespace(host="rest.runpod.invalid", port=443, ssl=True, is_ssl=True)
    gai = socket.gaierror(-2, "Name or service not known")
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", aiohttp.ClientConnectorError)
    assert type(map_error(dns_error(key, gai))) is NameNotResolved
    assert type(map_error(aiohttp.ClientConnectorError(key, gai))) is NameNotResolved
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
    assert type(map_error(refused)) is httpx.ConnectError
    assert type(map_error(aiohttp.ClientProxyConnectionError(key, OSError(111, "refused")))) is httpx.ProxyError
