"""When the agent polls and pushes: timing rules, pure, with `now` always a parameter.

Is: the first push after a start (at once when the last successful push is older than the push
interval, R2: at least daily; else when the interval since it is up); the jittered rhythms
(each run at most `interval` after the previous one and at least `interval - jitter`); the
backoff of a failed push (exponential, capped, jittered, never zero); and how a sleep of the
box shows between two ticks (the tick came later by the wall clock than it was due).
Is not: the scheduler; agent.service runs these rules on APScheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

# How often the service checks whether the box slept (and wakes the scheduler if it did).
WAKE_CHECK_SECONDS = 60.0
# A tick this much later than due (by the wall clock) means the box slept or the clock jumped.
WAKE_TOLERANCE_SECONDS = 5.0


def first_push_at(last_ok: datetime | None, now: datetime, interval: timedelta) -> datetime:
    """When to push first after a start: now if the last good push is `interval` old."""
    if last_ok is None or now - last_ok >= interval or last_ok > now:
        return now  # never pushed, overdue, or the clock went back: push now
    return last_ok + interval


def rhythm(interval: float, jitter: float) -> tuple[float, float]:
    """(base, jitter) for a trigger that waits base + U(0, jitter): at most `interval`."""
    if not 0 <= jitter < interval:
        raise ValueError(f"jitter {jitter} must be at least 0 and less than interval {interval}")
    return interval - jitter, jitter


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds before retrying after `failures` failures in a row (1: the first failure).

    Exponential (base, 2 base, 4 base, ...) up to `cap`, then "equal jitter": half of it fixed,
    half random, so agents that failed together do not retry together, and none retries at once.
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True)
class Tick:
    """A reading of both clocks."""

    wall: datetime
    monotonic: float


def slept_for(
    previous: Tick, current: Tick, expected: float, tolerance: float = WAKE_TOLERANCE_SECONDS
) -> float:
    """Seconds the box seems to have slept between two ticks `expected` seconds apart, or 0.

    When the box suspends, the monotonic clock stops (so timers come late by the wall clock);
    when the process is stopped, both run on and the tick comes late. Either way the wall clock
    shows more time than was due. A forward jump of the clock looks the same, and is handled the
    same way: run what is due now.
    """
    late = (current.wall - previous.wall).total_seconds() - expected
    return late if late > tolerance else 0.0
