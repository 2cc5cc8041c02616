"""Redaction for everything bridge writes or prints: secret values go, their keys stay (SPEC §9).

Legacy and REST reads carry secrets in ``aiKey``, ``env`` (a ``[{key, value}]`` list in GraphQL, an object
map in REST) and ``template.env``. :func:`redact_endpoint` replaces their values with ``"<redacted>"``.

The API key is scrubbed wherever it hides, whatever the field: a :class:`Scrubber`, built once per key, removes
the key, every piece of it at least :data:`MIN_FRAGMENT` characters long, and its JSON-escaped and
percent-encoded forms, from any text or JSON value. :func:`safe_message` turns a server's answer into a line fit
to print: decode, unescape, scrub, escape control characters, and only then clip.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus, unquote

__all__ = [
    "MIN_FRAGMENT",
    "REDACTED",
    "Scrubber",
    "escape_control",
    "note_secret",
    "redact_endpoint",
    "redact_env",
    "redact_text",
    "safe_message",
    "scope_scrubber",
    "scope_secrets",
    "secret_scope",
]

REDACTED = "<redacted>"

# A piece of the key this long is scrubbed wherever it appears: shorter ones are too likely to occur by chance in
# ordinary text (ids, timestamps), and too short to be of use to anyone holding them.
MIN_FRAGMENT = 8
# Shorter secrets than this are too likely to appear in ordinary text to be scrubbed safely.
_MIN_SECRET = 4

# `api_key=...` in a URL someone configured, and bearer tokens echoed back in a message.
_KEY_PARAM = re.compile(r"(?i)\b(api_key|apikey|access_token|token)=[^&\s\"'#]+")
# "invalid bearer token" names the scheme, it holds no token: keep it readable.
_BEARER = re.compile(r"(?i)\bBearer\s+(?!token\b)[A-Za-z0-9._~+/=-]+")

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


def _forms(secret: str) -> set[str]:
    """The secret as it may be written: raw, JSON-escaped, percent-encoded (either hex case), form-encoded."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    return forms


class Scrubber:
    """Remove known secrets from text and JSON values, built once (the pattern is compiled here).

    Each secret is matched raw and in its escaped forms; a secret of :data:`MIN_FRAGMENT` characters or more
    is matched by any run of that many consecutive characters of it, and a match is extended over as much of
    the secret as follows it, so a key cut anywhere, or quoted only in part, still goes whole.
    """

    def __init__(self, secrets: Iterable[str | None], *, fragment: int = MIN_FRAGMENT) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}))
        # For each window: the form it comes from and where in it, to extend a match along that form.
        self._where: dict[str, tuple[str, int]] = {}
        literals: set[str] = set()
        for secret in self.secrets:
            for form in _forms(secret):
                if len(form) < fragment:
                    literals.add(form)
                    continue
                for start in range(len(form) - fragment + 1):
                    self._where.setdefault(form[start : start + fragment], (form, start))
        # Secrets with nothing JSON escapes (RunPod's keys: letters, digits, _): their pieces stand verbatim in JSON.
        self._plain = all(json.dumps(secret, ensure_ascii=False)[1:-1] == secret for secret in self.secrets)
        alternatives = sorted(literals | self._where.keys(), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret, piece of one (of the minimum length) and escaped form scrubbed."""
        pattern = self._pattern
        if pattern is None:
            return text
        match = pattern.search(text)
        if match is None:
            return text
        out: list[str] = []
        done = 0
        while match is not None:
            start, end = match.span()
            where = self._where.get(match.group(0))
            if where is not None:  # extend along the form: the rest of a key piece goes with it
                form, at = where
                at += end - start
                while end < len(text) and at < len(form) and text[end] == form[at]:
                    if form[at] == '"' and form[at - 1] != "\\":  # a bare quote ends a JSON string: stop there
                        break
                    end += 1
                    at += 1
            start, end = _whole_escapes(text, max(start, done), end)
            if start >= end:  # only a quote matched
                match = pattern.search(text, match.end())
                continue
            gap = text[done:start]
            if gap or not out or out[-1] != REDACTED:  # adjacent pieces become one marker
                out += (gap, REDACTED)
            done = end
            match = pattern.search(text, end)
        out.append(text[done:])
        return "".join(out)

    def may_touch(self, json_text: str) -> bool:
        """Whether scrubbing the JSON value written as ``json_text`` (non-ASCII as it is) may change it.

        With secrets JSON writes verbatim (RunPod's keys), a piece of one in any string or key of the value is
        in its JSON text too, so one search of the text answers; otherwise only a walk can tell (True).
        """
        if self._pattern is None:
            return False
        return not self._plain or self._pattern.search(json_text) is not None

    def value(self, value: Any) -> Any:
        """Return a JSON value with every string in it (object keys too) scrubbed."""
        if not self:
            return value
        # Fast path (a 1,000-endpoint backup: one C-speed search instead of a walk of every string).
        if isinstance(value, (Mapping, list)) and self._plain:
            try:
                text = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError):  # not JSON-shaped (a tuple as a key): the walk below handles it
                text = None
            if text is not None and not self.may_touch(text):
                return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {self(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


# A backslash escape left open at the end of a text (an odd run of backslashes, perhaps ``\u`` and up to three
# hex digits): a scrub must take it whole, or the ``<redacted>`` after it would be read as part of the escape.
_OPEN_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*(\\(?:u[0-9a-fA-F]{0,3})?)$")


def _bare_quote(text: str, at: int) -> bool:
    """Whether ``text[at]`` is a ``"`` no backslash escapes (in JSON, where a string starts or ends)."""
    if text[at] != '"':
        return False
    run = 0
    while at - run > 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 0


def _whole_escapes(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow ``[start, end)`` off the quotes that delimit a JSON string and widen it so that it cuts no
    backslash escape in two: scrubbing JSON text leaves valid JSON."""
    while start < end and _bare_quote(text, start):
        start += 1
    while end > start and _bare_quote(text, end - 1):
        end -= 1
    if start >= end:
        return start, end
    before = _OPEN_ESCAPE.search(text, max(0, start - 6), start)
    if before is not None:
        start = before.start(1)
    inside = _OPEN_ESCAPE.search(text, start, end)
    if inside is not None:
        escape = inside.group(1)
        end = min(len(text), end + (1 if escape == "\\" else 5 - len(escape) + 1))
    return start, end


@functools.lru_cache(maxsize=16)
def _scrubber(secrets: tuple[str, ...]) -> Scrubber:
    return Scrubber(secrets)


# The secrets of the run in progress (see :func:`secret_scope`): every writer scrubs them, whatever it was given.
_SCOPES: list[set[str]] = []
_NOTED: list[tuple[str, ...]] = [()]  # scope_secrets(), kept up to date: a stream asks for it on every write


@contextmanager
def secret_scope() -> Iterator[set[str]]:
    """Scrub, in everything bridge writes while the block runs, every secret noted in it.

    :class:`bridge.config.Settings` notes its key here when it is made, so a run (the CLI opens one scope per
    command) needs no writer to be handed the key: files (:func:`bridge.files.write_private`), the journal,
    the backup and the CLI's stdout and stderr all scrub :func:`scope_secrets` as well as what they are given.
    """
    scope: set[str] = set()
    _SCOPES.append(scope)
    try:
        yield scope
    finally:
        _SCOPES.remove(scope)
        _renote()


def _renote() -> None:
    _NOTED[0] = tuple(sorted(set().union(*_SCOPES))) if _SCOPES else ()


def note_secret(secret: str | None) -> None:
    """Add ``secret`` to every open :func:`secret_scope` (nothing happens outside one)."""
    if secret and _SCOPES:
        for scope in _SCOPES:
            scope.add(secret)
        _renote()


def scope_secrets() -> tuple[str, ...]:
    """The secrets noted in the open scopes."""
    return _NOTED[0]


def scope_scrubber(extra: Iterable[str | None] | Scrubber | None = None) -> Scrubber:
    """A scrubber of the open scopes' secrets and ``extra`` (secrets, or a scrubber whose secrets are added)."""
    given = extra.secrets if isinstance(extra, Scrubber) else tuple(extra or ())
    if not given:
        return _scrubber(scope_secrets())
    return _scrubber(tuple(sorted({s for s in (*given, *scope_secrets()) if s})))


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with each known secret (and long pieces of it), ``api_key=`` parameters and bearer tokens
    scrubbed."""
    text = scope_scrubber(secrets)(text)
    text = _KEY_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _BEARER.sub(f"Bearer {REDACTED}", text)


# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides that reorder what a
# terminal shows ("Trojan source"): none may reach a terminal or a report raw.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """Return ``text`` with control characters written as ``\\x1b``-style escapes (newlines kept if asked)."""
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape_one, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape_one, text)


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?|\\([\"\\/bfnrt])")
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape_json(match: re.Match[str]) -> str:
    if match.group(3) is not None:
        return _SIMPLE.get(match.group(3), match.group(3))
    high = int(match.group(1), 16)
    if match.group(2) is not None and 0xD800 <= high <= 0xDBFF:
        low = int(match.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return "\ufffd" if 0xD800 <= high <= 0xDFFF else chr(high)


def safe_message(raw: bytes | str, secrets: Iterable[str | None] | Scrubber, limit: int = 300) -> str:
    """Turn text from a server (or anything else untrusted) into one printable line, in the only safe order.

    Decode (bytes that are not UTF-8 become U+FFFD), undo ``\\u``/``\\"`` JSON escapes and ``%XX``
    percent-encoding so an escaped key is seen as the key, scrub the secrets (and ``api_key=``/Bearer
    credentials), escape control characters, and only then clip to ``limit`` characters: a clip can no longer
    cut a key in two and leave half of it.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    text = _JSON_ESCAPE.sub(_unescape_json, text)
    if "%" in text:
        text = unquote(text, errors="replace")
    text = redact_text(scope_scrubber(secrets)(text))
    text = escape_control(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
