"""Walk the paths to scan (honouring ``.gitignore``), read each text file and hand it to its reader."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pathspec

from bridge.scan.config import ConfigError, scan_config
from bridge.scan.core import Candidate, FileText, Unreadable
from bridge.scan.pysrc import scan_python
from bridge.scan.textsrc import fences, only, scan_graphql, scan_js, scan_shell

__all__ = ["DEFAULT_MAX_SIZE", "Walk", "reader_for", "walk_paths"]

DEFAULT_MAX_SIZE = 1_000_000  # bytes; larger files are skipped (generated data, bundles, lock files)

Reader = Callable[[FileText], list[Candidate]]

_BY_SUFFIX: dict[str, Reader] = {
    ".graphql": scan_graphql,
    ".gql": scan_graphql,
    ".py": scan_python,
    ".pyi": scan_python,
    ".sh": scan_shell,
    ".bash": scan_shell,
    ".zsh": scan_shell,
    ".json": lambda ft: scan_config(ft, is_json=True),
    ".yaml": lambda ft: scan_config(ft, is_json=False),
    ".yml": lambda ft: scan_config(ft, is_json=False),
}
for _suffix in (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx"):
    _BY_SUFFIX[_suffix] = scan_js

_FENCE_READERS: dict[str, Reader] = {
    "graphql": scan_graphql,
    "gql": scan_graphql,
    "python": scan_python,
    "py": scan_python,
    "python3": scan_python,
    "json": lambda ft: scan_config(ft, is_json=True),
    "yaml": lambda ft: scan_config(ft, is_json=False),
    "yml": lambda ft: scan_config(ft, is_json=False),
}
for _lang in ("js", "javascript", "ts", "typescript", "jsx", "tsx", "node"):
    _FENCE_READERS[_lang] = scan_js
for _lang in ("sh", "bash", "shell", "console", "zsh", "curl", ""):
    _FENCE_READERS[_lang] = scan_shell


def scan_markdown(ft: FileText) -> list[Candidate]:
    """Code in fenced blocks only: prose that mentions ``saveEndpoint`` is not a finding."""
    found: list[Candidate] = []
    if not any(word in ft.text for word in ("saveEndpoint", "create_endpoint", "gpuIds", "locations", "-fb")):
        return found
    for lang, start, end in fences(ft.text):
        reader = _FENCE_READERS.get(lang)
        if reader is None:
            continue
        block = FileText(ft.path, only(ft.text, start, end))
        try:
            found += reader(block)
        except ConfigError:
            continue
        if lang == "":  # an unlabelled block may be a bare GraphQL document
            found += scan_graphql(block)
    return found


def reader_for(path: Path, head: bytes) -> Reader | None:
    """The reader for a file, by suffix, else by its ``#!`` line; None for files bridge does not read."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".mdx", ".markdown"):
        return scan_markdown
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if head.startswith(b"#!"):
        line = head.split(b"\n", 1)[0]
        if b"python" in line:
            return scan_python
        if b"node" in line or b"deno" in line or b"bun" in line:
            return scan_js
        if any(shell in line for shell in (b"sh", b"bash", b"zsh")):
            return scan_shell
    return None


class Walk:
    """Counts and problems of one walk."""

    def __init__(self) -> None:
        self.scanned = 0
        self.skipped = 0
        self.unreadable: list[Unreadable] = []


class _Ignores:
    """The ``.gitignore`` files met on the way down, each applying below its own directory."""

    def __init__(self) -> None:
        self._specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def push(self, directory: Path, walk: Walk) -> None:
        file = directory / ".gitignore"
        if not file.is_file():
            return
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            walk.unreadable.append(Unreadable(path=str(file), reason=exc.strerror or str(exc)))
            return
        self._specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self._specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            result = spec.check_file(rel + ("/" if is_dir else ""))
            if result.include is not None:
                verdict = result.include  # the deepest .gitignore that says something wins
        return verdict

    def pop_below(self, directory: Path) -> None:
        self._specs = [(b, s) for b, s in self._specs if directory == b or directory.is_relative_to(b)]


def _files(root: Path, ignores: _Ignores, walk: Walk) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: _unreadable(walk, e)):
        here = Path(dirpath)
        ignores.pop_below(here)
        ignores.push(here, walk)
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not ignores.ignored(here / d, True))
        for name in sorted(filenames):
            path = here / name
            if not ignores.ignored(path, False):
                yield path


def _unreadable(walk: Walk, exc: OSError) -> None:
    walk.unreadable.append(Unreadable(path=str(exc.filename), reason=exc.strerror or str(exc)))


def _read(path: Path, max_size: int, walk: Walk) -> tuple[str, Reader] | None:
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8192)
            reader = reader_for(path, head)
            if reader is None or size > max_size or b"\0" in head:
                walk.skipped += 1
                return None
            data = head + fh.read()
    except OSError as exc:
        walk.unreadable.append(Unreadable(path=str(path), reason=exc.strerror or str(exc)))
        return None
    try:
        return data.decode("utf-8-sig"), reader
    except UnicodeDecodeError:
        walk.skipped += 1  # not UTF-8 text: treated as binary
        return None


def walk_paths(paths: Iterable[str | Path], max_size: int = DEFAULT_MAX_SIZE) -> tuple[list[Candidate], Walk]:
    """Every candidate in ``paths`` (files, or directories walked with their ``.gitignore`` files)."""
    walk = Walk()
    found: list[Candidate] = []
    for raw in paths:
        root = Path(raw)
        files = _files(root, _Ignores(), walk) if root.is_dir() else iter([root])
        for path in files:
            read = _read(path, max_size, walk)
            if read is None:
                continue
            text, reader = read
            walk.scanned += 1
            shown = os.path.normpath(path).replace(os.sep, "/")
            try:
                found += reader(FileText(shown, text))
            except ConfigError as exc:
                walk.unreadable.append(Unreadable(path=shown, reason=str(exc)))
            except RecursionError:
                walk.unreadable.append(Unreadable(path=shown, reason="nested too deeply to read"))
    return found, walk
