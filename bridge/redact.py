"""Redaction for everything bridge writes or prints: secret values go, their keys stay (SPEC §9).

Legacy and REST reads carry secrets in ``aiKey``, ``env`` (a ``[{key, value}]`` list in GraphQL, an object
map in REST) and ``template.env``. :func:`redact_endpoint` replaces their values with ``"<redacted>"``;
:func:`redact_text` scrubs known secret values (the API key) and credential-looking URL parameters out of
any message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "redact_endpoint", "redact_env", "redact_text"]

REDACTED = "<redacted>"

# `api_key=...` in a URL someone configured, and bearer tokens echoed back in a message.
_KEY_PARAM = re.compile(r"(?i)\b(api_key|apikey|access_token|token)=[^&\s\"'#]+")
# "invalid bearer token" names the scheme, it holds no token: keep it readable.
_BEARER = re.compile(r"(?i)\bBearer\s+(?!token\b)[A-Za-z0-9._~+/=-]+")
# Shorter strings than this are too likely to appear in ordinary text to be scrubbed safely.
_MIN_SECRET = 4


# In a ``[{key, value}]`` env item, the fields that name a variable rather than hold its value.
_NAME_FIELDS = frozenset({"key", "name"})


def redact_env(env: Any) -> Any:
    """Return ``env`` with every value replaced, whatever its shape.

    An object map keeps its keys; a ``[{key, value}]`` list keeps each item's ``key`` (or ``name``) and
    redacts every other field; anything else (a ``"A=b"`` string, a list of strings or pairs) is redacted
    whole, since there is no telling its names from its values.
    """
    if env is None:
        return None
    if isinstance(env, Mapping):
        return {key: REDACTED for key in env}
    if isinstance(env, list):
        return [
            {k: (v if k in _NAME_FIELDS and isinstance(v, str) else REDACTED) for k, v in item.items()}
            if isinstance(item, Mapping)
            else REDACTED
            for item in env
        ]
    return REDACTED


def redact_endpoint(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of an endpoint record (legacy or REST) with ``aiKey``, ``env`` and ``template.env`` redacted."""
    out = dict(endpoint)
    if out.get("aiKey") is not None:
        out["aiKey"] = REDACTED
    if out.get("env") is not None:
        out["env"] = redact_env(out["env"])
    template = out.get("template")
    if isinstance(template, Mapping) and template.get("env") is not None:
        out["template"] = {**template, "env": redact_env(template["env"])}
    return out


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with each known secret value, ``api_key=`` parameters and bearer tokens scrubbed."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _KEY_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _BEARER.sub(f"Bearer {REDACTED}", text)
