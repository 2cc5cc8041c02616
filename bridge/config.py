"""Connection settings: the API key and the three RunPod URLs, from the environment or options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bridge.errors import InputError, MissingKeyError

__all__ = ["DEFAULT_GRAPHQL_URL", "DEFAULT_REST_URL", "DEFAULT_REST_V2_URL", "Settings"]

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
            path = Path(api_key_file)
            try:
                key = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(
                    f"{path}: cannot read the API key file: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            if not key:
                raise MissingKeyError(f"{path}: the API key file is empty")
        else:
            key = env.get("RUNPOD_API_KEY", "").strip()
            if not key:
                raise MissingKeyError(
                    "no API key: set RUNPOD_API_KEY or pass --api-key-file FILE"
                    " (or use --from SNAPSHOT to work offline)"
                )
        if any(c in key for c in "\r\n\0"):
            raise InputError("the API key contains a line break or NUL character")
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


def _url(name: str, value: str | None, default: str) -> str:
    """Check a base URL. It is never echoed whole: RunPod's docs put the key in ``?api_key=``."""
    url = (value or default).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{name} (or its option): not an http(s) URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(
            f"{name} (or its option): give the bare URL, without a query string or credentials "
            "(bridge sends the key only in the Authorization header)"
        )
    return url
