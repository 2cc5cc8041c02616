"""State files of a run: the backup taken before the first write, and the journal of every attempt.

Both live in the state directory (``--state-dir``, default ``./bridge-state``), are private (0600) and
hold no secret: endpoint records are redacted before they are written, messages are scrubbed of the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError, InputError, SnapshotError
from bridge.files import private_dir, write_private
from bridge.integrity import DIGEST_FIELD, canonical_json, check_document, text_digest
from bridge.locks import held, released, taken
from bridge.redact import escape_control, redact_endpoint, redact_text, scope_scrubber
from bridge.targets import TARGETS

__all__ = [
    "INLINE_FSYNC_SECONDS",
    "Backup",
    "BackupEntry",
    "Journal",
    "StateLock",
    "fields_written",
    "journal_of",
    "load_backup",
    "read_journal",
    "write_backup",
    "written_only",
]

BACKUP_FORMAT = "bridge-backup"
# A write's attempt line is fsynced on the loop's thread when the journal's last fsync took less than this
# (0.1 ms on a local SSD), in a worker thread when it took longer (a network disk).
INLINE_FSYNC_SECONDS = 0.002


class StateLock:
    """Hold the state directory for one run: ``STATE_DIR/.lock``, locked with ``flock``.

    The kernel drops the lock when the process ends, even by SIGKILL, so a killed run never blocks the
    next one. Holding it, a run may remove the temporary files a killed run left half-written
    (``.backup-….tmp``): no other run can be writing them.
    """

    def __init__(self, state_dir: str | Path) -> None:
        try:
            self.dir = private_dir(state_dir)
        except OSError as exc:
            raise InputError(f"{state_dir}: cannot use it as the state directory: {exc.strerror or exc}") from None
        self.path = self.dir / ".lock"
        self._fd = -1
        self._token: Token[frozenset[str]] | None = None

    def __enter__(self) -> StateLock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): runs are not kept apart
            return self
        if held(self.path):  # taken earlier by this run (before its live read): this is the same run
            return self
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(f"{self.dir}: cannot use it as the state directory: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = -1
            raise InputError(
                f"{self.dir}: another bridge run is using this state directory; wait for it to end, "
                "or give this run its own --state-dir"
            ) from None
        self._token = taken(self.path)
        for leftover in self.dir.glob(".backup-*.tmp"):
            with contextlib.suppress(OSError):  # removing it is tidying up, not a reason to stop
                leftover.unlink(missing_ok=True)
        return self

    def __exit__(self, *_: object) -> None:
        if self._fd >= 0:
            released(self.path, self._token)
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1


class Journal:
    """An append-only JSON-lines record of a run.

    Every line is written whole (``os.write``, finished after a short write) before :meth:`record` returns, so a
    killed process leaves at most its last line torn. Durability on disk (``fsync``) comes in two strengths:

    - :meth:`record` fsyncs before returning (the run's start, its backup, its end);
    - :meth:`record_synced` (a write's ``attempt``) is awaited before the write is sent: one ``fsync`` covers
      every line written by then (group commit), so the writes in flight share one. On a disk whose last fsync
      took under :data:`INLINE_FSYNC_SECONDS` it runs on the loop's thread, once the loop's current pass has
      journaled its lines (a worker thread costs more than such an fsync: the hand-over waits for the GIL);
      on a slower disk it runs in a worker thread, so the event loop does not wait on it (a disk that turns
      slow between two fsyncs holds the loop for one of them);
    - :meth:`note` (an endpoint's ``outcome``) is written at once and made durable by the next fsync of either
      kind or at :meth:`close`; a crash of the machine may lose it, and the next run re-reads that endpoint.
    """

    def __init__(self, path: str | Path, *, secrets: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self._secrets = tuple(secrets)
        self._written = 0  # lines written so far
        self._synced = 0  # lines known to be on disk
        self._syncing: asyncio.Future[None] | None = None  # the group fsync under way
        self._fsync_seconds = INLINE_FSYNC_SECONDS  # the last fsync's time (unknown: as if slow)
        self._fd_lock = threading.Lock()  # a worker's fsync against close()
        try:
            private_dir(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if stat.S_ISREG(os.fstat(self._fd).st_mode):  # never change a device's mode (/dev/full, as root)
                os.fchmod(self._fd, 0o600)
        except OSError as exc:
            raise BridgeError(
                f"{self.path}: cannot write the journal ({exc.strerror or exc}): nothing was sent"
            ) from None

    def _failed(self, event: str, exc: OSError) -> BridgeError:
        return BridgeError(
            f"{self.path}: cannot write the journal ({exc.strerror or exc}); the run stopped at "
            f"'{event}': run the same command again once the journal can be written"
        )

    def note(self, event: str, **fields: Any) -> None:
        """Append one event, whole, without waiting for the disk (see the class). Strings are scrubbed of known
        secrets (and long pieces of them) first.

        A line that cannot be written (a full disk) stops the run with an error naming the journal: going on
        would send writes no journal accounts for.
        """
        entry = {"event": event, **fields}
        line = json.dumps(entry, ensure_ascii=False, default=str)
        line = redact_text(line, self._secrets) + "\n"
        data = memoryview(line.encode("utf-8", errors="backslashreplace"))
        try:
            while data:  # os.write may write less than asked (a full disk, a signal): finish the line
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            raise self._failed(event, exc) from None
        self._written += 1

    def record(self, event: str, **fields: Any) -> None:
        """Append one event and fsync it (with every line before it) before returning."""
        self.note(event, **fields)
        try:
            self._fsync()
        except OSError as exc:
            raise self._failed(event, exc) from None

    async def record_synced(self, event: str, **fields: Any) -> None:
        """Append one event and wait until it is on disk, the fsync shared with every line written meanwhile (on
        the loop's thread after a fast fsync, in a worker thread after a slow one: see the class). The line is
        written (whole) before the first ``await``."""
        self.note(event, **fields)
        upto = self._written
        try:
            while self._synced < upto:
                if self._syncing is None:
                    self._syncing = asyncio.ensure_future(self._group_fsync())
                # Shielded: a waiter cancelled (a stopped run) does not cancel the fsync the others wait for.
                await asyncio.shield(self._syncing)
        except OSError as exc:
            raise self._failed(event, exc) from None

    async def _group_fsync(self) -> None:
        # A task: it starts in the loop's next pass, after every write of this pass has written its line.
        try:
            if self._fsync_seconds < INLINE_FSYNC_SECONDS:
                self._fsync()
            else:
                await asyncio.to_thread(self._fsync)
        finally:
            self._syncing = None

    def _fsync(self) -> None:
        """fsync every line written so far (from the loop's thread or a worker), and time it."""
        mark = self._written
        start = time.perf_counter()
        with self._fd_lock:
            if self._fd >= 0:
                os.fsync(self._fd)
        self._fsync_seconds = time.perf_counter() - start
        self._synced = max(self._synced, mark)

    def close(self) -> None:
        """Make the lines written with :meth:`note` durable, and close the journal file."""
        with self._fd_lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):  # each line was written; only its durability is in doubt
                    if self._synced < self._written:
                        os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the journal's events; a torn last line (the process was killed mid-write) is skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return
            yield json.loads(line)


def journal_of(backup_path: str | Path) -> Path:
    """The journal of the run that wrote ``backup-<time>.json`` (or ``rollback-backup-<time>.json``):
    ``journal-<time>.jsonl`` beside it."""
    path = Path(backup_path)
    stamp = path.name.split("backup-", 1)[-1]
    return path.with_name(f"journal-{stamp}").with_suffix(".jsonl")


def fields_written(journal_path: str | Path) -> dict[str, set[str]]:
    """For each endpoint, the body fields the run's journal shows it sent (its ``attempt`` lines).

    ``rollback`` puts back only these: a field a backup names but no write of that run carried was never
    changed by it. A journal that cannot be read is an input error naming it.
    """
    written: dict[str, set[str]] = {}
    try:
        for event in read_journal(journal_path):
            body = event.get("body") if isinstance(event, Mapping) else None
            endpoint = event.get("endpoint") if isinstance(event, Mapping) else None
            if event.get("event") == "attempt" and isinstance(endpoint, str) and isinstance(body, Mapping):
                written.setdefault(endpoint, set()).update(body)
    except OSError as exc:
        raise SnapshotError(f"{journal_path}: cannot read the run's journal: {exc.strerror or exc}") from None
    except (ValueError, AttributeError):
        raise SnapshotError(f"{journal_path}: not a bridge journal (a line is not a JSON object)") from None
    return written


def written_only(backup: Backup, *, force: bool = False) -> Backup:
    """``backup`` cut down to the fields its run's journal shows were sent: all ``rollback`` may put back.

    An endpoint no write of that run reached (it stopped, or the endpoint was already at its target) is left
    out. Without the journal there is no telling what the run wrote: refused with one line unless ``force``
    (then every field of the backup is put back).
    """
    if backup.path is None:
        return backup
    journal = journal_of(backup.path)
    try:
        written = fields_written(journal)
    except SnapshotError as exc:
        if force:
            return backup
        raise SnapshotError(
            f"{exc}; without it rollback cannot tell which fields its run changed "
            "(--force puts back every field of the backup)"
        ) from None
    entries = [
        BackupEntry(id=e.id, rest=e.rest, body={k: v for k, v in e.body.items() if k in written[e.id]}, legacy=e.legacy)
        for e in backup.entries
        if written.get(e.id)
    ]
    return Backup(target=backup.target, created_at=backup.created_at, entries=entries, path=backup.path)


@dataclass(frozen=True)
class BackupEntry:
    """One endpoint as it was before the run: its legacy record, its REST read and the body planned for it."""

    id: str
    rest: dict[str, Any]
    body: dict[str, Any]
    legacy: dict[str, Any] | None = None


@dataclass(frozen=True)
class Backup:
    """What a run may change, saved before its first write."""

    target: str
    created_at: str
    entries: list[BackupEntry]
    path: Path | None = None


def write_backup(path: str | Path, backup: Backup, *, secrets: Sequence[str] = ()) -> Path:
    """Write ``backup`` (redacted, scrubbed of ``secrets`` in every field, with its digest, 0600, atomically)."""
    content: dict[str, Any] = {
        "format": BACKUP_FORMAT,
        "format_version": 1,
        "target": backup.target,
        "created_at": backup.created_at,
        "endpoints": [
            {
                "id": e.id,
                "legacy": redact_endpoint(e.legacy) if e.legacy is not None else None,
                "rest": redact_endpoint(e.rest),
                "body": e.body,
            }
            for e in backup.entries
        ],
    }
    # One canonical encoding serves the scrub's search, the digest and the file: this runs between the reads and
    # the first write, where each pass over a 1,000-endpoint backup costs 15-20 ms. `jq . backup-*.json` shows it
    # indented.
    scrub = scope_scrubber(secrets)
    text = canonical_json(content)
    if scrub.may_touch(text):  # scrubbed value by value (a key in `args` or a start command goes too)
        content = scrub.value(content)
        text = canonical_json(content)
    digest = text_digest(text)
    text = f'{text[:-1]},"{DIGEST_FIELD}":"{digest}"}}'
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a hostile read: written as its \u escape
        text = json.dumps({**content, DIGEST_FIELD: digest})
    return write_private(path, text + "\n")


def load_backup(path: str | Path, *, force: bool = False) -> Backup:
    """Read a backup written by :func:`write_backup`; anything else is an input error naming the file.

    An edited backup (its digest does not match) is refused unless ``force``.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"{path}: not a bridge backup (invalid JSON: {exc})") from None
    if not isinstance(doc, Mapping) or doc.get("format") != BACKUP_FORMAT:
        raise SnapshotError(f'{path}: not a bridge backup (no "format": "{BACKUP_FORMAT}")')
    try:
        check_document(doc, path, kind="backup", force=force)
    except ValueError:  # NaN or a lone surrogate: not JSON bridge wrote
        raise SnapshotError(f"{path}: not a bridge backup (values JSON cannot hold)") from None
    items = doc.get("endpoints")
    if not isinstance(items, list):
        raise SnapshotError(f"{path}: endpoints: expected a list")
    entries = []
    ids: set[str] = set()
    for index, item in enumerate(items):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("id"), str)
            or not isinstance(item.get("rest"), Mapping)
            or not isinstance(item.get("body"), Mapping)
        ):
            raise SnapshotError(f"{path}: endpoints[{index}]: expected {{id, rest, body}}")
        if item["id"] in ids:  # never written so: two entries would be two writes at once
            raise SnapshotError(
                f"{path}: endpoints[{index}]: endpoint {escape_control(item['id'])} is listed twice; "
                "bridge restores each endpoint once (even with --force)"
            )
        ids.add(item["id"])
        legacy = item.get("legacy")
        if legacy is not None and not isinstance(legacy, Mapping):
            raise SnapshotError(f"{path}: endpoints[{index}].legacy: expected an object or null")
        entries.append(
            BackupEntry(
                id=item["id"],
                rest=dict(item["rest"]),
                body=dict(item["body"]),
                legacy=dict(legacy) if legacy is not None else None,
            )
        )
    target = doc.get("target")
    if not isinstance(target, str) or target not in TARGETS:
        raise SnapshotError(f"{path}: target: expected {' or '.join(TARGETS)}")
    return Backup(target=target, created_at=str(doc.get("created_at", "")), entries=entries, path=path)
