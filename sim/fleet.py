"""A synthetic fleet: N printers, the same N for the same seed, as (OID, value) entries.

Is: printers the agent reads fully (identity, status, counters, every supplies column and the
colorants) in a fixed mix: mono and colour; toner in percent or in tenths of grams; a waste
toner receptacle and a drum in each; every fifth printer in power-save. Printer n is the same
whatever the fleet's size. OIDs and enumeration codes come from the profile (mibs/).
Is not: a model of any real device. sysObjectID sits under a known vendor's enterprise so the
agent's vendor look-ups run as in the field; the values themselves are made up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agent.profile import Profile
from agent.snmp import ber
from agent.snmp.ber import Oid, Typed
from sim.snmprec import Entry

HR_DEVICE_INDEX = 1
COLOURS = ("black", "cyan", "magenta", "yellow")
LOW_PERCENT = 10  # at or below this, a toner sets lowToner and the device shows a warning


def community(number: int) -> str:
    """The community string (and snmprec file stem) of printer `number`."""
    return f"sim-{number:04d}"


@dataclass(frozen=True)
class _Supply:
    description: str
    supply_class: str
    supply_type: str
    unit: str
    max_capacity: int
    level: int
    colorant_index: int = 0


def _code(profile: Profile, enum: str, name: str) -> int:
    """The MIB's number for an enumeration name, e.g. supplyUnit 'percent' -> 19."""
    for number, text in profile.enums[enum].items():
        if text == name:
            return number
    raise KeyError(f"{name!r} is not in enumeration {enum}")


def supply_oid(profile: Profile, column: str, supply_index: int) -> Oid:
    """The OID of one prtMarkerSuppliesTable cell of a fleet printer (e.g. its 'level')."""
    return (
        *profile.supplies_table,
        profile.supply_columns[column],
        HR_DEVICE_INDEX,
        supply_index,
    )


def _supplies(rng: random.Random, colour: bool, mass: bool) -> list[_Supply]:
    out = []
    for c, name in enumerate(COLOURS[: 4 if colour else 1], start=1):
        # Every third toner is low, so some printers show lowToner and a warning.
        percent = rng.randint(1, LOW_PERCENT) if rng.random() < 1 / 3 else rng.randint(11, 100)
        if mass:
            capacity = rng.choice((1500, 2400, 3200) if c == 1 else (1000, 1500))
            level = capacity * percent // 100
        else:
            capacity, level = 100, percent
        unit = "tenthsOfGrams" if mass else "percent"
        description = f"{name.capitalize()} Toner Cartridge"
        out.append(_Supply(description, "consumed", "toner", unit, capacity, level, c))
    waste_capacity = 6000 if mass else 100
    out.append(
        _Supply(
            "Waste Toner Box",
            "filled",
            "wasteToner",
            "tenthsOfGrams" if mass else "percent",
            waste_capacity,
            rng.randint(waste_capacity // 10, waste_capacity),  # space left (RFC 3805)
        )
    )
    drum_capacity = rng.choice((30000, 50000))
    out.append(
        _Supply(
            "Drum Unit",
            "consumed",
            "opc",
            "impressions",
            drum_capacity,
            rng.randint(0, drum_capacity),
        )
    )
    return out


def error_state(profile: Profile, bits: list[str]) -> bytes:
    """hrPrinterDetectedErrorState with these bits set (bit 0 is the first octet's MSB)."""
    out = bytearray(2)
    for name in bits:
        bit = profile.error_bits.index(name)
        out[bit // 8] |= 0x80 >> (bit % 8)
    return bytes(out)


def make_printer(profile: Profile, number: int, seed: int = 0) -> list[Entry]:
    """Printer `number` of the fleet drawn with `seed`, sorted by OID."""
    rng = random.Random(f"{seed}:{number}")
    # The kind follows from the number, so any four consecutive printers cover the mix.
    colour = number % 2 == 1
    mass = number % 4 >= 2
    power_save = number % 5 == 4
    supplies = _supplies(rng, colour, mass)
    low = any(
        s.supply_type == "toner" and s.level * 100 <= LOW_PERCENT * s.max_capacity for s in supplies
    )
    vendor = profile.vendors[number % len(profile.vendors)] if profile.vendors else None
    maker = f"{vendor.name} " if vendor else ""
    model = f"SimLaser {'Color C' if colour else 'M'}{400 + 10 * (number % 7)}dn"
    sys_object_id = (*vendor.enterprise, 1, number % 7) if vendor else profile.supplies_table[:7]

    def enum(name: str, value: str) -> Typed:
        return Typed(ber.INTEGER, _code(profile, name, value))

    def text(value: str) -> Typed:
        return Typed(ber.OCTET_STRING, value.encode())

    h = HR_DEVICE_INDEX
    scalars = profile.scalars
    device = profile.per_device
    marker = profile.per_marker
    pages = rng.randint(1_000, 400_000)
    entries: list[Entry] = [
        (scalars["sysDescr"], text(f"{maker}{model}; simulated by asr-printer-sim")),
        (scalars["sysObjectID"], Typed(ber.OBJECT_IDENTIFIER, sys_object_id)),
        (scalars["sysUpTime"], Typed(ber.TIMETICKS, rng.randint(6_000, 400_000_000))),
        (scalars["sysName"], text(community(number))),
        ((*device["hrDeviceDescr"], h), text(f"{maker}{model}")),
        (
            (*device["hrDeviceStatus"], h),
            enum("hrDeviceStatus", "warning" if low and not power_save else "running"),
        ),
        (
            (*device["hrPrinterStatus"], h),
            enum("hrPrinterStatus", "other" if power_save else "idle"),
        ),
        (
            (*device["hrPrinterDetectedErrorState"], h),
            Typed(ber.OCTET_STRING, error_state(profile, ["lowToner"] if low else [])),
        ),
        ((*device["prtGeneralSerialNumber"], h), text(f"SIM{seed}-{number:05d}")),
        ((*device["prtGeneralPrinterName"], h), text(model)),
        ((*marker["prtMarkerCounterUnit"], h, 1), enum("counterUnit", "impressions")),
        ((*marker["prtMarkerLifeCount"], h, 1), Typed(ber.COUNTER32, pages)),
        ((*marker["prtMarkerPowerOnCount"], h, 1), Typed(ber.COUNTER32, pages // 50)),
    ]
    for s, supply in enumerate(supplies, start=1):
        columns = {
            "markerIndex": Typed(ber.INTEGER, 1),
            "colorantIndex": Typed(ber.INTEGER, supply.colorant_index),
            "class": enum("supplyClass", supply.supply_class),
            "type": enum("supplyType", supply.supply_type),
            "description": text(supply.description),
            "unit": enum("supplyUnit", supply.unit),
            "maxCapacity": Typed(ber.INTEGER, supply.max_capacity),
            "level": Typed(ber.INTEGER, supply.level),
        }
        entries += [(supply_oid(profile, column, s), value) for column, value in columns.items()]
    for c, name in enumerate(COLOURS[: 4 if colour else 1], start=1):
        entries.append(((*profile.colorant_value, h, c), text(name)))
    return sorted(entries, key=lambda entry: entry[0])


def make_fleet(profile: Profile, count: int, seed: int = 0) -> dict[str, list[Entry]]:
    """`count` printers by community string, numbered from 0."""
    return {community(n): make_printer(profile, n, seed) for n in range(count)}
