"""A chore the app repeats in the background (pruning nonces): one task, owned by a `cleanup_ctx`.

Is: `every`, an async context manager that runs `work` every `seconds` while it is open, logs
a failure and carries on, and cancels and awaits the task when it closes.
Is not: a scheduler (the daily run has APScheduler, collector.daily_run), nor the outboxes'
workers (collector.outbox), which keep their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable


@contextlib.asynccontextmanager
async def every(
    seconds: float,
    work: Callable[[], Awaitable[int]],
    name: str,
    log: logging.Logger,
    failed: str,
    done: str,
) -> AsyncIterator[None]:
    """`work()` every `seconds` until closed; `failed` logged with the traceback when it
    raises, `done` (a %d format) at debug when it did something. The task is named `name`."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                count = await work()
            except Exception:  # the loop's outer guard: log, carry on
                log.exception(failed)
                continue
            if count:
                log.debug(done, count)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
