"""A supply's status now, as the portal shows it: shaped from the stored track and figures.

Is: the pure helpers the fleet and the device views share: the forecast at `now` from a
supply's track (the daily run's hints, the orders not yet counted), the stored forecast
figures moved on to `now`, a stored reading's level in percent (R1), and a device's state
before its first daily run. Is not: a read (collector.store.read_*), or a view
(collector.portal.queries, .device_view).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from collector.replenish.daily import point_of
from collector.replenish.forecast import Forecast, Hints, Track, forecast, with_order
from collector.replenish.lifecycle import DISCONNECTED, NO_USAGE_RATE
from collector.replenish.settings import Rules
from collector.store.read_records import (
    DeviceRow,
    LevelReading,
    StoredFigures,
    SupplyRow,
)


@dataclass(frozen=True)
class SupplyStatus:
    """A supply's level in percent and its forecast now (None: not tracked yet)."""

    percent: float | None
    forecast: Forecast | None


def supply_status(
    track: Track | None, uncounted: int, now: datetime, rules: Rules, supply: SupplyRow
) -> SupplyStatus:
    """The supply's forecast at `now` from its track, its `uncounted` orders counted."""
    if track is None:
        return SupplyStatus(None, None)
    hints = Hints.of(supply.kind, supply.colour, supply.rated_yield)  # as the daily run has it
    counted = with_order(track, uncounted, None) if uncounted else track
    f = forecast(counted, now, rules, None, hints)  # the fleet's pages per cartridge aside
    percent = None
    if f.remaining is not None and f.capacity:
        percent = round(max(0.0, min(100.0, 100.0 * f.remaining / f.capacity)), 1)
    return SupplyStatus(percent, f)


def finite(value: float | None) -> float | None:
    """The value to one decimal; None for none or an infinite one."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, 1)


def device_state(row: DeviceRow, now: datetime, rules: Rules) -> tuple[str, str]:
    """The stored state, or before the first daily run what it can only be."""
    if row.state is not None:
        return row.state, row.reason or ""
    seen = row.last_seen or row.registered_at
    if now - seen >= timedelta(days=rules.disconnected_after_days):
        return DISCONNECTED, "no reading yet: ASR cannot order without data"
    return NO_USAGE_RATE, "no usage rate yet: waiting for the daily run"


class FiguresNow(NamedTuple):
    """A tracked supply's figures carried to now: percent left in the installed cartridge,
    its days left, and the days left counting the cartridges on their way (R13)."""

    percent: float | None
    days_left: float | None
    days_left_total: float | None


NOT_KNOWN = FiguresNow(None, None, None)


def stored_figures(
    stored: Iterable[StoredFigures], now: datetime
) -> dict[tuple[str, str], FiguresNow]:
    """Each tracked supply's figures now, from the forecast figures the last run stored.

    The same numbers as the forecast at `now` (the level falls at the rate since the run that
    stored them), without reading the tracks: the fleet list reads every device's.
    """
    out: dict[tuple[str, str], FiguresNow] = {}
    for row in stored:
        fig = row.figures
        remaining, capacity, rate = (
            fig.get("remaining"),
            fig.get("capacity"),
            fig.get("rate_per_day"),
        )
        if remaining is None:
            out[(row.serial, row.supply_id)] = NOT_KNOWN
            continue
        elapsed = max(0.0, (now - row.updated_at).total_seconds()) / 86_400
        left = max(0.0, remaining - (rate or 0.0) * elapsed)
        percent = round(max(0.0, min(100.0, 100.0 * left / capacity)), 1) if capacity else None
        days = round(left / rate, 1) if rate else None
        total = fig.get("days_left_total")
        if total is not None and rate:
            total = max(0.0, total - elapsed)
        out[(row.serial, row.supply_id)] = FiguresNow(percent, days, total)
    return out


def percent_of(r: LevelReading) -> float | None:
    """A stored supply reading's level in percent, as the forecast reads it (R1)."""
    point = point_of(r.at, r.percent, r.grams_left, r.grams_used, r.quality, r.receptacle, None)
    if point.remaining is None or not point.capacity:
        return None
    return round(max(0.0, min(100.0, 100.0 * point.remaining / point.capacity)), 1)


def latest_percents(latest: Iterable[LevelReading]) -> dict[tuple[str, str], float]:
    """Each (serial, supply) reading's level in percent, where it has one."""
    out = {}
    for r in latest:
        level = percent_of(r)
        if level is not None:
            out[(r.serial, r.supply_key)] = level
    return out
