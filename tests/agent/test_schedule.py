"""When the agent polls and pushes: the pure rules (agent/schedule.py) with an injected clock,
and the service on APScheduler (agent/service.py): push at start when overdue (R2), backoff,
misfires after a sleep run once (coalesced) and the rhythm goes on, a woken box is noticed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent

from agent.config import ScheduleSection
from agent.schedule import Tick, backoff_delay, first_push_at, rhythm, slept_for
from agent.service import PUSH_JOB, RETRY_JOB, Service
from tests.agent.kit import wait_for
from tests.collector.kit import Clock

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


# --- the rules -----------------------------------------------------------------------------


def test_r2_first_push_is_now_when_never_pushed_or_the_last_is_a_day_old() -> None:
    assert first_push_at(None, T0, DAY) == T0
    assert first_push_at(T0 - DAY - timedelta(seconds=1), T0, DAY) == T0
    assert first_push_at(T0 - DAY, T0, DAY) == T0


def test_r2_first_push_waits_for_the_day_to_be_up_after_a_recent_push() -> None:
    last = T0 - timedelta(hours=1)
    assert first_push_at(last, T0, DAY) == last + DAY


def test_first_push_is_now_when_the_clock_went_back() -> None:
    assert first_push_at(T0 + timedelta(hours=3), T0, DAY) == T0


def test_rhythm_fires_at_most_interval_after_the_last_run() -> None:
    assert rhythm(3600, 300) == (3300, 300)
    assert rhythm(86_400, 0) == (86_400, 0)
    with pytest.raises(ValueError):
        rhythm(60, 60)


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter() -> None:
    low = [backoff_delay(n, 10, 3600, lambda: 0.0) for n in range(1, 12)]
    high = [backoff_delay(n, 10, 3600, lambda: 1.0) for n in range(1, 12)]
    assert low[:4] == [5, 10, 20, 40]  # half fixed ...
    assert high[:4] == [10, 20, 40, 80]  # ... half random
    assert low[-1] == 1800 and high[-1] == 3600  # capped
    assert backoff_delay(10_000, 10, 3600, lambda: 0.5) == 2700  # no overflow
    with pytest.raises(ValueError):
        backoff_delay(0, 10, 3600, lambda: 0.5)


def test_a_sleep_shows_as_a_tick_late_by_the_wall_clock() -> None:
    before = Tick(T0, 1000.0)
    on_time = Tick(T0 + timedelta(seconds=60.2), 1060.2)
    assert slept_for(before, on_time, 60) == 0
    # Suspended: the monotonic clock stood still for three hours, the wall clock did not.
    suspended = Tick(T0 + timedelta(hours=3, seconds=60), 1060.0)
    assert slept_for(before, suspended, 60) == 3 * 3600
    # The process was stopped (SIGSTOP) for ten minutes: both clocks ran on.
    stopped = Tick(T0 + timedelta(minutes=10), 1600.0)
    assert slept_for(before, stopped, 60) == 540


# --- the service on APScheduler -------------------------------------------------------------


class FakeWork:
    """Counts rounds; push answers from `results` (then True)."""

    def __init__(self, results: list[bool] | None = None, push_seconds: float = 0) -> None:
        self.polls = 0
        self.pushes: list[float] = []  # monotonic times
        self.finished = 0
        self.results = list(results or [])
        self.push_seconds = push_seconds

    async def poll(self) -> None:
        self.polls += 1

    async def push(self) -> bool:
        self.pushes.append(time.monotonic())
        await asyncio.sleep(self.push_seconds)
        self.finished += 1
        return self.results.pop(0) if self.results else True


def schedule(**values: float) -> ScheduleSection:
    defaults = {"push_jitter_seconds": 0, "poll_jitter_seconds": 0}
    return ScheduleSection.model_validate({**defaults, **values})


@pytest.fixture
async def services() -> AsyncIterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        await service.stop(timeout=5)


async def test_r2_push_at_start_when_the_last_good_push_is_over_a_day_old(
    services: list[Service],
) -> None:
    clock, work = Clock(), FakeWork()
    service = Service(work, schedule(), clock=clock)
    services.append(service)
    await service.start(last_push_ok=clock() - DAY - timedelta(minutes=1))
    assert work.polls == 1  # polled first, so the push carries fresh readings
    assert service.next_run(PUSH_JOB) in (clock(), None)  # due now (or already running)
    await wait_for(lambda: work.finished == 1, 10, "the push at start")
    assert service.next_run(PUSH_JOB) == clock() + DAY  # then daily


async def test_r2_no_push_at_start_after_a_recent_push(services: list[Service]) -> None:
    clock, work = Clock(), FakeWork()
    service = Service(work, schedule(), clock=clock)
    services.append(service)
    last = clock() - timedelta(hours=1)
    await service.start(last_push_ok=last)
    assert service.next_run(PUSH_JOB) == last + DAY
    await asyncio.sleep(0.3)
    assert work.pushes == []


async def test_first_start_ever_pushes_at_once(services: list[Service]) -> None:
    clock, work = Clock(), FakeWork()
    service = Service(work, schedule(), clock=clock)
    services.append(service)
    await service.start(last_push_ok=None)
    await wait_for(lambda: work.finished == 1, 10, "the first push")


async def test_missed_pushes_run_once_on_wake_then_the_rhythm_goes_on(
    services: list[Service],
) -> None:
    work = FakeWork()
    service = Service(work, schedule(push_interval_seconds=0.5))
    services.append(service)
    ran: list[datetime] = []
    missed: list[JobExecutionEvent] = []

    def listen(event: JobExecutionEvent) -> None:
        if event.job_id == PUSH_JOB:
            (missed if event.code == EVENT_JOB_MISSED else ran).append(event.scheduled_run_time)

    service.scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    await service.start(last_push_ok=None)
    await wait_for(lambda: len(ran) >= 2, 20, "two pushes in rhythm")
    first = ran[0]
    before = len(ran)
    # The box sleeps: the whole process stands still (the loop blocked) while pushes come due.
    time.sleep(2.3)  # noqa: ASYNC251
    await wait_for(lambda: len(ran) >= before + 2, 20, "the push on wake, then the next one")
    slots = [round((at - first).total_seconds() / 0.5, 3) for at in ran]
    assert all(slot == int(slot) for slot in slots), slots  # still on the old rhythm
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    # Four or more slots passed while asleep: they ran once (coalesced), not each; and the
    # next run after that is on a later slot of the same rhythm.
    assert max(gaps) >= 4, slots
    assert gaps.index(max(gaps)) < len(gaps) - 1, slots
    assert missed == []  # no grace limit: a late push is never skipped


async def test_a_failed_push_is_retried_with_growing_backoff_until_it_works(
    services: list[Service],
) -> None:
    work = FakeWork(results=[False, False, False, True])
    service = Service(
        work, schedule(backoff_base_seconds=0.1, backoff_max_seconds=0.3), rand=lambda: 0.5
    )
    services.append(service)
    await service.start(last_push_ok=None)
    await wait_for(lambda: work.finished == 4, 20, "three retries")
    gaps = [b - a for a, b in itertools.pairwise(work.pushes)]
    # Delays 0.075, 0.15, 0.225 (capped at 0.3 with half of it random); a loaded box adds.
    assert gaps[0] >= 0.07 and gaps[1] >= 0.14 and gaps[2] >= 0.22, gaps
    assert service.failures == 0
    assert service.next_run(RETRY_JOB) is None
    assert service.next_run(PUSH_JOB) is not None  # the daily rhythm is still there


async def test_a_jump_of_the_wall_clock_wakes_the_scheduler(
    services: list[Service], caplog: pytest.LogCaptureFixture
) -> None:
    clock, work = Clock(), FakeWork()
    service = Service(
        work, schedule(), clock=clock, wake_check_seconds=0.05, wake_tolerance_seconds=1
    )
    services.append(service)
    await service.start(last_push_ok=clock())
    caplog.set_level(logging.INFO, logger="agent.service")
    await asyncio.sleep(0.2)
    assert "woke up" not in caplog.text
    clock.advance(hours=8)  # resumed from suspend: the wall clock is hours ahead
    await wait_for(lambda: "woke up" in caplog.text, 10, "the wake to be noticed")


async def test_stop_lets_a_running_push_finish(services: list[Service]) -> None:
    work = FakeWork(push_seconds=0.5)
    service = Service(work, schedule())
    await service.start(last_push_ok=None)
    await wait_for(lambda: work.pushes, 10, "the push to start")
    await service.stop(timeout=10)
    assert work.finished == 1
    assert not service.scheduler.running
