"""``asyncio.run`` for a coroutine whose result is large (a plan, a run's outcomes)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, handing the result back outside the task.

    On Python 3.11, ``asyncio.run`` puts SIGINT's handler back when it ends through ``signal.signal``, which
    formats the ``repr`` of the old handler, a partial holding the finished main task, whose ``repr`` holds its
    result's. For a migration of 1,000 endpoints that is the whole plan, and took 0.2 to 1.5 s of CPU after the
    last request. The task here ends with None.
    """
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
