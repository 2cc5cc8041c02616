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
