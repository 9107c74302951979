"""The agent's spool: readings kept on disk until the collector has them (R2).

Modelled on Telegraf's output buffer (TSD-005) and persist-queue's SQLite ack queue. Its
records and errors are in agent.spool_records, its file's schema and opening in agent.spool_file.

Is:
- durable: `append` commits (SQLite, WAL, synchronous=FULL) before it returns, and a push is
  only tried after that; a spooled reading survives a crash, a kill -9 and a power cut.
- numbered once: a reading gets its `seq` when it is spooled (SQLite AUTOINCREMENT: strictly
  increasing, never reused, even after rows are deleted) and keeps it on every re-send, so the
  collector stores it once per (agent, seq).
- explicit about states: a row is `ready` or `in-flight` (taken into a batch). An answered row
  leaves the spool: *acked* (accepted or duplicate: deleted) or *rejected* (deleted, counted in
  `rejected_total`). A row whose answer never came goes back to `ready`: when the push fails,
  and for every in-flight row when the spool is opened (at-least-once).
- oldest first: batches are taken in seq order, bounded by a count and a byte budget. A batch
  that went back to ready keeps its batch id and is sent again as the same batch.
- capped: at most `cap_rows` rows. When full, the oldest ready rows are dropped to make room
  and counted (`dropped_total`, kept in the file, reported in every heartbeat).
- alive on a full disk: when SQLite finds no room ('database or disk is full'), the write is
  rolled back whole, so what was spooled before stays as it was. New readings that cannot be
  written are dropped and counted (`Appended.refused`, in `dropped_total`): in memory while the
  disk is full, added to the file by the first append that finds room again. The other writes
  (take, ack, release) raise `SpoolFull`; their rows keep their state, and rows a push could not
  settle go back to ready with `recover`.

Is not:
- exactly-once: a reading may be sent twice (killed between the collector's commit and our
  ack); the collector's (agent, seq) uniqueness turns the second one into a duplicate.
- unbounded: a collector down for longer than the cap lasts costs the oldest readings, counted.
- a keeper of counts it cannot write: readings dropped on a full disk are counted in memory
  until there is room; a process killed before that forgets how many they were.
- shared: one process writes it (`asr-agent run` holds the state directory's lock); `status`
  opens it read-only.
- replaceable: the seq counter lives in this file, and a new file would count from 1 again
  (the collector would take new readings for duplicates). So the spool is bound to the
  enrollment (`bind`) and the agent refuses to run on one that is not.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from agent.spool_file import BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS
from agent.spool_file import IN_FLIGHT as IN_FLIGHT
from agent.spool_file import READY as READY
from agent.spool_file import SCHEMA as SCHEMA
from agent.spool_file import chunks, connect, connect_read_only, disk_full, marks
from agent.spool_records import Appended as Appended
from agent.spool_records import NewReading as NewReading
from agent.spool_records import SpoolError as SpoolError
from agent.spool_records import SpoolFull as SpoolFull
from agent.spool_records import SpoolStats as SpoolStats
from agent.spool_records import Taken as Taken
from wire.batch import BatchReading, decode_reading
from wire.errors import WireError
from wire.reading import PrinterReading

# What one entry adds to a batch body besides its reading: seq, read_at, printer, address.
ENTRY_OVERHEAD_BYTES = 200


def _encode(reading: PrinterReading) -> bytes:
    return json.dumps(
        reading.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def _time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: the spool keeps UTC")
    return at.astimezone(timezone.utc).isoformat()


class Spool:
    """The SQLite spool; open it with `Spool.open` (writer) or `Spool.open_read_only`."""

    def __init__(self, conn: sqlite3.Connection, cap_rows: int | None, reset: int = 0) -> None:
        self._conn = conn
        self._cap_rows = cap_rows
        self.reset_on_open = reset  # in-flight rows that went back to ready when opened
        self._unsaved_drops = 0  # readings a full disk refused, not yet counted in the file
        self._disk_full = False

    @classmethod
    def open(cls, path: Path, cap_rows: int) -> Spool:
        """Open (or make) the spool for writing; rows left in flight go back to ready."""
        if cap_rows < 1:
            raise ValueError("cap_rows must be at least 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        spool = cls(connect(path), cap_rows)
        with spool._transaction() as conn:
            reset = conn.execute(
                f"UPDATE readings SET state = '{READY}' WHERE state = '{IN_FLIGHT}'"
            ).rowcount
        spool.reset_on_open = reset
        return spool

    @classmethod
    def open_read_only(cls, path: Path) -> Spool:
        """Open an existing spool to look at it (`status`), changing nothing."""
        return cls(connect_read_only(path), None)

    def close(self) -> None:
        """Close the file (a checkpoint folds the log back into it)."""
        self._conn.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------

    def append(self, items: Sequence[NewReading]) -> Appended:
        """Spool readings in one transaction, each with its new seq; drop the oldest if full."""
        if self._cap_rows is None:
            raise SpoolError("the spool was opened read-only")
        rows = [(_time(i.read_at), i.printer, i.address, _encode(i.reading)) for i in items]
        if not rows and not self._unsaved_drops:
            return Appended((), 0)
        try:
            appended = self._append(rows)
        except SpoolFull:
            self._disk_full = True
            self._unsaved_drops += len(rows)
            return Appended((), 0, refused=len(rows))
        self._disk_full = False
        return appended

    def _append(self, rows: Sequence[tuple[str, str, str, bytes]]) -> Appended:
        assert self._cap_rows is not None
        with self._transaction() as conn:
            seqs = []
            for row in rows:
                cursor = conn.execute(
                    "INSERT INTO readings (state, read_at, printer, address, reading)"
                    f" VALUES ('{READY}', ?, ?, ?, ?)",
                    row,
                )
                assert cursor.lastrowid is not None
                seqs.append(cursor.lastrowid)
            (total,) = conn.execute("SELECT COUNT(*) FROM readings").fetchone()
            dropped = 0
            if total > self._cap_rows:
                # Ready rows only: one in flight may be stored by now, and is no loss.
                dropped = conn.execute(
                    "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings"
                    f" WHERE state = '{READY}' ORDER BY seq LIMIT ?)",
                    (total - self._cap_rows,),
                ).rowcount
            self._count(conn, "dropped_total", dropped + self._unsaved_drops)
        self._unsaved_drops = 0
        return Appended(tuple(seqs), dropped)

    def take(self, limit: int, max_bytes: int, up_to_seq: int | None = None) -> Taken | None:
        """The oldest ready readings (at most `limit`, about `max_bytes`), now in flight."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._transaction() as conn:
            picked = _pick(conn, limit, max_bytes, up_to_seq)
            if picked is None:
                return None
            rows, batch_id = picked
            resent = batch_id is not None
            batch_id = batch_id or str(uuid.uuid4())
            readings, broken = _decode(rows)
            if broken:
                self._delete(conn, broken)
                self._count(conn, "rejected_total", len(broken))
            seqs = [r.seq for r in readings]
            for chunk in chunks(seqs):
                conn.execute(
                    f"UPDATE readings SET state = '{IN_FLIGHT}', batch_id = ?"
                    f" WHERE seq IN ({marks(len(chunk))})",
                    (batch_id, *chunk),
                )
        return Taken(batch_id, tuple(readings), resent and not broken, broken)

    def ack(self, seqs: Iterable[int]) -> int:
        """The collector has these (accepted or duplicate): delete them; how many were here."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._transaction() as conn:
            return self._delete(conn, seqs)

    def reject(self, seqs: Iterable[int]) -> int:
        """The collector will never take these: delete and count them."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._transaction() as conn:
            gone = self._delete(conn, seqs)
            self._count(conn, "rejected_total", gone)
        return gone

    def recover(self) -> int:
        """Rows left in flight by a push that could not settle them: ready again, each in its
        batch (sent again as the same batch); how many. Only while no push is running."""
        if not self._conn.execute(
            f"SELECT 1 FROM readings WHERE state = '{IN_FLIGHT}' LIMIT 1"
        ).fetchone():
            return 0  # nothing to write: works on a full disk too
        with self._transaction() as conn:
            return conn.execute(
                f"UPDATE readings SET state = '{READY}' WHERE state = '{IN_FLIGHT}'"
            ).rowcount

    def release(self, seqs: Iterable[int], new_batch: bool = False) -> int:
        """Back to ready, to be sent again: as the same batch, or in a new one."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._transaction() as conn:
            changed = 0
            for chunk in chunks(list(seqs)):
                changed += conn.execute(
                    f"UPDATE readings SET state = '{READY}'"
                    + (", batch_id = NULL" if new_batch else "")
                    + f" WHERE seq IN ({marks(len(chunk))})",
                    chunk,
                ).rowcount
        return changed

    def bind(self, agent_id: str) -> None:
        """Tie this spool (and its seq counter) to an enrollment."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('agent_id', ?)", (agent_id,)
            )

    # --- reading ---------------------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """Rows by state, the last seq given, what was dropped and rejected."""
        conn = self._conn
        counts = {READY: 0, IN_FLIGHT: 0}
        oldest: str | None = None
        for state, count, first in conn.execute(
            "SELECT state, COUNT(*), MIN(read_at) FROM readings GROUP BY state"
        ):
            counts[state] = count
            oldest = first if oldest is None else min(oldest, first)
        last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return SpoolStats(
            ready=counts[READY],
            in_flight=counts[IN_FLIGHT],
            last_seq=last[0] if last else 0,
            dropped_total=int(meta.get("dropped_total", 0)) + self._unsaved_drops,
            rejected_total=int(meta.get("rejected_total", 0)),
            oldest_read_at=datetime.fromisoformat(oldest) if oldest else None,
            agent_id=meta.get("agent_id"),
            disk_full=self._disk_full,
        )

    def journal_mode(self) -> str:
        """SQLite's journal mode: 'wal'."""
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    # --- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK
                # would fail and hide the error that matters.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as err:
            if disk_full(err):
                raise SpoolFull(f"no room on the spool's disk: {err}") from err
            raise

    @staticmethod
    def _delete(conn: sqlite3.Connection, seqs: Iterable[int]) -> int:
        gone = 0
        for chunk in chunks(list(seqs)):
            gone += conn.execute(
                f"DELETE FROM readings WHERE seq IN ({marks(len(chunk))})", chunk
            ).rowcount
        return gone

    @staticmethod
    def _count(conn: sqlite3.Connection, key: str, more: int) -> None:
        if more:
            conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?", (more, key)
            )


_Row = tuple[int, str | None, str, str, str, bytes]  # seq, batch_id, read_at, printer, ...


def _pick(
    conn: sqlite3.Connection, limit: int, max_bytes: int, up_to_seq: int | None
) -> tuple[list[_Row], str | None] | None:
    """The rows of the next batch and its id if it is one sent before (its answer never came:
    the same batch again, unless the limits shrank); None when nothing is ready."""
    head = conn.execute(
        f"SELECT batch_id FROM readings WHERE state = '{READY}' ORDER BY seq LIMIT 1"
    ).fetchone()
    if head is None:
        return None
    rows: list[_Row] = []
    batch_id: str | None = head[0]
    if batch_id is not None:
        rows = conn.execute(
            "SELECT seq, batch_id, read_at, printer, address, reading FROM readings"
            f" WHERE state = '{READY}' AND batch_id = ? ORDER BY seq LIMIT ?",
            (batch_id, limit + 1),
        ).fetchall()
        if len(rows) > limit or _size(rows) > max_bytes:  # limits shrank: batch anew
            conn.execute(
                f"UPDATE readings SET batch_id = NULL WHERE state = '{READY}' AND batch_id = ?",
                (batch_id,),
            )
            rows, batch_id = [], None
    if batch_id is None:
        bound = up_to_seq if up_to_seq is not None else -1
        candidates = conn.execute(
            "SELECT seq, batch_id, read_at, printer, address, reading FROM readings"
            f" WHERE state = '{READY}' AND (? < 0 OR seq <= ?) ORDER BY seq LIMIT ?",
            (bound, bound, limit),
        ).fetchall()
        budget = 0
        for row in candidates:
            budget += len(row[5]) + ENTRY_OVERHEAD_BYTES
            if row[1] is not None or (rows and budget > max_bytes):
                break
            rows.append(row)
        if not rows:
            return None
    return rows, batch_id


def _decode(rows: Sequence[_Row]) -> tuple[list[BatchReading], dict[int, str]]:
    """The rows as batch entries, and the rows that no longer decode, with why."""
    readings, broken = [], {}
    for seq, _, read_at, printer, address, blob in rows:
        try:
            reading = decode_reading(blob)
        except WireError as err:
            broken[seq] = f"spooled reading does not decode: {err}"
            continue
        at = datetime.fromisoformat(read_at)
        readings.append(BatchReading(seq, at, printer, address, reading))
    return readings, broken


def _size(rows: Sequence[_Row]) -> int:
    return sum(len(row[5]) + ENTRY_OVERHEAD_BYTES for row in rows)
