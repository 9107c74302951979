"""One printer read, as the agent reports it: the records of the poll JSON contract.

The same dataclasses serve `asr-agent poll --json` and, in a batch, the push to the collector,
so the agent and the collector import this one module and nothing else for the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

# R1: how much a supply's percent can be trusted.
QUALITIES = ("measured", "some-remaining", "unknown", "coarse")
POWER_STATES = ("ready", "standby", "unknown")


@dataclass(frozen=True)
class Supply:
    """One row of prtMarkerSuppliesTable, raw values and their normalised meaning (R1)."""

    index: str
    description: str | None
    type: str | None
    supply_class: str | None
    colour: str | None
    unit: str | None
    max_capacity: int | None
    level: int | None
    percent: float | None
    grams_left: float | None
    grams_used: float | None
    quality: str
    kind: str
    receptacle: bool
    part_number: str | None = None
    marker_index: int | None = None
    colorant_index: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object for this supply."""
        return {
            "index": self.index,
            "description": self.description,
            "type": self.type,
            "class": self.supply_class,
            "colour": self.colour,
            "unit": self.unit,
            "max_capacity": self.max_capacity,
            "level": self.level,
            "percent": self.percent,
            "grams_left": self.grams_left,
            "grams_used": self.grams_used,
            "quality": self.quality,
            "kind": self.kind,
            "receptacle": self.receptacle,
            "part_number": self.part_number,
            "marker_index": self.marker_index,
            "colorant_index": self.colorant_index,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Status:
    """The printer's state: Host Resources device and printer status, error bits, power."""

    device: str | None
    printer: str | None
    errors: tuple[str, ...]
    power: str

    def to_dict(self) -> dict[str, Any]:
        """The contract's `status` object."""
        return {
            "device": self.device,
            "printer": self.printer,
            "errors": list(self.errors),
            "power": self.power,
        }


@dataclass(frozen=True)
class PrinterReading:
    """Everything one poll of one printer found out."""

    serial: str | None
    serial_source: str | None
    model: str | None
    sys_object_id: str | None
    sys_descr: str | None
    vendor: str | None
    uptime_seconds: float | None
    page_count: int | None
    power_on_count: int | None
    counter_unit: str | None
    status: Status
    supplies: tuple[Supply, ...]
    hr_device_index: int = 1
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The poll JSON contract's object (../shared/contracts/poll-json.md), plus extras."""
        return {
            "schema": SCHEMA_VERSION,
            "serial": self.serial,
            "serial_source": self.serial_source,
            "model": self.model,
            "sys_object_id": self.sys_object_id,
            "sys_descr": self.sys_descr,
            "vendor": self.vendor,
            "uptime_seconds": self.uptime_seconds,
            "page_count": self.page_count,
            "power_on_count": self.power_on_count,
            "counter_unit": self.counter_unit,
            "hr_device_index": self.hr_device_index,
            "status": self.status.to_dict(),
            "supplies": [s.to_dict() for s in self.supplies],
            "notes": list(self.notes),
        }
