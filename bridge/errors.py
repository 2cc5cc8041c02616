"""One error tree for bridge. Every message names the thing: file and key, endpoint id, method and URL.

::

    BridgeError                       exit_code 1 unless said otherwise
    ├── InputError                    2: a file, option or value the user gave is wrong
    │   ├── TableError                2: a mapping table or override file is invalid
    │   ├── SnapshotError             2: a snapshot or plan file is unreadable or invalid
    │   └── MissingKeyError           2: no API key was given
    ├── ConsentError                  2: writing needs --yes or an interactive "y"
    └── ApiError                      1: the network or a RunPod API failed (after retries)
        ├── AuthError                 1: RunPod rejected the API key (401/403); stops the run
        ├── RetiredError              1: REST v1 or GraphQL answered 410 Gone; stops the run
        ├── RateLimitedError          1: the server asked to wait longer than bridge will; stops the run
        ├── TlsError                  1: the TLS handshake failed (certificate, wrong scheme); stops the run
        ├── NotFoundError             1: 404, no such endpoint (or path)
        └── WriteOutcomeUnknown       1: a write may or may not have been applied (timeout, dropped, 5xx)

An ``ApiError`` whose ``stops_run`` is true ends a writing run: every later request would meet it too.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "BridgeError",
    "ConsentError",
    "InputError",
    "MissingKeyError",
    "NotFoundError",
    "RateLimitedError",
    "RetiredError",
    "SnapshotError",
    "TableError",
    "TlsError",
    "WriteOutcomeUnknown",
]


class BridgeError(Exception):
    """Base of every error bridge raises on purpose."""

    exit_code = 1


class InputError(BridgeError):
    """A file, option or value given by the user is wrong."""

    exit_code = 2


class TableError(InputError):
    """A mapping table or override file is invalid."""


class SnapshotError(InputError):
    """A snapshot or plan file is unreadable or invalid."""


class MissingKeyError(InputError):
    """No API key was given."""


class ConsentError(BridgeError):
    """Nothing was written: there was no --yes and no terminal to ask."""

    exit_code = 2


class ApiError(BridgeError):
    """The network or a RunPod API failed."""

    stops_run = False  # True: every later request of the run would fail the same way

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """RunPod rejected the API key."""

    stops_run = True


class RetiredError(ApiError):
    """RunPod has retired REST v1 (410 Gone)."""

    stops_run = True


class RateLimitedError(ApiError):
    """The server asked bridge to wait longer than it will."""

    stops_run = True


class TlsError(ApiError):
    """The TLS handshake failed: a certificate that does not verify, or TLS spoken to a plain-HTTP port."""

    stops_run = True


class NotFoundError(ApiError):
    """RunPod answered 404: there is no such endpoint (or path)."""


class WriteOutcomeUnknown(ApiError):
    """A write may or may not have been applied (timeout, dropped connection, 5xx): re-read before retrying."""
