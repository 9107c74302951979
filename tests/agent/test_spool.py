"""The spool's promises (agent/spool.py): states, at-least-once, oldest first, the cap, WAL,
a full disk."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.spool import (
    ENTRY_OVERHEAD_BYTES,
    IN_FLIGHT,
    READY,
    NewReading,
    Spool,
    SpoolError,
    SpoolFull,
)
from tests.agent.kit import fill, tmpfs
from tests.collector.kit import reading
from wire.batch import Batch, Heartbeat, PrinterCounts, decode_batch, encode_batch

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
BIG = 10**9  # a byte budget that never binds


def new(n: int, printer: str = "p") -> NewReading:
    return NewReading(T0 + timedelta(minutes=n), printer, "192.0.2.10:161", reading(f"S{n}"))


def states(path: Path) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT seq, state FROM readings ORDER BY seq").fetchall())
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool.db"


def test_r2_append_commits_and_numbers_each_reading_once(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.append([new(1), new(2)]).seqs == (1, 2)
        assert spool.append([new(3)]).seqs == (3,)
    # Another connection sees them: committed, not waiting in our process.
    assert states(path) == {1: READY, 2: READY, 3: READY}


def test_seq_is_never_reused_after_rows_leave(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(1), new(2), new(3)])
        taken = spool.take(10, BIG)
        assert taken is not None
        spool.ack(r.seq for r in taken.readings)
        assert spool.stats().depth == 0
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.append([new(4)]).seqs == (4,)
        assert spool.stats().last_seq == 4


def test_take_moves_the_oldest_ready_rows_in_flight(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 8)])
        first = spool.take(3, BIG)
        second = spool.take(3, BIG)
        assert first is not None and second is not None
        assert [r.seq for r in first.readings] == [1, 2, 3]
        assert [r.seq for r in second.readings] == [4, 5, 6]
        assert first.batch_id != second.batch_id
        assert states(path) == {**dict.fromkeys(range(1, 7), IN_FLIGHT), 7: READY}
        stats = spool.stats()
        assert (stats.ready, stats.in_flight, stats.depth) == (1, 6, 7)


def test_taken_readings_round_trip_into_a_valid_batch(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(1, "reception"), new(2, "finance")])
        taken = spool.take(10, BIG)
    assert taken is not None
    first = taken.readings[0]
    assert (first.seq, first.printer, first.address, first.read_at) == (
        1,
        "reception",
        "192.0.2.10:161",
        T0 + timedelta(minutes=1),
    )
    assert first.reading == reading("S1")
    beat = Heartbeat("0.1.0", 1.0, PrinterCounts(answering=2), 2, 0, None)
    batch = Batch("agent", taken.batch_id, T0, taken.readings, beat)
    assert decode_batch(encode_batch(batch)) == batch


def test_r2_restart_returns_in_flight_rows_to_ready_and_resends_the_same_batch(
    path: Path,
) -> None:
    spool = Spool.open(path, cap_rows=100)
    spool.append([new(n) for n in range(1, 6)])
    lost = spool.take(3, BIG)
    assert lost is not None
    spool.close()  # as if killed: the answer never came
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.reset_on_open == 3
        assert set(states(path).values()) == {READY}
        again = spool.take(10, BIG)
        assert again is not None
        assert again.batch_id == lost.batch_id and again.resent
        assert [r.seq for r in again.readings] == [1, 2, 3]  # the same batch, not more
        rest = spool.take(10, BIG)
        assert rest is not None and [r.seq for r in rest.readings] == [4, 5]
        assert not rest.resent


def test_released_rows_go_out_again_oldest_first(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 6)])
        first = spool.take(2, BIG)
        assert first is not None
        assert spool.release([1, 2]) == 2
        again = spool.take(5, BIG)
        assert again is not None
        assert (again.batch_id, [r.seq for r in again.readings]) == (first.batch_id, [1, 2])
        spool.release([1, 2], new_batch=True)  # its content changes: a new batch
        rebatched = spool.take(5, BIG)
        assert rebatched is not None
        assert rebatched.batch_id != first.batch_id
        assert [r.seq for r in rebatched.readings] == [1, 2, 3, 4, 5]


def test_acked_rows_are_deleted_and_rejected_ones_deleted_and_counted(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 5)])
        spool.take(10, BIG)
        assert spool.ack([1, 2]) == 2
        assert spool.reject([3]) == 1
        spool.release([4])
        stats = spool.stats()
        assert (stats.ready, stats.in_flight, stats.rejected_total, stats.dropped_total) == (
            1,
            0,
            1,
            0,
        )
    assert states(path) == {4: READY}


def test_cap_drops_the_oldest_ready_rows_and_counts_them(path: Path) -> None:
    with Spool.open(path, cap_rows=5) as spool:
        spool.append([new(n) for n in range(1, 4)])
        spool.take(2, BIG)  # 1 and 2 in flight: they may be stored by now, not dropped
        appended = spool.append([new(n) for n in range(4, 8)])
        assert (appended.seqs, appended.dropped) == ((4, 5, 6, 7), 2)
        assert states(path) == {1: IN_FLIGHT, 2: IN_FLIGHT, 5: READY, 6: READY, 7: READY}
        assert spool.append([new(8)]).dropped == 1
        assert spool.stats().dropped_total == 3
    with Spool.open(path, cap_rows=5) as spool:
        assert spool.stats().dropped_total == 3  # kept in the file across restarts


def test_batches_are_bounded_by_bytes_too(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 11)])
        size = len(json.dumps(reading("S1").to_dict(), separators=(",", ":")))
        taken = spool.take(10, max_bytes=3 * (size + ENTRY_OVERHEAD_BYTES) + 10)
        assert taken is not None and len(taken.readings) == 3
        one = spool.take(10, max_bytes=1)  # at least one reading, whatever its size
        assert one is not None and len(one.readings) == 1


def test_a_push_takes_only_what_was_spooled_when_it_began(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 4)])
        up_to = spool.stats().last_seq
        spool.append([new(4)])
        taken = spool.take(10, BIG, up_to_seq=up_to)
        assert taken is not None and [r.seq for r in taken.readings] == [1, 2, 3]
        assert spool.take(10, BIG, up_to_seq=up_to) is None


def test_a_row_that_no_longer_decodes_is_rejected_not_sent(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(1), new(2)])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE readings SET reading = '{\"schema\": 1}' WHERE seq = 1")
    conn.commit()
    conn.close()
    with Spool.open(path, cap_rows=100) as spool:
        taken = spool.take(10, BIG)
        assert taken is not None
        assert [r.seq for r in taken.readings] == [2]
        assert list(taken.broken) == [1]
        assert spool.stats().rejected_total == 1


def test_spool_uses_wal_and_a_reader_sees_it_while_it_is_written(path: Path) -> None:
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.journal_mode() == "wal"
        spool.append([new(1)])
        taken = spool.take(1, BIG)
        assert taken is not None
        with Spool.open_read_only(path) as reader:
            stats = reader.stats()
            assert (stats.ready, stats.in_flight, stats.last_seq) == (0, 1, 1)
            with pytest.raises(SpoolError):
                reader.append([new(2)])
        assert path.with_name("spool.db-wal").exists()


def test_read_only_open_neither_makes_nor_resets(path: Path) -> None:
    with pytest.raises(SpoolError):
        Spool.open_read_only(path)
    assert not path.exists()
    with Spool.open(path, cap_rows=10) as spool:
        spool.append([new(1)])
        spool.take(1, BIG)
        with Spool.open_read_only(path) as reader:
            assert reader.stats().in_flight == 1


def test_spool_is_bound_to_an_enrollment(path: Path) -> None:
    with Spool.open(path, cap_rows=10) as spool:
        assert spool.stats().agent_id is None
        spool.bind("0b6f3a4e-8a43-4a8e-9d1e-6f2f5b8e2c11")
    with Spool.open_read_only(path) as spool:
        assert spool.stats().agent_id == "0b6f3a4e-8a43-4a8e-9d1e-6f2f5b8e2c11"


def test_a_file_that_is_not_a_spool_is_refused(path: Path) -> None:
    path.write_bytes(b"not a database at all, just text" * 100)
    with pytest.raises(SpoolError):
        Spool.open(path, cap_rows=10)


# --- a full disk (a tmpfs of its own, filled to the last byte) -----------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        yield disk


def test_r2_a_full_disk_drops_new_readings_counts_them_and_keeps_the_old(
    small_disk: Path,
) -> None:
    path = small_disk / "spool.db"
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 4)])
        filler, _ = fill(small_disk)
        refused = spool.append([new(4), new(5)])
        assert (refused.seqs, refused.dropped, refused.refused) == ((), 0, 2)
        assert spool.append([new(6)]).refused == 1
        stats = spool.stats()
        assert (stats.ready, stats.last_seq, stats.dropped_total, stats.disk_full) == (
            3,
            3,
            3,
            True,
        )
        with Spool.open_read_only(path) as reader:  # not in the file yet: no room for it
            assert reader.stats().dropped_total == 0
        with pytest.raises(SpoolFull):
            spool.take(10, BIG)
        assert states(path) == dict.fromkeys((1, 2, 3), READY)  # nothing moved
        filler.unlink()
        appended = spool.append([new(7)])
        assert (appended.seqs, appended.refused) == ((4,), 0)  # seqs go on with no gap
        stats = spool.stats()
        assert (stats.dropped_total, stats.disk_full) == (3, False)
        taken = spool.take(10, BIG)
        assert taken is not None
        assert [r.reading for r in taken.readings] == [reading(f"S{n}") for n in (1, 2, 3, 7)]
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.stats().dropped_total == 3  # written with the first append that fitted


def test_rows_a_push_could_not_settle_on_a_full_disk_are_recovered(small_disk: Path) -> None:
    path = small_disk / "spool.db"
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(n) for n in range(1, 4)])
        taken = spool.take(10, BIG)
        assert taken is not None
        filler, _ = fill(small_disk)
        with pytest.raises(SpoolFull):
            spool.ack([1, 2, 3])  # the collector has them; the spool cannot say so
        with pytest.raises(SpoolFull):
            spool.recover()
        assert states(path) == dict.fromkeys((1, 2, 3), IN_FLIGHT)
        filler.unlink()
        assert spool.recover() == 3
        again = spool.take(10, BIG)
        assert again is not None and again.batch_id == taken.batch_id and again.resent
        assert spool.ack([1, 2, 3]) == 3
        assert spool.recover() == 0 and spool.stats().depth == 0


def test_opening_on_a_full_disk_says_the_disk_is_full(small_disk: Path) -> None:
    path = small_disk / "spool.db"
    with Spool.open(path, cap_rows=100) as spool:
        spool.append([new(1)])
    filler, _ = fill(small_disk)
    with pytest.raises(SpoolFull, match="no room on its disk"):
        Spool.open(path, cap_rows=100)  # its shared-memory file cannot be made
    filler.unlink()
    with Spool.open(path, cap_rows=100) as spool:
        assert spool.stats().ready == 1
