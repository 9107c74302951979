"""A batch of readings as the agent pushes it to the collector: records, encoder, validator.

Is: the one definition of the batch JSON (schema 1, docs/protocol.md) that the agent and the
collector both import; frozen records declared once with their bounds (wire.record), one
canonical encoder (`encode_batch`) and one strict validator (`decode_batch`; `decode_reading`
applies its `reading` part to one reading the agent kept in its spool), both derived from those
declarations, whose errors name the offending field's path, such as
`readings[3].reading.supplies[0].level`.
Is not: the signature (wire.signing) nor the transport; the validator checks form, not
meaning (whether a reading can be attributed to a device is the collector's call, R3).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import InitVar, dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from wire.errors import InvalidMessage, MalformedJSON, WireError, from_validation_error
from wire.reading import COUNTER, PrinterReading, clean_text
from wire.record import (
    Count,
    Many,
    Name,
    Real,
    Record,
    Seq,
    Text,
    Total,
    UtcTime,
    Versioned,
    decoder,
    iso_utc,
    version_of,
)

__all__ = [
    "BATCH_SCHEMA",
    "DEFAULT_MAX_READINGS",
    "Batch",
    "BatchReading",
    "Heartbeat",
    "PrinterCounts",
    "Refused",
    "decode_batch",
    "decode_reading",
    "encode_batch",
    "iso_utc",
    "shown",
    "split_batch",
]

DEFAULT_MAX_READINGS = 500


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


@dataclass(frozen=True)
class PrinterCounts(Record):
    """How many configured printers the agent has in each state (the contract's `printers`
    object, keyed by state name)."""

    answering: Count = 0
    asleep: Count = 0
    unreachable: Count = 0
    refused: Count = 0
    not_a_printer: Annotated[Count, Field(alias="not-a-printer")] = 0
    faulty: Count = 0

    @model_validator(mode="before")
    @classmethod
    def _every_count_sent(cls, data: Any) -> Any:
        # The defaults are for the agent that builds one; on the wire every count is required.
        if isinstance(data, dict):
            missing = [key for key in cls().to_dict() if key not in data]
            if missing:
                raise ValidationError.from_exception_data(
                    cls.__name__,
                    [{"type": "missing", "loc": (key,), "input": data} for key in missing],
                )
        return data


@dataclass(frozen=True)
class Heartbeat(Record):
    """The agent's own health, sent with every batch (an empty batch is a bare heartbeat)."""

    agent_version: Name
    uptime_seconds: Annotated[Real, Field(ge=0)]
    printers: PrinterCounts
    spool_depth: Count
    dropped_total: Total
    last_poll_at: UtcTime | None
    # The collector's clock minus the agent's, in seconds, when the agent corrects the times it
    # sends by it (its clock is off); absent when it sends its own clock's times.
    clock_offset_seconds: Annotated[Real | None, Field(exclude_if=lambda v: v is None)] = None


@dataclass(frozen=True)
class BatchReading(Record):
    """One spooled reading: the agent's sequence number, when and where it was read."""

    seq: Seq
    read_at: UtcTime
    printer: Name
    address: Annotated[Text, AfterValidator(_ip_port)]
    reading: PrinterReading


@dataclass(frozen=True)
class Batch(Versioned):
    """What one push carries: readings oldest first, and a heartbeat."""

    # The JSON object's version, BATCH_SCHEMA (wire.record says how a version is declared).
    schema: InitVar[Literal[1]] = field(default=Field(), kw_only=True)
    agent_id: Name
    batch_id: Annotated[Text, AfterValidator(_uuid)]
    sent_at: UtcTime
    # Not bounded here: how many a batch may hold is the collector's setting (decode_batch).
    readings: Many[BatchReading]
    heartbeat: Heartbeat


BATCH_SCHEMA = version_of(Batch)


def encode_batch(batch: Batch) -> bytes:
    """The canonical body: UTF-8 JSON, keys sorted, no spaces, no NaN."""
    return json.dumps(
        batch.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def decode_batch(body: bytes, max_readings: int = DEFAULT_MAX_READINGS) -> Batch:
    """The batch in `body`, validated; a WireError names the first wrong field's path."""
    try:
        batch = _BATCH.validate_json(body)
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
        reading = _READING_ONLY.validate_json(body)
    except ValidationError as err:
        raise from_validation_error(err) from None
    return reading


# The validators, derived by pydantic from the records' declarations: they build the frozen
# records straight from the JSON bytes, strictly (no coercion from strings, no unknown keys).
_BATCH = decoder(Batch)
_READING_ONLY = decoder(PrinterReading)
_ENTRY = decoder(BatchReading)
