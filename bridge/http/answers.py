"""Reading RunPod's error answers: the server's reason in one line, and the typed error for a status.

Handles the v1 and GraphQL ``{"error"/"errors"}`` shapes, v2 problem+json, plain text, and HTML pages
from a proxy or Cloudflare (which are never taken for an API answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

from bridge import __version__
from bridge.errors import ApiError, AuthError, NotFoundError, RateLimitedError, RetiredError
from bridge.models import Target

__all__ = ["USER_AGENT", "Api", "Quote", "clip", "error_for", "html_reason", "is_html", "server_reason"]

USER_AGENT = f"bridge/{__version__} (runpod-bridge; python-httpx/{httpx.__version__})"

Api = Target | Literal["graphql"]
"""Which API answered: a REST target (its name) or the legacy GraphQL API."""

Quote = Callable[[str, int], str]
"""Makes text from an answer safe to print: decode, scrub the key, escape controls, then clip
(:meth:`bridge.http.Http.quote`, :func:`bridge.redact.safe_message`)."""


def _phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return ""


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def clip(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe(text: str, limit: int) -> str:
    from bridge.redact import safe_message

    return safe_message(text, (), limit)


def _one_line(quote: Quote, text: str, limit: int = 300) -> str:
    """Whitespace folded, then ``quote`` (which clips last: a clip must never cut a key before the scrub)."""
    return quote(_SPACE.sub(" ", text).strip(), limit)


def is_html(response: httpx.Response) -> bool:
    """Tell whether an answer is an HTML page (a proxy, Cloudflare or a portal), not an API answer."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _cloudflare(response: httpx.Response) -> bool:
    server = response.headers.get("server", "").lower()
    return "cloudflare" in server or "cf-ray" in response.headers or b"cloudflare" in response.content[:20000].lower()


def html_reason(response: httpx.Response, quote: Quote = _safe) -> str:
    text = response.text
    match = _TITLE.search(text) or _H1.search(text)
    title = _one_line(quote, _TAGS.sub(" ", match.group(1)), 120) if match else ""
    who = "Cloudflare" if _cloudflare(response) else "a proxy or gateway"
    named = f' "{title}"' if title else ""
    return f"an HTML page{named} from {who}, not an answer of the RunPod API"


def _cloudflare_ua_block(response: httpx.Response) -> bool:
    if response.status_code != 403 or not _cloudflare(response):
        return False
    body = response.content[:20000].lower()
    return b"1010" in body


def server_reason(response: httpx.Response, quote: Quote = _safe) -> str:
    """The server's own explanation of an error answer, in one line (v1, v2 problem+json, GraphQL, HTML),
    decoded, scrubbed, escaped and clipped by ``quote``, in that order."""
    if is_html(response):
        return html_reason(response, quote)
    try:
        doc = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = response.content.decode("utf-8", errors="replace").strip()
        return _one_line(quote, text.splitlines()[0]) if text else ""
    if isinstance(doc, Mapping):
        parts: list[str] = []
        for key in ("detail", "error", "message"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
                break
        if not parts and isinstance(doc.get("title"), str):
            parts.append(doc["title"])
        errors = doc.get("errors")
        if isinstance(errors, list):
            for item in errors[:5]:
                if isinstance(item, str):
                    parts.append(item)
                elif isinstance(item, Mapping) and isinstance(item.get("message"), str):
                    parts.append(item["message"])
        return _one_line(quote, "; ".join(parts) if parts else _dump(doc))
    return _one_line(quote, _dump(doc))


def _dump(doc: Any) -> str:
    try:
        return json.dumps(doc, ensure_ascii=False)
    except (ValueError, RecursionError):
        return "(a JSON answer nested too deeply to quote)"


def error_for(method: str, url: str, response: httpx.Response, api: Api, *, quote: Quote = _safe) -> ApiError:
    """Build the typed error for an answer bridge will not (or no longer) retry; ``quote`` makes the server's
    reason safe to print (by default without a key to scrub)."""
    status = response.status_code
    where = f"{method} {url}"
    reason = server_reason(response, quote)
    suffix = f": {reason}" if reason else ""
    if _cloudflare_ua_block(response):
        blocked = ApiError(
            f"{where}: HTTP 403 from Cloudflare (error 1010): the request was refused for its client "
            f"signature (User-Agent {USER_AGENT!r}) before it reached RunPod; the key was not checked. "
            "A proxy that rewrites headers can cause this.",
            status=status,
        )
        blocked.stops_run = True  # every request of the run carries the same signature
        return blocked
    if status in (401, 403) and not is_html(response):
        return AuthError(f"RunPod rejected the API key (HTTP {status}) at {where}{suffix}", status=status)
    if status in (401, 403):  # a proxy's or gateway's page: every later request would meet it too
        refused = ApiError(f"{where}: HTTP {status} {_phrase(status)}{suffix}", status=status)
        refused.stops_run = True
        return refused
    if status == 410 and api == "v1":
        return RetiredError(
            f"RunPod has retired REST v1: run again with --target v2 (HTTP 410 at {where})", status=status
        )
    if status == 410 and api == "graphql":
        return RetiredError(
            f"RunPod has retired the legacy GraphQL API (HTTP 410 at {where}): the legacy settings can no longer "
            "be read live; plan from a snapshot saved earlier with --from",
            status=status,
        )
    if status == 404:
        return NotFoundError(f"{where}: HTTP 404 Not Found{suffix}", status=status)
    if status == 429:
        return RateLimitedError(f"{where}: HTTP 429 Too Many Requests{suffix}", status=status)
    return ApiError(f"{where}: HTTP {status} {_phrase(status)}{suffix}".replace("  ", " "), status=status)
