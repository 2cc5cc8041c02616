"""Connection settings: the API key and the three RunPod URLs, from the environment or options."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bridge.errors import InputError, MissingKeyError
from bridge.redact import escape_control, note_secret

__all__ = ["DEFAULT_GRAPHQL_URL", "DEFAULT_REST_URL", "DEFAULT_REST_V2_URL", "Settings", "is_loopback"]

DEFAULT_GRAPHQL_URL = "https://api.runpod.io/graphql"
DEFAULT_REST_URL = "https://rest.runpod.io/v1"
DEFAULT_REST_V2_URL = "https://api.runpod.io/v2"


@dataclass(frozen=True)
class Settings:
    """Where bridge talks to and with which key. The key never appears in ``repr``."""

    api_key: str = field(repr=False)
    graphql_url: str = DEFAULT_GRAPHQL_URL
    rest_url: str = DEFAULT_REST_URL
    rest_v2_url: str = DEFAULT_REST_V2_URL
    concurrency: int = 8
    timeout: float = 30.0

    def __post_init__(self) -> None:
        note_secret(self.api_key)  # whatever the run writes while a secret scope is open is scrubbed of it

    @classmethod
    def resolve(
        cls,
        *,
        api_key_file: str | Path | None = None,
        graphql_url: str | None = None,
        rest_url: str | None = None,
        rest_v2_url: str | None = None,
        concurrency: int = 8,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """Build settings from options, falling back to ``RUNPOD_*`` environment variables."""
        env = os.environ if environ is None else environ
        if api_key_file is not None:
            key = _read_key_file(Path(api_key_file))
        else:
            key = env.get("RUNPOD_API_KEY", "").strip()
            if not key:
                raise MissingKeyError(
                    "no API key: set RUNPOD_API_KEY or pass --api-key-file FILE"
                    " (or use --from SNAPSHOT to work offline)"
                )
        where = f"{api_key_file}: " if api_key_file is not None else "RUNPOD_API_KEY: "
        if any(c in key for c in "\r\n\0"):
            raise InputError(f"{where}the API key contains a line break or NUL character")
        if not key.isascii():
            # It travels in an HTTP header, which is ASCII: say so instead of failing in the HTTP library.
            raise InputError(f"{where}the key must be ASCII (is it the right file or variable?)")
        if not key.isprintable():
            raise InputError(f"{where}the API key contains a control character")
        if concurrency < 1:
            raise InputError(f"--concurrency {concurrency}: must be at least 1")
        return cls(
            api_key=key,
            graphql_url=_url("RUNPOD_GRAPHQL_URL", graphql_url or env.get("RUNPOD_GRAPHQL_URL"), DEFAULT_GRAPHQL_URL),
            rest_url=_url("RUNPOD_REST_URL", rest_url or env.get("RUNPOD_REST_URL"), DEFAULT_REST_URL).rstrip("/"),
            rest_v2_url=_url(
                "RUNPOD_REST_V2_URL", rest_v2_url or env.get("RUNPOD_REST_V2_URL"), DEFAULT_REST_V2_URL
            ).rstrip("/"),
            concurrency=concurrency,
        )


# A key file larger than this is not a key (a log, a snapshot given by mistake): refuse it rather than read it.
_MAX_KEY_FILE = 64 * 1024


def _read_key_file(path: Path) -> str:
    """Read the key from a regular file; a FIFO, device or directory is refused at once instead of hanging."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once, so it can be refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the API key file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: the API key file must be a regular file (not a pipe, device or directory)")
        if info.st_size > _MAX_KEY_FILE:
            raise InputError(f"{path}: the API key file is {info.st_size} bytes: not an API key")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the API key file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: the key must be ASCII (the file is not even UTF-8 text)") from None
    if not key:
        raise MissingKeyError(f"{path}: the API key file is empty")
    return key


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1 (IPv4-mapped too)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# A bracketed IPv6 host, then at most a port: nothing may follow the bracket.
_BRACKETED = re.compile(r"\[[0-9A-Za-z:.%_~-]+\](?::[0-9]*)?")


def _usable_host(host: str) -> bool:
    """Whether the HTTP layer can encode ``host`` (an empty label, ``xn--`` with no Punycode after it or a
    non-ASCII name IDNA refuses would otherwise fail at the first request, as an unexpected error)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        host.rstrip(".").encode("idna")
        if not host.isascii() or "xn--" in host:
            import idna  # what the HTTP libraries encode names with

            idna.encode(host.rstrip(".").lower())  # as httpx does: no UTS #46 mapping
    except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
        return False
    return True


def _url(name: str, value: str | None, default: str) -> str:
    """Check a base URL. It is never echoed whole: RunPod's docs put the key in ``?api_key=``."""
    url = (value or default).strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError:
        raise InputError(f"{name} (or its option): not a valid URL (its host or port cannot be read)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{name} (or its option): not an http(s) URL with a host")
    if parts.netloc.rpartition("@")[2].startswith("[") and not _BRACKETED.fullmatch(parts.netloc.rpartition("@")[2]):
        # urlsplit reads "[::1].evil.com" as the host ::1; the HTTP libraries refuse it: say so here, and
        # never judge such a URL loopback by the part in brackets
        raise InputError(f"{name} (or its option): not a valid URL (text after the bracketed IPv6 address)")
    if not _usable_host(parts.hostname):
        raise InputError(f"{name} (or its option): not a valid URL (its host name is not a valid DNS name)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(
            f"{name} (or its option): give the bare URL, without a query string or credentials "
            "(bridge sends the key only in the Authorization header)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(
            f"{name} (or its option): plain http:// to {escape_control(parts.hostname)} would send the API key "
            "in cleartext; use https:// (http:// is allowed only to this machine: localhost, 127.0.0.1, ::1)"
        )
    return url
