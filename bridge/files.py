"""Files bridge writes: atomically (never half-written) and private (mode 0600, directories it creates 0700)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["private_dir", "write_private"]


def private_dir(path: str | Path) -> Path:
    """Make sure directory ``path`` exists; the directories this creates are mode 0700 (an existing one is kept)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_private(path: str | Path, text: str | Callable[[TextIO], object]) -> Path:
    """Write ``text`` to ``path`` atomically with mode 0600: a crash leaves the old file or the new one.

    ``text`` may also be a function that writes into the open file, so a large report is streamed, not
    built in memory first.
    """
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                text(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
