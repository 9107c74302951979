"""Pure unit tests of the forecast on gauges that are not exact (issue 14; R7-R9, R12, R13).

A simulated cartridge of 6,000 pages on a device printing 100 pages a day (60 days a
cartridge), read at noon each day; its gauge shows what each kind shows (percent, steps of N,
"some remaining", nothing). The forecast must order every one of them in time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from collector.replenish.daily import point_of
from collector.replenish.forecast import (
    BY_PAGES,
    COLD_START,
    GRAMS,
    NONE,
    PAGES,
    PERCENT,
    WATCH,
    Hints,
    Point,
    Track,
    advance,
    forecast,
    unseen_swaps,
    with_order,
)
from collector.replenish.pages import Mark, Meter, Yield, fleet_yield, past_its_pages
from collector.replenish.planner import Group, SupplyPlan, plan
from collector.replenish.settings import Rules

RULES = Rules()
T0 = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
YIELD = 6000  # pages per cartridge, real
PPD = 100  # pages a day

TRUTH: dict[int, float] = {}  # the days left on each day of the last `life`, true
Gauge = Callable[[float], "tuple[float | None, str]"]  # share left -> (shown, quality)


def at(day: float) -> datetime:
    return T0 + timedelta(days=day)


def percent(share: float) -> tuple[float | None, str]:
    return float(math.floor(share * 100)), "measured"


def steps(n: int) -> Gauge:
    def gauge(share: float) -> tuple[float | None, str]:
        return float(math.floor(share * 100 / n) * n), "measured"

    return gauge


def some_remaining(share: float) -> tuple[float | None, str]:
    return (None, "some-remaining") if share > 0 else (0.0, "measured")


def unknown(share: float) -> tuple[float | None, str]:
    return None, "unknown"


def life(
    gauge: Gauge,
    days: int,
    start_share: float = 1.0,
    real_yield: int = YIELD,
    swap_on_empty: bool = True,
    pages_from: int = 100_000,
) -> list[Point]:
    """Daily readings of one device: prints PPD pages a day while it has toner; an empty
    cartridge is swapped the next day (when `swap_on_empty`)."""
    points = []
    share, counter, empty_days = start_share, pages_from, 0
    for day in range(days + 1):
        if day:
            if share <= 0 and swap_on_empty and empty_days >= 1:
                share, empty_days = 1.0, 0
            if share > 0:
                printed = min(PPD, share * real_yield)
                counter += round(printed)
                share = max(0.0, share - printed / real_yield)
            if share <= 0:
                empty_days += 1
        share = round(share, 9)
        TRUTH[day] = share * real_yield / PPD
        shown, quality = gauge(share)
        alert = "empty" if share <= 0 else None
        points.append(
            Point(
                at(day),
                shown,
                100.0 if shown is not None else None,
                PERCENT,
                quality,
                counter,
                alert,
            )
        )
    return points


def run(points: list[Point], rated: int | None = YIELD, fleet: Yield | None = None) -> Track:
    track, _ = advance(Track(), points, RULES, fleet, rated)
    return track


def days_left_at(points: list[Point], day: int, **kw: object) -> float | None:
    track = run(points[: day + 1], **kw)  # type: ignore[arg-type]
    f = forecast(track, at(day), RULES, kw.get("fleet"), Hints(rated=kw.get("rated", YIELD)))  # type: ignore[arg-type]
    return f.days_left


# --- cold start: R7-R9 before any usage rate ----------------------------------------------


@pytest.mark.parametrize(
    ("grams", "ordered"),
    [(0.0, True), (9.0, True), (45.0, True), (100.0, True), (110.0, False), (300.0, False)],
)
def test_cold_start_orders_a_low_cartridge_on_its_first_reading(
    grams: float, ordered: bool
) -> None:
    """Empty, 3 %, 15 %, a third: under 21 days at the conservative default rate (a cartridge
    in 60 days: 5 g a day of a 300 g cartridge); 110 g and full are not."""
    track, _ = advance(Track(), [Point(at(0), grams, 300.0, GRAMS, "measured")], RULES)
    f = forecast(track, at(0), RULES)
    assert f.basis == COLD_START
    assert f.rate == pytest.approx(5.0)
    assert f.days_left == pytest.approx(grams / 5.0)
    assert ("no usage rate yet" in f.why) and ("60 days" in f.why)
    supply = SupplyPlan("S1", "black", "toner", "black", "TN-1", Group("c", "1", "1"), f, None)
    assert bool(plan([supply], at(0).date().toordinal(), RULES)) is ordered


def test_cold_start_on_the_alerts_alone() -> None:
    """A gauge with no number: noToner is empty (0 days), lowToner is 10 % left."""
    for alert, days in (("empty", 0.0), ("low", 6.0)):
        p = Point(at(0), None, None, PERCENT, "unknown", None, alert)
        f = forecast(run([p]), at(0), RULES)
        assert f.basis == COLD_START and f.days_left == pytest.approx(days), alert
        assert alert in f.why


def test_an_empty_cartridge_has_no_days_left_at_any_rate() -> None:
    """The dark device: readings resume at 0 after weeks of a rate of 0; days left 0."""
    points = [Point(at(d), 50.0, 300.0, GRAMS, "measured") for d in range(10)]
    points.append(Point(at(40), 0.0, 300.0, GRAMS, "measured"))
    f = forecast(run(points), at(40), RULES)
    assert f.days_left == 0.0
    assert f.days_left_total == 0.0
    assert f.rate and f.rate > 0  # so the planner can size the order


# --- gauges with no number -----------------------------------------------------------------


def test_some_remaining_is_watched_until_empty_then_learned_from_the_page_counter() -> None:
    points = life(some_remaining, 200, start_share=0.5)
    # Before anything happened: watched, no days left, nothing to order.
    f = forecast(run(points[:10]), at(9), RULES)
    assert (f.basis, f.days_left) == (WATCH, None)
    # Day 30: empty (noToner, level 0): ordered at once, at any rate.
    assert points[30].alert == "empty" and points[30].remaining == 0.0
    f = forecast(run(points[:31]), at(30), RULES)
    assert f.days_left == 0.0
    # Swapped on day 31 (0 -> -3, R13): from the page counter at the rated yield.
    track = run(points[:41])
    assert track.installs == 1
    f = forecast(track, at(40), RULES, None, Hints(rated=YIELD))
    assert f.basis == BY_PAGES and f.unit == PAGES
    assert f.days_left == pytest.approx(TRUTH[40], abs=1.5)
    assert "rated yield 6000 pages" in f.why
    # After the second cartridge ran out and was swapped: its yield is learned.
    track = run(points[:100])
    assert len(track.meter.yields) == 1
    assert track.meter.yields[0] == pytest.approx(YIELD, rel=0.02)
    f = forecast(track, at(99), RULES, None, Hints(rated=9000))  # the rated yield no longer counts
    assert "1 cartridge learned" in f.why
    assert f.days_left == pytest.approx(TRUTH[99], abs=1.5)


def test_unknown_gauge_learns_from_the_no_toner_bit() -> None:
    points = life(unknown, 200, start_share=0.2)
    track = run(points[:80])
    assert track.installs == 2  # day 13 and day 74
    assert len(track.meter.yields) == 1
    assert track.meter.yields[0] == pytest.approx(YIELD, rel=0.02)
    f = forecast(track, at(79), RULES, None, Hints(rated=9000))
    assert f.basis == BY_PAGES
    assert f.days_left == pytest.approx(TRUTH[79], abs=1.5)


def test_a_real_yield_30_percent_below_the_rated_is_learned_after_one_cartridge() -> None:
    real = int(YIELD * 0.7)
    points = life(some_remaining, 200, start_share=0.1, real_yield=real)
    track = run(points[:120])
    assert track.meter.yields and track.meter.yields[-1] == pytest.approx(real, rel=0.03)
    f = forecast(track, at(119), RULES, None, Hints(rated=YIELD))
    assert "learned" in f.why and f.capacity == pytest.approx(real, rel=0.03)


def test_nothing_to_go_on_is_said() -> None:
    p = Point(at(0), None, None, PERCENT, "unknown")
    f = forecast(run([p, Point(at(1), None, None, PERCENT, "unknown")]), at(1), RULES)
    assert (f.basis, f.why, f.days_left) == (NONE, "no level and no page counter", None)


# --- coarse steps ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 25, 50])
def test_coarse_steps_forecast_between_the_steps(n: int) -> None:
    """The days left follow the true level within a step, not the staircase: within 3 days
    once the gauge has crossed a few steps (rated yield unknown: learned from the steps)."""
    points = life(steps(n), 300, start_share=1.0)
    checked = 0
    for day in range(75, 300, 7):
        true_left = TRUTH[day]
        got = days_left_at(points, day, rated=None)
        if got is None:
            continue
        assert got == pytest.approx(true_left, abs=3 + n / 25), day
        checked += 1
    assert checked >= 20


def test_coarse_gauge_reason_says_so() -> None:
    points = life(steps(25), 90)
    track = run(points)
    assert track.meter.step == 25
    f = forecast(track, at(90), RULES, None, Hints(rated=YIELD))
    assert f.basis == BY_PAGES and "25 % steps" in f.why


# --- cartridges put in while dark (R13, R16) ------------------------------------------------


def test_a_cartridge_put_in_while_dark_is_reconciled_from_the_page_counter() -> None:
    """Read daily, then dark for 100 days, through the installed cartridge and the spare on
    site; it reads again at 0 with the counter 9,000 pages on: the spare is gone."""
    points = [Point(at(d), 50.0 - d * 0.5, 100.0, PERCENT, "measured", 100 * d) for d in range(30)]
    track = with_order(run(points), 1, None)  # the spare, delivered
    assert track.balance == 1
    back = Point(at(130), 0.0, 100.0, PERCENT, "measured", 100 * 29 + 9000, "empty")
    track, installs = advance(track, [back], RULES, None, YIELD)
    assert len(installs) == 1 and track.balance == 0
    f = forecast(track, at(130), RULES, None, Hints(rated=YIELD))
    assert f.days_left_total == 0.0


def test_a_small_rise_after_a_long_dark_spell_is_the_spare() -> None:
    points = [Point(at(d), 30.0 - d, 100.0, PERCENT, "measured") for d in range(10)]
    track = with_order(run(points), 1, None)
    back = Point(at(60), 25.0, 100.0, PERCENT, "measured")  # 21 -> 25: under the 10 % jump
    track, installs = advance(track, [back], RULES)
    assert len(installs) == 1 and track.balance == 0


# --- the fleet's yield ----------------------------------------------------------------------


def test_fleet_yield_of_a_part_number() -> None:
    y = fleet_yield([6000, 6400, 5600])
    assert y is not None
    assert (y.source, y.count) == ("fleet", 3) and y.pages == pytest.approx(6000)
    assert "3 cartridges of this part number" in y.describe()
    assert fleet_yield([]) is None and fleet_yield([6000]) is None  # one is not a fleet


def test_point_of_a_some_remaining_gauge_once_empty() -> None:
    p = point_of(at(0), None, None, None, "unknown", False, None, level=0, pages=5, alert="empty")
    assert (p.remaining, p.pages, p.alert) == (0.0, 5, "empty")
    w = point_of(at(0), None, None, None, "unknown", True, None, level=-3, alert="empty")
    assert (w.remaining, w.alert) == (None, None)  # a receptacle: the toner alert is not its


def test_track_keeps_the_meter_through_json() -> None:
    track = run(life(some_remaining, 100, start_share=0.3))
    assert Track.from_json(track.to_json()) == track
    old = track.to_json()
    del old["meter"]  # a track stored before issue 14
    assert Track.from_json(old).meter.yields == ()


# --- swaps no reading shows (R13) -----------------------------------------------------------


def _some_remaining_track(days: int, empty_from: int, printing: bool) -> Track:
    """A "some remaining" supply read daily, reading empty from `empty_from` on; the counter
    stops there unless `printing` (another supply's 0 rounding, not an empty cartridge)."""
    points = []
    for day in range(days):
        empty = day >= empty_from
        counter = 1000 + 100 * (day if printing or not empty else empty_from)
        remaining = 0.0 if empty else None
        points.append(
            Point(
                at(day),
                remaining,
                None,
                PERCENT,
                "some-remaining",
                counter,
                "empty" if empty else None,
            )
        )
    return with_order(run(points), 1, None)


def test_a_spare_put_in_unseen_is_reckoned_when_it_reads_empty_a_day_with_the_counter_stopped() -> (
    None
):
    track = _some_remaining_track(10, 7, printing=False)
    reckoned, gone = unseen_swaps(track, 0, RULES)
    assert gone == 1 and reckoned.balance == 0 and reckoned.installs == track.installs + 1
    assert unseen_swaps(track, 1, RULES)[1] == 0  # the one on its way is not put in yet


def test_no_unseen_swap_while_the_printer_still_prints_or_the_gauge_gives_a_level() -> None:
    assert unseen_swaps(_some_remaining_track(10, 7, printing=True), 0, RULES)[1] == 0
    points = [
        Point(at(d), max(0.0, 5.0 - d), 100.0, PERCENT, "measured", 100 * d) for d in range(9)
    ]
    assert unseen_swaps(with_order(run(points), 1, None), 0, RULES)[1] == 0  # a level shows a swap


def test_a_cartridge_past_its_pages_with_a_spare_on_site_was_swapped() -> None:
    """Learned 6,000 pages a cartridge; 8,000 pages since it went in, a spare on site, never
    read empty: the spare went in at 6,000 (the spread is 25 %: not before 7,500)."""
    learned = Meter(anchor=Mark(0, 1.0), mark=Mark(0, 1.0), yields=(6000,), last=7000)
    assert past_its_pages(learned, None, None, 1) == (learned, 0)
    later = replace(learned, last=8000)
    meter, swaps = past_its_pages(later, None, None, 1)
    assert swaps == 1 and meter.anchor == Mark(6000, 1.0) and meter.guessed
    assert past_its_pages(later, None, None, 0)[1] == 0  # nothing on site to put in
