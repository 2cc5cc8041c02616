"""The account lock keeps two runs against one account apart on one machine, across processes and state dirs."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import Settings
from bridge.errors import InputError
from bridge.locks import AccountLock, user_state_dir

KEY = "rpa_LOCKKEY0123456789ABCDEFGHIJKLM"
URLS = ("https://api.runpod.io/graphql", "https://rest.runpod.io/v1", "https://api.runpod.io/v2")

HOLD = textwrap.dedent(
    """
    import sys, time
    from bridge.locks import AccountLock
    key, home, state, *urls = sys.argv[1:]
    with AccountLock(key, urls, home=home, state_dir=state):
        print("held", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of KEY at URLS."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, KEY, str(tmp_path / "home"), str(tmp_path / "one" / "bridge-state"), *URLS],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    yield proc
    proc.kill()
    proc.wait(30)
    proc.stdout.close()


def test_second_process_same_account_is_refused(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """Another state dir, the same key and URLs (trailing slash, case): one line naming the holder, exit 2."""
    variants = [URLS, tuple(u + "/" for u in URLS), tuple(u.upper() for u in URLS)]
    for urls in variants:
        pattern = rf"another bridge run \(pid {holder.pid}, .*one/bridge-state\)"
        lock = AccountLock(KEY, urls, home=tmp_path / "home", state_dir=tmp_path / "two" / "bridge-state")
        with pytest.raises(InputError, match=pattern) as info, lock:
            pass
        assert info.value.exit_code == 2 and "same RunPod account" in str(info.value)


@pytest.mark.parametrize(
    "urls",
    [
        ("https://api.runpod.io:443/graphql", "https://rest.runpod.io:443/v1", "https://api.runpod.io:443/v2"),
        ("https://api.runpod.io./graphql", "https://REST.runpod.io./v1/", "https://api.runpod.io.//v2"),
        (" https://api.runpod.io/graphql", "https://rest.runpod.io//v1", "https://Api.Runpod.IO/v2///"),
    ],
)
def test_other_spellings_of_the_same_urls_are_the_same_account(
    tmp_path: Path, holder: subprocess.Popen[str], urls: tuple[str, ...]
) -> None:
    """The default port written out, a trailing dot on the host, doubled slashes: still the held account."""
    lock = AccountLock(KEY, urls, home=tmp_path / "home", state_dir=tmp_path / "two" / "bridge-state")
    with pytest.raises(InputError, match="same RunPod account"), lock:
        pass


def test_every_name_of_this_machine_is_one_server(tmp_path: Path) -> None:
    """localhost, 127.0.0.1, 127.1.2.3 (all loopback), [::1] and ::ffff:127.0.0.1 name the same emulator."""
    names = ["localhost", "127.0.0.1", "127.1.2.3", "[::1]", "[::ffff:127.0.0.1]", "LOCALHOST."]
    first = AccountLock(KEY, [f"http://{names[0]}:8765/{p}" for p in ("graphql", "v1", "v2")], home=tmp_path)
    for name in names[1:]:
        other = AccountLock(KEY, [f"http://{name}:8765/{p}" for p in ("graphql", "v1", "v2")], home=tmp_path)
        assert other.path == first.path, name
    elsewhere = AccountLock(KEY, [f"http://127.0.0.1:8766/{p}" for p in ("graphql", "v1", "v2")], home=tmp_path)
    assert elsewhere.path != first.path  # another port is another server


def test_other_accounts_are_not_held(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """Another key, or the same key against other URLs (the emulator), is another account."""
    with AccountLock(KEY + "x", URLS, home=tmp_path / "home"):
        pass
    with AccountLock(KEY, ("http://127.0.0.1:1/graphql", *URLS[1:]), home=tmp_path / "home"):
        pass


def test_a_killed_holder_frees_the_account(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """SIGKILL ends the holder: the next run takes the lock at once."""
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    with AccountLock(KEY, URLS, home=tmp_path / "home"):
        pass


def test_same_process_twice_is_refused(tmp_path: Path) -> None:
    """Two runs of one account in one process (two threads, or two asyncio tasks of a library user) also
    exclude each other; the same run entering its lock again (taken before its live read) does not."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def other_run() -> None:
        with AccountLock(KEY, URLS, home=tmp_path):
            pass

    with AccountLock(KEY, URLS, home=tmp_path), ThreadPoolExecutor(1) as pool:
        with pytest.raises(InputError, match="same RunPod account"):
            pool.submit(other_run).result()
        with AccountLock(KEY, URLS, home=tmp_path):  # nested in the same run
            pass
        with pytest.raises(InputError, match="same RunPod account"):
            pool.submit(other_run).result()

    async def two_tasks() -> list[BaseException | None]:
        started = asyncio.Event()

        async def run(first: bool) -> None:
            with AccountLock(KEY, URLS, home=tmp_path):
                if first:
                    started.set()
                    await asyncio.sleep(0.05)
                else:
                    await started.wait()

        async def second() -> None:
            await started.wait()
            await run(False)

        return await asyncio.gather(run(True), second(), return_exceptions=True)  # type: ignore[return-value]

    first, second = asyncio.run(two_tasks())
    assert first is None and isinstance(second, InputError)
    with AccountLock(KEY, URLS, home=tmp_path):  # released
        pass


def test_lock_files_are_private_and_hold_no_key(tmp_path: Path) -> None:
    """The directories are 0700 whatever the umask, the file 0600, and neither name nor content has the key."""
    old = os.umask(0)
    try:
        with AccountLock(KEY, URLS, home=tmp_path / "state" / "bridge") as lock:
            content = lock.path.read_text()
    finally:
        os.umask(old)
    for d in (tmp_path / "state", tmp_path / "state" / "bridge", lock.path.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in content and KEY[i : i + 8] not in str(lock.path)


def test_state_dir_follows_xdg(tmp_path: Path) -> None:
    """XDG_STATE_HOME when absolute, else ~/.local/state; Settings give the lock their URLs."""
    assert user_state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/h"}) == Path("/x/state/bridge")
    assert user_state_dir({"XDG_STATE_HOME": "relative", "HOME": "/h"}) == Path("/h/.local/state/bridge")
    assert user_state_dir({"HOME": "/h"}) == Path("/h/.local/state/bridge")
    settings = Settings(api_key=KEY, graphql_url=URLS[0], rest_url=URLS[1], rest_v2_url=URLS[2])
    lock = AccountLock.for_settings(settings, environ={"XDG_STATE_HOME": str(tmp_path)})
    assert lock.path == AccountLock(KEY, URLS, home=tmp_path / "bridge").path


def test_unusable_state_home_is_one_line(tmp_path: Path) -> None:
    """A state home that cannot be created names the directory and the variable to set."""
    (tmp_path / "file").write_text("")
    lock = AccountLock(KEY, URLS, home=tmp_path / "file" / "bridge")
    with pytest.raises(InputError, match=r"cannot create the account lock.*XDG_STATE_HOME"), lock:
        pass
