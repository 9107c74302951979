"""`asr-collector simulate`'s progress on a terminal: the days done of the total, and for how long.

Is: one line on stderr, rewritten after each simulated day (collector.simulation.runner's
DayHook) and cleared at the end, so the command's summary line takes its place; only when
stderr is a terminal. Is not: a log (nothing is written to a pipe or a file), nor an
estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from collector.simulation.contract import Fleet, Usage
from collector.simulation.runner import simulate
from collector.store.database import Database


class DayProgress:
    """A DayHook that rewrites `what: day N/TOTAL, M:SS` on `stream` after each day."""

    def __init__(
        self,
        what: str,
        total: int,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()

    async def __call__(self, day: int, db: Database, now: datetime) -> None:
        """Day `day` (0 is the first) is done."""
        elapsed = int(self.clock() - self.started)
        self.stream.write(
            f"\r{self.what}: day {day + 1}/{self.total}, {elapsed // 60}:{elapsed % 60:02d}"
        )
        self.stream.flush()

    def close(self) -> None:
        """Clear the line."""
        self.stream.write("\r\033[K")
        self.stream.flush()


async def simulate_shown(
    fleet: Fleet, usage: Usage, policy: str, database: Path | None, what: str
) -> dict[str, Any]:
    """`simulate`, with its progress on stderr when stderr is a terminal; the report."""
    if not sys.stderr.isatty():
        return await simulate(fleet, usage, policy, database)
    progress = DayProgress(what, fleet.days, sys.stderr)
    try:
        return await simulate(fleet, usage, policy, database, on_day=progress)
    finally:
        progress.close()
