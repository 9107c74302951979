"""The simulated physical world: cartridges in printers, spares on site, stock-outs.

Is: what the contract's simulator does to the devices each day (docs/simulation-format.md):
consumption by usage.csv, a delivered spare installed when a cartridge is
empty (or a waste container swapped when full), the stock-out days when none is on site, the
spare cartridges held on site, the customer's early swaps (R13), and each device's page
counter (prtMarkerLifeCount: the day's `pages` where usage.csv has them, else PAGES_PER_GRAM
pages per gram of its black toner; a device prints no pages while it is out). Per supply it
keeps the days cartridges went in and the days it was out, for the report. A supply that
starts empty (a waste container full) is out from the first day. Pure and fast: no I/O.
Is not: the collector. What the world knows is not what ASR knows; ASR learns it only from
readings (collector.simulation.agent).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from collector.simulation.contract import DeviceSpec, Fleet, SupplySpec, Usage

Key = tuple[str, str]  # (serial, supply id)
PAGES_PER_GRAM = 20  # the contract's page counter without a pages column: per gram of black


@dataclass
class Slot:
    """One supply of one device: the installed cartridge and the spares on site for it."""

    spec: SupplySpec
    level: float  # grams left (toner, ink) or collected (waste)
    spares: int = 0
    out: bool = False  # empty (or full) with no spare: the device cannot print
    installs: list[int] = field(default_factory=list)  # the days a spare went in
    out_days: list[int] = field(default_factory=list)  # the days it was out at some time

    @property
    def waste(self) -> bool:
        """Whether this is a waste container (it fills up)."""
        return self.spec.kind == "waste"

    def remaining(self) -> float:
        """Grams left of the cartridge, or of room in the container."""
        cap = self.spec.capacity_grams
        return max(0.0, cap - self.level) if self.waste else max(0.0, self.level)

    def install(self, day: int = -1) -> None:
        """A spare goes in on `day`: a full cartridge, or an empty container."""
        self.spares -= 1
        self.level = 0.0 if self.waste else self.spec.capacity_grams
        self.out = False
        self.installs.append(day)

    def use(self, grams: float, day: int = -1) -> float:
        """A day's usage; a spare goes in when the cartridge empties (the container fills).
        The share of the day's grams it had toner (room) for: 1.0 unless it ran out."""
        if self.out:
            return 0.0
        if grams <= 0:
            return 1.0
        cap = self.spec.capacity_grams
        if self.waste:
            self.level += grams
            excess = self.level - cap
        else:
            self.level -= grams
            excess = -self.level
        if excess < 0:
            return 1.0
        if self.spares > 0:
            self.install(day)
            rest = self.use(excess, day)
            return 1.0 if rest >= 1.0 else (grams - excess * (1.0 - rest)) / grams
        self.level = cap if self.waste else 0.0
        self.out = True
        return (grams - excess) / grams


@dataclass
class World:
    """Every device's supplies and the tallies the report needs."""

    slots: dict[Key, Slot]
    devices: dict[str, list[Slot]]
    stockout_days: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spare_days: int = 0
    max_spares: int = 0  # of one supply of one device, on any day
    max_spares_site: int = 0  # of all supplies at one site, on any day
    early_swaps: list[tuple[int, str, str, float]] = field(default_factory=list)
    site_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    peak_spares: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    first_stockout: dict[str, int] = field(default_factory=dict)
    pages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts_pages: dict[str, Slot] = field(default_factory=dict)  # serial -> its black toner

    @classmethod
    def of(cls, fleet: Fleet) -> World:
        """The world on the first morning: start levels, no spares (the contract's rule)."""
        slots: dict[Key, Slot] = {}
        devices: dict[str, list[Slot]] = {}
        counts_pages: dict[str, Slot] = {}
        for device in fleet.devices:
            devices[device.serial] = []
            for spec in device.supplies:
                slot = Slot(spec, spec.start_grams)
                slot.out = slot.remaining() <= 0  # empty (full) with no spare: out from day 0
                slots[device.serial, spec.id] = slot
                devices[device.serial].append(slot)
            black = _black(device)
            if black is not None:
                counts_pages[device.serial] = slots[device.serial, black.id]
        site_of = {d.serial: (d.customer, d.site) for d in fleet.devices}
        return cls(slots, devices, site_of=site_of, counts_pages=counts_pages)

    def page_count(self, serial: str) -> int:
        """The device's page counter (prtMarkerLifeCount): whole pages printed so far."""
        return math.floor(round(self.pages[serial], 6))

    def deliver(self, key: Key, quantity: int, day: int = -1) -> None:
        """Cartridges arrive on site on `day`; one goes in at once where the device is out."""
        slot = self.slots[key]
        slot.spares += quantity
        if slot.out:
            slot.install(day)

    def swap_early(self, day: int, key: Key) -> bool:
        """R13: the customer replaces a cartridge before it is empty, if a spare is there."""
        slot = self.slots[key]
        if slot.spares <= 0 or slot.out:
            return False
        self.early_swaps.append((day, key[0], key[1], round(slot.remaining(), 2)))
        slot.install(day)
        return True

    def live_day(self, day: int, usage: Usage) -> None:
        """Each device prints its day (usage.csv); a device out at any time that day is out,
        and its page counter counts only what it printed before it ran out."""
        for serial, slots in self.devices.items():
            grams = usage.grams.get(serial, {})
            printed = 1.0  # the share of the day's printing the device got done
            for slot in slots:
                series = grams.get(slot.spec.id)
                printed = min(printed, slot.use(series[day] if series is not None else 0.0, day))
            if usage.pages is not None:
                self.pages[serial] += math.floor(usage.pages[serial][day] * printed)
            elif serial in self.counts_pages:
                black = grams.get(self.counts_pages[serial].spec.id)
                if black is not None:
                    self.pages[serial] += PAGES_PER_GRAM * black[day] * printed
            out = False
            for slot in slots:
                if slot.out:
                    slot.out_days.append(day)
                    out = True
            if out:
                self.stockout_days[serial] += 1
                self.first_stockout.setdefault(serial, day)

    def end_of_day(self) -> None:
        """Count the spares held on site (inventory) for the day."""
        per_site: dict[tuple[str, str], int] = defaultdict(int)
        for (serial, _), slot in self.slots.items():
            if slot.spares:
                self.spare_days += slot.spares
                self.max_spares = max(self.max_spares, slot.spares)
                key = (serial, slot.spec.id)
                self.peak_spares[key] = max(self.peak_spares[key], slot.spares)
                per_site[self.site_of[serial]] += slot.spares
        if per_site:
            self.max_spares_site = max(self.max_spares_site, *per_site.values())


def _black(device: DeviceSpec) -> SupplySpec | None:
    """The supply whose grams the page counter follows: the black toner or ink, else the
    first toner or ink."""
    marking = [s for s in device.supplies if s.kind != "waste"]
    return next((s for s in marking if s.colour == "black"), marking[0] if marking else None)


def backorder_delay(fleet: Fleet, skus: set[str], day: date) -> int:
    """The days an order of these SKUs placed on `day` waits at the warehouse (backorders)."""
    delays = [b.delay_days for b in fleet.backorders if b.sku in skus and b.start <= day <= b.end]
    return max(delays, default=0)
