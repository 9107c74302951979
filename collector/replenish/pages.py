"""The page counter as a witness of a supply's level (R7, R13): pages a day, pages a cartridge.

Is: what a supply's track keeps of its device's page counter (prtMarkerLifeCount): the pages
printed per calendar day; two marks in the installed cartridge's life, each a page count and
the share of the cartridge left then (`anchor`: the first, `mark`: the latest); the pages per
cartridge learned from the device's own cartridges; and the gauge's step, learned from the
levels it shows. From those, and the yield of the same part number across the fleet or the
catalogue's rated yield when nothing is learned yet, the pages left in the cartridge.
This is the vendor's meter-read method (cartridges used = pages printed / yield), made to learn:
- a gauge that says only "some remaining" (-3) or nothing (-2) learns a cartridge from the
  install (0 or noToner, then some remaining again: R13) to the next time it reads empty;
- a coarse gauge (steps of 10 % or more) learns within the cartridge: when the shown level
  drops a step, the true level has just crossed the step above, so two crossings give pages
  per percent, where the staircase itself would give a rate only every few weeks;
- a fine gauge learns a cartridge from the level it lost and the pages it printed.
Is not: the level series or the order rules (collector.replenish.forecast, .planner).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collector.replenish.series import Days, Usage

MAX_YIELDS = 5  # cartridges remembered per supply
STEP_MIN = 10  # percent: a gauge whose levels are all multiples of this or more is coarse
MIN_LIFE = 0.5  # share of a cartridge seen between two marks before its yield is learned
# How far off a yield may be, by where it comes from: the rated one is at the box's coverage
# (ISO/IEC 19752: 5 %), an office prints more or less (real yields 30 % below were seen).
SPREAD = {"learned": 0.25, "crossings": 0.3, "fleet": 0.3, "rated": 0.35}


@dataclass(frozen=True)
class Mark:
    """A point in a cartridge's life: the page counter then, and the share left (0..1)."""

    pages: float
    left: float


@dataclass(frozen=True)
class Meter:
    """What a supply's track keeps of the page counter."""

    start: int | None = None  # day number of usage[0]
    usage: Usage = field(default_factory=Usage)  # pages per calendar day; None: unknown
    last: int | None = None  # the counter at the newest reading that had one
    last_at: float | None = None  # its POSIX time
    anchor: Mark | None = None  # the installed cartridge's first mark
    mark: Mark | None = None  # its latest
    yields: tuple[int, ...] = ()  # pages per cartridge, learned, newest last
    gcd: int = 0  # of the whole percents shown so far (0: none yet)
    alert: str | None = None  # the device's toner alert at the newest reading
    empty_since: float | None = None  # POSIX time of the first of the readings saying empty
    empty_pages: int | None = None  # the counter then
    blind: bool = False  # no level ever, and the device's alerts are not this toner's alone
    numbered: bool = False  # the gauge's last reading above empty gave a level
    guessed: bool = False  # the anchor is where a cartridge was reckoned to go in, not seen
    silent: bool = False  # the gauge's last reading said nothing at all (-2, unknown)

    def __post_init__(self) -> None:
        if not isinstance(self.usage, Usage):  # a tuple or list of float | None
            object.__setattr__(self, "usage", Usage(self.usage))

    def to_json(self) -> dict[str, Any]:
        """As the track's JSON keeps it."""
        return {
            "start": self.start,
            "usage": self.usage.pack(),
            "last": self.last,
            "last_at": self.last_at,
            "anchor": [self.anchor.pages, self.anchor.left] if self.anchor else None,
            "mark": [self.mark.pages, self.mark.left] if self.mark else None,
            "yields": list(self.yields),
            "gcd": self.gcd,
            "alert": self.alert,
            "empty_since": self.empty_since,
            "empty_pages": self.empty_pages,
            "blind": self.blind,
            "numbered": self.numbered,
            "guessed": self.guessed,
            "silent": self.silent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Meter:
        """From the track's JSON (a track stored before page counters were kept: empty)."""
        if not data:
            return cls()
        if data == _UNUSED:  # no page counter ever (most gauges): one shared, immutable
            return _NO_METER
        anchor, mark = data.get("anchor"), data.get("mark")
        meter = object.__new__(cls)  # as Track.from_json: every field given, of its type
        meter.__dict__.update(
            start=data.get("start"),
            usage=Usage.unpack(data.get("usage")),  # packed, or the list stored before
            last=data.get("last"),
            last_at=data.get("last_at"),
            anchor=Mark(*anchor) if anchor else None,
            mark=Mark(*mark) if mark else None,
            yields=tuple(data.get("yields") or ()),
            gcd=data.get("gcd") or 0,
            alert=data.get("alert"),
            empty_since=data.get("empty_since"),
            empty_pages=data.get("empty_pages"),
            blind=bool(data.get("blind")),
            numbered=bool(data.get("numbered")),
            guessed=bool(data.get("guessed")),
            silent=bool(data.get("silent")),
        )
        return meter

    @property
    def step(self) -> int | None:
        """The gauge's step in percent, when every level it showed is a multiple of 10 % or
        more (a coarse gauge: 10 %, 25 %, 50 %), else None."""
        return self.gcd if self.gcd >= STEP_MIN and self.gcd < 100 else None


_NO_METER = Meter()
_UNUSED = _NO_METER.to_json()  # its JSON: a track's meter that never saw a page counter


@dataclass(frozen=True)
class Yield:
    """Pages per cartridge, where that figure comes from and how far off it may be."""

    pages: float
    source: str  # learned, crossings, fleet, rated
    count: int = 0  # cartridges it was learned from (learned, fleet)
    spread: float = field(default=0.3)  # relative

    def describe(self) -> str:
        """In plain words, for the track's reason."""
        plus = f"±{round(self.spread * 100)} %"
        if self.source == "learned":
            s = "s" if self.count != 1 else ""
            return f"{self.count} cartridge{s} learned, {plus}"
        if self.source == "crossings":
            return f"learned from the gauge's steps, {plus}"
        if self.source == "fleet":
            return f"from {self.count} cartridges of this part number in the fleet, {plus}"
        return f"rated yield {round(self.pages)} pages, {plus}"


def shown(meter: Meter, percent: float | None) -> Meter:
    """The meter once the gauge showed `percent`: its step (the gcd of the levels shown)."""
    if percent is None or percent != int(percent) or not 0 <= percent <= 100:
        return meter if percent is None or percent == int(percent) else replace(meter, gcd=1)
    return replace(meter, gcd=math.gcd(meter.gcd or 100, int(percent)))


def count(meter: Meter, pages: int | None, at: float, day: int, extend: Any) -> tuple[Meter, float]:
    """The meter with the counter read at `at`; and the pages printed since the last read
    (0 when unknown: a first read, or a counter that went back, as a new board does)."""
    if pages is None:
        return meter, 0.0
    usage, start = meter.usage, meter.start
    printed = 0.0
    if meter.last is not None and meter.last_at is not None and pages >= meter.last:
        printed = float(pages - meter.last)
        if start is None:
            start = day
        days = Days(usage)
        extend(days, start, meter.last_at, day, printed)
        usage = days.freeze()
    elif start is None:
        start = day
    return replace(meter, usage=usage, start=start, last=pages, last_at=at), printed


def learned(meter: Meter) -> Meter:
    """At a new cartridge (R13): the old one's yield, when its marks span enough of it."""
    a, m = meter.anchor, meter.mark
    yields = meter.yields
    sure = not meter.guessed
    if (
        sure
        and a is not None
        and m is not None
        and a.left - m.left >= MIN_LIFE
        and m.pages > a.pages
    ):
        pages = (m.pages - a.pages) / (a.left - m.left)
        yields = (*yields, round(pages))[-MAX_YIELDS:]
    return replace(meter, yields=yields, anchor=None, mark=None, guessed=False)


def marked(meter: Meter, mark: Mark) -> Meter:
    """The meter with a new mark in the installed cartridge (the first is its anchor)."""
    if meter.anchor is None:
        return replace(meter, anchor=mark, mark=mark)
    return replace(meter, mark=mark)


def pages_per_cartridge(meter: Meter, fleet: Yield | None, rated: int | None) -> Yield | None:
    """The best figure of pages per cartridge: the device's own cartridges, else the installed
    one's marks so far, else the part number across the fleet, else the rated yield."""
    if meter.yields:
        mean = sum(meter.yields) / len(meter.yields)
        spread = SPREAD["learned"]
        if len(meter.yields) >= 2:
            sd = math.sqrt(sum((y - mean) ** 2 for y in meter.yields) / len(meter.yields))
            spread = min(SPREAD["learned"], max(0.05, sd / mean + 0.05))
        return Yield(mean, "learned", len(meter.yields), round(spread, 2))
    a, m = meter.anchor, meter.mark
    if a is not None and m is not None and a.left - m.left >= 0.2 and m.pages > a.pages:
        return Yield((m.pages - a.pages) / (a.left - m.left), "crossings", 0, SPREAD["crossings"])
    if fleet is not None:
        return fleet
    if rated:
        return Yield(float(rated), "rated", 0, SPREAD["rated"])
    return None


def fleet_yield(learned_yields: Sequence[int]) -> Yield | None:
    """The pages per cartridge of one part number across the fleet's learned cartridges."""
    if len(learned_yields) < 2:
        return None  # one cartridge somewhere is not yet a fleet's figure
    mean = sum(learned_yields) / len(learned_yields)
    sd = math.sqrt(sum((y - mean) ** 2 for y in learned_yields) / len(learned_yields))
    spread = min(SPREAD["fleet"], max(0.1, sd / mean + 0.05))
    return Yield(mean, "fleet", len(learned_yields), round(spread, 2))


def share_left(meter: Meter, per_cartridge: Yield, low: float | None, high: float | None) -> float:
    """The share of the cartridge left at the last counter read: the latest mark less the
    pages since, within what the gauge shows (a coarse level L of step s: [L, L + s))."""
    m = meter.mark
    if m is None or meter.last is None:
        left = low if low is not None else 0.0
    else:
        left = m.left - (meter.last - m.pages) / per_cartridge.pages
    if low is not None:
        left = max(left, low)
    if high is not None:
        left = min(left, high)
    return max(0.0, min(1.0, left))


def past_its_pages(
    meter: Meter, fleet: Yield | None, rated: int | None, balance: int
) -> tuple[Meter, int]:
    """R13 on a gauge with no number: a cartridge that printed more pages than it can (its
    pages per cartridge, with their spread) while a spare was on site, without ever reading
    empty, was replaced when it ran out (the spare went in the same day). The cartridges put
    in that way, at most `balance`, and the meter with the last one's life started."""
    per = pages_per_cartridge(meter, fleet, rated)
    a = meter.anchor
    if per is None or a is None or meter.last is None:
        return meter, 0
    swaps, went_in = 0, a.pages
    ran_out = a.pages + a.left * per.pages  # the installed one, at its pages per cartridge
    while swaps < balance and meter.last - ran_out > per.spread * per.pages:
        swaps, went_in, ran_out = swaps + 1, ran_out, ran_out + per.pages
    if not swaps:
        return meter, 0
    mark = Mark(went_in, 1.0)
    return replace(meter, anchor=mark, mark=mark, guessed=True), swaps


def used_up(meter: Meter, gone: int) -> Meter:
    """The meter once `gone` cartridges went in unseen and the last reads empty (R13): the
    pages from the installed one's first mark to empty span its share and `gone` whole ones,
    which teaches the pages per cartridge; the next cartridge starts a new life."""
    a, m = meter.anchor, meter.mark
    yields = meter.yields
    if a is not None and m is not None and m.left == 0 and m.pages > a.pages and not meter.guessed:
        share = a.left + gone - 1  # the empty one is the last put in
        if share >= MIN_LIFE:
            yields = (*yields, round((m.pages - a.pages) / share))[-MAX_YIELDS:]
    return replace(meter, yields=yields, anchor=None, mark=None, guessed=False)
