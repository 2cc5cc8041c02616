"""String literals of JavaScript/TypeScript and shell scripts (curl command lines, heredocs), and Markdown fences.

These are tokenizers, not parsers: they find where each string literal starts and ends, decode it, and
mark the pieces filled in at run time (``${expr}``, ``$VAR``). The GraphQL inside is parsed by graphql-core.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from bridge.scan.core import Candidate, FileText, literal_mutations
from bridge.scan.gql import MUTATION_FIELD, Dyn, Parts

__all__ = ["fences", "only", "scan_graphql", "scan_js", "scan_shell", "shell_literals"]

Literal = tuple[int, int, Parts]
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _merge(parts: list[str | Dyn]) -> list[str | Dyn]:
    out: list[str | Dyn] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return out


def _balanced(text: str, i: int) -> int:
    """Index just past the ``}`` closing the ``{`` at ``text[i]`` (or the end of the text)."""
    depth = 0
    quote = ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _js_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose backslash is at ``text[i - 1]``; return it and the index after it."""
    c = text[i : i + 1]
    if c == "u" and text[i + 1 : i + 2] == "{":
        end = text.find("}", i)
        try:
            return chr(int(text[i + 2 : end], 16)), end + 1
        except ValueError:
            return c, i + 1
    for prefix, size in (("u", 4), ("x", 2)):
        if c == prefix:
            try:
                return chr(int(text[i + 1 : i + 1 + size], 16)), i + 1 + size
            except ValueError:
                return c, i + 1
    if c == "\n":
        return "", i + 1
    return _ESCAPES.get(c, c), i + 1


def _js_literal(text: str, i: int, quote: str) -> tuple[Parts, int]:
    parts: list[str | Dyn] = []
    buf: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "\\":
            decoded, i = _js_escape(text, i + 1)
            buf.append(decoded)
            continue
        if c == quote or (c == "\n" and quote != "`"):
            return _merge([*parts, "".join(buf)]), i + 1
        if quote == "`" and text.startswith("${", i):
            end = _balanced(text, i + 1)
            parts += ["".join(buf), Dyn(text[i + 2 : end - 1].strip())]
            buf = []
            i = end
            continue
        buf.append(c)
        i += 1
    return _merge([*parts, "".join(buf)]), i


def _js_literals(text: str) -> Iterator[Literal]:
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        elif c in "'\"`":
            parts, end = _js_literal(text, i + 1, c)
            yield i, end, parts
            i = end
        else:
            i += 1


_VARIABLES = re.compile(r"""[\s,]*["']?variables["']?\s*:\s*\{""")


def _adjacent_variables(text: str, end: int) -> dict[str, Any] | None:
    """A literal ``variables: {...}`` right after the document (JS object literal, JSON, read as YAML flow)."""
    match = _VARIABLES.match(text, end, min(len(text), end + 200))
    if match is None:
        return None
    close = _balanced(text, match.end() - 1)
    try:
        value = yaml.safe_load(text[match.end() - 1 : close])
    except yaml.YAMLError:
        return None
    return value if isinstance(value, dict) else None


def _from_literals(ft: FileText, literals: Iterator[Literal], context: str, js: bool) -> list[Candidate]:
    found: list[Candidate] = []
    if MUTATION_FIELD not in ft.text:
        return found
    for start, end, parts in literals:
        if any(isinstance(p, str) and MUTATION_FIELD in p for p in parts):
            variables = _adjacent_variables(ft.text, end) if js else None
            found.extend(literal_mutations(ft, start, end, parts, context, variables))
    return found


def scan_js(ft: FileText) -> list[Candidate]:
    return _from_literals(ft, _js_literals(ft.text), "JavaScript/TypeScript string", js=True)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


def _sh_expansion(text: str, i: int) -> tuple[Dyn | None, int]:
    """A ``$...`` expansion at ``text[i]``: its Dyn and the index after it, or (None, i + 1)."""
    if text.startswith("${", i):
        end = _balanced(text, i + 1)
        return Dyn(text[i:end]), end
    if text.startswith("$(", i):
        depth, j = 0, i + 1
        while j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
            if depth == 0:
                break
        return Dyn(text[i:j]), j
    match = _NAME.match(text, i + 1)
    if match:
        return Dyn(text[i : match.end()]), match.end()
    return None, i + 1


def _sh_double(text: str, i: int) -> tuple[Parts, int]:
    parts: list[str | Dyn] = []
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] in ('"', "\\", "$", "`", "\n"):
            parts.append("" if text[i + 1] == "\n" else text[i + 1])
            i += 2
        elif c == '"':
            return _merge(parts), i + 1
        elif c == "$":
            dyn, j = _sh_expansion(text, i)
            parts.append(dyn if dyn is not None else "$")
            i = j
        elif c == "`":
            end = text.find("`", i + 1)
            end = len(text) if end < 0 else end + 1
            parts.append(Dyn(text[i:end]))
            i = end
        else:
            parts.append(c)
            i += 1
    return _merge(parts), i


def shell_literals(text: str) -> Iterator[Literal]:
    i = 0
    pending: list[tuple[str, bool, bool]] = []  # heredoc words waiting for the end of the line
    while i < len(text):
        c = text[i]
        if c == "\n" and pending:
            word, strip, quoted = pending.pop(0)
            body_start = i + 1
            indent = "[ \t]*" if strip else ""
            pattern = re.compile("^" + indent + re.escape(word) + "[ \t]*$", re.M)
            match = pattern.search(text, body_start)
            body_end = match.start() if match else len(text)
            body = text[body_start:body_end]
            yield body_start, body_end, [body] if quoted else _sh_body(body)
            i = match.end() if match else len(text)
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t\n;|&("):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c == "'":
            end = text.find("'", i + 1)
            end = len(text) if end < 0 else end
            yield i, end + 1, [text[i + 1 : end]]
            i = end + 1
        elif c == "$" and text.startswith("$'", i):
            parts, end = _js_literal(text, i + 2, "'")
            yield i, end, parts
            i = end
        elif c == '"':
            parts, end = _sh_double(text, i + 1)
            yield i, end, parts
            i = end
        elif c == "\\":
            i += 2
        elif text.startswith("<<", i) and not text.startswith("<<<", i):
            match = _HEREDOC.match(text, i)
            if match:
                pending.append((match.group(3), match.group(1) == "-", bool(match.group(2))))
                i = match.end()
            else:
                i += 2
        else:
            i += 1


def _sh_body(body: str) -> Parts:
    parts: list[str | Dyn] = []
    i = 0
    while i < len(body):
        if body[i] == "$":
            dyn, j = _sh_expansion(body, i)
            parts.append(dyn if dyn is not None else "$")
            i = j
        else:
            j = body.find("$", i)
            j = len(body) if j < 0 else j
            parts.append(body[i:j])
            i = j
    return _merge(parts)


def scan_shell(ft: FileText) -> list[Candidate]:
    return _from_literals(ft, shell_literals(ft.text), "shell string", js=False)


def scan_graphql(ft: FileText) -> list[Candidate]:
    return literal_mutations(ft, 0, len(ft.text), [ft.text], "GraphQL document")


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*$", re.M)


def fences(text: str) -> Iterator[tuple[str, int, int]]:
    """Fenced code blocks of a Markdown text: (language, start, end) of each body."""
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return
        fence = opening.group(1)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        start = opening.end() + 1
        end_match = closing.search(text, start)
        end = end_match.start() if end_match else len(text)
        yield opening.group(2).lower(), min(start, end), end
        pos = end_match.end() if end_match else len(text)


def only(text: str, start: int, end: int) -> str:
    """``text`` with everything outside ``[start, end)`` blanked, newlines kept (so positions still hold)."""
    blank: Callable[[str], str] = lambda s: re.sub(r"[^\n]", " ", s)  # noqa: E731
    return blank(text[:start]) + text[start:end] + blank(text[end:])
