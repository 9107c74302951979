"""A batch of readings as the agent pushes it to the collector: records, encoder, validator.

Is: the one definition of the batch JSON (schema 1, docs/protocol.md) that the agent and the
collector both import; frozen records, one canonical encoder (`encode_batch`) and one strict
validator (`decode_batch`; `decode_reading` applies its `reading` part to one reading the agent
kept in its spool) whose errors name the offending field's path, such as
`readings[3].reading.supplies[0].level`.
Is not: the signature (wire.signing) nor the transport; the validator checks form, not
meaning (whether a reading can be attributed to a device is the collector's call, R3).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from wire.errors import NO_NUL, InvalidMessage, MalformedJSON, WireError, from_validation_error
from wire.reading import (
    COUNTER,
    INT32,
    MAX_ITEMS,
    MAX_TEXT,
    PrinterReading,
    Status,
    Supply,
    clean_text,
)
from wire.reading import SCHEMA_VERSION as READING_SCHEMA

BATCH_SCHEMA = 1
DEFAULT_MAX_READINGS = 500


@dataclass(frozen=True)
class PrinterCounts:
    """How many configured printers the agent has in each state."""

    answering: int = 0
    asleep: int = 0
    unreachable: int = 0
    refused: int = 0
    not_a_printer: int = 0
    faulty: int = 0

    def to_dict(self) -> dict[str, int]:
        """The contract's `printers` object, keyed by state name."""
        return {
            "answering": self.answering,
            "asleep": self.asleep,
            "unreachable": self.unreachable,
            "refused": self.refused,
            "not-a-printer": self.not_a_printer,
            "faulty": self.faulty,
        }


@dataclass(frozen=True)
class Heartbeat:
    """The agent's own health, sent with every batch (an empty batch is a bare heartbeat)."""

    agent_version: str
    uptime_seconds: float
    printers: PrinterCounts
    spool_depth: int
    dropped_total: int
    last_poll_at: datetime | None
    # The collector's clock minus the agent's, in seconds, when the agent corrects the times it
    # sends by it (its clock is off); absent when it sends its own clock's times.
    clock_offset_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The contract's `heartbeat` object (`clock_offset_seconds` only when there is one)."""
        out: dict[str, Any] = {
            "agent_version": self.agent_version,
            "uptime_seconds": self.uptime_seconds,
            "printers": self.printers.to_dict(),
            "spool_depth": self.spool_depth,
            "dropped_total": self.dropped_total,
            "last_poll_at": iso_utc(self.last_poll_at) if self.last_poll_at else None,
        }
        if self.clock_offset_seconds is not None:
            out["clock_offset_seconds"] = self.clock_offset_seconds
        return out


@dataclass(frozen=True)
class BatchReading:
    """One spooled reading: the agent's sequence number, when and where it was read."""

    seq: int
    read_at: datetime
    printer: str
    address: str
    reading: PrinterReading

    def to_dict(self) -> dict[str, Any]:
        """The contract's object for one entry of `readings`."""
        return {
            "seq": self.seq,
            "read_at": iso_utc(self.read_at),
            "printer": self.printer,
            "address": self.address,
            "reading": self.reading.to_dict(),
        }


@dataclass(frozen=True)
class Batch:
    """What one push carries: readings oldest first, and a heartbeat."""

    agent_id: str
    batch_id: str
    sent_at: datetime
    readings: tuple[BatchReading, ...]
    heartbeat: Heartbeat

    def to_dict(self) -> dict[str, Any]:
        """The contract's batch object."""
        return {
            "schema": BATCH_SCHEMA,
            "agent_id": self.agent_id,
            "batch_id": self.batch_id,
            "sent_at": iso_utc(self.sent_at),
            "readings": [r.to_dict() for r in self.readings],
            "heartbeat": self.heartbeat.to_dict(),
        }


def iso_utc(at: datetime) -> str:
    """An aware datetime as ISO-8601 in UTC with a `Z`, microseconds always written."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: wire times are aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_batch(batch: Batch) -> bytes:
    """The canonical body: UTF-8 JSON, keys sorted, no spaces, no NaN."""
    return json.dumps(
        batch.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def decode_batch(body: bytes, max_readings: int = DEFAULT_MAX_READINGS) -> Batch:
    """The batch in `body`, validated; a WireError names the first wrong field's path."""
    try:
        batch: Batch = _BATCH.validate_json(body)
    except ValidationError as err:
        raise from_validation_error(err, schema=BATCH_SCHEMA) from None
    if len(batch.readings) > max_readings:
        raise InvalidMessage(
            f"{len(batch.readings)} readings, more than the {max_readings} allowed per batch",
            "readings",
        )
    previous = 0
    for i, item in enumerate(batch.readings):
        if item.seq <= previous:
            raise InvalidMessage(f"{item.seq} does not follow {previous}", f"readings[{i}].seq")
        previous = item.seq
    return batch


@dataclass(frozen=True)
class Refused:
    """A reading of a batch that the wire's schema refuses, and what can be told of it (its
    printer, address and serial as sent, cleaned and cut, for whoever looks into it)."""

    seq: int
    field: str  # the path of what is wrong: readings[3].reading.supplies[0].description
    error: str
    printer: str | None
    address: str | None
    serial: str | None


def split_batch(
    body: bytes, max_readings: int = DEFAULT_MAX_READINGS
) -> tuple[Batch, tuple[Refused, ...]]:
    """The batch in `body` with the readings the schema takes, and those it refuses.

    A fault of the batch itself (not JSON, its heartbeat, a reading without a usable seq)
    raises a WireError, as `decode_batch` does; a fault inside one reading refuses that reading
    only (docs/protocol.md: per reading, per batch). A valid batch costs one validation; only
    a batch with a refused reading is looked at reading by reading.
    """
    try:
        return decode_batch(body, max_readings), ()
    except WireError as err:
        if err.field is not None and not err.field.startswith("readings["):
            raise
        first = err
    try:
        doc = json.loads(body)  # Python's parser takes lone surrogates; the schema's does not
    except ValueError:
        raise first from None
    if not isinstance(doc, dict) or not isinstance(doc.get("readings"), list):
        raise first
    entries: list[Any] = doc["readings"]
    if len(entries) > max_readings:
        raise InvalidMessage(
            f"{len(entries)} readings, more than the {max_readings} allowed per batch", "readings"
        )
    envelope = decode_batch(_json({**doc, "readings": []}), max_readings)
    good: list[BatchReading] = []
    refused: list[Refused] = []
    previous = 0
    for i, entry in enumerate(entries):
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if type(seq) is not int or not 1 <= seq <= COUNTER[1]:
            raise InvalidMessage(
                f"a reading needs a seq from 1 to {COUNTER[1]}, not {str(seq)[:40]!r}",
                f"readings[{i}].seq",
            )
        if seq <= previous:
            raise InvalidMessage(f"{seq} does not follow {previous}", f"readings[{i}].seq")
        previous = seq
        try:
            good.append(_ENTRY.validate_json(_json(entry)))
        except ValidationError as err:
            wrong = from_validation_error(err)
            error = (
                "a string is not Unicode text (a lone surrogate)"
                if isinstance(wrong, MalformedJSON)
                else wrong.message
            )
            where = f"readings[{i}]" + (f".{wrong.field}" if wrong.field else "")
            reading = entry.get("reading")
            refused.append(
                Refused(
                    seq,
                    where,
                    error,
                    shown(entry.get("printer")),
                    shown(entry.get("address")),
                    shown(reading.get("serial") if isinstance(reading, dict) else None),
                )
            )
    return replace(envelope, readings=tuple(good)), tuple(refused)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def shown(value: Any, limit: int = 200) -> str | None:
    """A refused reading's text as it can be stored and shown: no NUL, no surrogate, cut."""
    if not isinstance(value, str):
        return None
    return clean_text(value[: limit * 2])[0][:limit]


def decode_reading(body: bytes) -> PrinterReading:
    """One reading (`PrinterReading.to_dict()` as JSON), checked as a batch entry's `reading`."""
    try:
        reading: PrinterReading = _READING_ONLY.validate_json(body)
    except ValidationError as err:
        raise from_validation_error(err) from None
    return reading


# The validator: pydantic-core builds the frozen records above (and wire.reading's) straight
# from the JSON bytes, strictly (no coercion from strings, no unknown keys). Written as a core
# schema rather than mirror models: one set of records, and a batch decodes three times as
# fast (6 ms for 300 readings), which was most of the collector's CPU per batch.

_UNSET: Any = object()


def _field(
    name: str, schema: cs.CoreSchema, alias: str | None = None, default: Any = _UNSET
) -> cs.DataclassField:
    if default is not _UNSET:
        schema = cs.with_default_schema(schema, default=default)
    return cs.dataclass_field(name, schema, validation_alias=alias)


def _record(cls: type[Any], *fields: cs.DataclassField, schema: int | None = None) -> cs.CoreSchema:
    # `schema`: the version the JSON object must carry in a "schema" key, which is checked,
    # then dropped (init-only): it is no field of the record.
    version = (
        [cs.dataclass_field("schema", cs.literal_schema([schema]), init_only=True)]
        if schema is not None
        else []
    )
    return cs.dataclass_schema(
        cls,
        cs.dataclass_args_schema(cls.__name__, [*version, *fields], extra_behavior="forbid"),
        [f["name"] for f in fields],
        frozen=True,
    )


def _to_utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"must be a UUID, not {text!r}") from None


def _ip_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be ip:port, not {text!r}")
    return text


# Bounds (docs/protocol.md, Bounds): every string at most MAX_TEXT characters and free of NUL
# (PostgreSQL's text cannot hold one; the pattern's error is worded in wire.errors), every
# list at most MAX_ITEMS long, every integer within the column that keeps it. Lone surrogates
# are not JSON text at all: the JSON parser refuses them.
_STR = cs.str_schema(strict=True, max_length=MAX_TEXT, pattern=NO_NUL)
_NAME = cs.str_schema(strict=True, min_length=1, max_length=MAX_TEXT, pattern=NO_NUL)
_OPT_STR = cs.nullable_schema(_STR)
_INT = cs.int_schema(strict=True, ge=INT32[0], le=INT32[1])
_OPT_INT = cs.nullable_schema(_INT)
_OPT_COUNTER = cs.nullable_schema(cs.int_schema(strict=True, ge=COUNTER[0], le=COUNTER[1]))
_COUNT = cs.int_schema(strict=True, ge=0, le=INT32[1])
_TOTAL = cs.int_schema(strict=True, ge=0, le=COUNTER[1])
_FLOAT = cs.float_schema(strict=True, allow_inf_nan=False)
_OPT_FLOAT = cs.nullable_schema(_FLOAT)
_BOOL = cs.bool_schema(strict=True)
_STRS = cs.tuple_schema([_STR], variadic_item_index=0, strict=False, max_length=MAX_ITEMS)
_TIME = cs.no_info_after_validator_function(
    _to_utc, cs.datetime_schema(strict=True, tz_constraint="aware")
)
_SEQ = cs.int_schema(strict=True, ge=1, le=COUNTER[1])

_SUPPLY = _record(
    Supply,
    _field("index", _STR),
    _field("description", _OPT_STR),
    _field("type", _OPT_STR),
    _field("supply_class", _OPT_STR, alias="class"),
    _field("colour", _OPT_STR),
    _field("unit", _OPT_STR),
    _field("max_capacity", _OPT_INT),
    _field("level", _OPT_INT),
    _field("percent", _OPT_FLOAT),
    _field("grams_left", _OPT_FLOAT),
    _field("grams_used", _OPT_FLOAT),
    _field("quality", _STR),
    _field("kind", _STR),
    _field("receptacle", _BOOL),
    _field("part_number", _OPT_STR, default=None),
    _field("marker_index", _OPT_INT, default=None),
    _field("colorant_index", _OPT_INT, default=None),
    _field("notes", _STRS, default=()),
)
_STATUS = _record(
    Status,
    _field("device", _OPT_STR),
    _field("printer", _OPT_STR),
    _field("errors", _STRS),
    _field("power", _STR),
)
_READING = _record(
    PrinterReading,
    _field("serial", _OPT_STR),
    _field("serial_source", _OPT_STR),
    _field("model", _OPT_STR),
    _field("sys_object_id", _OPT_STR),
    _field("sys_descr", _OPT_STR),
    _field("vendor", _OPT_STR),
    _field("uptime_seconds", _OPT_FLOAT),
    _field("page_count", _OPT_COUNTER),
    _field("power_on_count", _OPT_COUNTER),
    _field("counter_unit", _OPT_STR),
    _field("status", _STATUS),
    _field(
        "supplies",
        cs.tuple_schema([_SUPPLY], variadic_item_index=0, strict=False, max_length=MAX_ITEMS),
    ),
    _field("hr_device_index", _INT, default=1),
    _field("notes", _STRS, default=()),
    schema=READING_SCHEMA,
)
_BATCH_READING = _record(
    BatchReading,
    _field("seq", _SEQ),
    _field("read_at", _TIME),
    _field("printer", _NAME),
    _field("address", cs.no_info_after_validator_function(_ip_port, _STR)),
    _field("reading", _READING),
)
_COUNTS = _record(
    PrinterCounts,
    _field("answering", _COUNT),
    _field("asleep", _COUNT),
    _field("unreachable", _COUNT),
    _field("refused", _COUNT),
    _field("not_a_printer", _COUNT, alias="not-a-printer"),
    _field("faulty", _COUNT),
)
_HEARTBEAT = _record(
    Heartbeat,
    _field("agent_version", _NAME),
    _field("uptime_seconds", cs.float_schema(strict=True, ge=0, allow_inf_nan=False)),
    _field("printers", _COUNTS),
    _field("spool_depth", _COUNT),
    _field("dropped_total", _TOTAL),
    _field("last_poll_at", cs.nullable_schema(_TIME)),
    _field("clock_offset_seconds", _OPT_FLOAT, default=None),
)
_BATCH = SchemaValidator(
    _record(
        Batch,
        _field("agent_id", _NAME),
        _field("batch_id", cs.no_info_after_validator_function(_uuid, _STR)),
        _field("sent_at", _TIME),
        _field("readings", cs.tuple_schema([_BATCH_READING], variadic_item_index=0, strict=False)),
        _field("heartbeat", _HEARTBEAT),
        schema=BATCH_SCHEMA,
    )
)
_READING_ONLY = SchemaValidator(_READING)
_ENTRY = SchemaValidator(_BATCH_READING)
