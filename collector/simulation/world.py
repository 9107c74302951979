"""The simulated physical world: cartridges in printers, spares on site, stock-outs.

Is: what the contract's simulator does to the devices each day (../shared/contracts/
simulation.md): consumption by usage.csv, a delivered spare installed when a cartridge is
empty (or a waste container swapped when full), the stock-out days when none is on site, the
spare cartridges held on site, and the customer's early swaps (R13). Pure and fast: no I/O.
Is not: the collector. What the world knows is not what ASR knows; ASR learns it only from
readings (collector.simulation.agent).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from collector.simulation.contract import Fleet, SupplySpec, Usage

Key = tuple[str, str]  # (serial, supply id)


@dataclass
class Slot:
    """One supply of one device: the installed cartridge and the spares on site for it."""

    spec: SupplySpec
    level: float  # grams left (toner, ink) or collected (waste)
    spares: int = 0
    out: bool = False  # empty (or full) with no spare: the device cannot print

    @property
    def waste(self) -> bool:
        """Whether this is a waste container (it fills up)."""
        return self.spec.kind == "waste"

    def remaining(self) -> float:
        """Grams left of the cartridge, or of room in the container."""
        cap = self.spec.capacity_grams
        return max(0.0, cap - self.level) if self.waste else max(0.0, self.level)

    def install(self) -> None:
        """A spare goes in: a full cartridge, or an empty container."""
        self.spares -= 1
        self.level = 0.0 if self.waste else self.spec.capacity_grams
        self.out = False

    def use(self, grams: float) -> None:
        """A day's usage; a spare goes in when the cartridge empties (the container fills)."""
        if grams <= 0 or self.out:
            return
        cap = self.spec.capacity_grams
        if self.waste:
            self.level += grams
            excess = self.level - cap
        else:
            self.level -= grams
            excess = -self.level
        if excess < 0:
            return
        if self.spares > 0:
            self.install()
            self.use(excess)
        else:
            self.level = cap if self.waste else 0.0
            self.out = True


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

    @classmethod
    def of(cls, fleet: Fleet) -> World:
        """The world on the first morning: start levels, no spares (the contract's rule)."""
        slots: dict[Key, Slot] = {}
        devices: dict[str, list[Slot]] = {}
        for device in fleet.devices:
            devices[device.serial] = []
            for spec in device.supplies:
                slot = Slot(spec, spec.start_grams)
                slots[device.serial, spec.id] = slot
                devices[device.serial].append(slot)
        site_of = {d.serial: (d.customer, d.site) for d in fleet.devices}
        return cls(slots, devices, site_of=site_of)

    def deliver(self, key: Key, quantity: int) -> None:
        """Cartridges arrive on site; one goes in at once where the device is out."""
        slot = self.slots[key]
        slot.spares += quantity
        if slot.out:
            slot.install()

    def swap_early(self, day: int, key: Key) -> bool:
        """R13: the customer replaces a cartridge before it is empty, if a spare is there."""
        slot = self.slots[key]
        if slot.spares <= 0 or slot.out:
            return False
        self.early_swaps.append((day, key[0], key[1], round(slot.remaining(), 2)))
        slot.install()
        return True

    def live_day(self, day: int, usage: Usage) -> None:
        """Each device prints its day (usage.csv); a device out at any time that day is out."""
        for serial, slots in self.devices.items():
            grams = usage.grams.get(serial, {})
            for slot in slots:
                series = grams.get(slot.spec.id)
                if series is not None:
                    slot.use(series[day])
            if any(slot.out for slot in slots):
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
