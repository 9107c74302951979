"""Store one signed batch in one transaction: all of it, or (on any error) nothing.

Is: the write of an authenticated, validated batch: its nonce, the batch as received (for
audit), each new reading with its supplies, the devices they come from (R3) and the agent's
heartbeat. A reading already stored (same agent and seq) is a duplicate: the database's
unique constraint decides (ON CONFLICT DO NOTHING), so two collector processes receiving one
batch at once store it once. Rows are written in one order (devices by serial) so concurrent
batches do not deadlock.
How: `prepare_batch` makes the rows before the transaction, so that it holds its locks for the
writes alone, and so that the decoded records (thousands of objects a batch) can go before the
batch waits for its turn; then `PreparedBatch.store` writes them. The same statements
(collector.store.batch_rows) run through the engine on PostgreSQL (`EngineBatch`, supplies by
COPY) and in the writer thread on SQLite (collector.store.sqlite_ingest).
Is not: validation or authentication (done before, see collector.service).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.records import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    IngestResult,
    ReadingResult,
    Rejection,
)
from collector.store import batch_rows
from collector.store.database import Database, EncodedJSON
from collector.store.registry import claim_nonce
from collector.store.schema import (
    agents,
    asr_devices,
    batches,
    devices,
    heartbeats,
    quarantine,
    readings,
    sites,
    supplies,
)
from collector.store.sqlite_ingest import SQLiteBatch
from wire.batch import Batch, BatchReading
from wire.signing import SignatureHeaders


@dataclass
class PreparedBatch:
    """A batch made into rows for one database, and what its answer needs; no decoded record."""

    batch_id: str
    seqs: Sequence[int]  # every reading's, in the batch's order
    rejected: dict[int, Rejection]
    rows: SQLiteBatch | EngineBatch

    async def store(self, db: Database) -> IngestResult:
        """Write the rows in one transaction (once); each reading's fate, in the batch's order."""
        if isinstance(self.rows, SQLiteBatch):
            new, stored = await db.write(self.rows.write)
        else:
            new, stored = await self.rows.write(db)
        results = []
        for seq in self.seqs:
            if seq in self.rejected:
                why = self.rejected[seq]
                results.append(ReadingResult(seq, REJECTED, why.error, why.kind))
            else:
                results.append(ReadingResult(seq, ACCEPTED if seq in stored else DUPLICATE))
        return IngestResult(self.batch_id, tuple(results), new)


def prepare_batch(
    dialect: str,
    batch: Batch,
    body: bytes,
    signed: SignatureHeaders,
    storable: Sequence[BatchReading],
    rejected: dict[int, Rejection],
    now: datetime,
    seqs: Sequence[int] = (),
) -> PreparedBatch:
    """The rows that storing what is new of `batch` writes, for the `dialect`'s database;
    `seqs` are all its readings' (the batch's own, if not given), the `rejected` among them
    go to the quarantine."""
    seqs = tuple(seqs) or tuple(item.seq for item in batch.readings)
    came = batch_rows.Received(batch, body, signed, storable, now, rejected, seqs)
    rows = SQLiteBatch.of(came) if dialect == "sqlite" else EngineBatch.of(came)
    return PreparedBatch(batch.batch_id, seqs, rejected, rows)


async def store_batch(
    db: Database,
    batch: Batch,
    body: bytes,
    signed: SignatureHeaders,
    storable: Sequence[BatchReading],
    rejected: dict[int, Rejection],
    now: datetime,
) -> IngestResult:
    """Store what is new of `batch`; each reading's fate, in the batch's order."""
    prepared = prepare_batch(db.dialect, batch, body, signed, storable, rejected, now)
    return await prepared.store(db)


@dataclass
class EngineBatch:
    """A batch's rows as the engine binds them, and their write in a transaction of the engine.

    PostgreSQL's way (it works on SQLite too, which a test uses to check the writer's rows).
    """

    key_id: str
    nonce: str
    signed_at: datetime
    batch: dict[str, Any]  # schema.batches' columns after id
    readings: list[dict[str, Any]]  # without id; batch_pk None until known
    supplies: dict[int, list[tuple[Any, ...]]]  # seq -> schema.supplies' columns after reading_id
    devices: list[dict[str, Any]]
    heartbeat: tuple[Any, ...]  # schema.heartbeats' columns after batch_pk
    agent_version: str
    quarantine: list[dict[str, Any]]  # without batch_pk
    all_seqs: tuple[int, ...]

    @classmethod
    def of(cls, came: batch_rows.Received) -> EngineBatch:
        """The rows of the batch to write."""
        batch, storable, now = came.batch, came.storable, came.now
        batch_columns = [column.name for column in batches.columns][1:]
        reading_columns = [column.name for column in readings.columns][1:]  # the id is the table's
        device_columns = [column.name for column in devices.columns]
        quarantine_columns = [column.name for column in quarantine.columns][1:]
        read_at = [item.read_at for item in storable]
        return cls(
            key_id=came.signed.key_id,
            nonce=came.signed.nonce,
            signed_at=came.signed_at,
            batch=dict(
                zip(
                    batch_columns,
                    batch_rows.batch_values(came, batch.sent_at, now, came.signed.to_headers()),
                )
            ),
            readings=[
                dict(zip(reading_columns, cls._reading_values(batch.agent_id, item, now)[1:]))
                for item in storable
            ],
            supplies={
                item.seq: [batch_rows.supply_values(s) for s in item.reading.supplies]
                for item in storable
            },
            devices=[
                dict(zip(device_columns, row))
                for row in batch_rows.device_rows(batch.agent_id, storable, read_at)
            ],
            heartbeat=batch_rows.heartbeat_values(batch, now, batch.heartbeat.last_poll_at),
            agent_version=batch.heartbeat.agent_version,
            quarantine=[
                dict(zip(quarantine_columns, row[1:]))
                for row in batch_rows.quarantine_values(batch.agent_id, came.rejected, now)
            ],
            all_seqs=came.all_seqs,
        )

    @staticmethod
    def _reading_values(agent_id: str, item: BatchReading, now: datetime) -> tuple[Any, ...]:
        payload = EncodedJSON(batch_rows.payload(item))  # the JSON column stores it as it is
        return batch_rows.reading_values(agent_id, item, item.read_at, now, payload)

    async def write(self, db: Database) -> tuple[bool, batch_rows.Stored]:
        """The transaction: whether the batch is new, and the readings stored."""
        agent_id = self.batch["agent_id"]
        async with db.transaction() as conn:
            await claim_nonce(db, conn, self.key_id, self.nonce, self.signed_at)
            batch_pk, is_new = await self._batch_row(db, conn)
            if self.quarantine:
                await conn.execute(
                    batch_rows.new_quarantined(db.insert(quarantine)),
                    [{**row, "batch_pk": batch_pk} for row in self.quarantine],
                )
            stored = await self._store_readings(db, conn, batch_pk)
            if stored:
                await db.append(
                    conn,
                    supplies,
                    [(stored[seq], *row) for seq in stored for row in self.supplies[seq]],
                )
                await conn.execute(batch_rows.devices_upsert(db.insert(devices)), self.devices)
            if is_new:
                columns = [column.name for column in heartbeats.columns]
                values = dict(zip(columns, (batch_pk, *self.heartbeat)))
                await conn.execute(heartbeats.insert().values(values))
            await conn.execute(
                update(agents)
                .where(agents.c.id == agent_id)
                .values(last_seen_at=self.batch["received_at"], agent_version=self.agent_version)
            )
        return is_new, stored

    async def _batch_row(self, db: Database, conn: AsyncConnection) -> tuple[int, bool]:
        """The batch's row id, and whether this send added it; a batch sent before keeps its
        row (its readings are duplicates, or rejected again) if it was the same batch."""
        added = await conn.execute(
            batch_rows.new_batch(db.insert(batches)).values(self.batch).returning(batches.c.id)
        )
        batch_pk = added.scalar_one_or_none()
        if batch_pk is not None:
            return batch_pk, True
        batch_pk, first_body = (
            await conn.execute(
                select(batches.c.id, batches.c.body).where(
                    batches.c.agent_id == self.batch["agent_id"],
                    batches.c.batch_id == self.batch["batch_id"],
                )
            )
        ).one()
        batch_rows.check_resend(self.batch["batch_id"], first_body, self.all_seqs)
        return batch_pk, False

    async def _store_readings(
        self, db: Database, conn: AsyncConnection, batch_pk: int
    ) -> batch_rows.Stored:
        """Insert the readings not stored before (the unique constraint decides); their ids."""
        if not self.readings:
            return {}
        for row in self.readings:
            row["batch_pk"] = batch_pk
        rows = await conn.execute(
            batch_rows.new_readings(db.insert(readings)).returning(readings.c.seq, readings.c.id),
            self.readings,
        )
        return {row[0]: row[1] for row in rows}


async def device_owners(
    db: Database, agent_id: str, serials: Sequence[str]
) -> tuple[str | None, dict[str, str]]:
    """The agent's customer, and the customer each of `serials` belongs to, if any: the one
    that registered it (R4), else the one whose agent reported it (docs/architecture.md:
    Identity). A read of every batch: on the read path, never in the writer's queue."""
    wanted = sorted(set(serials))

    def read(conn: Connection) -> tuple[str | None, dict[str, str]]:
        customer = conn.execute(
            select(sites.c.customer_id)
            .join(agents, agents.c.site_id == sites.c.id)
            .where(agents.c.id == agent_id)
        ).scalar_one_or_none()
        owners: dict[str, str] = {}
        for chunk in (wanted[i : i + 500] for i in range(0, len(wanted), 500)):
            seen = conn.execute(
                select(devices.c.serial, sites.c.customer_id)
                .join(agents, agents.c.id == devices.c.last_agent_id)
                .join(sites, sites.c.id == agents.c.site_id)
                .where(devices.c.serial.in_(chunk))
            )
            owners.update({serial: owner for serial, owner in seen})
            registered = conn.execute(
                select(asr_devices.c.serial, asr_devices.c.customer_id).where(
                    asr_devices.c.serial.in_(chunk)
                )
            )
            owners.update({serial: owner for serial, owner in registered})  # R4 comes first
        return customer, owners

    return await db.read(read)
