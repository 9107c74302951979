"""Store one signed batch in one transaction: all of it, or (on any error) nothing.

Is: the write of an authenticated, validated batch: its nonce, the batch as received (for
audit), each new reading with its supplies, the devices they come from (R3) and the agent's
heartbeat. A reading already stored (same agent and seq) is a duplicate: the database's
unique constraint decides (ON CONFLICT DO NOTHING), so two collector processes receiving one
batch at once store it once. Rows are written in one order (devices by serial) so concurrent
batches do not deadlock.
Is not: validation or authentication (done before, see collector.service).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.records import ACCEPTED, DUPLICATE, REJECTED, IngestResult, ReadingResult
from collector.store.database import Database, EncodedJSON
from collector.store.registry import claim_nonce
from collector.store.schema import agents, batches, devices, heartbeats, readings, supplies
from wire.batch import Batch, BatchReading
from wire.reading import Supply
from wire.signing import SignatureHeaders


async def store_batch(
    db: Database,
    batch: Batch,
    body: bytes,
    signed: SignatureHeaders,
    storable: Sequence[BatchReading],
    rejected: dict[int, str],
    now: datetime,
) -> IngestResult:
    """Store what is new of `batch`; each reading's fate, in the batch's order."""
    # Rows are made before the transaction, so it holds its locks (on SQLite: the one
    # writer's) for the writes alone, while other requests decode and prepare theirs.
    signed_at = datetime.fromtimestamp(signed.timestamp, timezone.utc)
    reading_rows = [_reading_row(batch.agent_id, item, now) for item in storable]
    supply_rows = {item.seq: [_supply_row(s) for s in item.reading.supplies] for item in storable}
    device_rows = _device_rows(batch.agent_id, storable)
    async with db.transaction() as conn:
        await claim_nonce(db, conn, signed.key_id, signed.nonce, signed_at)
        added = await conn.execute(
            db.insert(batches)
            .values(
                agent_id=batch.agent_id,
                batch_id=batch.batch_id,
                key_id=signed.key_id,
                sent_at=batch.sent_at,
                received_at=now,
                reading_count=len(batch.readings),
                headers=signed.to_headers(),
                body=body,
            )
            .on_conflict_do_nothing(index_elements=["agent_id", "batch_id"])
            .returning(batches.c.id)
        )
        batch_pk = added.scalar_one_or_none()
        new_batch = batch_pk is not None
        if batch_pk is None:  # sent before: its readings are duplicates, or rejected again
            batch_pk = (
                await conn.execute(
                    select(batches.c.id).where(
                        batches.c.agent_id == batch.agent_id, batches.c.batch_id == batch.batch_id
                    )
                )
            ).scalar_one()
        stored: dict[int, int] = {}
        if reading_rows:
            for row in reading_rows:
                row["batch_pk"] = batch_pk
            rows = await conn.execute(
                db.insert(readings)
                .on_conflict_do_nothing(index_elements=["agent_id", "seq"])
                .returning(readings.c.seq, readings.c.id),
                reading_rows,
            )
            stored = {row[0]: row[1] for row in rows}
        if stored:
            await db.append(
                conn,
                supplies,
                [(stored[seq], *row) for seq in stored for row in supply_rows[seq]],
            )
            await _upsert_devices(db, conn, device_rows)
        if new_batch:
            await conn.execute(heartbeats.insert().values(_heartbeat_row(batch, batch_pk, now)))
        await conn.execute(
            update(agents)
            .where(agents.c.id == batch.agent_id)
            .values(last_seen_at=now, agent_version=batch.heartbeat.agent_version)
        )
    results = []
    for item in batch.readings:
        if item.seq in rejected:
            results.append(ReadingResult(item.seq, REJECTED, rejected[item.seq]))
        else:
            results.append(ReadingResult(item.seq, ACCEPTED if item.seq in stored else DUPLICATE))
    return IngestResult(batch.batch_id, tuple(results), new_batch)


def _reading_row(agent_id: str, item: BatchReading, now: datetime) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "seq": item.seq,
        "serial": item.reading.serial,
        "printer": item.printer,
        "address": item.address,
        "read_at": item.read_at,
        "received_at": now,
        "payload": EncodedJSON.of(item.reading.to_dict()),
    }


def _supply_row(supply: Supply) -> tuple[Any, ...]:
    # The columns of schema.supplies after reading_id, in order (Database.append takes tuples).
    return (
        supply.index,
        supply.kind,
        supply.colour,
        supply.percent,
        supply.level,
        supply.max_capacity,
        supply.grams_left,
        supply.grams_used,
        supply.quality,
        supply.receptacle,
    )


def _heartbeat_row(batch: Batch, batch_pk: int, now: datetime) -> dict[str, Any]:
    beat = batch.heartbeat
    return {
        "batch_pk": batch_pk,
        "agent_id": batch.agent_id,
        "received_at": now,
        "agent_version": beat.agent_version,
        "uptime_seconds": beat.uptime_seconds,
        "answering": beat.printers.answering,
        "asleep": beat.printers.asleep,
        "unreachable": beat.printers.unreachable,
        "refused": beat.printers.refused,
        "not_a_printer": beat.printers.not_a_printer,
        "faulty": beat.printers.faulty,
        "spool_depth": beat.spool_depth,
        "dropped_total": beat.dropped_total,
        "last_poll_at": beat.last_poll_at,
    }


def _device_rows(agent_id: str, items: Sequence[BatchReading]) -> list[dict[str, Any]]:
    # R3: one row per serial number: first and last seen, model and agent of the latest read.
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        serial = item.reading.serial
        assert serial is not None  # collector.rules rejected readings without one
        row = seen.get(serial)
        if row is None:
            seen[serial] = {
                "serial": serial,
                "model": item.reading.model,
                "first_seen": item.read_at,
                "last_seen": item.read_at,
                "last_agent_id": agent_id,
            }
            continue
        row["first_seen"] = min(row["first_seen"], item.read_at)
        if item.read_at >= row["last_seen"]:
            row["last_seen"] = item.read_at
            row["model"] = item.reading.model or row["model"]
    return [seen[serial] for serial in sorted(seen)]  # one lock order for every writer


async def _upsert_devices(db: Database, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    insert = db.insert(devices)
    new, old = insert.excluded, devices.c
    newer = new.last_seen >= old.last_seen
    upsert = insert.on_conflict_do_update(
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
    await conn.execute(upsert, rows)
