"""How a supply's track moves forward with new readings (R7, R13): pure, no clock.

Is: `advance`, the readings applied in time order. How it copes with real data:
- the usage between two readings is spread over the calendar days between them, so a printer
  asleep or unread for days still counts what it used, and weekends and holidays count as the
  days of little printing they are (the rate is per calendar day);
- a rise of `install_jump_share` of the capacity is a new cartridge (R13); the usage of that
  interval is what the old one lost plus what the new one lost; when the old one cannot have
  run out by then (its level at the last reading, less the usage since, still holds
  `early_replacement_share` of a cartridge) it was replaced early, which is reported;
- smaller rises are noise and are ignored; a reading without a number ("some remaining", -3,
  unknown) breaks the series: the days up to the next number are unknown;
- the page counter goes along (collector.replenish.pages): swaps on gauges with no level
  (empty or low, then some remaining), swaps no reading shows (`unseen_swaps`, a cartridge
  past its pages), cartridges put in while the device was dark, coarse steps' crossings.
Is not: the forecast (collector.replenish.forecast) or the track's record
(collector.replenish.track).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from collector.replenish import pages
from collector.replenish.pages import Meter, Yield
from collector.replenish.series import Days
from collector.replenish.settings import Rules
from collector.replenish.track import (
    DAY,
    EMPTY,
    LOW,
    PERCENT,
    Install,
    Point,
    Track,
    day_number,
    day_number_of,
    extend,
    spread,
)


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
    # R7, R12: their sums kept running as days move (none: scanned when asked, which costs
    # less CPU in CPython at these lengths: docs/benchmarks.md, "Tracks, packed")
    windows = (rules.rate_window_days, rules.spike_window_days)
    usage = Days(track.usage, windows)
    last_at, last_value, coarse = track.last_at, track.last_value, track.coarse
    balance, count, meter = track.balance, track.installs, track.meter
    rate = usage.average(rules.rate_window_days)
    for point in sorted(points, key=lambda p: p.at):
        at = point.at.timestamp()
        if last_at is not None and at <= last_at:
            continue  # late, or applied before: the track moves forward only
        if point.unit != unit:  # first reading, or the device changed how it counts
            unit, start, usage, last_value = point.unit, None, Days(None, windows), None
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
        empty_now = point.alert == EMPTY if meter.step else is_empty(value, point.alert)
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
            elif (
                is_empty(value, point.alert) and meter.anchor is not None and meter.last is not None
            ):
                meter = replace(meter, mark=pages.Mark(meter.last, 0.0))
            elif value is not None and size and meter.last is not None and meter.step is None:
                meter = pages.marked(meter, pages.Mark(meter.last, value / size))
            elif value is None and balance > 0:
                meter, swaps = pages.past_its_pages(meter, fleet, rated, balance)
                for _ in range(swaps):  # R13: the spare went in when this one ran out
                    installs.append(Install(point.at, 0.0, 0.0, False))
                balance, count = balance - swaps, count + swaps
            extend(usage, start, day, None)
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
            spread(usage, start, day_number_of(last_at), day, 0.0)
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
            extend(usage, start, day, None)  # it ran out in between: those days are unknown
        else:
            spread(usage, start, day_number_of(last_at), day, used)
        last_at, last_value = at, value
        rate = usage.average(rules.rate_window_days)
    if start is not None and len(usage) > rules.history_days:
        cut = len(usage) - rules.history_days
        usage.drop(cut)
        start += cut
    if meter.start is not None and len(meter.usage) > rules.history_days:
        cut = len(meter.usage) - rules.history_days
        meter = replace(meter, usage=meter.usage.without(cut), start=meter.start + cut)
    new = Track(
        unit=unit,
        capacity=capacity,
        start=start,
        usage=usage.freeze(),
        last_at=last_at,
        last_value=last_value,
        coarse=coarse,
        balance=balance,
        last_order_day=track.last_order_day,
        installs=count,
        meter=meter,
    )
    return new, installs


def is_empty(value: float | None, alert: str | None) -> bool:
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
        usual = meter.usage.average(rules.rate_window_days) or 0.0
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


def _spread_pages(usage: Days, start: int, last_at: float, day: int, n: float) -> None:
    spread(usage, start, day_number_of(last_at), day, n)
