"""Find bundled data: inside an installed wheel (``bridge/_data``) or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Return the path of bundled data ``name`` (``mappings`` or ``sample-account.json``)."""
    installed = _PACKAGE / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE.parent / ("fixtures/" + name if name.endswith(".json") else name)


def package_path(*parts: str) -> Path:
    """Return the path of a file shipped inside the package (queries, schemas)."""
    return _PACKAGE.joinpath(*parts)
