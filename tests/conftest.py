"""Shared fixtures: the RunPod emulator, started in-process on a free port and stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.emulator import Emulator

SAMPLE_ACCOUNT = Path(__file__).resolve().parents[1] / "fixtures" / "sample-account.json"
EMULATOR_KEY = "test-key-0123456789"


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """A factory: ``make_emulator(**kwargs)`` starts an ``Emulator(**kwargs)`` on a free port.

    Defaults: seeded from fixtures/sample-account.json, accepting only ``EMULATOR_KEY``. Every
    emulator it made is stopped at teardown.
    """
    started: list[Emulator] = []

    def make(snapshot: Any = SAMPLE_ACCOUNT, **kwargs: Any) -> Emulator:
        kwargs.setdefault("api_key", EMULATOR_KEY)
        emu = Emulator(snapshot, **kwargs).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """A running emulator seeded from the sample account, accepting only ``EMULATOR_KEY``."""
    return make_emulator()


@pytest.fixture(autouse=True)
def _private_lock_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's account locks live in its own XDG_STATE_HOME (subprocesses inherit it): tests run by
    other people on this machine, with the same test keys, never refuse each other."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
