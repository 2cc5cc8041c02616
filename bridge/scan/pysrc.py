"""Python sources, read with :mod:`ast`: mutations in string literals and runpod-python ``create_endpoint``."""

from __future__ import annotations

import ast
import re
import string
from typing import Any

from bridge.models import Finding
from bridge.scan.core import Candidate, FileText, literal_mutations
from bridge.scan.gql import MUTATION_FIELD, Dyn

__all__ = ["scan_python"]

# runpod.create_endpoint(name, template_id, gpu_ids="AMPERE_16", network_volume_id=None, locations=None,
# idle_timeout=5, scaler_type="QUEUE_DELAY", scaler_value=4, workers_min=0, workers_max=3, flashboot=False,
# allowed_cuda_versions=None, gpu_count=1) in runpod/api/ctl_commands.py.
_PARAMS = [
    ("name", "name"),
    ("template_id", "templateId"),
    ("gpu_ids", "gpuIds"),
    ("network_volume_id", "networkVolumeId"),
    ("locations", "locations"),
    ("idle_timeout", "idleTimeout"),
    ("scaler_type", "scalerType"),
    ("scaler_value", "scalerValue"),
    ("workers_min", "workersMin"),
    ("workers_max", "workersMax"),
    ("flashboot", "flashBootType"),
    ("allowed_cuda_versions", "allowedCudaVersions"),
    ("gpu_count", "gpuCount"),
]
_FIELD = dict(_PARAMS)
# What create_endpoint sends when an argument is left out (runpod-python 1.12, runpod/api/ctl_commands.py).
_DEFAULTS: dict[str, Any] = {
    "gpu_ids": "AMPERE_16",
    "idle_timeout": 5,
    "scaler_type": "QUEUE_DELAY",
    "scaler_value": 4,
    "workers_min": 0,
    "workers_max": 3,
    "gpu_count": 1,
}
_PERCENT = re.compile(r"%%|%(\([^)]*\))?[-#0 +]*(\*|\d+)?(\.(\*|\d+))?[diouxXeEfFgGcrsa]")
_VARIABLE_KEYWORDS = ("variables", "variable_values", "variableValues")


def _parts(node: ast.expr, text: str) -> list[str | Dyn] | None:
    """The literal pieces of a string expression (constant, f-string, ``+`` chain, ``"...".format(...)``)."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts: list[str | Dyn] = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                parts.append(Dyn(ast.unparse(value.value)))
        return parts
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _parts(node.left, text), _parts(node.right, text)
        if left is None and right is None:
            return None
        return [*(left or [Dyn(ast.unparse(node.left))]), *(right or [Dyn(ast.unparse(node.right))])]
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mod)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
    ):
        pieces: list[str | Dyn] = []
        last = 0
        for match in _PERCENT.finditer(node.left.value):
            pieces.append(node.left.value[last : match.start()])
            pieces.append("%" if match.group() == "%%" else Dyn(match.group()))
            last = match.end()
        return [*pieces, node.left.value[last:]]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        out: list[str | Dyn] = []
        try:
            for literal, name, _spec, _conv in string.Formatter().parse(node.func.value.value):
                out.append(literal)
                if name is not None:
                    out.append(Dyn(name or "positional argument"))
        except ValueError:
            return None
        return out
    return None


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, ft: FileText, tree: ast.AST) -> None:
        self.ft = ft
        self.found: list[Candidate] = []
        self.done: set[int] = set()
        self.modules: set[str] = set()  # names bound to runpod or to runpod.api.ctl_commands
        self.functions: set[str] = set()  # names bound to create_endpoint
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "runpod" or alias.name.endswith(".ctl_commands"):
                        self.modules.add(alias.asname or alias.name)
                    elif alias.name.startswith("runpod."):
                        self.modules.add("runpod")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "runpod":
                for alias in node.names:
                    if alias.name == "create_endpoint":
                        self.functions.add(alias.asname or alias.name)
                    elif alias.name == "ctl_commands":
                        self.modules.add(alias.asname or alias.name)
        if self.modules:
            self.functions.add("create_endpoint")

    def _span(self, node: ast.expr) -> tuple[int, int]:
        line_text = self.ft.lines[node.lineno - 1]
        col = len(line_text.encode()[: node.col_offset].decode(errors="replace"))
        start = self.ft.offset(node.lineno, col)
        end_line = node.end_lineno or node.lineno
        end_text = self.ft.lines[end_line - 1]
        end_col = len(end_text.encode()[: node.end_col_offset or 0].decode(errors="replace"))
        return start, self.ft.offset(end_line, end_col)

    def _string(self, node: ast.expr, context: str, variables: Any = None) -> bool:
        parts = _parts(node, self.ft.text)
        if parts is None:
            return False
        self._mark(node)
        if any(isinstance(p, str) and MUTATION_FIELD in p for p in parts):
            start, end = self._span(node)
            self.found.extend(
                literal_mutations(
                    self.ft, start, end, parts, context, variables if isinstance(variables, dict) else None
                )
            )
        return True

    def _mark(self, node: ast.AST) -> None:
        for child in ast.walk(node):
            self.done.add(id(child))

    def _is_create(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.functions
        if isinstance(func, ast.Attribute) and func.attr == "create_endpoint":
            base = func.value
            if isinstance(base, ast.Name):
                return base.id in self.modules
            return isinstance(base, ast.Attribute) and base.attr == "ctl_commands"
        return False

    def _create(self, node: ast.Call) -> None:
        values: dict[str, Any] = {}
        unknown: dict[str, str] = {}
        given: dict[str, ast.expr] = {}
        for (param, _), arg in zip(_PARAMS, node.args, strict=False):
            if isinstance(arg, ast.Starred):
                unknown["*"] = ast.unparse(arg)
                break
            given[param] = arg
        for kw in node.keywords:
            if kw.arg is None:
                unknown["*"] = "**" + ast.unparse(kw.value)
            elif kw.arg in _FIELD:
                given[kw.arg] = kw.value
        for param, arg in given.items():
            name = _FIELD[param]
            if param == "template_id":
                continue  # no REST difference; not legacy configuration
            value = _literal(arg)
            if value is None and not (isinstance(arg, ast.Constant) and arg.value is None):
                unknown[name] = ast.unparse(arg)
            elif param == "flashboot":
                if value:
                    values[name] = "FLASHBOOT"
            elif value is not None:
                values[name] = value
        notes = []
        defaults = {} if "*" in unknown else {k: v for k, v in _DEFAULTS.items() if k not in given}
        if defaults:
            for param, value in defaults.items():
                values[_FIELD[param]] = value
            said = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
            notes.append(
                Finding(
                    severity="info",
                    code="create-endpoint-defaults",
                    field="gpuIds" if "gpu_ids" in defaults else next(iter(defaults)),
                    message=f"not given, so create_endpoint sends its defaults: {said}",
                )
            )
        start, _ = self._span(node)
        line, column = self.ft.position(start)
        self.found.append(
            Candidate(
                path=self.ft.path,
                line=line,
                column=column,
                kind="create-endpoint",
                context="runpod-python create_endpoint()",
                values=values,
                unknown=unknown,
                notes=notes,
            )
        )

    def visit_Call(self, node: ast.Call) -> None:
        if self._is_create(node.func):
            self._create(node)
        variables = next((kw.value for kw in node.keywords if kw.arg in _VARIABLE_KEYWORDS), None)
        if variables is not None:
            for arg in node.args:
                if id(arg) not in self.done:
                    self._string(arg, "Python string", _literal(variables))
        if id(node) not in self.done and self._string(node, "Python string"):
            return
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
        query = keys.get("query")
        if query is not None and id(query) not in self.done:
            self._string(query, "Python string", _literal(keys.get("variables")))
        self.generic_visit(node)

    def _visit_string(self, node: ast.expr) -> None:
        if id(node) not in self.done and self._string(node, "Python string"):
            return
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        self._visit_string(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._visit_string(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._visit_string(node)


def scan_python(ft: FileText) -> list[Candidate]:
    """Candidates in Python source; a file that does not parse yields none (its strings are not code)."""
    if MUTATION_FIELD not in ft.text and "create_endpoint" not in ft.text:
        return []
    try:
        tree = ast.parse(ft.text, filename=ft.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    visitor = _Visitor(ft, tree)
    visitor.visit(tree)
    return sorted(visitor.found, key=lambda c: (c.line, c.column))
