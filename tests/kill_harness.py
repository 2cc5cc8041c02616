"""Run the bridge CLI and SIGKILL it at a chosen point: ``python kill_harness.py POINT:N bridge-args...``.

A test harness, not part of bridge: it wraps library functions from the outside (no test-only branch in
bridge itself) and kills its own process with SIGKILL, which nothing can catch or clean up after, at:

- ``request:N``        as the Nth HTTP request (any API) is about to be sent
- ``write-before:N``   as the Nth REST write is about to be sent (not applied)
- ``write-after:N``    right after the Nth REST write was answered (applied, outcome not yet journaled)
- ``verify:N``         as the Nth read after a write is about to be sent (the run's final list read-back, or
                       the re-read of a written endpoint)
- ``backup-partial``   halfway through writing the backup's bytes to its temporary file
- ``backup-unrenamed`` after the backup's temporary file is complete, before it is renamed into place
- ``journal-torn:N``   halfway through writing the Nth journal line (a torn last line)

If the point is never reached the command ends normally, and the test that expected a kill fails.
"""

from __future__ import annotations

import os
import signal
import sys
import types
from typing import Any


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str) -> None:
    name, _, number = point.partition(":")
    n = int(number or 1)
    counter = {"n": 0}

    def hit() -> bool:
        counter["n"] += 1
        return counter["n"] == n

    if name == "request":
        from bridge.http import Http

        send = Http._send  # every attempt of every request of the run goes through it

        async def send_hook(self: Any, *args: Any, **kwargs: Any) -> Any:
            if hit():
                die()
            return await send(self, *args, **kwargs)

        Http._send = send_hook  # type: ignore[method-assign]
    elif name in ("write-before", "write-after", "verify"):
        from bridge.rest import RestClient

        update, get, listing = RestClient.send_update, RestClient.get_endpoint, RestClient.list_endpoints
        written: set[str] = set()

        async def update_hook(self: Any, endpoint_id: str, body: Any) -> Any:
            if name == "write-before" and hit():
                die()
            answer = await update(self, endpoint_id, body)
            written.add(endpoint_id)
            if name == "write-after" and hit():
                die()
            return answer

        async def get_hook(self: Any, endpoint_id: str) -> Any:
            if name == "verify" and endpoint_id in written and hit():
                die()
            return await get(self, endpoint_id)

        async def list_hook(self: Any) -> Any:
            if name == "verify" and written and hit():
                die()
            return await listing(self)

        RestClient.send_update = update_hook  # type: ignore[method-assign]
        RestClient.get_endpoint = get_hook  # type: ignore[method-assign]
        RestClient.list_endpoints = list_hook  # type: ignore[method-assign]
    elif name in ("backup-partial", "backup-unrenamed"):
        import bridge.files

        real_os = bridge.files.os
        real_fdopen = real_os.fdopen

        class HalfFile:
            def __init__(self, fh: Any) -> None:
                self.fh = fh

            def __enter__(self) -> HalfFile:
                return self

            def __exit__(self, *exc: object) -> None:
                self.fh.close()

            def write(self, text: str) -> int:
                self.fh.write(text[: len(text) // 2])
                self.fh.flush()
                real_os.fsync(self.fh.fileno())
                die()
                return 0

            def __getattr__(self, attr: str) -> Any:
                return getattr(self.fh, attr)

        def fdopen_hook(fd: int, *args: Any, **kwargs: Any) -> Any:
            fh = real_fdopen(fd, *args, **kwargs)
            is_backup = os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".backup-")
            return HalfFile(fh) if name == "backup-partial" and is_backup else fh

        def replace_hook(src: Any, dst: Any) -> None:
            if name == "backup-unrenamed" and os.path.basename(str(dst)).startswith("backup-"):
                die()
            real_os.replace(src, dst)

        bridge.files.os = types.SimpleNamespace(  # type: ignore[assignment]
            **{k: getattr(real_os, k) for k in dir(real_os) if not k.startswith("__")}
        )
        bridge.files.os.fdopen = fdopen_hook  # type: ignore[attr-defined]
        bridge.files.os.replace = replace_hook  # type: ignore[attr-defined]
    elif name == "journal-torn":
        import bridge.journal

        real = bridge.journal.os

        def write_hook(fd: int, data: bytes) -> int:
            if hit():
                real.write(fd, data[: len(data) // 2])
                real.fsync(fd)
                die()
            return real.write(fd, data)

        bridge.journal.os = types.SimpleNamespace(  # type: ignore[assignment]
            **{k: getattr(real, k) for k in dir(real) if not k.startswith("__")}
        )
        bridge.journal.os.write = write_hook  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"kill_harness: unknown point {point!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from bridge.cli import main

    sys.argv = ["bridge", *sys.argv[2:]]
    main()
