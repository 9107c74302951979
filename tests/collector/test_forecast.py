"""Pure unit tests of collector.replenish.forecast, daily.point_of and lifecycle (R1, R6-R16).

Readings are `Point`s a day apart at noon UTC from Monday 2024-01-01 (day 0); the usage of a
day is the drop between the reading before and that day's reading. A series of n + 1 daily
readings gives n days of known usage (the first day has no reading before it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from collector.replenish.daily import point_of
from collector.replenish.forecast import (
    GRAMS,
    PERCENT,
    Forecast,
    Install,
    Point,
    Track,
    advance,
    day_number,
    forecast,
    with_order,
)
from collector.replenish.lifecycle import (
    ACTIVATION,
    DISCONNECTED,
    NO_TONER_PENDING,
    NO_USAGE_RATE,
    NOTICE_DISCONNECTED,
    NOTICE_FOLLOWUP,
    STATES,
    TONER_DELIVERED,
    TONER_ORDERED,
    TONER_REPLACED,
    DeviceFacts,
    DeviceState,
    device_state,
    notice_due,
)
from collector.replenish.settings import Rules

RULES = Rules()
T0 = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)  # a Monday


def at(day: float) -> datetime:
    """Noon UTC of day `day` (fractions for other hours)."""
    return T0 + timedelta(days=day)


def point(
    day: float,
    left: float | None,
    capacity: float = 300.0,
    unit: str = GRAMS,
    quality: str = "measured",
) -> Point:
    """One reading on day `day`."""
    return Point(at(day), left, capacity, unit, quality)


def levels(uses: Sequence[float], start: float = 300.0, capacity: float = 300.0) -> list[float]:
    """The level on days 0..n when day i + 1 uses uses[i]; an empty cartridge is replaced by a
    full one (R13) that takes the rest of the day's usage."""
    out = [start]
    for use in uses:
        level = out[-1] - use
        out.append(level + capacity if level < 0 else level)
    return out


def daily(
    uses: Sequence[float],
    start: float = 300.0,
    capacity: float = 300.0,
    unit: str = GRAMS,
    quality: str = "measured",
) -> list[Point]:
    """A reading every day from day 0, the levels from `levels`."""
    return [
        point(day, level, capacity, unit, quality)
        for day, level in enumerate(levels(uses, start, capacity))
    ]


def run(
    points: Sequence[Point], track: Track | None = None, rules: Rules = RULES
) -> tuple[Track, list[Install]]:
    """The track (empty by default) advanced by `points`."""
    return advance(track if track is not None else Track(), points, rules)


def forecast_of(points: Sequence[Point], balance: int = 0) -> Forecast:
    """The forecast at the last reading, from a new track with `balance` cartridges waiting."""
    advanced, _ = run(points, Track(balance=balance))
    return forecast(advanced, points[-1].at, RULES)


def step(value: float, size: float) -> float:
    """A level as a device with coarse steps reports it (rounded up to a step)."""
    return size * math.ceil(round(value, 6) / size)


WEEKDAYS = [0.0 if at(day).weekday() >= 5 else 10.0 for day in range(1, 29)]  # R7: 200 g


# --- R7 usage rate ---------------------------------------------------------------------------


def test_r7_weekday_usage_is_a_calendar_rate() -> None:
    """R7: 10 g each weekday and none at weekends is 50/7 g a calendar day; days left from it,
    and with the balance (R13) counted in whole cartridges."""
    f = forecast_of(daily(WEEKDAYS), balance=2)
    assert f.unit == GRAMS
    assert f.rate == pytest.approx(50 / 7)
    assert f.rate_average == pytest.approx(50 / 7)
    assert f.remaining == pytest.approx(100.0)
    assert f.days_left == pytest.approx(14.0)  # 100 g / (50/7)
    assert f.days_left_total == pytest.approx(98.0)  # (100 + 2 * 300) / (50/7)
    assert f.balance == 2
    assert f.days_with_data == 28
    assert f.confidence == 1.0
    assert (f.spike, f.high_usage, f.high_usage_suspected) == (False, False, False)


def test_r7_gaps_spread_over_the_missing_days() -> None:
    """R2/R7: a printer asleep for days reports the drop later; it is spread over the gap's
    days and the rate is the same as with daily readings."""
    points = daily(WEEKDAYS)
    gaps = {2, 3, 4, 6, 7}  # Wed-Fri read on Sat; Sun-Mon read on Tue
    sparse = [p for i, p in enumerate(points) if i not in gaps]
    full, _ = run(points)
    track, _ = run(sparse)
    assert track.usage[1:6] == (10.0, 7.5, 7.5, 7.5, 7.5)  # Tue; Wed-Fri's 30 g over Wed-Sat
    assert track.usage[6:9] == pytest.approx((20 / 3,) * 3)  # Mon-Tue's 20 g over Sun-Tue
    assert track.usage[9:] == full.usage[9:]
    assert forecast(track, at(28), RULES).rate == pytest.approx(50 / 7)
    assert forecast(full, at(28), RULES).rate == pytest.approx(50 / 7)


def test_r7_device_gone_dark_keeps_its_rate() -> None:
    """R7/R16: days after the last reading are unknown, not zero: the rate stays and the level
    is extrapolated down by rate * elapsed."""
    track, _ = run(daily([10.0] * 20))  # 100 g left on day 20
    assert track.last_day == day_number(at(20))
    assert None not in track.usage[1:]
    later = forecast(track, at(27), RULES)
    assert later.rate == pytest.approx(10.0)
    assert later.remaining == pytest.approx(30.0)
    assert later.days_left == pytest.approx(3.0)
    assert forecast(track, at(40), RULES).remaining == 0.0  # not below empty


def test_r7_device_back_from_dark_spreads_the_drop() -> None:
    """R7: when data comes back after a dark week, the drop is spread over the week."""
    track, _ = run(daily([10.0] * 20))
    back, _ = run([point(27, 30.0)], track)
    assert back.usage[-7:] == (10.0,) * 7
    assert forecast(back, at(27), RULES).rate == pytest.approx(10.0)


def test_r7_holiday_lull_does_not_lower_rate_below_average() -> None:
    """R7/R12: two weeks closed in the 4-week window halve the average; the recent lull (0 a
    day) is not the rate: the rate is the average."""
    f = forecast_of(daily(WEEKDAYS[:14] + [0.0] * 14))
    assert f.rate_average == pytest.approx(100 / 28)
    assert f.rate_recent == 0.0
    assert f.rate == pytest.approx(100 / 28)
    assert f.spike is False
    assert f.days_left == pytest.approx(200 / (100 / 28))


def test_r7_min_history_days_before_a_rate() -> None:
    """R7: fewer than min_history_days (3) days of usage: no rate from the level; a cold start
    (a 300 g cartridge taken to last 60 days: 5 g a day) until then; then the rate."""
    two = forecast_of(daily([10.0, 10.0]))
    assert (two.rate_average, two.basis) == (None, "cold-start")
    assert (two.rate, two.days_left, two.days_left_total) == (5.0, 56.0, 56.0)
    assert two.confidence == 0.1
    assert two.days_with_data == 2
    assert two.remaining == 280.0
    three = forecast_of(daily([10.0] * 3))
    assert three.rate == pytest.approx(10.0)
    assert three.confidence == 0.11  # 3 of 28 days
    assert three.days_left == pytest.approx(27.0)


def test_r7_no_number_breaks_the_series() -> None:
    """R1/R7: a reading without a number ("some remaining", -3) makes the usage up to the next
    number unknown (None), not zero, and the rate comes from the other days."""
    points = daily([10.0] * 28)
    points[10] = replace(points[10], remaining=None, quality="some-remaining")
    track, installs = run(points)
    assert installs == []
    assert track.usage[10:12] == (None, None)
    assert track.usage.count(None) == 3  # day 0 too: no reading before it
    f = forecast(track, at(28), RULES)
    assert f.days_with_data == 26
    assert f.rate == pytest.approx(10.0)
    assert f.remaining == pytest.approx(20.0)


def test_r7_no_number_on_the_last_reading() -> None:
    """R1/R7: when the newest reading has no number, the level is unknown but the rate stays."""
    points = [*daily([10.0] * 10), point(11, None, quality="some-remaining")]
    f = forecast_of(points)
    assert f.rate == pytest.approx(10.0)
    assert (f.remaining, f.days_left, f.days_left_total) == (None, None, None)


def test_r7_coarse_steps_average_out_with_lower_confidence() -> None:
    """R1/R7: a level in 20 % steps (one a week at 20/7 % a day) averages to the same rate as
    fine data over the window, with a lower confidence."""
    true = [100 - 20 / 7 * day for day in range(29)]
    fine = [point(d, v, 100.0, PERCENT) for d, v in enumerate(true)]
    coarse = [point(d, step(v, 20.0), 100.0, PERCENT, "coarse") for d, v in enumerate(true)]
    assert [p.remaining for p in coarse[:9]] == [100.0] * 7 + [80.0] * 2
    f_fine, f_coarse = forecast_of(fine), forecast_of(coarse)
    assert f_fine.rate == pytest.approx(20 / 7)
    assert f_coarse.rate == pytest.approx(20 / 7)
    assert f_fine.confidence == 1.0
    assert f_coarse.confidence == 0.6
    assert f_coarse.capacity == 100.0


# --- R12 spike -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recent", "spike", "rate"),
    [
        (30.0, True, 30.0),  # average (210 + 210) / 28 = 15; 30 >= 1.5 * 15
        (18.0, True, 18.0),  # average 12: exactly spike_ratio times
        (17.0, False, 329 / 28),  # 17 / 11.75 < 1.5: the average
    ],
)
def test_r12_spike_uses_the_recent_rate(recent: float, spike: bool, rate: float) -> None:
    """R12: a 7-day rate >= spike_ratio * the 28-day average is a spike; the rate is then the
    recent one."""
    f = forecast_of(daily([10.0] * 21 + [recent] * 7, start=1000.0, capacity=1000.0))
    assert f.rate_recent == pytest.approx(recent)
    assert f.spike is spike
    assert f.rate == pytest.approx(rate)


# --- R13 balance and installs ----------------------------------------------------------------


def test_r13_level_jump_is_an_install() -> None:
    """R13: a rise of install_jump_share of the capacity is a new cartridge: the balance drops
    by one, the install is counted, and the day's usage is the old one's rest + the new one's
    loss."""
    points = daily([10.0] * 30, start=295.0)  # 5 g left on day 29, a new one on day 30
    assert [p.remaining for p in points[-2:]] == [5.0, 295.0]
    track, installs = run(points, Track(balance=1))
    assert installs == [Install(at(30), 5.0, 0.0, False)]
    assert (track.balance, track.installs, track.last_value) == (0, 1, 295.0)
    assert track.usage[-1] == 10.0  # 5 g from the old one, 5 g from the new one
    assert forecast(track, at(30), RULES).rate == pytest.approx(10.0)


def test_r13_install_never_makes_balance_negative() -> None:
    """R13: a cartridge bought elsewhere (balance 0) is an install, the balance stays 0."""
    track, installs = run(daily([10.0] * 30, start=295.0))
    assert len(installs) == 1
    assert (track.balance, track.installs) == (0, 1)


@pytest.mark.parametrize(
    ("left_before", "early"),
    [(200.0, True), (55.0, True), (54.0, False), (10.0, False)],
)
def test_r13_early_replacement(left_before: float, early: bool) -> None:
    """R13: a new cartridge while early_replacement_share (15 % = 45 g) or more must still have
    been left (the last level less a day's 10 g) is an early replacement."""
    uses = [10.0] * 10
    points = [*daily(uses, start=left_before + 100.0), point(11, 300.0)]
    track, installs = run(points)
    assert installs == [Install(at(11), left_before, left_before - 10.0, early)]
    assert track.usage[-1] == 10.0  # 10 g from the old one, none from the new one yet


def test_r13_small_rise_is_noise() -> None:
    """R13: a rise below install_jump_share (30 g of 300) is noise: no install, and the level
    is not reset (the next drop counts from the lower level)."""
    points = [point(0, 200.0), point(1, 190.0), point(2, 219.0), point(3, 185.0)]
    track, installs = run(points, Track(balance=1))
    assert installs == []
    assert (track.balance, track.installs) == (1, 0)
    assert track.usage == (None, 10.0, 0.0, 5.0)
    assert track.last_value == 185.0


def test_r13_jump_of_exactly_the_share_is_an_install() -> None:
    """R13: a rise of exactly install_jump_share of the capacity is an install."""
    _, installs = run([*daily([10.0] * 5, start=100.0), point(6, 80.0)])
    assert len(installs) == 1


def test_r14_with_order_counts_in_the_balance() -> None:
    """R13/R14: an order adds its cartridges to the balance; an extra order (day None) keeps
    the last ASR order day (R12)."""
    track, _ = run(daily([10.0] * 5))
    ordered = with_order(track, 2, day_number(at(5)))
    assert (ordered.balance, ordered.last_order_day) == (2, day_number(at(5)))
    extra = with_order(ordered, 1, None)
    assert (extra.balance, extra.last_order_day) == (3, day_number(at(5)))
    assert extra.usage == track.usage


# --- the track -------------------------------------------------------------------------------


def test_r13_track_json_round_trip() -> None:
    """R13: the track (usage with unknown days, balance, order day, installs) survives JSON."""
    points = daily([10.0] * 30, start=295.0)
    points[5] = replace(points[5], remaining=None)
    track, _ = run(points)
    track = with_order(track, 2, day_number(at(30)))
    stored = json.loads(json.dumps(track.to_json()))
    assert Track.from_json(stored) == track
    assert Track.from_json(stored).usage[5] is None  # packed (issue 16): NaN is unknown
    assert (stored["balance"], stored["installs"]) == (2, 1)
    # A track stored before the packed form (a JSON list with nulls) still loads (r0011).
    old = {**stored, "usage": list(track.usage), "meter": {**stored["meter"], "usage": [1.5]}}
    assert Track.from_json(old) == replace(track, meter=replace(track.meter, usage=(1.5,)))


def test_r2_late_and_old_points_are_ignored() -> None:
    """R2: readings delivered late (at or before the newest applied) do not move the track;
    a batch out of order is applied in time order."""
    points = daily([10.0] * 10)
    track, _ = run(points)
    again, installs = run([point(4, 250.0), point(10, 50.0), points[3]], track)
    assert again == track
    assert installs == []
    shuffled, _ = run(list(reversed(points)))
    assert shuffled == track


def test_r7_history_trimmed_to_history_days() -> None:
    """R7: the track keeps history_days (90) of daily usage."""
    track, _ = run(daily([10.0] * 99, start=1000.0, capacity=1000.0))
    assert len(track.usage) == 90
    assert track.start == day_number(at(10))
    assert track.last_day == day_number(at(99))
    assert forecast(track, at(99), RULES).rate == pytest.approx(10.0)


def test_r7_unit_change_restarts_the_series() -> None:
    """R1/R7: a device that switches from grams to percent starts a new series."""
    points = [*daily([10.0] * 10), point(11, 50.0, 100.0, PERCENT), point(12, 48.0, 100.0, PERCENT)]
    track, installs = run(points)
    assert installs == []
    assert (track.unit, track.capacity, track.usage) == (PERCENT, 100.0, (None, 2.0))


# --- R6 high usage ---------------------------------------------------------------------------

HEAVY = [100.0] * 7  # 700 g a week of 350 g cartridges: exactly 2 a week
LIGHT = [50.0] * 7  # 1 cartridge a week


def high_usage_of(weeks: Sequence[Sequence[float]]) -> Forecast:
    """The forecast after whole weeks of daily usage on 350 g cartridges."""
    uses = [use for week in weeks for use in week]
    return forecast_of(daily(uses, start=350.0, capacity=350.0))


def test_r6_two_cartridges_every_week_is_high_usage() -> None:
    """R6: 2 cartridges a week (the threshold, with installs between) every week of
    high_usage_weeks (4) is high usage."""
    f = high_usage_of([HEAVY] * 4)
    assert f.weekly_cartridges == (2.0, 2.0, 2.0, 2.0)
    assert (f.high_usage, f.high_usage_suspected) == (True, False)


def test_r6_one_light_week_is_not_high_usage() -> None:
    """R6: "every week": one light week in the window clears the flag."""
    f = high_usage_of([HEAVY, LIGHT, HEAVY, HEAVY])
    assert f.weekly_cartridges == (2.0, 1.0, 2.0, 2.0)
    assert (f.high_usage, f.high_usage_suspected) == (False, False)


def test_r6_fewer_weeks_but_all_heavy_is_suspected() -> None:
    """R6: fewer whole weeks than high_usage_weeks, all heavy: suspected, not yet flagged."""
    f = high_usage_of([HEAVY] * 3)
    assert f.weekly_cartridges == (2.0, 2.0, 2.0)
    assert (f.high_usage, f.high_usage_suspected) == (False, True)


# --- R1 point_of -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "grams_left", "grams_used", "receptacle", "hint", "expected"),
    [
        (40.0, 120.0, 180.0, False, None, (120.0, 300.0, GRAMS)),  # grams where given
        (40.0, 120.0, None, False, GRAMS, (40.0, 100.0, PERCENT)),  # else percent
        (40.0, None, None, False, None, (40.0, 100.0, PERCENT)),
        (30.0, None, None, True, None, (70.0, 100.0, PERCENT)),  # 30 % full: 70 % room
        (None, None, None, False, GRAMS, (None, None, GRAMS)),  # no number: the hint's unit
        (None, None, None, True, None, (None, None, PERCENT)),
    ],
)
def test_r1_point_of(
    percent: float | None,
    grams_left: float | None,
    grams_used: float | None,
    receptacle: bool,
    hint: str | None,
    expected: tuple[float | None, float | None, str],
) -> None:
    """R1: a stored reading as a Point: grams (left + used = capacity) where the device gives
    them, else percent; a receptacle's level is the room left; no number: remaining None."""
    p = point_of(at(0), percent, grams_left, grams_used, "measured", receptacle, hint)
    assert (p.remaining, p.capacity, p.unit) == expected
    assert (p.at, p.quality) == (at(0), "measured")


# --- lifecycle (the FAQ's diagram) and R16 ---------------------------------------------------

NOW = at(60)  # 2024-03-01 12:00 UTC
STAND = Forecast(
    unit=GRAMS,
    rate=10.0,
    rate_average=10.0,
    rate_recent=10.0,
    remaining=600.0,
    capacity=300.0,
    days_left=60.0,
    days_left_total=60.0,
    balance=0,
    confidence=1.0,
    days_with_data=28,
    spike=False,
    high_usage=False,
    high_usage_suspected=False,
)
UNKNOWN = replace(STAND, rate=None, rate_average=None, days_left=None, days_left_total=None)
DUE = replace(STAND, remaining=210.0, days_left=21.0, days_left_total=21.0)


def facts(
    *supplies: tuple[str, str, Forecast],
    read_days_ago: float | None = 1.0,
    in_transit: int = 0,
    delivered_ever: bool = False,
    high_usage: bool = False,
) -> DeviceFacts:
    """A device registered 60 days before NOW, last read `read_days_ago` (None: never)."""
    return DeviceFacts(
        serial="SN1",
        last_reading_at=None if read_days_ago is None else NOW - timedelta(days=read_days_ago),
        registered_at=T0,
        forecasts=supplies or (("black", "toner", STAND),),
        in_transit=in_transit,
        delivered_ever=delivered_ever,
        high_usage=high_usage,
    )


STATE_CASES = {
    DISCONNECTED: (
        facts(read_days_ago=8),
        "no reading since 2024-02-22: ASR cannot order without data",
    ),
    NO_USAGE_RATE: (
        facts(("black", "toner", STAND), ("cyan", "toner", UNKNOWN)),
        "no usage rate yet for cyan",
    ),
    NO_TONER_PENDING: (
        facts(("black", "toner", STAND), ("waste", "waste", UNKNOWN)),
        "usage rate known, no ASR toner pending",
    ),
    ACTIVATION: (
        facts(("black", "toner", DUE), ("cyan", "toner", UNKNOWN)),
        "black at the 21-day trigger",
    ),
    TONER_ORDERED: (facts(in_transit=2), "2 order line(s) on their way"),
    TONER_DELIVERED: (
        facts(("black", "toner", replace(DUE, balance=1)), delivered_ever=True),
        "delivered, not installed yet: black 1",
    ),
    TONER_REPLACED: (facts(delivered_ever=True), "shipped cartridges installed"),
}


@pytest.mark.parametrize("state", STATES)
def test_r16_r7_r8_r13_lifecycle_state_reachable(state: str) -> None:
    """Lifecycle (R7, R8, R13, R16): each of the 7 states is reached, with its reason."""
    given, reason = STATE_CASES[state]
    assert device_state(given, NOW, RULES) == DeviceState(state, reason)
    assert tuple(STATE_CASES) == STATES


def test_r6_lifecycle_reason_shows_high_usage() -> None:
    """R6: a flagged device at the trigger stays in activation, handled by hand."""
    got = device_state(facts(("black", "ink", DUE), high_usage=True), NOW, RULES)
    reason = "black at the 21-day trigger (high usage: handled by hand)"
    assert got == DeviceState(ACTIVATION, reason)


@pytest.mark.parametrize(
    ("read_days_ago", "state", "reason"),
    [
        (6.9, NO_TONER_PENDING, "usage rate known, no ASR toner pending"),
        (7.0, DISCONNECTED, "no reading since 2024-02-23: ASR cannot order without data"),
        (None, DISCONNECTED, "no reading ever: ASR cannot order without data"),
    ],
)
def test_r16_disconnected_after_days(read_days_ago: float | None, state: str, reason: str) -> None:
    """R16: no reading for disconnected_after_days (7), or never since registration, is
    disconnected, whatever else is going on."""
    given = facts(read_days_ago=read_days_ago, in_transit=1 if state == DISCONNECTED else 0)
    assert device_state(given, NOW, RULES) == DeviceState(state, reason)


def test_r16_notices_first_then_followup_then_nothing() -> None:
    """R16: the disconnection notice at once, the follow-up disconnected_followup_days (30)
    after the last reading, then nothing; no notice for a connected device."""
    last = at(0)  # the last reading: the follow-up counts from it, not from the first notice

    def due(day: float, sent: int, state: str = DISCONNECTED) -> str | None:
        return notice_due(state, last, sent, last + timedelta(days=day), RULES)

    assert due(7, 0) == NOTICE_DISCONNECTED
    assert due(8, 1) is None
    assert due(29.9, 1) is None
    assert due(30, 1) == NOTICE_FOLLOWUP
    assert due(31, 2) is None
    assert due(90, 2) is None
    assert due(7, 0, NO_TONER_PENDING) is None
