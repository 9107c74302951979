"""The forecast of one supply (R6, R7, R12): pure functions of its track and `now`.

Is: from the track (collector.replenish.track), where the supply stands: the average daily
usage, the days left in the installed cartridge and with the cartridges shipped and not
installed, how sure that is, the R6 high-usage flag and the R12 jump; and what those days left
come from (`basis`, with `why` in plain words): the gauge's level, the page counter, a cold
start, a gauge watched until it reads empty, or nothing (then the helpdesk is told).
Coarse steps average out over the rate window where no page counter helps, and lower the
confidence. The names of the track and its advance are re-exported here for the callers.
Is not: I/O or the clock (`now` is a parameter); order planning (collector.replenish.planner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from collector.replenish import pages
from collector.replenish.advance import advance, is_empty, unseen_swaps
from collector.replenish.pages import Yield
from collector.replenish.series import Usage
from collector.replenish.settings import Rules
from collector.replenish.track import (
    DAY,
    EMPTY,
    GRAMS,
    LOW,
    PAGES,
    PERCENT,
    Install,
    Point,
    Track,
    day_number,
    day_number_of,
    with_order,
)

__all__ = [
    "BASES",
    "BY_PAGES",
    "COLD_START",
    "DAY",
    "EMPTY",
    "GRAMS",
    "LEVEL",
    "LOW",
    "NONE",
    "PAGES",
    "PERCENT",
    "WATCH",
    "Forecast",
    "Install",
    "Point",
    "Track",
    "advance",
    "day_number",
    "day_number_of",
    "forecast",
    "unseen_swaps",
    "with_order",
]

HORIZON_DAYS = 36_525.0  # a century: how far `runs_out_at` looks
# What a forecast's days left come from: the gauge's level series; the page counter and pages
# per cartridge; a cold start's conservative default rate; a gauge that says "some remaining"
# watched until it reads empty or a cartridge change teaches its pages; nothing at all.
LEVEL, BY_PAGES, COLD_START, WATCH, NONE = "level", "pages", "cold-start", "watch", "none"
BASES = (LEVEL, BY_PAGES, COLD_START, WATCH, NONE)


@dataclass(frozen=True)
class Forecast:
    """Where one supply stands at `now` (R7), and the flags the planner needs (R6, R12)."""

    unit: str | None
    rate: float | None  # usage per day in `unit` used for planning; None: not known yet
    rate_average: float | None  # over rate_window_days
    rate_recent: float | None  # over spike_window_days
    remaining: float | None  # estimated at `now`, in `unit`
    capacity: float | None
    days_left: float | None  # in the installed cartridge
    days_left_total: float | None  # with the balance (R13)
    balance: int
    confidence: float  # 0 (no idea) .. 1
    days_with_data: int  # in the rate window
    spike: bool  # R12: recent usage jumped
    high_usage: bool  # R6: every week of the window at the threshold or more
    high_usage_suspected: bool  # R6: every whole week so far, but the window is not full yet
    weekly_cartridges: tuple[float, ...] = field(default=())  # R6: the last weeks, newest last
    basis: str = LEVEL  # what days left come from: BASES
    why: str = ""  # in plain words, for the portal and the order line

    def figures(self) -> dict[str, Any]:
        """The numbers behind a decision, for an order line or the portal."""
        return {
            "unit": self.unit,
            "rate_per_day": _round(self.rate),
            "rate_average": _round(self.rate_average),
            "rate_recent": _round(self.rate_recent),
            "remaining": _round(self.remaining),
            "capacity": self.capacity,
            "days_left": _round(self.days_left),
            "days_left_total": _round(self.days_left_total),
            "balance": self.balance,
            "confidence": self.confidence,
            "basis": self.basis,
            "why": self.why,
        }

    def runs_out_at(self, now: datetime) -> datetime | None:
        """R17: when the stock (installed and shipped) runs out at the rate, if it is known.

        Until the track changes this stays true as time passes, where days left would not.
        Beyond `HORIZON_DAYS` (a supply hardly used) it is that far away."""
        days = self.days_left_total
        if days is None or self.rate is None or self.rate <= 0:
            return None
        return now + timedelta(days=min(days, HORIZON_DAYS))


def _round(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return round(value, 3)


@dataclass(frozen=True)
class Hints:
    """What a supply's forecast needs besides its track, from what the supply is.

    `rated`: the rated pages per cartridge where they are in the device's own pages (a black
    or only toner or ink, a waste container; a colour cartridge's are pages with that colour,
    a share nothing tells). `slow`: a cold start takes it to last longer (a colour cartridge).
    `waste`: a waste container.
    """

    rated: int | None = None
    slow: bool = False
    waste: bool = False

    @classmethod
    def of(cls, kind: str, colour: str | None, rated_yield: int | None) -> Hints:
        colour = (colour or "").lower()
        black = not colour or "black" in colour
        return cls(
            rated=rated_yield if kind == "waste" or black else None,
            slow=kind != "waste" and not black,
            waste=kind == "waste",
        )


NO_HINTS = Hints()


def forecast(
    track: Track,
    now: datetime,
    rules: Rules,
    fleet: Yield | None = None,
    hints: Hints = NO_HINTS,
) -> Forecast:
    """Where the supply stands at `now` (R7), with the R6 and R12 flags, from the best
    evidence it has: the gauge's level series; else (a gauge with no number, or a coarse one,
    or no rate from the level yet) the page counter with pages per cartridge (the device's
    own, else `fleet`, the same part number across the fleet, else `hints.rated`, the box's);
    else a cold start (an empty, "low" or low level at a conservative default rate: R7-R9);
    else it is watched (a "some remaining" gauge until it reads empty) or cannot be forecast.
    """
    level = _by_level(track, now, rules)
    meter = track.meter
    per = pages.pages_per_cartridge(meter, fleet, hints.rated)
    step = meter.step if track.unit == PERCENT and not track.coarse else None
    value, size = track.last_value, track.capacity or (100.0 if track.unit == PERCENT else None)
    # A coarse gauge shows 0 while less than a step is left: there only noToner is empty.
    empty = meter.alert == EMPTY if step is not None else is_empty(value, meter.alert)
    by_pages = None
    if per is not None and meter.last is not None and meter.last_at is not None:
        if empty:
            by_pages = _by_pages(track, now, rules, per, 0.0, "empty")
        elif value is None and meter.anchor is not None:
            share = pages.share_left(meter, per, None, None)
            by_pages = _by_pages(track, now, rules, per, share, "from the page counter")
        elif value is not None and size and step is not None:
            low, high = value / size, min(1.0, value / size + step / 100.0)
            share = pages.share_left(meter, per, low, high)
            why = f"from the page counter between the gauge's {step} % steps"
            by_pages = _by_pages(track, now, rules, per, share, why)
        elif value is not None and size:
            by_pages = _by_pages(track, now, rules, per, value / size, "from the page counter")
    if empty and not level.rate and not (by_pages and by_pages.rate):
        return _cold_start(track, rules, level, hints.slow)  # empty: 0 days left at any rate
    if level.rate is not None and step is None and value is not None:
        if (
            by_pages is not None
            and by_pages.rate
            and track.unit == PERCENT
            and per is not None
            and per.source == "learned"
            and (by_pages.days_left_total or 0) < (level.days_left_total or 0)
        ):
            return replace(by_pages, why=by_pages.why + "; fewer days than the gauge's level")
        return level
    if by_pages is not None and by_pages.rate:
        return by_pages
    if level.rate is not None and value is not None:
        lacking = "pages per cartridge" if meter.last is not None else "page counter"
        return replace(level, why=f"from the gauge's {step} % steps (no {lacking} yet)")
    if value is not None or meter.alert in (EMPTY, LOW):
        return _cold_start(track, rules, level, hints.slow)
    if meter.blind and meter.anchor is None:
        why = (
            "the gauge never gives a level and the printer's toner alerts do not say which"
            " of its toners is low or empty"
        )
        return replace(level, basis=NONE, why=why)
    if meter.silent and hints.waste:
        # No alert says a waste box is full: it comes with each black toner (R11 as written).
        why = "the gauge never says how full it is: a container comes with each black toner"
        return replace(level, basis=NONE, why=why)
    if meter.last is not None or value is not None:
        why = (
            "the gauge never gives a level: ordered when the printer says it is empty"
            if meter.silent
            else 'the gauge says only "some remaining": ordered when it reads empty'
        )
        return replace(level, basis=WATCH, why=why)
    why = "no level and no page counter" if level.rate is None else level.why
    return replace(level, basis=NONE, why=why)


def _by_pages(
    track: Track, now: datetime, rules: Rules, per: Yield, share: float, why: str
) -> Forecast:
    """Days left from the pages a day and the pages left: `share` of a cartridge of `per`
    pages at the last counter read, less the pages printed since at the rate."""
    meter = track.meter
    usage = meter.usage
    average, recent_rate, known, recent = _rates(usage, rules)
    spike = bool(
        average
        and recent_rate
        and recent >= rules.spike_window_days
        and recent_rate >= rules.spike_ratio * average
    )
    rate = recent_rate if spike else average
    assert meter.last_at is not None
    elapsed = max(0.0, now.timestamp() - meter.last_at) / DAY
    remaining = max(0.0, share * per.pages - (rate or 0.0) * elapsed)
    days_left = days_left_total = None
    if rate:
        days_left = remaining / rate
        days_left_total = (remaining + track.balance * per.pages) / rate
    weekly = _weekly_cartridges(usage, per.pages, rules.high_usage_weeks)
    heavy = bool(weekly) and all(w >= rules.high_usage_cartridges_per_week for w in weekly)
    high = heavy and len(weekly) == rules.high_usage_weeks
    return Forecast(
        unit=PAGES,
        rate=rate,
        rate_average=average,
        rate_recent=recent_rate,
        remaining=remaining,
        capacity=round(per.pages, 1),
        days_left=days_left,
        days_left_total=days_left_total,
        balance=track.balance,
        confidence=round(_confidence(usage, known, rules, False) * (1 - per.spread), 2),
        days_with_data=known,
        spike=spike,
        high_usage=high,
        high_usage_suspected=heavy and not high,
        weekly_cartridges=tuple(round(w, 2) for w in weekly),
        basis=BY_PAGES,
        why=f"{why}, {per.describe()}",
    )


def _cold_start(track: Track, rules: Rules, level: Forecast, slow: bool) -> Forecast:
    """R7-R9 before any usage rate: what the level or the alert says is left, used at a
    conservative default rate (a cartridge in `cold_start_cartridge_days`, or for `slow`
    ones, colour cartridges and waste containers, `cold_start_slow_days`), so an empty, low
    or nearly empty cartridge is ordered on its first reading."""
    size = track.capacity or 100.0
    unit = track.unit or PERCENT
    if is_empty(track.last_value, track.meter.alert):
        left, said = 0.0, "empty"
    elif track.last_value is not None:
        left, said = level.remaining if level.remaining is not None else track.last_value, None
    else:
        left, said = rules.cold_start_low_share * size, "low"
    lasts = rules.cold_start_slow_days if slow else rules.cold_start_cartridge_days
    rate = size / lasts
    days = round(lasts)
    why = f"no usage rate yet: a cartridge taken to last {days} days"
    return replace(
        level,
        unit=unit,
        rate=rate,
        remaining=left,
        capacity=size,
        days_left=left / rate,
        days_left_total=(left + track.balance * size) / rate,
        confidence=0.1,
        basis=COLD_START,
        why=f"{said}; {why}" if said else why,
    )


def _by_level(track: Track, now: datetime, rules: Rules) -> Forecast:
    """Where the supply stands at `now` from its level series alone (R7, R6, R12)."""
    usage = track.usage
    average, recent_rate, known, recent = _rates(usage, rules)
    spike = bool(
        average is not None
        and recent_rate is not None
        and recent >= rules.spike_window_days
        and recent_rate > 0
        and recent_rate >= rules.spike_ratio * average
    )
    rate = recent_rate if spike else average  # R12: a jump counts at once, a lull does not
    size = track.capacity or (100.0 if track.unit == PERCENT else None)
    remaining = days_left = days_left_total = None
    if track.last_value is not None and track.last_at is not None:
        elapsed = max(0.0, now.timestamp() - track.last_at) / DAY
        remaining = max(0.0, track.last_value - (rate or 0.0) * elapsed)
        if rate is not None:
            stock = remaining + track.balance * (size or 0.0)
            # An empty cartridge has 0 days left at any rate, a printer that stopped too.
            days_left = remaining / rate if rate > 0 else 0.0 if remaining <= 0 else math.inf
            days_left_total = stock / rate if rate > 0 else math.inf
    weekly = _weekly_cartridges(usage, size, rules.high_usage_weeks)
    heavy = bool(weekly) and all(w >= rules.high_usage_cartridges_per_week for w in weekly)
    high = heavy and len(weekly) == rules.high_usage_weeks
    return _made(
        unit=track.unit,
        rate=rate,
        rate_average=average,
        rate_recent=recent_rate,
        remaining=remaining,
        capacity=size,
        days_left=days_left,
        days_left_total=days_left_total,
        balance=track.balance,
        confidence=_confidence(usage, known, rules, track.coarse),
        days_with_data=known,
        spike=spike,
        high_usage=high,
        high_usage_suspected=heavy and not high,
        weekly_cartridges=tuple(round(w, 2) for w in weekly),
        basis=LEVEL,
        why="from the gauge's level" if rate is not None else "",
    )


def _made(**values: Any) -> Forecast:
    """A Forecast built without the frozen dataclass's __init__ (a setattr per field, a tenth
    of a forecast's time): the caller gives every field."""
    made = object.__new__(Forecast)
    made.__dict__.update(values)
    return made


def _rates(usage: Usage, rules: Rules) -> tuple[float | None, float | None, int, int]:
    """R7's average (None before `min_history_days` known) and R12's recent rate, and the
    known days behind each: from the windows' running sums, O(1)."""
    total, known = usage.window(rules.rate_window_days)
    recent_total, recent = usage.window(rules.spike_window_days)
    average = total / known if total is not None and known >= rules.min_history_days else None
    recent_rate = recent_total / recent if recent_total is not None else None
    return average, recent_rate, known, recent


def _weekly_cartridges(usage: Usage, size: float | None, weeks: int) -> list[float]:
    """R6: cartridges used in each of the last whole weeks of known data, oldest first."""
    if not size:
        return []
    out = []
    tail = usage.tail(weeks * 7)  # NaN: unknown
    for w in range(weeks, 0, -1):
        end = len(tail) - (w - 1) * 7
        week = sum(tail[end - 7 : end]) if end >= 7 else math.nan
        if week != week:
            continue  # not a whole week of known data: it cannot show usage "every week"
        out.append(week / size)
    return out


def _confidence(usage: Usage, known: int, rules: Rules, coarse: bool) -> float:
    """How sure the rate is: data coverage, lowered for coarse steps and noisy weeks."""
    if known < rules.min_history_days:
        return 0.0
    window = usage.known(rules.rate_window_days)
    coverage = len(window) / rules.rate_window_days
    weeks = [sum(window[i : i + 7]) for i in range(0, len(window) - 6, 7)]
    noise = 0.0
    if len(weeks) >= 2:
        mean = sum(weeks) / len(weeks)
        if mean > 0:
            spread = math.sqrt(sum((w - mean) ** 2 for w in weeks) / len(weeks))
            noise = spread / mean
    score = coverage / (1.0 + noise) * (0.6 if coarse else 1.0)
    return round(min(1.0, score), 2)
