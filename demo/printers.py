"""The demo's printers: sim/ fleet printers whose supplies really go down as they print.

Is: one `DemoPrinter` per simulated device, over a `SimPrinter` of our SNMP responder. Each
working day it prints its pages; the toners, the waste box and the drum go down by what the
pages cost, and the page counter goes up, in the very objects the agent reads over SNMP
(prtMarkerSuppliesLevel in percent or tenths of grams, prtMarkerLifeCount). A cartridge put
in sets its supply back to full. An empty toner stops the printer: a stock-out day.
Is not: a model of a real printer's usage (pages and yields are drawn per printer, fixed for
a seed), nor the collector's view of it: that comes only from what the agent reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agent.profile import Profile
from agent.snmp import ber
from agent.snmp.ber import Typed
from sim.fleet import HR_DEVICE_INDEX, LOW_PERCENT, error_state, make_printer, supply_oid
from sim.responder import Faults, SimPrinter

WASTE_PER_TONER = 0.15  # of the toner's share, what ends in the waste box
# Printers whose toner gauges are not exact, as real Brother, Ricoh and Canon devices report:
# one that says only "some remaining" (-3) until empty (0), one in steps of 25 %. Both mono,
# so the toner alerts (lowToner, noToner) are their one toner's. Read by the same agent,
# supplied from their page counters (collector.replenish.pages).
GAUGES = {2: "some-remaining", 4: "steps:25"}


@dataclass
class Supply:
    """One supply row of the printer, as the demo changes it."""

    index: int  # prtMarkerSuppliesIndex
    description: str
    kind: str  # toner, waste or drum
    capacity: int  # prtMarkerSuppliesMaxCapacity
    level: float  # toner and drum: what is left; waste: the space left (RFC 3805)
    pages_per_unit: float  # pages that use up one unit of capacity


@dataclass
class DemoPrinter:
    """A simulated printer of the demo: its SNMP objects and its usage."""

    number: int
    community: str
    serial: str
    colour: bool
    mass: bool  # toner in tenths of grams (else percent)
    power_save: bool  # sleeps between polls: asleep at night, slow to wake in the day
    sim: SimPrinter
    supplies: list[Supply]
    pages_per_day: int
    pages: int  # prtMarkerLifeCount
    profile: Profile
    gauge: str = "exact"  # how it reports toner: exact, steps:25, some-remaining (issue 14)
    dark: bool = False  # switched off: answers nothing
    stock_out_days: int = 0
    installed: list[str] = field(default_factory=list)  # what went in, for the summary

    @classmethod
    def make(cls, profile: Profile, number: int, seed: int, community: str) -> DemoPrinter:
        """Printer `number` of the sim/ fleet drawn with `seed`, toners between 25 and 100 %."""
        entries = make_printer(profile, number, seed)
        sim = SimPrinter(entries)
        rng = random.Random(f"demo:{seed}:{number}")
        values = dict(entries)
        supplies = []
        s = 1
        while supply_oid(profile, "level", s) in values:
            description = values[supply_oid(profile, "description", s)].value
            capacity = values[supply_oid(profile, "maxCapacity", s)].value
            assert isinstance(description, bytes) and isinstance(capacity, int)
            text = description.decode()
            kind = "waste" if "Waste" in text else "drum" if "Drum" in text else "toner"
            if kind == "toner":
                start = capacity * rng.uniform(0.25, 1.0)
                if number in GAUGES and s == 1:
                    start = capacity * 0.3  # runs low within the demo: supplied on screen
                yield_pages = rng.choice((6000, 9000, 12000)) if s == 1 else 5000
                per_unit = yield_pages / capacity
            elif kind == "waste":
                start = float(capacity) * rng.uniform(0.5, 1.0)
                per_unit = 0.0  # filled from the toners used
            else:
                start, per_unit = float(capacity), 1.0  # a drum counts impressions
            supplies.append(Supply(s, text, kind, capacity, start, per_unit))
            s += 1
        serial = values[(*profile.per_device["prtGeneralSerialNumber"], HR_DEVICE_INDEX)].value
        life = values[(*profile.per_marker["prtMarkerLifeCount"], HR_DEVICE_INDEX, 1)].value
        assert isinstance(serial, bytes) and isinstance(life, int)
        mass = number % 4 >= 2
        printer = cls(
            number=number,
            community=community,
            serial=serial.decode(),
            colour=number % 2 == 1,
            mass=mass,
            power_save=number % 5 == 4,
            gauge=GAUGES.get(number, "exact"),
            sim=sim,
            supplies=supplies,
            pages_per_day=rng.randint(80, 450),
            pages=life,
            profile=profile,
        )
        printer._write()
        return printer

    @property
    def toners(self) -> list[Supply]:
        return [s for s in self.supplies if s.kind == "toner"]

    def percent(self, supply: Supply) -> float:
        return 100.0 * supply.level / supply.capacity

    def print_day(self, weekday: bool) -> int:
        """A day's printing (none at the weekend, none when dark or out of toner); pages."""
        if not weekday or self.dark:
            return 0
        if any(t.level <= 0 for t in self.toners):
            self.stock_out_days += 1  # the printer stops: what ASR is there to prevent
            return 0
        pages = self.pages_per_day
        used = 0.0
        for toner in self.toners:
            # Colour printers print a third of their pages in colour.
            share = pages if toner.index == 1 else pages / 3
            spent = min(toner.level, share / toner.pages_per_unit)
            toner.level -= spent
            used += spent / toner.capacity
        for supply in self.supplies:
            if supply.kind == "waste":
                supply.level = max(0.0, supply.level - used * WASTE_PER_TONER * supply.capacity)
            elif supply.kind == "drum":
                supply.level = max(0.0, supply.level - pages)
        self.pages += pages
        self._write()
        return pages

    def install(self, supply_index: int) -> bool:
        """A new cartridge (or waste box) in; False if the printer has no such supply."""
        for supply in self.supplies:
            if supply.index == supply_index:
                supply.level = float(supply.capacity)
                self.installed.append(supply.description)
                self._write()
                return True
        return False

    def low(self, supply_index: int, below_percent: float) -> bool:
        """Whether the supply is down to `below_percent` (waste: that little space left)."""
        return any(
            s.index == supply_index and self.percent(s) <= below_percent for s in self.supplies
        )

    def set_hour(self, hour: int) -> None:
        """Faults for the time of day: off when dark; power-save asleep at night, slow to wake."""
        if self.dark or (self.power_save and not 7 <= hour < 19):
            self.sim.faults = Faults(asleep=True)
        elif self.power_save:
            self.sim.faults = Faults(drop_first=2)  # the first packets wake it up
        else:
            self.sim.faults = Faults()

    def shown(self, supply: Supply) -> tuple[int, int]:
        """The (level, max capacity) the printer reports for a supply, as its gauge does."""
        level = max(0, round(supply.level))
        if supply.kind != "toner" or self.gauge == "exact":
            return level, supply.capacity
        if self.gauge == "some-remaining":
            return (-3 if level > 0 else 0), -2
        step = int(self.gauge.split(":")[1])
        return int(self.percent(supply) // step * step), supply.capacity

    def _write(self) -> None:
        data = self.sim.data
        for supply in self.supplies:
            level, capacity = self.shown(supply)
            data.set(supply_oid(self.profile, "level", supply.index), Typed(ber.INTEGER, level))
            data.set(
                supply_oid(self.profile, "maxCapacity", supply.index),
                Typed(ber.INTEGER, capacity),
            )
        errors = [
            bit
            for bit, on in (
                ("lowToner", any(0 < self.percent(t) <= LOW_PERCENT for t in self.toners)),
                ("noToner", any(t.level <= 0 for t in self.toners)),
            )
            if on
        ]
        state = (*self.profile.per_device["hrPrinterDetectedErrorState"], HR_DEVICE_INDEX)
        data.set(state, Typed(ber.OCTET_STRING, error_state(self.profile, errors)))
        counter = (*self.profile.per_marker["prtMarkerLifeCount"], HR_DEVICE_INDEX, 1)
        data.set(counter, Typed(ber.COUNTER32, self.pages % 2**32))
