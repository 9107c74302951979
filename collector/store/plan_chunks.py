"""The daily run in chunks: a run's shared work, its chunks, and each chunk claimed and saved.

Is: `start` (a run's `plan_runs` row, its `plan_work` row: the readings it takes, the fleet's
pages per cartridge by part number computed once in a first pass that keeps only numbers; and
its chunks, ranges of supplies contacts of about `size` devices each), `current` (the run not
complete yet), `claim` (the next chunk not done: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
each worker gets its own and a chunk whose worker died is free again once its transaction
rolled back), `load` (a chunk's snapshot), `save` (its outcome and its mark done, in the
caller's transaction: all or nothing; a chunk done already is not saved twice), `finish` (the
run's summary in `plan_runs` once every chunk is done) and `progress`.
A chunk is a range of contact ids. A contact belongs to one customer, so the range holds
whole (customer, site, contact) groups (R10) and every device one R16 notice names.
Is not: the decisions (collector.replenish.daily) or the lock and the loop
(collector.daily_run).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, distinct, func, select, update

from collector.replenish.daily import Outcome, Snapshot, fleet_yields
from collector.replenish.pages import Yield
from collector.store.plan_snapshot import Contacts, new_since
from collector.store.plan_snapshot import load as load_snapshot
from collector.store.plans import write
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    plan_chunks,
    plan_runs,
    plan_work,
    supply_tracks,
)

TRACKS_PER_FETCH = 2000  # the first pass streams the tracks, never holds them all


@dataclass(frozen=True)
class Work:
    """A run planned in chunks: what every chunk of it shares."""

    run_id: int
    as_of: datetime
    since: datetime
    yields: dict[str, Yield]
    chunks: int
    groups: int


@dataclass(frozen=True)
class Chunk:
    """One chunk of a run: its range of contacts and its size."""

    run_id: int
    number: int
    contacts: Contacts
    groups: int
    devices: int


@dataclass(frozen=True)
class Progress:
    """How far a run is: chunks and groups (contacts) done, of all."""

    chunks_done: int
    chunks: int
    groups_done: int
    groups: int


def start(conn: Connection, now: datetime, size: int, yields: dict[str, Yield]) -> Work:
    """A new run at `now`: its rows and its chunks of about `size` devices, with the fleet's
    `yields` (`learned_yields`, read just before under the plan lock)."""
    since = new_since(conn)  # before this run's own row counts as the last run
    run_id: int = conn.execute(
        plan_runs.insert()
        .values(as_of=now, started_at=now, finished_at=now, received_until=now, counts={})
        .returning(plan_runs.c.id)
    ).scalar_one()
    layout = _layout(conn, size)
    groups = sum(count for _, _, count, _ in layout)
    conn.execute(
        plan_work.insert().values(
            run_id=run_id,
            since=since,
            yields={sku: [getattr(y, f.name) for f in fields(Yield)] for sku, y in yields.items()},
            chunks=len(layout),
            groups=groups,
        )
    )
    if layout:
        conn.execute(
            plan_chunks.insert(),
            [
                {
                    "run_id": run_id,
                    "chunk": number,
                    "after_contact": after,
                    "through_contact": through,
                    "groups": count,
                    "devices": devices,
                }
                for number, (after, through, count, devices) in enumerate(layout)
            ],
        )
    return Work(run_id, now, since, yields, len(layout), groups)


def learned_yields(conn: Connection) -> dict[str, Yield]:
    """The first pass: each part number's pages per cartridge over the whole fleet's tracks.

    Only the learned yields leave the database (the path `meter.yields` of the track's JSON,
    Track.to_json): decoding 400,000 whole tracks for them took longer than a chunk's work.
    """
    learned = supply_tracks.c.track[("meter", "yields")]
    query = (
        select(asr_supplies.c.sku, learned)
        .join(
            supply_tracks,
            (supply_tracks.c.serial == asr_supplies.c.serial)
            & (supply_tracks.c.supply_id == asr_supplies.c.supply_id),
        )
        .where(asr_supplies.c.sku.is_not(None))
        .execution_options(yield_per=TRACKS_PER_FETCH)
    )
    return fleet_yields((sku, yields) for sku, yields in conn.execute(query) if yields)


def _layout(conn: Connection, size: int) -> list[tuple[int, int | None, int, int]]:
    """The chunks: (after contact, through contact, groups, devices), by contact id, each
    closed once it holds `size` devices; the last open to contacts added meanwhile."""
    per_contact = conn.execute(
        select(
            asr_devices.c.contact_id,
            func.count(),
            func.count(distinct(asr_devices.c.site_id)),  # its groups (R10)
        )
        .group_by(asr_devices.c.contact_id)
        .order_by(asr_devices.c.contact_id)
    ).all()
    layout: list[tuple[int, int | None, int, int]] = []
    after, contacts, devices = -1, 0, 0
    for contact_id, count, groups in per_contact:
        contacts += groups
        devices += count
        if devices >= size:
            layout.append((after, int(contact_id), contacts, devices))
            after, contacts, devices = int(contact_id), 0, 0
    if contacts or not layout:
        layout.append((after, None, contacts, devices))
    else:  # the last chunk takes any contact registered after the layout was made
        last_after, _, last_contacts, last_devices = layout[-1]
        layout[-1] = (last_after, None, last_contacts, last_devices)
    return layout


def current(conn: Connection) -> Work | None:
    """The run not complete yet (the oldest, if several), or None."""
    row = conn.execute(
        select(plan_work, plan_runs.c.as_of)
        .join(plan_runs, plan_runs.c.id == plan_work.c.run_id)
        .where(plan_work.c.done_at.is_(None))
        .order_by(plan_work.c.run_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    yields = {sku: Yield(*values) for sku, values in row.yields.items()}
    return Work(row.run_id, row.as_of, row.since, yields, row.chunks, row.groups)


def claim(conn: Connection, run_id: int) -> Chunk | None:
    """The run's next chunk not done, locked for this transaction (PostgreSQL: skipping those
    other workers hold); None: every chunk is done or being planned."""
    row = conn.execute(
        select(plan_chunks)
        .where(plan_chunks.c.run_id == run_id, plan_chunks.c.done_at.is_(None))
        .order_by(plan_chunks.c.chunk)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    contacts = Contacts(row.after_contact, row.through_contact)
    return Chunk(run_id, row.chunk, contacts, row.groups, row.devices)


def claim_and_load(conn: Connection, work: Work) -> tuple[Chunk, Snapshot] | None:
    """`claim` the next chunk and `load` it; None: none is left to claim."""
    chunk = claim(conn, work.run_id)
    return None if chunk is None else (chunk, load(conn, work, chunk))


def load(conn: Connection, work: Work, chunk: Chunk) -> Snapshot:
    """What the chunk's part of the run decides from."""
    snapshot = load_snapshot(conn, work.as_of, work.since, chunk.contacts)
    snapshot.fleet = work.yields
    return snapshot


def save(conn: Connection, outcome: Outcome, work: Work, chunk: Chunk, worker: str) -> bool:
    """The chunk's outcome and its mark done, in the caller's transaction; False (nothing
    written) if it was done already."""
    marked = conn.execute(
        update(plan_chunks)
        .where(
            plan_chunks.c.run_id == chunk.run_id,
            plan_chunks.c.chunk == chunk.number,
            plan_chunks.c.done_at.is_(None),
        )
        .values(done_at=work.as_of, worker=worker, counts=outcome.counts)
    )
    if marked.rowcount != 1:
        return False
    write(conn, outcome, work.as_of, work.run_id)
    return True


def finish(conn: Connection, work: Work) -> dict[str, Any] | None:
    """Once every chunk is done: the run's summary (its counts summed) in `plan_runs`, and the
    run complete; None while a chunk is not done (or another worker finished it). Its times
    are the run's `now`, as a whole-fleet run's were (the clock is the caller's)."""
    left = conn.execute(
        select(func.count())
        .select_from(plan_chunks)
        .where(plan_chunks.c.run_id == work.run_id, plan_chunks.c.done_at.is_(None))
    ).scalar_one()
    if left:
        return None
    marked = conn.execute(
        update(plan_work)
        .where(plan_work.c.run_id == work.run_id, plan_work.c.done_at.is_(None))
        .values(done_at=work.as_of)
    )
    if marked.rowcount != 1:
        return None
    counts: dict[str, Any] = {}
    for (part,) in conn.execute(
        select(plan_chunks.c.counts).where(plan_chunks.c.run_id == work.run_id)
    ):
        for name, value in (part or {}).items():
            counts[name] = counts.get(name, 0) + value
    counts["chunks"] = work.chunks
    counts["groups"] = work.groups
    conn.execute(
        update(plan_runs)
        .where(plan_runs.c.id == work.run_id)
        .values(counts=counts, finished_at=work.as_of)
    )
    return counts


def progress(conn: Connection, run_id: int) -> Progress:
    """The run's chunks and groups done, of all."""
    done = plan_chunks.c.done_at.is_not(None)
    row = conn.execute(
        select(
            func.count(),
            func.count().filter(done),
            func.coalesce(func.sum(plan_chunks.c.groups), 0),
            func.coalesce(func.sum(plan_chunks.c.groups).filter(done), 0),
        ).where(plan_chunks.c.run_id == run_id)
    ).one()
    return Progress(int(row[1]), int(row[0]), int(row[3]), int(row[2]))
