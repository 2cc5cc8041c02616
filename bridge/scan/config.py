"""JSON and YAML files (RunPod Hub's ``hub.json``, templates, CI workflows), read with PyYAML for positions."""

from __future__ import annotations

import json
from typing import Any

import yaml

from bridge.scan.core import LEGACY_FIELDS, Candidate, FileText, literal_mutations
from bridge.scan.gql import MUTATION_FIELD
from bridge.scan.textsrc import shell_literals

__all__ = ["ConfigError", "scan_config"]

# Keys that make an object with a ``name`` ending in -fb an endpoint definition rather than, say, a package.
_ENDPOINT_KEYS = frozenset(
    {"gpuIds", "locations", "templateId", "workersMax", "workersMin", "idleTimeout", "flashBootType", "gpuCount"}
)


class ConfigError(Exception):
    """The file is not valid JSON or YAML."""


class _Loader(yaml.SafeLoader):
    pass


# libyaml's composer when PyYAML has it (much faster); its nodes carry the same marks.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", _Loader)
# A file without any of these words has nothing to report.
_WORDS = ("gpuIds", "locations", "-fb", MUTATION_FIELD)


def _scalar(loader: _Loader, node: yaml.Node) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        return None


class _Walker:
    def __init__(self, ft: FileText) -> None:
        self.ft = ft
        self.loader = _Loader("")
        self.found: list[Candidate] = []

    def _strings(self, node: yaml.Node, variables: Any = None, context: str = "string") -> None:
        if not (isinstance(node, yaml.ScalarNode) and isinstance(node.value, str) and MUTATION_FIELD in node.value):
            return
        start, end = node.start_mark.index, node.end_mark.index
        found = literal_mutations(
            self.ft, start, end, [node.value], context, variables if isinstance(variables, dict) else None
        )
        if not found:  # a CI step's shell script, with curl in it
            for _, _, parts in shell_literals(node.value):
                found += literal_mutations(self.ft, start, end, parts, "shell string in " + context)
        self.found.extend(found)

    def walk(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self.walk(item)
            return
        if not isinstance(node, yaml.MappingNode):
            self._strings(node)
            return
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {
            k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)
        }
        if "query" in pairs:
            variables = _scalar(self.loader, pairs["variables"][1]) if "variables" in pairs else None
            self._strings(pairs["query"][1], variables, "query string")
        self._endpoint(pairs)
        for key, value in node.value:
            if not (isinstance(key, yaml.ScalarNode) and key.value == "query"):
                self.walk(value)

    def _endpoint(self, pairs: dict[str, tuple[yaml.Node, yaml.Node]]) -> None:
        values: dict[str, Any] = {}
        for key, (_, value_node) in pairs.items():
            if (key in LEGACY_FIELDS or key == "id") and isinstance(value_node, (yaml.ScalarNode, yaml.SequenceNode)):
                values[key] = _scalar(self.loader, value_node)
        if not isinstance(values.get("locations"), str):
            values.pop("locations", None)  # a list of objects (SARIF, maps) is not an endpoint's location string
        gpu_ids = values.get("gpuIds")
        if isinstance(gpu_ids, list) and all(isinstance(g, str) for g in gpu_ids):
            values["gpuIds"] = ",".join(gpu_ids)
        legacy = [k for k in ("gpuIds", "locations") if isinstance(values.get(k), str)]
        name = values.get("name")
        if not legacy and isinstance(name, str) and name.endswith("-fb") and _ENDPOINT_KEYS & set(values):
            legacy = ["name"]
        if not legacy:
            return
        mark = pairs[legacy[0]][0].start_mark
        line, column = self.ft.position(mark.index)
        endpoint_id = values.pop("id", None) if "id" in values else None
        self.found.append(
            Candidate(
                path=self.ft.path,
                line=line,
                column=column,
                kind="config-keys",
                context="JSON/YAML " + "/".join(legacy),
                values={k: v for k, v in values.items() if v is not None},
                endpoint_id=endpoint_id if isinstance(endpoint_id, str) else None,
            )
        )


def _is_response(node: yaml.Node) -> bool:
    """A GraphQL response (``{"data": ...}``, an API's answer shown in docs) reads, it configures nothing."""
    if not isinstance(node, yaml.MappingNode):
        return False
    keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return "data" in keys and keys <= {"data", "errors", "extensions"}


def scan_config(ft: FileText, is_json: bool) -> list[Candidate]:
    """Candidates in a JSON or YAML file; raises :class:`ConfigError` when it parses as neither."""
    if not any(word in ft.text for word in _WORDS):
        return []
    text = ft.text
    if is_json:
        try:
            json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"not valid JSON: {exc}") from None
        # A raw tab in valid JSON can only be whitespace between tokens, which YAML's flow style refuses;
        # a space in its place keeps every offset.
        text = text.replace("\t", " ")
    walker = _Walker(ft)
    try:
        for document in yaml.compose_all(text, Loader=_COMPOSER):
            if document is not None and not _is_response(document):
                walker.walk(document)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        if is_json:
            raise ConfigError(f"valid JSON that the YAML reader cannot place{where}: not scanned") from None
        raise ConfigError(f"not valid YAML{where}") from None
    return walker.found
