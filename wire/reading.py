"""One printer read, as the agent reports it: the records of the poll JSON contract.

The same dataclasses serve `asr-agent poll --json` and, in a batch, the push to the collector,
so the agent and the collector import this one module and nothing else for the wire format.
Each record is declared once, its bounds on its fields (wire.record): the collector's validator
and `to_dict()` both come from that declaration.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field, fields, replace
from typing import Annotated, Any, Literal

from pydantic import Field

from wire.record import (
    COUNTER,
    INT32,
    MAX_ITEMS,
    MAX_TEXT,
    Counter,
    Int32,
    Items,
    Real,
    Record,
    Text,
    Versioned,
    version_of,
)

__all__ = [
    "COUNTER",
    "INT32",
    "MAX_ITEMS",
    "MAX_TEXT",
    "POWER_STATES",
    "QUALITIES",
    "SCHEMA_VERSION",
    "PrinterReading",
    "Status",
    "Supply",
    "bound_reading",
    "clean_text",
]


# R1: how much a supply's percent can be trusted.
QUALITIES = ("measured", "some-remaining", "unknown", "coarse")
POWER_STATES = ("ready", "standby", "unknown")


@dataclass(frozen=True)
class Supply(Record):
    """One row of prtMarkerSuppliesTable, raw values and their normalised meaning (R1)."""

    index: Text
    description: Text | None
    type: Text | None
    supply_class: Annotated[Text | None, Field(alias="class")]
    colour: Text | None
    unit: Text | None
    max_capacity: Int32 | None
    level: Int32 | None
    percent: Real | None
    grams_left: Real | None
    grams_used: Real | None
    quality: Text
    kind: Text
    receptacle: bool
    part_number: Text | None = None
    marker_index: Int32 | None = None
    colorant_index: Int32 | None = None
    notes: Items[Text] = ()


@dataclass(frozen=True)
class Status(Record):
    """The printer's state: Host Resources device and printer status, error bits, power."""

    device: Text | None
    printer: Text | None
    errors: Items[Text]
    power: Text


@dataclass(frozen=True)
class PrinterReading(Versioned):
    """Everything one poll of one printer found out: the poll JSON contract's object
    (../shared/contracts/poll-json.md), plus extras; `to_dict()` writes `"schema": 1` first."""

    # The JSON object's version, SCHEMA_VERSION (wire.record says how a version is declared).
    schema: InitVar[Literal[1]] = field(default=Field(), kw_only=True)
    serial: Text | None
    serial_source: Text | None
    model: Text | None
    sys_object_id: Text | None
    sys_descr: Text | None
    vendor: Text | None
    uptime_seconds: Real | None
    page_count: Counter | None
    power_on_count: Counter | None
    counter_unit: Text | None
    # Keyword-only (its default would otherwise have to come last): the JSON keeps its place.
    hr_device_index: Int32 = field(default=1, kw_only=True)
    status: Status
    supplies: Items[Supply]
    notes: Items[Text] = ()


SCHEMA_VERSION = version_of(PrinterReading)


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
