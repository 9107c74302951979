"""SQLite's writer thread and the rows it binds itself (collector.store.writer, .sqlite_ingest).

The writer skips SQLAlchemy's parameter processing, so what it stores is compared, value by
value and type by type as SQLite holds them, with what SQLAlchemy stores for the same batch.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.dialects import sqlite

from collector.errors import StoreUnavailable
from collector.records import UNATTRIBUTABLE, Rejection
from collector.service import Collector, Settings
from collector.store.batch_rows import Received
from collector.store.database import Database, sqlite_pragmas
from collector.store.ingest import EngineBatch, PreparedBatch, prepare_batch
from collector.store.schema import UTCDateTime, metadata, sqlite_time
from collector.store.writer import SQLiteWriter
from tests.collector.kit import make_batch
from wire.batch import Batch, encode_batch
from wire.enroll import EnrollRequest, encode_message
from wire.signing import SignatureHeaders, encode_public_key, sign

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_sqlite_time_is_the_text_sqlalchemy_stores() -> None:
    dialect = sqlite.dialect()
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    for value in (
        NOW,
        NOW.replace(microsecond=1),
        NOW.replace(microsecond=999_999),
        NOW.astimezone(timezone(timedelta(hours=-5, minutes=-30))),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    ):
        assert sqlite_time(value) == bind(value), value
    with pytest.raises(ValueError, match="naive"):
        sqlite_time(datetime(2026, 1, 1))


def _as_stored(path: Path) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    """Every row of every table as SQLite holds it, each value with its type; the readings'
    surrogate ids replaced by (agent, seq), which is what identifies a reading."""
    conn = sqlite3.connect(path)
    try:
        reading_ids = dict(conn.execute("SELECT id, agent_id || '/' || seq FROM readings"))
        out = {}
        for name, table in metadata.tables.items():
            order = ", ".join(column.name for column in table.primary_key.columns)
            rows = []
            for row in conn.execute(f"SELECT * FROM {name} ORDER BY {order}"):
                values = dict(zip([column.name for column in table.columns], row))
                if name == "readings":
                    values["id"] = reading_ids[values["id"]]
                if name == "supplies":
                    values["reading_id"] = reading_ids[values["reading_id"]]
                rows.append(tuple((type(v).__name__, v) for v in values.values()))
            out[name] = sorted(rows, key=repr)
        return out
    finally:
        conn.close()


async def test_writer_stores_the_rows_the_engine_would(
    sqlite_template: Path, tmp_path: Path
) -> None:
    # One database with an agent, copied: the same batches go into one through the writer,
    # into the other through SQLAlchemy (the engine's way, PostgreSQL's).
    first = tmp_path / "writer.db"
    shutil.copyfile(sqlite_template, first)
    db = Database.open(f"sqlite+aiosqlite:///{first}")
    try:
        collector = Collector(db, Settings(), clock=lambda: NOW)
        token, _ = await collector.create_token("acme", "milano")
        key = Ed25519PrivateKey.generate()
        request = EnrollRequest(token, encode_public_key(key.public_key()), "0.1.0", "edge-1")
        agent_id = (await collector.enroll(encode_message(request))).agent_id
    finally:
        await db.close()
    second = tmp_path / "engine.db"
    shutil.copyfile(first, second)

    # A new batch, one that overlaps it (duplicates; devices seen earlier and later), a resent
    # one, and one whose readings are all rejected but one.
    batches: list[tuple[Batch, dict[int, Rejection]]] = [
        (make_batch(agent_id, range(1, 40), NOW, serials=7), {}),
        (make_batch(agent_id, range(20, 70), NOW + timedelta(minutes=30), serials=9), {}),
    ]
    batches.append(batches[1])
    late = make_batch(agent_id, range(70, 74), NOW - timedelta(days=1))
    why = Rejection(UNATTRIBUTABLE, "read_at is in the future", None, "CL45-0001", "p", "a:161")
    batches.append((late, {70: why, 71: why, 73: why}))
    for n, (batch, rejected) in enumerate(batches):
        body = encode_batch(batch)
        signed = SignatureHeaders.from_headers(sign(key, body, NOW, nonce=f"{n:032x}"))
        storable = [item for item in batch.readings if item.seq not in rejected]
        results = []
        for path, engine in ((first, False), (second, True)):
            prepared = prepare_batch("sqlite", batch, body, signed, storable, rejected, NOW)
            if engine:
                came = Received(batch, body, signed, storable, NOW, rejected, tuple(prepared.seqs))
                rows = EngineBatch.of(came)
                prepared = PreparedBatch(prepared.batch_id, prepared.seqs, rejected, rows)
            db = Database.open(f"sqlite+aiosqlite:///{path}")
            try:
                results.append(await prepared.store(db))
            finally:
                await db.close()
        assert results[0] == results[1]
    assert [r.status for r in results[0].results] == [
        "rejected",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert _as_stored(first) == _as_stored(second)


async def test_failed_write_leaves_nothing_and_the_writer_carries_on(tmp_path: Path) -> None:
    writer = SQLiteWriter(str(tmp_path / "w.db"), sqlite_pragmas)
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE t (n INTEGER UNIQUE)"))

        def insert_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (1)")

        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(insert_then_fail)
        await writer.run(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))

        def rows(conn: sqlite3.Connection) -> list[tuple[int]]:
            return conn.execute("SELECT n FROM t").fetchall()

        assert await writer.run(rows) == [(2,)]
    finally:
        await writer.close()


async def test_a_file_that_cannot_be_opened_is_store_unavailable(tmp_path: Path) -> None:
    writer = SQLiteWriter(str(tmp_path / "missing" / "w.db"), sqlite_pragmas)
    try:
        with pytest.raises(StoreUnavailable, match="unable to open"):
            await writer.run(lambda conn: conn.execute("SELECT 1"))
    finally:
        await writer.close()


def test_an_in_memory_database_is_refused() -> None:
    # The writer's connection, the reader's and the engine's would each have their own.
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        with pytest.raises(ValueError, match="in-memory"):
            Database.open(url)
