"""The database handle: an async engine on SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg).

One code path for both: the dialect shows only in how the engine is opened, in which `insert`
construct (both have ON CONFLICT) is used, in how `append` bulk-inserts (COPY or executemany),
and in where the database work of an ingest request runs. On SQLite that is two threads, each
reached in one hand-off rather than a trip through the event loop for each of aiosqlite's
calls: a reader with a plain engine (`read`: the signing key) and the writer (`write`: the
batch, see collector.store.writer), which every other write of the process queues behind. On
PostgreSQL `read` is a `run_sync` on the engine and ingest writes in a `transaction`. Driver
errors that mean "the database is not there or busy" become StoreUnavailable here and in the
writer, the places they are caught: on PostgreSQL that includes a connection cut in the middle
of a statement by a server shutting down or restarting, which asyncpg reports by SQLSTATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import from_json, to_json
from sqlalchemy import Connection, Table, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from collector.errors import StoreUnavailable
from collector.store.schema import metadata
from collector.store.writer import SQLiteWriter

SQLITE_BUSY_TIMEOUT_MS = 10_000
_T = TypeVar("_T")
# SQLSTATE classes that say the server is away, going or full, not that the work is wrong:
# 08 connection exception, 53 insufficient resources (too many connections), 57 operator
# intervention (admin or crash shutdown, "the database system is starting up").
_UNAVAILABLE_SQLSTATES = ("08", "53", "57")
# What a database call may raise: SQLAlchemy's wrapped driver errors, the OS's, and asyncpg's
# own where its connection is used directly (COPY in `append`).
_DRIVER_ERRORS = (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _unavailable(err: BaseException) -> bool:
    """Whether a database error means "not there or busy now" (retry later), not a bug."""
    if isinstance(err, (OperationalError, InterfaceError, OSError, asyncpg.InterfaceError)):
        return True
    driver_error: BaseException | None = err
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:  # the connection was lost under the statement
            return True
        driver_error = err.orig
    sqlstate = getattr(driver_error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATES


def sqlite_pragmas(dbapi_connection: Any) -> None:
    """Set up a SQLite connection as every one of the collector's is (engine, reader, writer)."""
    # The driver's own transaction handling does not BEGIN before a SELECT; take it over so
    # every transaction is one (SQLAlchemy's documented recipe), and wait on a busy file.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_connection)


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


class EncodedJSON(str):
    """JSON text, encoded already: a JSON column stores it as it is."""


def _json(value: Any) -> str:
    # The JSON columns' encoder; pydantic-core's is several times faster than json.dumps.
    return value if isinstance(value, EncodedJSON) else to_json(value).decode("utf-8")


class _SQLiteReader:
    """A plain (sync) engine on the same file, used from one thread of its own."""

    def __init__(self, url: URL) -> None:
        self._engine = create_engine(
            url.set(drivername="sqlite"), pool_size=1, json_deserializer=from_json
        )
        event.listen(self._engine, "connect", _on_connect)
        event.listen(self._engine, "begin", _sqlite_begin)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")

    async def run(self, read: Callable[[Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, read)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=False)

    def _transaction(self, read: Callable[[Connection], _T]) -> _T:
        with self._engine.begin() as conn:
            return read(conn)


class Database:
    """An open database: the engine, and what differs by dialect."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time: this process's writers queue in the writer thread
        # (collector.store.writer) rather than in SQLite's busy handler, which sleeps in steps
        # of up to 100 ms.
        self._sqlite_writer = None
        self._sqlite_reader = None
        if self.dialect == "sqlite":
            self._sqlite_writer = SQLiteWriter(engine.url.database or "", sqlite_pragmas)
            self._sqlite_reader = _SQLiteReader(engine.url)

    @classmethod
    def open(cls, url: str, pool_size: int = 5) -> Database:
        """A handle on the database at `url` (connections are made when first used)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                # Each connection would have a database of its own (the writer's included).
                raise ValueError("SQLite needs a file: an in-memory database cannot be shared")
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                url, pool_size=pool_size, json_serializer=_json, json_deserializer=from_json
            )
            event.listen(engine.sync_engine, "connect", _on_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        elif parsed.get_backend_name() == "postgresql":
            engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                json_serializer=_json,
                json_deserializer=from_json,
            )
        else:
            raise ValueError(f"unsupported database {parsed.get_backend_name()!r}")
        return cls(engine)

    async def close(self) -> None:
        """Close every pooled connection, and the SQLite reader's and writer's."""
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
        if self._sqlite_reader is not None:
            await self._sqlite_reader.close()
        await self.engine.dispose()

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """INSERT for this dialect, which offers ON CONFLICT DO NOTHING / DO UPDATE."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    async def append(
        self, conn: AsyncConnection, table: Table, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert rows (tuples in the table's column order) the driver's fastest way.

        For append-only rows of plain values (no conflicts, no type processing): COPY on
        PostgreSQL, executemany on SQLite. A batch's supplies go this way on PostgreSQL: they
        are most of its rows, and SQLAlchemy's per-row work was a third of the time of an ingest.
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
        writer = self._sqlite_writer if write else None
        queue = writer.hold() if writer is not None else contextlib.nullcontext()
        try:
            async with queue, self.engine.begin() as conn:
                yield conn
        except _DRIVER_ERRORS as err:
            if not _unavailable(err):
                raise
            raise StoreUnavailable(f"database unavailable: {err}") from err

    async def read(self, read: Callable[[Connection], _T]) -> _T:
        """`read(connection)` in one transaction that writes nothing; its result.

        For the reads every request makes: one hand-off to SQLite's reader thread, or a
        `run_sync` on the engine's connection on PostgreSQL.
        """
        try:
            if self._sqlite_reader is not None:
                return await self._sqlite_reader.run(read)
            async with self.engine.begin() as conn:
                return await conn.run_sync(read)
        except _DRIVER_ERRORS as err:
            if not _unavailable(err):
                raise
            raise StoreUnavailable(f"database unavailable: {err}") from err

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """SQLite only: `work(connection)` in one transaction in the writer's thread.

        For ingest's batches: the whole transaction is one hand-off to the thread that runs
        this process's SQLite writes in turn (see collector.store.writer).
        """
        if self._sqlite_writer is None:
            raise RuntimeError(f"no writer thread on {self.dialect}: use transaction()")
        return await self._sqlite_writer.run(work)

    @asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[bool]:
        """Whether this process holds the job lock `key` for the block (others: False at once).

        Released when the block ends, and by the operating system or the server when the
        process dies: a PostgreSQL session advisory lock, held on a connection of its own, or
        on SQLite an flock on a file next to the database.
        """
        if self.dialect == "postgresql":
            async with self.engine.connect() as conn:
                held = (
                    await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                ).scalar_one()
                await conn.commit()
                try:
                    yield bool(held)
                finally:
                    if held:
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        await conn.commit()
            return
        # A lock file, not the database's own lock: the job reads and writes in several
        # transactions, and other writers (ingest) must go on meanwhile.
        fd = os.open(f"{self.engine.url.database}.lock-{key:x}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

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
