"""A batch's write on SQLite: its rows as sqlite3 binds them, and the transaction of them.

Is: the same statements, rows and constraints as on PostgreSQL (collector.store.batch_rows),
run by the writer thread (collector.store.writer) as about a dozen statements: the rows in
multi-row INSERTs that sqlite3 binds itself, times as the text SQLAlchemy stores
(schema.sqlite_time). Why: SQLAlchemy's per-row parameter processing cost more than SQLite's
own work; and after each statement the writer takes the GIL back from the event loop's thread,
which is busy with other batches, so fewer statements make a faster writer.
Is not: what decides a reading is a duplicate: the unique constraint does (ON CONFLICT).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from collector.errors import ReplayedNonce
from collector.store.batch_rows import (
    Insert,
    Received,
    Stored,
    batch_values,
    check_resend,
    device_rows,
    devices_upsert,
    heartbeat_values,
    new_batch,
    new_quarantined,
    new_readings,
    payload,
    quarantine_values,
    reading_values,
    supply_values,
)
from collector.store.schema import (
    batches,
    devices,
    heartbeats,
    nonces,
    quarantine,
    readings,
    sqlite_time,
    supplies,
)

# Rows per INSERT: few statements per batch (a batch's readings in one, its supplies in a few),
# and only a table's last one changes size, so the others stay prepared in the connection's
# statement cache; 1,000 rows of 11 columns are well under the 32,766 parameters SQLite allows.
ROWS_PER_INSERT = 1000


def _conflict(statement: Insert) -> str:
    """The ON CONFLICT clause of a Core INSERT, as SQLite text (it binds no parameters)."""
    sql = str(statement.compile(dialect=sqlite.dialect()))
    return sql[sql.index(" ON CONFLICT") :]


_NEW_NONCE = _conflict(sqlite.insert(nonces).on_conflict_do_nothing())
_NEW_BATCH = _conflict(new_batch(sqlite.insert(batches)))
_NEW_READINGS = _conflict(new_readings(sqlite.insert(readings)))
_DEVICES_UPSERT = _conflict(devices_upsert(sqlite.insert(devices)))
_NEW_QUARANTINE = _conflict(new_quarantined(sqlite.insert(quarantine)))
_BATCH_PK = "SELECT id, body FROM batches WHERE agent_id = ? AND batch_id = ?"
_NEXT_READING_ID = "SELECT coalesce(max(id), 0) + 1 FROM readings"
_STORED_FROM = "SELECT seq, id FROM readings WHERE id >= ?"
_TOUCH_AGENT = "UPDATE agents SET last_seen_at = ?, agent_version = ? WHERE id = ?"


@lru_cache(maxsize=64)
def _insert(table: Table, rows: int = 1, tail: str = "", skip: int = 0) -> str:
    """INSERT of `rows` rows into the table's columns (but the first `skip`), then `tail`."""
    columns = [column.name for column in table.columns][skip:]
    row = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}{tail}"


def _insert_many(conn: sqlite3.Connection, table: Table, values: list[Any], tail: str = "") -> int:
    """Insert rows given as one flat list of values, ROWS_PER_INSERT at a time; rows inserted."""
    width = len(table.columns)
    rows, done, inserted = len(values) // width, 0, 0
    while done < rows:
        size = min(rows - done, ROWS_PER_INSERT)
        chunk = values[done * width : (done + size) * width]
        inserted += conn.execute(_insert(table, size, tail), chunk).rowcount
        done += size
    return inserted


@dataclass
class SQLiteBatch:
    """A batch's rows as sqlite3 binds them (UTC text times, JSON text), and their write.

    Row lists are flat (every column of every row, in table order); readings' id and batch_pk,
    and supplies' reading_id, are None until the transaction knows them.
    """

    nonce: tuple[str, str, str]
    batch: tuple[Any, ...]  # schema.batches' columns after id
    readings: list[Any]
    seqs: list[int]
    supplies: list[Any]
    supply_counts: list[int]  # per reading
    devices: list[Any]
    heartbeat: tuple[Any, ...]  # schema.heartbeats' columns after batch_pk
    agent: tuple[str, str, str]  # last_seen_at, agent_version, id
    quarantine: list[tuple[Any, ...]]  # schema.quarantine's rows, batch_pk None
    all_seqs: tuple[int, ...]  # every reading's of the batch, stored or not

    @classmethod
    def of(cls, came: Received) -> SQLiteBatch:
        """The rows of the batch to write."""
        batch, storable = came.batch, came.storable
        agent_id, received = batch.agent_id, sqlite_time(came.now)
        read_at = [sqlite_time(item.read_at) for item in storable]
        reading_list: list[Any] = []
        supply_list: list[Any] = []
        for item, at in zip(storable, read_at):
            reading_list += reading_values(agent_id, item, at, received, payload(item))
            for supply in item.reading.supplies:
                supply_list.append(None)
                supply_list += supply_values(supply)
        last_poll = batch.heartbeat.last_poll_at
        headers = to_json(came.signed.to_headers()).decode("utf-8")
        return cls(
            nonce=(came.signed.key_id, came.signed.nonce, sqlite_time(came.signed_at)),
            batch=batch_values(came, sqlite_time(batch.sent_at), received, headers),
            readings=reading_list,
            seqs=[item.seq for item in storable],
            supplies=supply_list,
            supply_counts=[len(item.reading.supplies) for item in storable],
            devices=[value for row in device_rows(agent_id, storable, read_at) for value in row],
            heartbeat=heartbeat_values(
                batch, received, sqlite_time(last_poll) if last_poll else None
            ),
            agent=(received, batch.heartbeat.agent_version, agent_id),
            quarantine=quarantine_values(agent_id, came.rejected, received),
            all_seqs=came.all_seqs,
        )

    def write(self, conn: sqlite3.Connection) -> tuple[bool, Stored]:
        """The transaction's statements: whether the batch is new, and the readings stored."""
        if conn.execute(_insert(nonces, tail=_NEW_NONCE), self.nonce).rowcount == 0:
            raise ReplayedNonce(f"nonce {self.nonce[1]} was used before with key {self.nonce[0]}")
        added = conn.execute(_insert(batches, tail=_NEW_BATCH, skip=1), self.batch)
        is_new = added.rowcount == 1
        if is_new and added.lastrowid is not None:
            batch_pk: int = added.lastrowid
        else:  # sent before: its readings are duplicates, or rejected again
            batch_pk, first_body = conn.execute(_BATCH_PK, self.batch[:2]).fetchone()
            check_resend(self.batch[1], first_body, self.all_seqs)
        if self.quarantine:
            rows = [(*row[:3], batch_pk, *row[4:]) for row in self.quarantine]
            _insert_many(conn, quarantine, [v for row in rows for v in row], _NEW_QUARANTINE)
        stored = self._write_readings(conn, batch_pk) if self.seqs else {}
        if stored:
            _insert_many(conn, supplies, self._supplies_of(stored))
            _insert_many(conn, devices, self.devices, _DEVICES_UPSERT)
        if is_new:
            conn.execute(_insert(heartbeats), (batch_pk, *self.heartbeat))
        conn.execute(_TOUCH_AGENT, self.agent)
        return is_new, stored

    def _write_readings(self, conn: sqlite3.Connection, batch_pk: int) -> Stored:
        # The ids are given rather than returned (RETURNING hands rows back one step, so one
        # GIL hand-off, each): the next ones of the rowid, as SQLite would pick them. The writer
        # holds the write lock, so nobody else takes them meanwhile.
        first = conn.execute(_NEXT_READING_ID).fetchone()[0]
        count, width = len(self.seqs), len(readings.columns)
        self.readings[0::width] = range(first, first + count)  # id
        self.readings[3::width] = [batch_pk] * count  # batch_pk
        inserted = _insert_many(conn, readings, self.readings, _NEW_READINGS)
        if inserted == count:
            return dict(zip(self.seqs, range(first, first + count)))
        if inserted == 0:
            return {}
        # Some were stored before (an overlapping batch): the ids from `first` on are ours.
        return dict(conn.execute(_STORED_FROM, (first,)).fetchall())

    def _supplies_of(self, stored: Stored) -> list[Any]:
        width = len(supplies.columns)
        owners = [
            stored.get(seq)
            for seq, count in zip(self.seqs, self.supply_counts)
            for _ in range(count)
        ]
        self.supplies[0::width] = owners
        if len(stored) == len(self.seqs):
            return self.supplies
        return [  # the supplies of readings stored before are not written again
            value
            for i, owner in enumerate(owners)
            if owner is not None
            for value in self.supplies[i * width : (i + 1) * width]
        ]
