"""A supply's track (R7, R13): what its forecast carries from one daily run to the next.

Is: the readings as the forecast sees them (`Point`), the cartridges seen going in
(`Install`), and the `Track`: the daily usage for the last `history_days` (grams a day where
the device reports grams, else percent a day; the days after the last reading are unknown,
never zero), the last level, the balance (R13: cartridges ordered and not installed) and the
page counter's witness (collector.replenish.pages); the calendar-day helpers they share.
Is not: how a track moves forward (collector.replenish.advance) or what it forecasts
(collector.replenish.forecast).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from collector.replenish.pages import Meter
from collector.replenish.series import Days, Usage

DAY = 86_400.0
GRAMS = "g"
PERCENT = "%"
PAGES = "pages"  # a forecast from the page counter: rate in pages a day, capacity a yield
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
    usage: Usage = field(default_factory=Usage)  # per calendar day; None: unknown
    last_at: float | None = None  # POSIX time of the newest reading applied
    last_value: float | None = None  # its level, in `unit`; None: no number then
    coarse: bool = False  # the device reports coarse steps only
    balance: int = 0  # R13: cartridges ordered (ASR or extra, R14) and not installed
    last_order_day: int | None = None  # R12: day number of the last ASR order
    installs: int = 0  # new cartridges seen since tracking began
    meter: Meter = field(default_factory=Meter)  # the page counter's witness (issue 14)

    def __post_init__(self) -> None:
        if not isinstance(self.usage, Usage):  # a tuple or list of float | None
            object.__setattr__(self, "usage", Usage(self.usage))

    def to_json(self) -> dict[str, Any]:
        """The track as the store keeps it (a JSON object)."""
        return {
            "unit": self.unit,
            "capacity": self.capacity,
            "start": self.start,
            "usage": self.usage.pack(),  # rounded once, where each day's value is made
            "usage_sums": self.usage.kept(),  # R7, R12: its windows' running sums
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
        # Built without the frozen dataclass's __init__ (a setattr per field): every field is
        # given, and of its type, so there is nothing for __post_init__ to convert.
        track = object.__new__(cls)
        track.__dict__.update(
            unit=data["unit"],
            capacity=data["capacity"],
            start=data["start"],
            # packed with its running sums, or the JSON list stored before (r0011)
            usage=Usage.unpack(data["usage"], data.get("usage_sums") or ()),
            last_at=data["last_at"],
            last_value=data["last_value"],
            coarse=data["coarse"],
            balance=data["balance"],
            last_order_day=data["last_order_day"],
            installs=data["installs"],
            meter=Meter.from_json(data.get("meter")),
        )
        return track

    @property
    def last_day(self) -> int | None:
        """The day number of the last day with known or spread usage."""
        if self.start is None or not self.usage:
            return None
        return self.start + len(self.usage) - 1


def day_number(at: datetime) -> int:
    """The calendar day (UTC) of a time, as date.toordinal()."""
    return at.date().toordinal()


def day_number_of(posix: float) -> int:
    """The calendar day (UTC) of a POSIX time, as date.toordinal()."""
    return int(posix // DAY) + 719_163  # date(1970, 1, 1).toordinal()


def extend(usage: Days, start: int, day: int, value: float | None) -> None:
    """Grow the series to reach `day`, new days set to `value`."""
    missing = day - (start + len(usage) - 1)
    if missing > 0:
        usage.append(value, missing)


def spread(usage: Days, start: int, from_day: int, to_day: int, used: float) -> None:
    """Add `used` evenly over the days after `from_day` up to `to_day` (or to that day alone)."""
    first = from_day + 1 if to_day > from_day else to_day
    extend(usage, start, to_day, None)
    share = used / (to_day - first + 1)
    for i in range(first - start, to_day - start + 1):
        if i >= 0:
            usage.add(i, share)


def with_order(track: Track, quantity: int, day: int | None) -> Track:
    """R13/R14: the track once `quantity` more cartridges are on their way (day: an ASR order)."""
    last = day if day is not None else track.last_order_day
    return replace(track, balance=track.balance + quantity, last_order_day=last)


def point_of(
    read_at: datetime,
    percent: float | None,
    grams_left: float | None,
    grams_used: float | None,
    quality: str,
    receptacle: bool,
    unit_hint: str | None,
    *,
    level: int | None = None,
    pages: int | None = None,
    alert: str | None = None,
    shared: bool = False,
) -> Point:
    """A stored supply reading as the forecast sees it: grams where the device gives them (R1).

    A receptacle's level is the space left in it, so its grams left and 100 - percent full
    fall as it fills, as a toner's level falls as it empties. A level of 0 with no capacity
    (a "some remaining" gauge once empty) is empty. The device's page counter goes with
    every supply; its toner alert (`empty`, `low`) only with toner and ink.
    """
    alert = None if receptacle else alert
    if grams_left is not None and grams_used is not None:
        total = grams_left + grams_used
        return Point(read_at, grams_left, total, GRAMS, quality, pages, alert)
    if percent is not None:
        left = 100.0 - percent if receptacle else percent
        return Point(read_at, left, 100.0, PERCENT, quality, pages, alert)
    empty = 0.0 if level == 0 else None
    return Point(read_at, empty, None, unit_hint or PERCENT, quality, pages, alert, shared)
