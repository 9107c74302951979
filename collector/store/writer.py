"""SQLite's writer: one thread, with a connection of its own, through which a process writes.

Is: the one queue of this process's SQLite writes, first come first served. `run(work)` queues
`work(connection)`, which the writer's thread runs between BEGIN IMMEDIATE and COMMIT (ROLLBACK
on any error): ingest writes a whole batch that way, as one hand-off. Batches queued behind each
other run back to back, without waiting for the event loop in between, and the event loop never
waits for SQLite. Other writes (the engine's transactions: enrollment, keys, nonces, migrations)
take the queue with `hold()`: the thread waits, in its turn, while they write.
The connection is opened as the collector opens SQLite everywhere (WAL, synchronous=NORMAL,
foreign keys, busy timeout), on the same file and schema as the engine's.
Is not: a lock between processes: other processes wait on SQLite's file lock (BEGIN IMMEDIATE
takes it before the first statement). Readers do not queue here. Cancellable: a transaction
that was queued runs, even if its caller stopped waiting (an agent that gave up sends the batch
again, and its readings come back as duplicates).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from collector.errors import StoreUnavailable

_T = TypeVar("_T")

# Prepared statements kept: ingest's few single-row ones, and its multi-row INSERTs of the sizes
# that recur (a prepared INSERT takes about 1 KB a row, so not many more).
_CACHED_STATEMENTS = 24


class SQLiteWriter:
    """A sqlite3 connection that lives in, and is only used from, one dedicated thread."""

    def __init__(self, path: str, pragmas: Callable[[sqlite3.Connection], None]) -> None:
        self._path = path
        self._pragmas = pragmas
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._conn: sqlite3.Connection | None = None  # touched in the writer's thread only

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(connection)` in one transaction, in the writer's thread, in turn; its result."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, self._transaction, work)
        except (sqlite3.OperationalError, OSError) as err:
            raise StoreUnavailable(f"database unavailable: {err}") from err

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Wait for the writer's turn, and keep its thread waiting until the block is left."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        release = threading.Event()

        def wait() -> None:
            loop.call_soon_threadsafe(_resolve, turn)
            release.wait()

        held = loop.run_in_executor(self._thread, wait)
        try:
            await turn
            yield
        finally:
            release.set()
            await held

    async def close(self) -> None:
        """Close the connection (in its thread) and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.rollback()  # a no-op when SQLite has rolled back already
            except sqlite3.Error:
                self._close()  # unusable: the next transaction opens a new connection
            raise
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, cached_statements=_CACHED_STATEMENTS
            )
            try:
                self._pragmas(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _resolve(turn: asyncio.Future[None]) -> None:
    if not turn.done():  # the waiter may have been cancelled meanwhile
        turn.set_result(None)
