"""Find ``saveEndpoint`` mutations in a GraphQL document with graphql-core, parts of it not statically known.

A document found in code may be built at run time: an f-string, a concatenation, a shell variable. The
caller hands it over as :data:`Parts`, literal text and :class:`Dyn` pieces; each :class:`Dyn` becomes a
placeholder name the GraphQL parser accepts where a value, an argument or an object field may stand, and
every value that holds one is reported as not statically known instead of guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLSyntaxError, parse
from graphql.language import ast as gast

__all__ = ["Dyn", "Mutation", "Parts", "Unknown", "find_mutations", "looks_relevant"]

MUTATION_FIELD = "saveEndpoint"
_PH = "__bridge_dyn_{}__"
_PH_RE = re.compile(r"__bridge_dyn_(\d+)__")


@dataclass(frozen=True)
class Dyn:
    """A piece of a string that is only known at run time; ``source`` is how the code spells it."""

    source: str


Parts = Sequence["str | Dyn"]


@dataclass(frozen=True)
class Unknown:
    """A value that is not statically known; ``source`` shows what the code has there."""

    source: str


@dataclass
class Mutation:
    """One ``saveEndpoint`` selection: its input fields and where it starts in the document text."""

    index: int  # how many ``saveEndpoint`` words come before it in the document text
    values: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


def looks_relevant(text: str) -> bool:
    return MUTATION_FIELD in text


def _build(parts: Parts, field_form: set[int]) -> tuple[str, list[str], list[tuple[int, int]]]:
    """Join ``parts``; return the text, each placeholder's source and its (start, end) in the text."""
    out: list[str] = []
    sources: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for part in parts:
        if isinstance(part, Dyn):
            index = len(sources)
            token = _PH.format(index)
            piece = f"{token}: {token}" if index in field_form else token
            sources.append(part.source)
            spans.append((pos, pos + len(piece)))
        else:
            piece = part
        out.append(piece)
        pos += len(piece)
    return "".join(out), sources, spans


def _parse(parts: Parts) -> tuple[gast.DocumentNode, str, list[str]] | None:
    """Parse, switching a placeholder to ``name: value`` form where a bare name does not fit."""
    field_form: set[int] = set()
    for _ in range(sum(isinstance(p, Dyn) for p in parts) + 1):
        text, sources, spans = _build(parts, field_form)
        try:
            return parse(text, no_location=False), text, sources
        except GraphQLSyntaxError as exc:
            where = next(iter(exc.positions or ()), len(text))
            before = [i for i, (_, end) in enumerate(spans) if end <= where and i not in field_form]
            if not before or text[spans[before[-1]][1] : where].strip():
                return None
            field_form.add(before[-1])
        except RecursionError:
            return None
    return None


def _shown(source: str) -> str:
    """How a run-time piece is shown: shell expansions as written, others as ``{expression}``."""
    return source if source.startswith(("$", "`")) else "{" + source + "}"


def _restore(text: str, sources: Sequence[str]) -> str:
    return _PH_RE.sub(lambda m: _shown(sources[int(m.group(1))]), text)


def _value(node: gast.ValueNode, variables: Mapping[str, Any] | None, sources: Sequence[str]) -> Any:
    if isinstance(node, gast.VariableNode):
        name = node.name.value
        if variables is not None and name in variables:
            return variables[name]
        return Unknown("$" + name)
    if isinstance(node, gast.StringValueNode):
        return Unknown(_restore(node.value, sources)) if _PH_RE.search(node.value) else node.value
    if isinstance(node, gast.EnumValueNode):
        return Unknown(_restore(node.value, sources)) if _PH_RE.search(node.value) else node.value
    if isinstance(node, gast.IntValueNode):
        return int(node.value)
    if isinstance(node, gast.FloatValueNode):
        return float(node.value)
    if isinstance(node, gast.BooleanValueNode):
        return node.value
    if isinstance(node, gast.NullValueNode):
        return None
    if isinstance(node, gast.ListValueNode):
        items = [_value(v, variables, sources) for v in node.values]
        bad = [i for i in items if isinstance(i, Unknown)]
        return Unknown(bad[0].source) if bad else items
    if isinstance(node, gast.ObjectValueNode):
        obj = {f.name.value: _value(f.value, variables, sources) for f in node.fields}
        bad = [v for v in obj.values() if isinstance(v, Unknown)]
        return Unknown(bad[0].source) if bad else obj
    return Unknown(type(node).__name__)


def _input(
    node: gast.FieldNode, variables: Mapping[str, Any] | None, sources: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    arguments = {a.name.value: a.value for a in node.arguments or ()}
    for name in arguments:
        if _PH_RE.fullmatch(name):
            unknown["*"] = _restore(name, sources)
    raw = arguments.get("input")
    if raw is None:
        if "*" not in unknown:
            unknown["input"] = "(no input argument)"
        return values, unknown
    if isinstance(raw, gast.ObjectValueNode):
        for obj_field in raw.fields:
            name = obj_field.name.value
            match = _PH_RE.fullmatch(name)
            if match:
                unknown["*"] = _restore(name, sources)
                continue
            value = _value(obj_field.value, variables, sources)
            if isinstance(value, Unknown):
                unknown[name] = value.source
            else:
                values[name] = value
        return values, unknown
    value = _value(raw, variables, sources)
    if isinstance(value, dict):
        return dict(value), unknown
    unknown["*"] = value.source if isinstance(value, Unknown) else repr(value)
    return values, unknown


def find_mutations(parts: Parts, variables: Mapping[str, Any] | None = None) -> list[Mutation]:
    """Every ``saveEndpoint`` in the mutations of the document ``parts`` spell; [] when it does not parse."""
    parsed = _parse(parts)
    if parsed is None:
        return []
    doc, text, sources = parsed
    found: list[Mutation] = []
    for definition in doc.definitions:
        if not isinstance(definition, gast.OperationDefinitionNode):
            continue
        if definition.operation != gast.OperationType.MUTATION:
            continue
        for selection in definition.selection_set.selections:
            if isinstance(selection, gast.FieldNode) and selection.name.value == MUTATION_FIELD:
                start = selection.name.loc.start if selection.name.loc else 0
                values, unknown = _input(selection, variables, sources)
                found.append(Mutation(index=text[:start].count(MUTATION_FIELD), values=values, unknown=unknown))
    return found
