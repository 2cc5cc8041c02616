"""Every command's stdout and stderr are scrubbed of the key, in one place (:func:`scrubbed_output`).

A command opens a :func:`bridge.redact.secret_scope`; the settings it resolves note their key there, and from
then on each line printed (reports, results, progress, errors) passes through the scope's scrubber, as every file
written does (:func:`bridge.files.write_private`). No command has to remember to scrub.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from bridge.redact import scope_scrubber, scope_secrets, secret_scope

F = TypeVar("F", bound=Callable[..., Any])
_CHUNK = 64 * 1024


class OutputLost(OSError):
    """The stream a report was going to could not take it (a full disk under ``> plan.json``, a device error)."""


class ScrubbedStream:
    """A text stream passing whole lines on, scrubbed of the scope's secrets (as they are when written).

    With no secret noted yet, text goes straight through (prompts and progress bars are not held back).
    Anything else (``encoding``, ``isatty``, ``fileno``) is the wrapped stream's.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        """Collect ``text``; past 64 kB, write the complete lines collected, scrubbed (one search per chunk,
        not per line: a large report is scrubbed at the speed of the regular expression)."""
        if not isinstance(text, str):  # a text stream refuses bytes (click probes with write(b""))
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not self._pending and not scope_secrets():
            return self._send(text)
        self._pending.append(text)
        self._size += len(text)
        if self._size >= _CHUNK:
            data = "".join(self._pending)
            cut = data.rfind("\n") + 1
            if cut:
                self._send(scope_scrubber()(data[:cut]))
            self._pending = [data[cut:]] if cut < len(data) else []
            self._size = len(data) - cut
        return len(text)

    def flush(self) -> None:
        """Write what is collected, scrubbed, and flush (``click.echo`` flushes after every message)."""
        if self._pending:
            data, self._pending, self._size = "".join(self._pending), [], 0
            self._send(scope_scrubber()(data))
        self._send(None)

    def _send(self, text: str | None) -> int:
        """Write ``text`` (or flush, for None) to the wrapped stream; a failure other than a reader gone away
        is :class:`OutputLost`, naming the stream, so that the run does not end as if its output was written."""
        try:
            if text is None:
                self._stream.flush()
                return 0
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            name = {1: "stdout", 2: "stderr"}.get(_fileno(self._stream) or -1, "the output")
            raise OutputLost(exc.errno, f"{name}: cannot write: {exc.strerror or exc}") from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _last_flush(stream: TextIO | ScrubbedStream) -> str | None:
    """Flush what is collected; a reader gone away (``bridge plan | head``) gets nothing more, and the exit of
    the interpreter does not fail flushing to it. Any other failure (a full disk under ``> plan.json``) is
    returned, so that the run does not end as if its output had been written."""
    try:
        stream.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):  # nothing more may reach it, at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        return exc.strerror or str(exc)
    except ValueError:  # closed: nothing more can be said
        pass
    return None


def scrubbed_output(func: F) -> F:
    """Run a command inside a secret scope, its stdout and stderr scrubbed; both are restored after."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out, err = sys.stdout, sys.stderr
        with secret_scope():
            sys.stdout, sys.stderr = ScrubbedStream(out), ScrubbedStream(err)
            outcome: BaseException | None = None
            try:
                return func(*args, **kwargs)
            except BaseException as exc:
                outcome = exc
                raise
            finally:
                lost = _last_flush(sys.stdout)
                _last_flush(sys.stderr)
                sys.stdout, sys.stderr = out, err
                if lost is not None:
                    _output_lost(lost, outcome, err)

    return wrapper  # type: ignore[return-value]


def _output_lost(reason: str, outcome: BaseException | None, err: TextIO) -> None:
    """stdout could not be written (a full disk, an I/O error): say so on stderr, and end with exit 1 unless
    the run already ends with a failure of its own."""
    with contextlib.suppress(OSError, ValueError):
        err.write(f"bridge: error: stdout: cannot write: {reason} (the output is incomplete)\n")
        err.flush()
    if outcome is None or (isinstance(outcome, SystemExit) and outcome.code in (0, None, 3, 4)):
        raise SystemExit(1)  # a success (or a report of blocked or pending endpoints) whose report was lost
