"""The database handle: an async engine on SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg).

One code path for both: the dialect shows only in how the engine is opened, in which `insert`
construct (both have ON CONFLICT) is used, and in how `append` bulk-inserts (COPY or
executemany). Driver errors that mean "the database is not there or busy" become
StoreUnavailable here, the one place they are caught.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from collector.errors import StoreUnavailable
from collector.store.schema import metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling does not BEGIN before a SELECT; take it over so
    # every transaction is one (SQLAlchemy's documented recipe), and wait on a busy file.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


class EncodedJSON(str):
    """JSON text, encoded already: a JSON column stores it as it is."""

    @classmethod
    def of(cls, value: Any) -> EncodedJSON:
        """`value` encoded as JSON text."""
        return cls(to_json(value).decode("utf-8"))


def _json(value: Any) -> str:
    # The JSON columns' encoder; pydantic-core's is several times faster than json.dumps.
    return value if isinstance(value, EncodedJSON) else to_json(value).decode("utf-8")


class Database:
    """An open database: the engine, and what differs by dialect."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time: queue this process's writers here rather than in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def open(cls, url: str, pool_size: int = 5) -> Database:
        """A handle on the database at `url` (connections are made when first used)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, pool_size=pool_size, json_serializer=_json)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        elif parsed.get_backend_name() == "postgresql":
            engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, json_serializer=_json
            )
        else:
            raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
        return cls(engine)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """INSERT for this dialect, which offers ON CONFLICT DO NOTHING / DO UPDATE."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    async def append(
        self, conn: AsyncConnection, table: Table, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert rows (tuples in the table's column order) the driver's fastest way.

        For append-only rows of plain values (no conflicts, no type processing): COPY on
        PostgreSQL, executemany on SQLite. A batch's supplies go this way: they are most of
        its rows, and SQLAlchemy's per-row work was a third of the time of an ingest.
        """
        if not rows:
            return
        columns = [column.name for column in table.columns]
        if self.dialect == "postgresql":
            driver: Any = (await conn.get_raw_connection()).driver_connection
            await driver.copy_records_to_table(table.name, records=rows, columns=columns)
            return
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        await conn.exec_driver_sql(sql, list(rows))

    @asynccontextmanager
    async def transaction(self, write: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed on exit, rolled back on any error."""
        queue = self._writer if write and self._writer is not None else contextlib.nullcontext()
        try:
            async with queue, self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError, OSError) as err:
            raise StoreUnavailable(f"database unavailable: {err}") from err

    async def ping(self) -> None:
        """StoreUnavailable unless the database answers."""
        async with self.transaction(write=False) as conn:
            await conn.execute(text("SELECT 1"))

    async def row_counts(self) -> dict[str, int]:
        """Rows in every table, by table name."""
        async with self.transaction(write=False) as conn:
            return {
                name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for name, table in metadata.tables.items()
            }
