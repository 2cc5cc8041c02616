"""Environment proxies carry only TLS (CONNECT) traffic; cleartext to the emulator never goes through one."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.errors import InputError
from bridge.http.proxies import env_proxies, network_options

URLS = ("https://api.runpod.io/graphql", "https://rest.runpod.io/v1", "https://api.runpod.io/v2")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"HTTP_PROXY": "http://p:3128"}, {}),  # an http proxy is not for https URLs
        (
            {"HTTPS_PROXY": "http://p:3128"},
            {"https://api.runpod.io": "http://p:3128", "https://rest.runpod.io": "http://p:3128"},
        ),
        (
            {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
            {"https://api.runpod.io": "http://low:1", "https://rest.runpod.io": "http://low:1"},
        ),
        (
            {"ALL_PROXY": "p:3128"},
            {"https://api.runpod.io": "http://p:3128", "https://rest.runpod.io": "http://p:3128"},
        ),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "runpod.io"}, {}),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".rest.runpod.io"}, {"https://api.runpod.io": "http://p:1"}),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": "*"}, {}),
        (
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "api.runpod.io:8443"},
            {"https://api.runpod.io": "http://p:1", "https://rest.runpod.io": "http://p:1"},
        ),
    ],
)
def test_https_urls_honour_https_and_all_proxy(env: dict[str, str], expected: dict[str, str]) -> None:
    """HTTPS_PROXY / ALL_PROXY (lowercase first) apply to https origins not named by NO_PROXY."""
    assert env_proxies(URLS, env) == expected


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"])
def test_plain_http_urls_never_use_a_proxy(variable: str) -> None:
    """The key sent in cleartext to loopback must not detour through any proxy."""
    urls = ("http://127.0.0.1:8080/graphql", "http://localhost:1/v1", "http://[::1]:2/v2")
    assert env_proxies(urls, {variable: "http://proxy.example:3128"}) == {}


@pytest.mark.parametrize("proxy", ["socks5://user:pw@p:1080", "socks5h://p:1080"])
def test_socks_without_its_extra_is_one_line(proxy: str) -> None:
    """A SOCKS proxy without socksio says what to install, without echoing credentials."""
    with pytest.raises(InputError, match=r"ALL_PROXY is a SOCKS proxy .*pip install 'httpx\[socks\]'") as info:
        env_proxies(URLS, {"ALL_PROXY": proxy})
    assert "pw" not in str(info.value) and info.value.exit_code == 2


@pytest.mark.parametrize("proxy", ["ftp://p:21", "http://", "://x"])
def test_unusable_proxy_is_one_line(proxy: str) -> None:
    """A proxy URL bridge cannot use names its variable."""
    with pytest.raises(InputError, match="HTTPS_PROXY: not a proxy URL"):
        env_proxies(URLS, {"HTTPS_PROXY": proxy})


class _Recorder:
    """A loopback 'proxy' that records what it is sent and answers 403."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.seen.append(data)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    proxy = _Recorder()
    yield proxy
    proxy.sock.close()


@pytest.fixture
def origin() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def _get(url: str, env: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(
        headers={"Authorization": "Bearer SECRET-KEY"}, **network_options([url], environ=env)
    ) as client:
        return await client.get(url)


def test_emulator_traffic_bypasses_every_env_proxy(
    recorder: _Recorder, origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every proxy variable set (in the process environment too), a loopback http request goes direct."""
    env = {name: recorder.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    response = asyncio.run(_get(origin + "/v1/endpoints", env))
    assert response.status_code == 200 and recorder.seen == []


def test_https_goes_through_connect_with_the_key_inside_the_tunnel(recorder: _Recorder) -> None:
    """The proxy sees a CONNECT to the host, never the Authorization header."""
    with pytest.raises(httpx.ProxyError):
        asyncio.run(_get("https://rest.runpod.invalid/v1/endpoints", {"HTTPS_PROXY": recorder.url}))
    assert len(recorder.seen) == 1
    assert recorder.seen[0].startswith(b"CONNECT rest.runpod.invalid:443 ")
    assert b"SECRET-KEY" not in recorder.seen[0] and b"Authorization" not in recorder.seen[0]


@pytest.mark.parametrize("proxy", ["http://p:99999", "http://[::1:3128", "http://p:port"])
def test_malformed_proxy_is_one_line(proxy: str) -> None:
    """A proxy whose port or host cannot be read is named by its variable, not a ValueError."""
    with pytest.raises(InputError, match="ALL_PROXY: not a proxy URL"):
        env_proxies(URLS, {"ALL_PROXY": proxy})


def test_the_session_resolves_proxies_once_and_sends_https_through_connect(
    recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Http reads the proxy variables when it opens, for its https origins only; a request goes through the
    proxy's CONNECT (the key never in the clear) and a refused tunnel is a clear error, not a crash."""
    from helpers import VirtualTime

    from bridge.config import Settings
    from bridge.errors import ApiError
    from bridge.http import Http, RetryPolicy
    from bridge.http.transport import Routed

    monkeypatch.setenv("HTTPS_PROXY", recorder.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = Settings(api_key="SECRET-KEY-0123456789", rest_url="https://rest.runpod.invalid/v1", concurrency=2)
    vt = VirtualTime()

    async def main() -> None:
        async with Http(settings, policy=RetryPolicy(sleep=vt.sleep, clock=vt.clock, read_attempts=2)) as http:
            assert isinstance(http.transport, Routed)
            assert set(http.transport.mounts) == {"https://api.runpod.io", "https://rest.runpod.invalid"}
            monkeypatch.delenv("HTTPS_PROXY")  # read once: later changes do not reroute a running session
            await http.request("GET", "https://rest.runpod.invalid/v1/endpoints", api="v1")

    with pytest.raises(ApiError, match=r"GET https://rest.runpod.invalid/v1/endpoints: .*gave up after 2 attempts"):
        asyncio.run(main())
    assert len(recorder.seen) == 2 and all(s.startswith(b"CONNECT rest.runpod.invalid:443 ") for s in recorder.seen)
    assert not any(b"SECRET-KEY" in s for s in recorder.seen)
