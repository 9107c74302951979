"""What a stored batch writes, on either database: the statements, and each table's values.

The INSERTs are SQLAlchemy Core constructs for both dialects; the SQLite writer takes their
ON CONFLICT clauses as text, so a rule (such as how a device's first and last seen move) is
written once. Row values come in the table's column order, with times as the caller binds them.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic_core import to_json
from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite

from collector.errors import BatchConflict
from collector.records import Rejection
from collector.store.schema import devices
from wire.batch import Batch, BatchReading
from wire.reading import PrinterReading
from wire.signing import SignatureHeaders

Insert = postgresql.Insert | sqlite.Insert
Stored = dict[int, int]  # seq -> readings.id, of the readings a transaction stored


@dataclass(frozen=True)
class Received:
    """A batch to store, as both writers make their rows of it: the batch and its signed body,
    the readings of it to store, the rejected ones (to the quarantine), and when it came."""

    batch: Batch
    body: bytes
    signed: SignatureHeaders
    storable: Sequence[BatchReading]
    now: datetime
    rejected: Mapping[int, Rejection]
    all_seqs: tuple[int, ...]  # every reading's of the batch, stored or not

    @property
    def signed_at(self) -> datetime:
        return datetime.fromtimestamp(self.signed.timestamp, timezone.utc)


def new_batch(insert: Insert) -> Insert:
    """A batch is stored once per agent and batch id; a re-sent one changes nothing."""
    return insert.on_conflict_do_nothing(index_elements=["agent_id", "batch_id"])


def new_readings(insert: Insert) -> Insert:
    """A reading is stored once per agent and seq: the unique constraint finds duplicates."""
    return insert.on_conflict_do_nothing(index_elements=["agent_id", "seq"])


def new_quarantined(insert: Insert) -> Insert:
    """A rejected reading is quarantined once per agent and seq (a re-sent batch adds none)."""
    return insert.on_conflict_do_nothing(index_elements=["agent_id", "seq"])


def devices_upsert(insert: Insert) -> Insert:
    """R3: a device's first and last seen widen; model and agent follow its latest read."""
    new, old = insert.excluded, devices.c
    newer = new.last_seen >= old.last_seen
    return insert.on_conflict_do_update(
        index_elements=["serial"],
        set_={
            "model": case((newer & new.model.is_not(None), new.model), else_=old.model),
            "first_seen": case(
                (new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen
            ),
            "last_seen": case((newer, new.last_seen), else_=old.last_seen),
            "last_agent_id": case((newer, new.last_agent_id), else_=old.last_agent_id),
        },
    )


def batch_values(came: Received, sent_at: Any, received_at: Any, headers: Any) -> tuple[Any, ...]:
    """schema.batches' columns after id (the times and headers as the caller binds them)."""
    batch = came.batch
    return (
        batch.agent_id,
        batch.batch_id,
        came.signed.key_id,
        sent_at,
        received_at,
        len(batch.readings),
        headers,
        came.body,
    )


def reading_values(
    agent_id: str, item: BatchReading, read_at: Any, received_at: Any, payload: Any
) -> tuple[Any, ...]:
    """schema.readings' columns, id and batch_pk None until known (the times and the
    payload, see `payload`, as the caller binds them)."""
    reading = item.reading
    return (
        None,
        agent_id,
        item.seq,
        None,
        reading.serial,
        item.printer,
        item.address,
        read_at,
        received_at,
        payload,
        reading.page_count,
        toner_alert(reading),
    )


def payload(item: BatchReading) -> str:
    """The readings.payload JSON text: wire.reading.PrinterReading.to_dict()."""
    return to_json(item.reading.to_dict()).decode("utf-8")


def toner_alert(reading: PrinterReading) -> str | None:
    """readings.toner_alert: `empty` for the noToner error bit, `low` for lowToner (R7 to R9:
    a cold start's evidence), else None."""
    errors = reading.status.errors
    return "empty" if "noToner" in errors else "low" if "lowToner" in errors else None


# schema.supplies' columns after reading_id.
supply_values = operator.attrgetter(
    "index",
    "kind",
    "colour",
    "percent",
    "level",
    "max_capacity",
    "grams_left",
    "grams_used",
    "quality",
    "receptacle",
)


def heartbeat_values(batch: Batch, received_at: Any, last_poll_at: Any) -> tuple[Any, ...]:
    """schema.heartbeats' columns after batch_pk (the times as the caller binds them)."""
    beat, printers = batch.heartbeat, batch.heartbeat.printers
    return (
        batch.agent_id,
        received_at,
        beat.agent_version,
        beat.uptime_seconds,
        printers.answering,
        printers.asleep,
        printers.unreachable,
        printers.refused,
        printers.not_a_printer,
        printers.faulty,
        beat.spool_depth,
        beat.dropped_total,
        last_poll_at,
    )


def device_rows(
    agent_id: str, items: Sequence[BatchReading], read_at: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """R3: one row per serial number (schema.devices' columns), in serial order.

    First and last seen, and the model and agent of the latest read. `read_at[i]` is
    items[i].read_at as it is bound: a datetime, or SQLite's text of one, which sorts alike.
    """
    seen: dict[str, list[Any]] = {}
    for item, at in zip(items, read_at):
        serial = item.reading.serial
        assert serial is not None  # collector.rules rejected readings without one
        row = seen.get(serial)
        if row is None:
            seen[serial] = [serial, item.reading.model, at, at, agent_id]
            continue
        row[2] = min(row[2], at)
        if at >= row[3]:
            row[3] = at
            row[1] = item.reading.model or row[1]
    return [tuple(seen[serial]) for serial in sorted(seen)]  # one lock order for every writer


def quarantine_values(
    agent_id: str, rejected: Mapping[int, Rejection], received_at: Any
) -> list[tuple[Any, ...]]:
    """schema.quarantine's rows (id and batch_pk None until known), by seq."""
    return [
        (None, agent_id, seq, None, received_at, r.kind, r.field, r.reason)
        + (r.serial, r.printer, r.address)
        for seq, r in sorted(rejected.items())
    ]


def check_resend(batch_id: str, first_body: bytes, seqs: Sequence[int]) -> None:
    """A batch id sent again may bring only readings its first body held (the agent sends a
    batch whose answer it missed again, less what it dropped meanwhile); else BatchConflict:
    a stored reading always traces to the signed body that brought it."""
    held = {entry["seq"] for entry in json.loads(first_body)["readings"]}
    other = sorted(set(seqs) - held)
    if other:
        raise BatchConflict(
            f"batch {batch_id} was received before without the readings of seq"
            f" {', '.join(map(str, other[:5]))}{'...' if len(other) > 5 else ''}:"
            " send them in a batch of a new id"
        )
