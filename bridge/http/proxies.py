"""Which proxy each RunPod URL goes through: environment proxies for ``https://`` only, never for cleartext.

httpx honours ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``ALL_PROXY`` for every request by default, so a plain
``http://`` request (the emulator) would hand the Bearer key to a proxy in cleartext. bridge instead decides per
base URL: an ``https://`` URL goes through ``HTTPS_PROXY`` (or ``ALL_PROXY``) unless ``NO_PROXY`` names its
host, the key then travelling inside the TLS tunnel (``CONNECT``); an ``http://`` URL (loopback only, see
:mod:`bridge.config`) always goes direct. A SOCKS proxy needs httpx's ``socks`` extra: without it, one line
says so instead of an ``ImportError``.

The HTTP session resolves the proxies once, when it is opened (:func:`bridge.http.transport.session_transport`),
and sends over aiohttp's pool, which reads no proxy variable itself (``trust_env`` off).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import InputError

__all__ = ["env_proxies", "network_options"]

_SCHEMES = ("http", "https", "socks5", "socks5h")


def _variable(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (name.lower(), name.upper()):  # lowercase first, as curl and urllib do
        value = env.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _check_proxy(variable: str, proxy: str) -> str:
    try:
        parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise InputError(f"{variable}: not a proxy URL bridge can use (http://, https://, socks5:// with a host)")
    if parts.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise InputError(
            f"{variable} is a SOCKS proxy ({parts.scheme}://{parts.hostname}), which needs httpx's socks extra: "
            "pip install 'httpx[socks]', or unset the variable"
        )
    return parts.geturl()


def env_proxies(urls: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map the origin (``https://host[:port]``) of each ``https://`` URL to the proxy it goes through.

    Origins not in the result go direct: every ``http://`` URL, and hosts ``NO_PROXY`` names.
    """
    env = os.environ if environ is None else environ
    found = _variable(env, "https_proxy") or _variable(env, "all_proxy")
    if found is None:
        return {}
    variable, proxy = found
    no_proxy = (_variable(env, "no_proxy") or ("", ""))[1]
    result = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            continue
        try:
            host, port = parts.hostname.lower(), parts.port or 443
        except ValueError:  # not a URL Settings accepts: nothing to proxy
            continue
        if not _bypassed(host, port, no_proxy):
            shown = f"[{host}]" if ":" in host else host
            result[f"https://{shown}" + (f":{port}" if port != 443 else "")] = _check_proxy(variable, proxy)
    return result


def network_options(
    urls: Iterable[str], *, environ: Mapping[str, str] | None = None, **transport: Any
) -> dict[str, Any]:
    """Keyword arguments for an ``httpx.AsyncClient`` that sends like a bridge run: the run's transport
    (:func:`bridge.http.transport.session_transport`: direct, and proxied for each ``https://`` origin that
    has a proxy). ``transport`` options: ``limits``."""
    import httpx

    from bridge.http.transport import session_transport

    limits = transport.get("limits") or httpx.Limits(max_connections=20, max_keepalive_connections=20)
    return {"transport": session_transport(urls, limits=limits, environ=environ)}
