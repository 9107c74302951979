"""The forecast of one supply (R6, R7, R12, R13): pure functions of its readings and `now`.

Is: a supply's *track*, its daily usage for the last `history_days` (grams a day where the
device reports grams, else percent a day), its last level and its balance, carried from one
daily run to the next and advanced by the new readings; and, from the track, the forecast:
the average daily usage, the days left in the installed cartridge and with the cartridges
shipped and not installed, how sure that is, and the R6 high-usage flag.
How it copes with real data:
- the usage between two readings is spread over the calendar days between them, so a printer
  asleep or unread for days still counts what it used, and weekends and holidays count as the
  days of little printing they are (the rate is per calendar day);
- days after the last reading are unknown, never zero: a device that goes dark keeps its rate;
- a rise of `install_jump_share` of the capacity is a new cartridge (R13); the usage of that
  interval is what the old one lost plus what the new one lost; when the old one cannot have
  run out by then (its level at the last reading, less the usage since, still holds
  `early_replacement_share` of a cartridge) it was replaced early, which is reported;
- smaller rises are noise and are ignored; a reading without a number ("some remaining", -3,
  unknown) breaks the series: the days up to the next number are unknown;
- coarse steps (a level in steps of 10 % or more) average out over the rate window, and lower
  the confidence.
Is not: I/O or the clock (`now` is a parameter); order planning (collector.replenish.planner).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from collector.replenish import pages
from collector.replenish.pages import Meter, Yield
from collector.replenish.settings import Rules

DAY = 86_400.0
HORIZON_DAYS = 36_525.0  # a century: how far `runs_out_at` looks
GRAMS = "g"
PERCENT = "%"
PAGES = "pages"  # a forecast from the page counter: rate in pages a day, capacity a yield
# What a forecast's days left come from: the gauge's level series; the page counter and pages
# per cartridge; a cold start's conservative default rate; a gauge that says "some remaining"
# watched until it reads empty or a cartridge change teaches its pages; nothing at all.
LEVEL, BY_PAGES, COLD_START, WATCH, NONE = "level", "pages", "cold-start", "watch", "none"
BASES = (LEVEL, BY_PAGES, COLD_START, WATCH, NONE)
EMPTY, LOW = "empty", "low"  # a toner's alert (Point.alert)


@dataclass(frozen=True)
class Point:
    """One reading of one supply, as the forecast sees it."""

    at: datetime  # when it was read (aware, UTC)
    remaining: float | None  # toner left, or a receptacle's space left, in `unit`; None: no number
    capacity: float | None  # of the installed cartridge, in `unit`
    unit: str  # GRAMS or PERCENT
    quality: str  # wire.reading.QUALITIES
    pages: int | None = None  # the device's page counter then (prtMarkerLifeCount)
    alert: str | None = None  # a toner's: empty (noToner), low (lowToner), else None
    shared: bool = False  # no number, and the device's alerts cannot say it is this toner


@dataclass(frozen=True)
class Install:
    """A new cartridge seen in the data (R13): the level jumped up."""

    at: datetime
    left_before: float  # at the last reading before, in the track's unit
    left_at_swap: float  # estimated: the last level less the usage since
    early: bool  # R13: replaced while `early_replacement_share` or more was left


@dataclass(frozen=True)
class Track:
    """What the forecast carries from one run to the next for one supply."""

    unit: str | None = None
    capacity: float | None = None  # of the installed cartridge, in `unit`
    start: int | None = None  # day number (date.toordinal()) of usage[0]
    usage: tuple[float | None, ...] = ()  # per calendar day; None: unknown
    last_at: float | None = None  # POSIX time of the newest reading applied
    last_value: float | None = None  # its level, in `unit`; None: no number then
    coarse: bool = False  # the device reports coarse steps only
    balance: int = 0  # R13: cartridges ordered (ASR or extra, R14) and not installed
    last_order_day: int | None = None  # R12: day number of the last ASR order
    installs: int = 0  # new cartridges seen since tracking began
    meter: Meter = field(default_factory=Meter)  # the page counter's witness (issue 14)

    def to_json(self) -> dict[str, Any]:
        """The track as the store keeps it (a JSON object)."""
        return {
            "unit": self.unit,
            "capacity": self.capacity,
            "start": self.start,
            "usage": list(self.usage),  # rounded once, where each day's value is made
            "last_at": self.last_at,
            "last_value": self.last_value,
            "coarse": self.coarse,
            "balance": self.balance,
            "last_order_day": self.last_order_day,
            "installs": self.installs,
            "meter": self.meter.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Track:
        """A track from its stored JSON object."""
        return cls(
            unit=data["unit"],
            capacity=data["capacity"],
            start=data["start"],
            usage=tuple(data["usage"]),
            last_at=data["last_at"],
            last_value=data["last_value"],
            coarse=data["coarse"],
            balance=data["balance"],
            last_order_day=data["last_order_day"],
            installs=data["installs"],
            meter=Meter.from_json(data.get("meter")),
        )

    @property
    def last_day(self) -> int | None:
        """The day number of the last day with known or spread usage."""
        if self.start is None or not self.usage:
            return None
        return self.start + len(self.usage) - 1


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


def day_number(at: datetime) -> int:
    """The calendar day (UTC) of a time, as date.toordinal()."""
    return at.date().toordinal()


def advance(
    track: Track,
    points: Iterable[Point],
    rules: Rules,
    fleet: Yield | None = None,
    rated: int | None = None,
) -> tuple[Track, list[Install]]:
    """The track with newer readings applied (older ones are ignored), and the installs seen.

    `fleet` and `rated` are the pages per cartridge of the supply's part number across the
    fleet and on the box: with the page counter they tell what happened while it was dark."""
    installs: list[Install] = []
    unit, capacity, start = track.unit, track.capacity, track.start
    usage = list(track.usage)
    last_at, last_value, coarse = track.last_at, track.last_value, track.coarse
    balance, count, meter = track.balance, track.installs, track.meter
    rate = _average(usage, rules.rate_window_days)
    for point in sorted(points, key=lambda p: p.at):
        at = point.at.timestamp()
        if last_at is not None and at <= last_at:
            continue  # late, or applied before: the track moves forward only
        if point.unit != unit:  # first reading, or the device changed how it counts
            unit, start, usage, last_value = point.unit, None, [], None
            meter = replace(meter, anchor=None, mark=None, gcd=0)
        if point.capacity:
            capacity = point.capacity
        coarse = coarse or point.quality == "coarse"
        value = point.remaining
        day = day_number(point.at)
        if start is None:
            start = day
        before = meter.last
        was_empty = last_value == 0 or (last_value is None and meter.alert == EMPTY)
        was_low = last_value is None and meter.alert == LOW
        meter, printed = pages.count(meter, point.pages, at, day, _spread_pages)
        # A coarse gauge shows 0 while less than a step is left: there only noToner is empty.
        empty_now = point.alert == EMPTY if meter.step else _empty(value, point.alert)
        since = (meter.empty_since or at) if empty_now else None
        at_empty = (meter.empty_pages if meter.empty_since else meter.last) if empty_now else None
        blind = point.shared and point.quality == "unknown" and value is None
        numbered = meter.numbered if value == 0 else value is not None
        meter = replace(
            meter,
            alert=point.alert,
            empty_since=since,
            empty_pages=at_empty,
            blind=blind,
            numbered=numbered,
            silent=value is None and point.quality == "unknown",
        )
        if unit == PERCENT:
            meter = pages.shown(meter, value)
        size = capacity or (100.0 if unit == PERCENT else 0.0)
        if value is None or last_value is None or last_at is None:
            swapped = (was_empty and point.alert != EMPTY) or (was_low and point.alert is None)
            if value is None and swapped and last_at is not None:
                # R13 on a gauge with no number: empty (0, or noToner) or low (lowToner),
                # then some remaining with the alert gone.
                installs.append(Install(point.at, 0.0, 0.0, False))
                balance, count = max(0, balance - 1), count + 1
                meter = pages.learned(meter)
                if before is not None:  # an empty device prints nothing until the swap
                    meter = pages.marked(meter, pages.Mark(before, 1.0))
            elif _empty(value, point.alert) and meter.anchor is not None and meter.last is not None:
                meter = replace(meter, mark=pages.Mark(meter.last, 0.0))
            elif value is not None and size and meter.last is not None and meter.step is None:
                meter = pages.marked(meter, pages.Mark(meter.last, value / size))
            elif value is None and balance > 0:
                meter, swaps = pages.past_its_pages(meter, fleet, rated, balance)
                for _ in range(swaps):  # R13: the spare went in when this one ran out
                    installs.append(Install(point.at, 0.0, 0.0, False))
                balance, count = balance - swaps, count + swaps
            _extend(usage, start, day, None)
            last_at, last_value = at, value
            continue
        rise = value - last_value
        gap = (at - last_at) / DAY
        # A coarse gauge flickers a whole step (10 % or more) up and down: there only a rise
        # of half a cartridge is a new one (a real swap goes from near empty to near full).
        flickers = coarse or meter.step is not None
        jump = max(rules.install_jump_share, 0.5) if flickers else rules.install_jump_share
        # R13 in the dark: a rise too small to be a swap, after long enough for the old
        # cartridge to run out at its rate, with a cartridge on site, is a swap too.
        dark_swap = (
            rise > 0
            and balance > 0
            and rate is not None
            and rate * gap >= last_value + rules.install_jump_share * size
        )
        if size and (rise >= jump * size or dark_swap):
            # R13: a new cartridge. What the old one had left at the swap: its last level,
            # less what the device uses in the time since (unknown rate: all of it was left).
            used_since = (rate or 0.0) * gap
            left_at_swap = max(0.0, last_value - used_since) if rate else last_value
            early = left_at_swap >= rules.early_replacement_share * size
            installs.append(Install(point.at, last_value, left_at_swap, early))
            used = (last_value - left_at_swap) + max(0.0, size - value)
            balance, count = max(0, balance - 1), count + 1
            went_in = (
                None if early else _went_in(meter, before, printed, last_value / size, fleet, rated)
            )
            meter = pages.learned(meter) if not early else replace(meter, anchor=None, mark=None)
            if meter.last is not None and meter.step is None:
                meter = pages.marked(meter, pages.Mark(meter.last, value / size))
            elif went_in is not None:  # a coarse gauge: full when it went in
                meter = pages.marked(meter, pages.Mark(went_in, 1.0))
        elif rise > 0:
            # Noise (toner settling, a rounding step back): keep the lower level.
            _spread(usage, start, day_number_of(last_at), day, 0.0)
            last_at = at
            continue
        else:
            used = -rise
            swaps = _dark_swaps(meter, printed, last_value, value, size, balance, fleet, rated)
            for _ in range(swaps):  # R13, R16: cartridges the page counter says went in
                installs.append(Install(point.at, last_value, 0.0, False))
            if swaps:
                balance, count, used = balance - swaps, count + swaps, used + swaps * size
                meter = replace(meter, anchor=None, mark=None)
            meter = _mark(meter, before, printed, last_value, value, size)
        if value == 0 and gap > 1:
            _extend(usage, start, day, None)  # it ran out in between: those days are unknown
        else:
            _spread(usage, start, day_number_of(last_at), day, used)
        last_at, last_value = at, value
        rate = _average(usage, rules.rate_window_days)
    if start is not None and len(usage) > rules.history_days:
        cut = len(usage) - rules.history_days
        usage, start = usage[cut:], start + cut
    if meter.start is not None and len(meter.usage) > rules.history_days:
        cut = len(meter.usage) - rules.history_days
        meter = replace(meter, usage=meter.usage[cut:], start=meter.start + cut)
    new = Track(
        unit=unit,
        capacity=capacity,
        start=start,
        usage=tuple(usage),
        last_at=last_at,
        last_value=last_value,
        coarse=coarse,
        balance=balance,
        last_order_day=track.last_order_day,
        installs=count,
        meter=meter,
    )
    return new, installs


def _empty(value: float | None, alert: str | None) -> bool:
    """Whether a reading says the cartridge is empty: a level of 0, or the noToner bit."""
    return value == 0 or (value is None and alert == EMPTY)


def _mark(
    meter: Meter,
    before: int | None,
    printed: float,
    last_value: float,
    value: float,
    size: float,
) -> Meter:
    """The installed cartridge's new mark, if this reading gives one: a fine gauge's level
    with the counter; a coarse gauge's step crossing (its level drops from L + s to L the
    moment the true level passes L + s, so then the true level is L + s), halfway through
    the pages printed since the last reading."""
    if meter.last is None or not size:
        return meter
    step = meter.step
    if step is None:
        return pages.marked(meter, pages.Mark(meter.last, value / size))
    if value < last_value and before is not None:
        crossed = min(size, value + step * size / 100.0)
        return pages.marked(meter, pages.Mark(before + printed / 2, crossed / size))
    return meter


def unseen_swaps(track: Track, on_the_way: int, rules: Rules) -> tuple[Track, int]:
    """R13 for a swap no reading showed (a gauge with no level replaced before it read
    empty, or while dark): a supply that has read empty for a day or more, with more
    cartridges in its balance than are on their way, would have had one put in if one were
    on site. Those delivered were put in and used up: the balance keeps those on the way."""
    meter = track.meter
    since = meter.empty_since
    if meter.numbered or since is None or track.last_at is None or track.last_at - since < DAY:
        return track, 0  # a gauge with a level shows a swap (a rise), or the dark does
    if meter.empty_pages is not None and meter.last is not None:
        # An empty printer prints nothing: a counter that moves says the 0 is a gauge's
        # rounding (less than 1 % left), not an empty cartridge.
        printed = meter.last - meter.empty_pages
        usual = _average(meter.usage, rules.rate_window_days) or 0.0
        if printed > 0.1 * usual * (track.last_at - since) / DAY:
            return track, 0
    gone = track.balance - on_the_way
    if gone <= 0:
        return track, 0
    meter = pages.used_up(track.meter, gone + 1)
    return replace(track, balance=on_the_way, installs=track.installs + gone, meter=meter), gone


def _went_in(
    meter: Meter,
    before: int | None,
    printed: float,
    share_before: float,
    fleet: Yield | None,
    rated: int | None,
) -> float | None:
    """The page count when a cartridge that ran out went in: when the old one's pages ran out
    (its latest mark less the pages since, at its pages per cartridge), within the pages
    printed since the reading before (halfway through them when nothing tells)."""
    per = pages.pages_per_cartridge(meter, fleet, rated)
    if before is None:
        return None
    if per is None:
        return before + printed / 2
    m = meter.mark
    left = m.left - (before - m.pages) / per.pages if m is not None else share_before
    return before + min(printed, max(0.0, left * per.pages))


def _dark_swaps(
    meter: Meter,
    printed: float,
    last_value: float,
    value: float,
    size: float,
    balance: int,
    fleet: Yield | None,
    rated: int | None,
) -> int:
    """R13, R16: cartridges put in while no reading came, told by the page counter: it printed
    more pages than the level it lost can hold (with a cartridge on site to put in)."""
    if not printed or not size or balance <= 0:
        return 0
    per = pages.pages_per_cartridge(meter, fleet, rated)
    if per is None:
        return 0
    beyond = printed / per.pages - (last_value - value) / size
    return min(balance, int(beyond + 0.25)) if beyond >= 0.75 else 0


def _spread_pages(
    usage: list[float | None], start: int, last_at: float, day: int, n: float
) -> None:
    _spread(usage, start, day_number_of(last_at), day, n)


def day_number_of(posix: float) -> int:
    """The calendar day (UTC) of a POSIX time, as date.toordinal()."""
    return int(posix // DAY) + 719_163  # date(1970, 1, 1).toordinal()


def _extend(usage: list[float | None], start: int, day: int, value: float | None) -> None:
    """Grow the series to reach `day`, new days set to `value`."""
    missing = day - (start + len(usage) - 1)
    if missing > 0:
        usage.extend([value] * missing)


def _spread(usage: list[float | None], start: int, from_day: int, to_day: int, used: float) -> None:
    """Add `used` evenly over the days after `from_day` up to `to_day` (or to that day alone)."""
    first = from_day + 1 if to_day > from_day else to_day
    _extend(usage, start, to_day, None)
    share = used / (to_day - first + 1)
    for i in range(first - start, to_day - start + 1):
        if i >= 0:
            known = usage[i]
            usage[i] = round(share if known is None else known + share, 6)


def _average(usage: list[float | None] | tuple[float | None, ...], days: int) -> float | None:
    """Mean usage a day over the last `days` days with data; None if none had data."""
    window = [u for u in usage[-days:] if u is not None]
    return sum(window) / len(window) if window else None


def forecast(
    track: Track,
    now: datetime,
    rules: Rules,
    fleet: Yield | None = None,
    rated: int | None = None,
    slow: bool = False,
    waste: bool = False,
) -> Forecast:
    """Where the supply stands at `now` (R7), with the R6 and R12 flags, from the best
    evidence it has: the gauge's level series; else (a gauge with no number, or a coarse one,
    or no rate from the level yet) the page counter with pages per cartridge (the device's
    own, else `fleet`, the same part number across the fleet, else `rated`, the box's);
    else a cold start (an empty, "low" or low level at a conservative default rate: R7-R9);
    else it is watched (a "some remaining" gauge until it reads empty) or cannot be forecast.
    """
    level = _by_level(track, now, rules)
    meter = track.meter
    per = pages.pages_per_cartridge(meter, fleet, rated)
    step = meter.step if track.unit == PERCENT and not track.coarse else None
    value, size = track.last_value, track.capacity or (100.0 if track.unit == PERCENT else None)
    # A coarse gauge shows 0 while less than a step is left: there only noToner is empty.
    empty = meter.alert == EMPTY if step is not None else _empty(value, meter.alert)
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
    level = replace(level, why="from the gauge's level" if level.rate is not None else "")
    if empty and not level.rate and not (by_pages and by_pages.rate):
        return _cold_start(track, rules, level, slow)  # empty: 0 days left at any rate
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
        return _cold_start(track, rules, level, slow)
    if meter.blind and meter.anchor is None:
        why = (
            "the gauge never gives a level and the printer's toner alerts do not say which"
            " of its toners is low or empty"
        )
        return replace(level, basis=NONE, why=why)
    if meter.silent and waste:
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
    window = [u for u in usage[-rules.rate_window_days :] if u is not None]
    recent = [u for u in usage[-rules.spike_window_days :] if u is not None]
    average = sum(window) / len(window) if len(window) >= rules.min_history_days else None
    recent_rate = sum(recent) / len(recent) if recent else None
    spike = bool(
        average
        and recent_rate
        and len(recent) >= rules.spike_window_days
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
        confidence=round(_confidence(window, rules, False) * (1 - per.spread), 2),
        days_with_data=len(window),
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
    if _empty(track.last_value, track.meter.alert):
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
    window = [u for u in usage[-rules.rate_window_days :] if u is not None]
    recent = [u for u in usage[-rules.spike_window_days :] if u is not None]
    average = sum(window) / len(window) if len(window) >= rules.min_history_days else None
    recent_rate = sum(recent) / len(recent) if recent else None
    spike = bool(
        average is not None
        and recent_rate is not None
        and len(recent) >= rules.spike_window_days
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
    return Forecast(
        unit=track.unit,
        rate=rate,
        rate_average=average,
        rate_recent=recent_rate,
        remaining=remaining,
        capacity=size,
        days_left=days_left,
        days_left_total=days_left_total,
        balance=track.balance,
        confidence=_confidence(window, rules, track.coarse),
        days_with_data=len(window),
        spike=spike,
        high_usage=high,
        high_usage_suspected=heavy and not high,
        weekly_cartridges=tuple(round(w, 2) for w in weekly),
    )


def _weekly_cartridges(
    usage: tuple[float | None, ...], size: float | None, weeks: int
) -> list[float]:
    """R6: cartridges used in each of the last whole weeks of known data, oldest first."""
    if not size:
        return []
    out = []
    for w in range(weeks, 0, -1):
        end = len(usage) - (w - 1) * 7
        block = usage[end - 7 : end] if end >= 7 else ()
        if len(block) < 7 or None in block:
            continue  # not a whole week of known data: it cannot show usage "every week"
        out.append(sum(block) / size)  # type: ignore[arg-type]
    return out


def _confidence(window: list[float], rules: Rules, coarse: bool) -> float:
    """How sure the rate is: data coverage, lowered for coarse steps and noisy weeks."""
    if len(window) < rules.min_history_days:
        return 0.0
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


def with_order(track: Track, quantity: int, day: int | None) -> Track:
    """R13/R14: the track once `quantity` more cartridges are on their way (day: an ASR order)."""
    last = day if day is not None else track.last_order_day
    return replace(track, balance=track.balance + quantity, last_order_day=last)
