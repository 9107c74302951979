"""The agent's spool file: its SQLite schema, and opening it for writing or for a look (R2).

Is: the tables (readings with their state, meta with the counts and the bound agent), the
schema's version, opening with write-ahead logging and synchronous=FULL (a commit is on disk
when it returns), opening read-only, telling a full disk from other errors, and statements
bounded in their parameters.
Is not: the spool's promises and its operations (agent.spool).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from agent.spool_records import SpoolError, SpoolFull

READY = "ready"
IN_FLIGHT = "in-flight"
SCHEMA = 1
BUSY_TIMEOUT_MS = 10_000

SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('{READY}', '{IN_FLIGHT}')),
    batch_id TEXT,
    read_at TEXT NOT NULL,
    printer TEXT NOT NULL,
    address TEXT NOT NULL,
    reading BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_state_seq ON readings (state, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '{SCHEMA}');
INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped_total', '0');
INSERT OR IGNORE INTO meta (key, value) VALUES ('rejected_total', '0');
"""


def connect(path: Path) -> sqlite3.Connection:
    """The spool file opened (or made) for writing: WAL, synchronous=FULL, the schema made."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise SpoolError(f"{path}: cannot use write-ahead logging (journal mode {mode})")
        # FULL: a commit is on disk when it returns, power cuts included (R2).
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA_SQL)
    except sqlite3.DatabaseError as err:
        if disk_full(err):
            raise SpoolFull(f"{path}: no room on its disk to open it: {err}") from err
        raise SpoolError(f"{path}: not a usable spool: {err}") from err
    check_schema(conn, path)
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """An existing spool file opened to look at it, changing nothing."""
    if not path.exists():
        raise SpoolError(f"{path}: no spool yet")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.DatabaseError as err:
        raise SpoolError(f"{path}: cannot open: {err}") from err
    check_schema(conn, path)
    return conn


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """SpoolError unless the file is a spool of the schema this agent reads."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as err:
        raise SpoolError(f"{path}: not a spool: {err}") from err
    if row is None or int(row[0]) != SCHEMA:
        raise SpoolError(f"{path}: spool schema {row and row[0]}, this agent reads {SCHEMA}")


def disk_full(err: sqlite3.DatabaseError) -> bool:
    """SQLITE_FULL (extended codes included): the disk, or the database's size limit, is full;
    or the shared-memory file could not grow, which on opening is a full disk too."""
    code = getattr(err, "sqlite_errorcode", None)
    return code is not None and (
        code & 0xFF == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE
    )


def marks(count: int) -> str:
    """`count` parameter marks, for an IN list."""
    return ", ".join("?" * count)


def chunks(seqs: list[int], size: int = 500) -> Iterator[list[int]]:
    """`seqs` in lists of at most `size`."""
    # SQLite caps the host parameters of one statement (999 in old builds).
    for start in range(0, len(seqs), size):
        yield seqs[start : start + size]
