"""Files bridge writes: atomically (never half-written) and private (mode 0600, directories it creates 0700).

An output that is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO, or a symlink to one) is written in
place, never replaced by a regular file; a symlink to a regular file is followed, so the link stays a link.
Text may pass through a :class:`~bridge.redact.Scrubber` on its way to disk, so no file holds the key.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bridge.redact import Scrubber

__all__ = ["MAX_NAME_BYTES", "ScrubbingWriter", "check_file_name", "private_dir", "write_private"]

# File names longer than this (in UTF-8 bytes, before the extension) are refused before anything is written:
# most file systems stop at 255 bytes, and an extension and a temporary file's prefix and suffix come on top.
MAX_NAME_BYTES = 200


def private_dir(path: str | Path) -> Path:
    """Make sure directory ``path`` exists. Every directory this creates, parents included, is mode 0700
    whatever the umask; an existing one is left as it is."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        os.chmod(directory, 0o700)  # the umask may have taken bits away (umask 0277), or be 000
    return path


def check_file_name(name: str, *, reserved: frozenset[str] = frozenset()) -> str:
    """Return ``name`` if it is safe as one file name in a directory bridge writes; raise ``ValueError`` if not.

    Refused: empty, ``.``-leading (hidden, ``..``), path separators, NUL and control characters, names longer
    than :data:`MAX_NAME_BYTES`, and ``reserved`` names (compared without case: ``PLAN`` would be ``plan``'s
    file on a case-insensitive file system).
    """
    if not name:
        raise ValueError("an empty name")
    if name.startswith("."):
        raise ValueError("it starts with '.'")
    if any(c in name for c in "/\\") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError("it holds a path separator or a control character")
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        raise ValueError(f"longer than {MAX_NAME_BYTES} bytes")
    if name.casefold() in reserved:
        raise ValueError("the name of a file bridge writes itself")
    return name


class ScrubbingWriter:
    """A text stream that scrubs whole lines before passing them on (a key is never split across lines)."""

    def __init__(self, fh: TextIO, scrub: Scrubber) -> None:
        self._fh = fh
        self._scrub = scrub
        self._pending = ""

    def write(self, text: str) -> int:
        """Buffer ``text``; write every complete line, scrubbed."""
        data = self._pending + text
        cut = data.rfind("\n") + 1
        if cut:
            self._fh.write(self._scrub(data[:cut]))
        self._pending = data[cut:]
        return len(text)

    def flush(self) -> None:
        """Write what is left (an unterminated last line), scrubbed, and flush."""
        if self._pending:
            self._fh.write(self._scrub(self._pending))
            self._pending = ""
        self._fh.flush()


def _in_place(path: Path) -> bool:
    """Whether ``path`` is (or leads to) something other than a regular file: write into it, never replace it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return True
    # /dev/stdout and /proc/self/fd/N may lead to a regular file the shell opened: append to it, as a shell would.
    text = os.path.abspath(path)
    return text.startswith(("/dev/", "/proc/")) or os.path.realpath(path).startswith("/proc/")


def _fill(fh: TextIO, text: str | Callable[[TextIO], object], scrub: Scrubber | None) -> None:
    from bridge.redact import scope_scrubber

    scrub = scope_scrubber(scrub)  # and the key of the run in progress, whatever the caller gave
    out: TextIO = ScrubbingWriter(fh, scrub) if scrub else fh  # type: ignore[assignment]
    if isinstance(text, str):
        out.write(text)
    else:
        text(out)
    out.flush()


def write_private(path: str | Path, text: str | Callable[[TextIO], object], *, scrub: Scrubber | None = None) -> Path:
    """Write ``text`` to ``path`` atomically with mode 0600: a crash leaves the old file or the new one.

    ``text`` may also be a function that writes into the open file, so a large report is streamed, not
    built in memory first. ``scrub``: remove the key (and pieces of it) from every line on the way.
    A device, FIFO or ``/dev/stdout`` is written in place (its mode left alone); a symlink to a regular
    file is followed, and the file it names is replaced.
    """
    path = Path(path)
    if _in_place(path):
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0)
        with os.fdopen(os.open(path, flags), "w", encoding="utf-8") as fh:
            _fill(fh, text, scrub)
        return path
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[: MAX_NAME_BYTES // 4]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            _fill(fh, text, scrub)
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
