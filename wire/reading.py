"""One printer read, as the agent reports it: the records of the poll JSON contract.

The same dataclasses serve `asr-agent poll --json` and, in a batch, the push to the collector,
so the agent and the collector import this one module and nothing else for the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

SCHEMA_VERSION = 1

# The wire's bounds (docs/protocol.md, Bounds): what the collector accepts in one reading, and
# what the agent cuts a printer's values down to before it spools them. Printers' texts are
# DisplayStrings of at most 255 octets (RFC 3805); the room above is for notes and UTF-8.
MAX_TEXT = 1024  # characters of any string
MAX_ITEMS = 256  # supplies of a reading, notes or error names of a list
INT32 = (-(2**31), 2**31 - 1)  # Integer32: levels, capacities, indexes (RFC 3805)
COUNTER = (0, 2**63 - 1)  # page counters, seqs, totals: what a signed 64-bit column holds

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


# --- bounding a reading before it is sent ----------------------------------------------------

_INT32_FIELDS = ("max_capacity", "level", "marker_index", "colorant_index", "hr_device_index")
_COUNTER_FIELDS = ("page_count", "power_on_count")


def clean_text(text: str) -> tuple[str, list[str]]:
    """`text` as the wire takes it, and what was changed: NULs removed, unpaired surrogates
    replaced (U+FFFD), cut to MAX_TEXT characters."""
    changes = []
    if "\x00" in text:
        text = text.replace("\x00", "")
        changes.append("NUL characters removed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
        changes.append("invalid characters replaced")
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        changes.append(f"cut to {MAX_TEXT} characters")
    return text, changes


def _bound_record(record: Any, where: str, notes: list[str]) -> Any:
    """`record` with every str, str tuple and int field within the wire's bounds."""
    changed: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, str):
            text, changes = clean_text(value)
            if changes:
                changed[f.name] = text
                notes.append(f"{where}{f.name}: {', '.join(changes)}")
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            items = [clean_text(v) for v in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS or any(changes for _, changes in items):
                changed[f.name] = tuple(text for text, _ in items)
                notes.append(f"{where}{f.name}: items bounded (NULs, length, count)")
        elif isinstance(value, int) and not isinstance(value, bool):
            low, high = INT32 if f.name in _INT32_FIELDS else COUNTER
            if f.name in _INT32_FIELDS + _COUNTER_FIELDS and not low <= value <= high:
                changed[f.name] = None if f.name != "hr_device_index" else 1
                notes.append(f"{where}{f.name}: {value} is out of range, dropped")
    return replace(record, **changed) if changed else record


def bound_reading(reading: PrinterReading) -> tuple[PrinterReading, list[str]]:
    """`reading` within the wire's bounds, and a note per field changed (the agent keeps them
    as the reading's notes and problems): a printer's odd bytes never make a reading the
    collector refuses."""
    notes: list[str] = []
    supplies = tuple(
        _bound_record(s, f"supplies[{i}].", notes) for i, s in enumerate(reading.supplies)
    )
    if len(supplies) > MAX_ITEMS:
        notes.append(f"supplies: {len(supplies)}, only the first {MAX_ITEMS} kept")
        supplies = supplies[:MAX_ITEMS]
    status = _bound_record(reading.status, "status.", notes)
    bounded = _bound_record(replace(reading, supplies=supplies, status=status), "", notes)
    if not notes:
        return reading, []
    kept = bounded.notes[: MAX_ITEMS - len(notes)] if len(notes) < MAX_ITEMS else ()
    return replace(bounded, notes=(*kept, *notes[: MAX_ITEMS - len(kept)])), notes
