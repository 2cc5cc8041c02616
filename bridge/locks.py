"""The account lock: runs that write to the same RunPod account on the same machine exclude each other.

The state-directory lock (:class:`bridge.journal.StateLock`) keeps two runs out of one state directory, but
``--state-dir`` defaults to ``./bridge-state``, relative to the working directory: two shells in two directories
would each hold their own and write every endpoint twice. This lock is keyed by the account instead (a hash of
the API base URLs and the key; the key itself is never written) and lives in the user's state directory,
``$XDG_STATE_HOME/bridge`` or ``~/.local/state/bridge`` (mode 0700).

Like every ``flock``, it is held by the kernel of one machine: runs on two machines (or in two containers that
do not share that directory) against the same account are not kept apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.config import is_loopback
from bridge.errors import InputError
from bridge.files import private_dir
from bridge.redact import escape_control

__all__ = ["AccountLock", "account_digest", "held", "user_state_dir"]

# The lock files the running code already holds. A lock taken early (before the live read, before the prompt) is
# entered again by the code that writes; that inner entry is the same run and must not refuse itself, as ``flock``
# on a second descriptor would. A context variable, not a global: another thread, or an asyncio task started
# before the lock was taken (another run of a library user), does not see it, and is refused as it should be.
_HELD: ContextVar[frozenset[str]] = ContextVar("bridge_held_locks", default=frozenset())


def held(path: Path) -> bool:
    """Whether the running code already holds the lock of ``path`` (then entering it again takes nothing)."""
    return os.path.abspath(path) in _HELD.get()


def taken(path: Path) -> Token[frozenset[str]]:
    """Record that the running code holds ``path``; give the token that :func:`released` needs."""
    return _HELD.set(_HELD.get() | {os.path.abspath(path)})


def released(path: Path, token: Token[frozenset[str]] | None) -> None:
    """Record that ``path`` is no longer held."""
    try:
        if token is not None:
            _HELD.reset(token)
            return
    except ValueError:  # left in another context than it was taken in
        pass
    _HELD.set(_HELD.get() - {os.path.abspath(path)})


def user_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/bridge`` if that is absolute (as the XDG spec asks), else ``~/.local/state/bridge``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "")
    if not base or not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".local", "state")
    return Path(base) / "bridge"


def account_digest(api_key: str, urls: Sequence[str]) -> str:
    """A name for the account that reveals nothing of the key: a keyed hash of the key and the base URLs."""
    h = hashlib.blake2b(digest_size=16, person=b"bridge-account")
    for part in (api_key, *(_canonical_url(u) for u in urls)):
        h.update(part.encode("utf-8", errors="surrogatepass") + b"\0")
    return h.hexdigest()


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _canonical_url(url: str) -> str:
    """One spelling per server: the host lowercased without its trailing dot, the scheme's port made explicit,
    every name of this machine (localhost, 127.0.0.0/8, ::1) as one, no trailing slash. Two spellings of the same
    URL (``https://API.runpod.io:443/v2/``, ``http://localhost:8765`` and ``http://127.0.0.1:8765``) are the
    same account, and must take the same lock."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.rstrip("/").lower()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if is_loopback(host):
        host = "loopback"
    port = port if port is not None else _DEFAULT_PORTS.get(scheme, 0)
    path = re.sub(r"/+", "/", parts.path).rstrip("/").lower()  # over-exclusion is the safe side
    return f"{scheme}://{host}:{port}{path}"


class AccountLock:
    """Hold the account for one run, with ``flock`` on ``STATE/locks/account-<hash>.lock``.

    The kernel drops the lock when the process ends, even by SIGKILL. The file names the holder (pid, start
    time, state directory) so that a refused run can say which run holds it.
    """

    def __init__(
        self,
        api_key: str,
        urls: Sequence[str],
        *,
        state_dir: str | Path | None = None,
        home: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = Path(home) if home is not None else user_state_dir(environ)
        self.path = self.dir / "locks" / f"account-{account_digest(api_key, urls)}.lock"
        self._state_dir = str(state_dir) if state_dir is not None else None
        self._fd = -1

    @classmethod
    def for_settings(cls, settings: Any, **kwargs: Any) -> AccountLock:
        """The lock of the account ``settings`` (a :class:`bridge.config.Settings`) writes to."""
        urls = (settings.graphql_url, settings.rest_url, settings.rest_v2_url)
        return cls(settings.api_key, urls, **kwargs)

    def __enter__(self) -> AccountLock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): runs are not kept apart
            return self
        if held(self.path):
            return self
        try:
            private_dir(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(
                f"{self.path.parent}: cannot create the account lock ({exc.strerror or exc}); "
                "set XDG_STATE_HOME to a writable directory"
            ) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder()
            os.close(self._fd)
            self._fd = -1
            raise InputError(
                f"another bridge run{holder} is writing to the same RunPod account on this machine; "
                f"wait for it to end (lock {self.path})"
            ) from None
        info = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self._state_dir is not None:
            info["state_dir"] = os.path.abspath(self._state_dir)
        data = json.dumps(info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        self._token = taken(self.path)
        return self

    def _holder(self) -> str:
        try:
            info = json.loads(os.pread(self._fd, 4096, 0))
            where = f", state dir {info['state_dir']}" if info.get("state_dir") else ""
            return escape_control(f" (pid {int(info['pid'])}, started {info['started']}{where})")
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def __exit__(self, *_: object) -> None:
        if self._fd >= 0:
            released(self.path, self._token)
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1
