"""The daily plan for a big fleet in one run, beside the time to just read its history.

    .venv/bin/python bench/plan.py [--devices 100000] [--database sqlite|postgresql|both]
                                   [--keep DIR] [--rounds 1] [--profile]
                                   [--workers N] [--chunk DEVICES]
                                   [--pg-dsn postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Target: planning costs at most 3 times the read, (decide + write) / read <= 3.

Build (once; `--keep DIR` caches it between runs): a fleet as a collector holds it the
evening after months of operation, written with bulk inserts (executemany through sqlite3,
COPY through asyncpg), not through the HTTP path:
- customers with 1 to 6 sites of 3 to 7 devices (about 5), 1 or 2 supplies contacts a site;
- `--devices` registered devices (asr_devices, asr_supplies), ~70 % colour MFPs (black, cyan,
  magenta, yellow toner and a waste container) and ~30 % mono (black and waste), the SKUs and
  capacities of sim.scenarios' models, so about 4.1 supplies a device (409,451 for 100,000);
- for every supply a supply_tracks row: a real `forecast.Track` (grams) with 90 days of daily
  usage up to yesterday (working days the device's mean times 0.7 to 1.3, each supply within
  +-10 %; weekends nothing or a little; 1 % of devices with a few unknown days), the last
  reading yesterday at noon, a level drawn uniformly over 0..capacity; stored as the collector
  stores it, pydantic-core's JSON of `Track.to_json()`, with `Forecast.figures()` beside it;
- the state a daily run left: a supply whose days left fell under the trigger on an earlier
  day has balance 1 (its order, placed then, is in orders/shipments: shipped, or delivered
  after 3 days), its waste container too, and a waste box within the trigger had a
  container come with an earlier black toner; older, installed orders of the rest are in orders as
  delivered; every device has its device_states row and a devices row (last_seen);
- 0.5 % of devices dark for 8 to 40 days (disconnected); 1 % read again today (one reading
  each, in readings/supplies, received after yesterday's run, which plan_runs records).
So the run at NOW places orders for the supplies that reached the trigger today and their
group's consolidated ones: a few % of the supplies.

Each round works on a fresh copy of the built database (a copy of the SQLite file; on
PostgreSQL `CREATE DATABASE ... TEMPLATE`), because a run writes orders and the next one
would not do the same work. In one process, in this order:
- `driver`: `SELECT serial, supply_id, track FROM supply_tracks`, every row fetched by the
  driver (sqlite3 / asyncpg, JSON left as text): the floor under any read;
- `read`: `load_snapshot(db, NOW)` alone, the whole snapshot, then dropped; with the cyclic
  garbage collector paused as run_plan pauses it (`job.paused_gc`), so both read alike;
- `run_plan(db, rules, NOW)`, its own read / decide / write times (RunResult).
`ratio` is (decide + write) / read and `decide/read` decide / read, with `read` the
`load_snapshot` alone; `sup/s` is supplies / (read + decide + write) of run_plan, and
`sup/s decide` supplies / decide. `peak MB` is the process's highest resident size during a
step less the resident size before it (sampled every 20 ms); `GC s` the time the cyclic
garbage collector ran in the step (gc.callbacks). The database file is in the OS page cache
(it was just copied), as it is on a collector that runs every day.

`--workers N` makes the run instead with N worker processes (`work_plan`, what
`asr-collector plan --worker` runs; on SQLite one process, `run_plan`), started together on a
fresh copy: the wall time from their start to the last one's end, and each worker's peak RSS
(getrusage's ru_maxrss: the whole process, interpreter included). `--chunk` sets the devices
per chunk (default collector.daily_run.CHUNK_DEVICES).

`--profile` adds cProfile of the three steps on one more copy, each alone in this thread:
`plans.load`, `daily.daily`, and `plans.save` in a transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import resource
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from benchinfo import code_version
from pydantic_core import from_json, to_json
from sqlalchemy import Connection, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from collector.daily_run import CHUNK_DEVICES, RunResult, paused_gc, run_plan, work_plan
from collector.replenish.daily import daily
from collector.replenish.forecast import Track, forecast
from collector.replenish.series import Usage
from collector.replenish.settings import Rules
from collector.store.database import Database, _json, sqlite_pragmas
from collector.store.migrate import migrate
from collector.store.plans import load, load_snapshot, save
from collector.store.schema import orders, shipments, sqlite_time
from sim.office import COLOUR_MFP, MONO_MFP, WASTE_SHARE, Model
from sim.scenarios import FLEET_PROFILES

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 6, 10, 23, 0, tzinfo=timezone.utc)  # a Wednesday: the run's time
YESTERDAY = (NOW - timedelta(days=1)).date().toordinal()
TODAY = NOW.date().toordinal()
LAST_RUN = NOW - timedelta(days=1)
LEAD_DAYS = 3
FORMAT = 2  # of the built data: a kept database of another format is built again
CHUNK = 5_000  # devices per insert transaction

_COLUMNS = {  # in insert order (foreign keys)
    "customers": "id created_at kind name language",
    "sites": "id customer_id name created_at address",
    "contacts": "id customer_id name email display_name",
    "agents": "id site_id hostname agent_version enrolled_at last_seen_at",
    "agent_keys": "key_id agent_id public_key status created_at retired_at revoked_at",
    "batches": "id agent_id batch_id key_id sent_at received_at reading_count headers body",
    "plan_runs": "id as_of started_at finished_at received_until counts",
    "devices": "serial model first_seen last_seen last_agent_id",
    "asr_devices": "serial customer_id site_id contact_id model registered_at",
    "asr_supplies": "serial supply_id supply_index kind colour sku capacity_grams",
    "supply_tracks": "serial supply_id track forecast runs_out_at balance updated_at",
    "device_states": "serial state reason high_usage since notices_sent updated_at",
    "shipments": "id customer_id site_id contact_id status placed_at shipped_at delivered_at"
    " plan_run_id",
    "orders": "id shipment_id serial supply_id sku quantity reason figures placed_at counted_at",
    "readings": "id agent_id seq batch_pk serial printer address read_at received_at payload",
    "supplies": "reading_id supply_index kind colour percent level max_capacity grams_left"
    " grams_used quality receptacle",
}
COLUMNS = {table: tuple(names.split()) for table, names in _COLUMNS.items()}
SERIAL_TABLES = ("sites", "contacts", "batches", "plan_runs", "shipments", "orders", "readings")
Rows = dict[str, list[tuple[Any, ...]]]
_T = TypeVar("_T")


def _noon(day: int) -> datetime:
    return datetime.fromordinal(day).replace(hour=12, tzinfo=timezone.utc)


def _evening(day: int) -> datetime:
    return datetime.fromordinal(day).replace(hour=23, tzinfo=timezone.utc)


def _json_text(value: Any) -> str:
    return to_json(value).decode()


# --- the fleet's rows ----------------------------------------------------------------------


@dataclass
class Ids:
    """The next surrogate keys, given by the build (the sequences are set after it)."""

    site: int = 0
    contact: int = 0
    shipment: int = 0
    order: int = 0
    reading: int = 0


@dataclass
class Counts:
    """What the build wrote."""

    customers: int = 0
    sites: int = 0
    contacts: int = 0
    devices: int = 0
    supplies: int = 0
    balance: int = 0  # supplies with a cartridge on its way or on site
    orders: int = 0
    readings: int = 0
    dark: int = 0

    def line(self) -> str:
        return (
            f"{self.customers:,} customers, {self.sites:,} sites, {self.contacts:,} contacts,"
            f" {self.devices:,} devices ({self.dark:,} dark), {self.supplies:,} supplies"
            f" ({self.balance:,} with balance 1), {self.orders:,} past order lines,"
            f" {self.readings:,} new readings"
        )


@dataclass
class Pending:
    """A site's past orders, grouped into shipments by (contact, day)."""

    lines: dict[tuple[int, int], list[tuple[str, str, str, bool]]] = field(
        default_factory=lambda: defaultdict(list)
    )


AGENT_ID = "00000000-0000-4000-8000-0000000000a1"
KEY_ID = "benchkey00000001"


def _empty() -> Rows:
    return {table: [] for table in COLUMNS}


def _head_rows(rows: Rows) -> None:
    """The agent that read the fleet, its key, today's batch and yesterday's plan run."""
    enrolled = NOW - timedelta(days=400)
    rows["agents"].append((AGENT_ID, 1, "bench-agent", "bench", enrolled, NOW))
    rows["agent_keys"].append((KEY_ID, AGENT_ID, bytes(32), "active", enrolled, None, None))
    received = _noon(TODAY) + timedelta(seconds=30)
    headers = _json_text({"bench": True})
    rows["batches"].append(
        (1, AGENT_ID, str(uuid.UUID(int=1)), KEY_ID, received, received, 0, headers, b"{}")
    )
    counts = _json_text({"supplies": 0})
    rows["plan_runs"].append((1, LAST_RUN, LAST_RUN, LAST_RUN, LAST_RUN, counts))


def _usage_days(own: random.Random, first: int, last: int) -> list[float]:
    """A device's print factor for each day first..last: working days 0.7 to 1.3."""
    out = []
    for day in range(first, last + 1):
        if (day + 6) % 7 < 5:  # date.fromordinal(day).weekday()
            out.append(0.7 + 0.6 * own.random())
        else:
            out.append(0.05 * own.random() if own.random() < 0.3 else 0.0)
    return out


def _device(
    rows: Rows,
    pending: Pending,
    counts: Counts,
    ids: Ids,
    rules: Rules,
    seed: int,
    n: int,
    customer: str,
    site_id: int,
    contact_id: int,
) -> None:
    """One device's rows: registration, supplies, tracks, state, and a reading if today's."""
    own = random.Random(f"{seed}/{n}")
    model: Model = COLOUR_MFP if own.random() < 0.7 else MONO_MFP
    profile = own.choice(FLEET_PROFILES).scaled(own.uniform(0.7, 1.4))
    serial = f"BENCH-{n:07d}"
    dark = own.random() < 0.005
    fresh = not dark and own.random() < 0.01
    last_day = YESTERDAY - own.randint(8, 40) if dark else YESTERDAY
    first = last_day - rules.history_days + 1
    factors = _usage_days(own, first, last_day)
    gap = None
    if own.random() < 0.01:  # a few days without a number (readings gave "some remaining")
        at = own.randint(0, len(factors) - 5)
        gap = range(at, at + own.randint(2, 4))
    registered = NOW - timedelta(days=own.randint(120, 900))
    last_seen = _noon(TODAY) if fresh else _noon(last_day)
    counts.devices += 1
    counts.dark += dark
    rows["asr_devices"].append((serial, customer, site_id, contact_id, model.name, registered))
    rows["devices"].append((serial, model.name, registered, last_seen, AGENT_ID))
    marking_total = [0.0] * len(factors)
    black_order: int | None = None
    states: list[str] = []
    reading_id = None
    if fresh:
        ids.reading += 1
        reading_id = ids.reading
        counts.readings += 1
        read_at = _noon(TODAY)
        payload = _json_text({"serial": serial, "model": model.name, "bench": True})
        rows["readings"].append(
            (
                reading_id,
                AGENT_ID,
                reading_id,
                1,
                serial,
                f"printer-{n}",
                "192.0.2.1:161",
                read_at,
                read_at + timedelta(seconds=30),
                payload,
            )
        )
    today_factor = 0.7 + 0.6 * own.random()
    for position, spec in enumerate(model.supplies):
        index = f"1.{position + 1}"
        capacity = spec.capacity
        if spec.kind == "waste":
            usage = [round(WASTE_SHARE * total, 4) for total in marking_total]
            today_use = WASTE_SHARE * sum(marking_total[-5:]) / 5 * today_factor
        else:
            mean = profile.black if spec.id == "black" else profile.colour * own.uniform(0.8, 1.2)
            usage = [round(mean * f * (0.9 + 0.2 * own.random()), 4) for f in factors]
            marking_total = [a + b for a, b in zip(marking_total, usage)]
            today_use = mean * today_factor
        track_usage: tuple[float | None, ...] = tuple(usage)
        if gap is not None:
            track_usage = tuple(None if i in gap else u for i, u in enumerate(usage))
        level = round(own.uniform(0.0, capacity), 1)
        installs = own.randint(0, 4)
        track = Track(
            unit="g",
            capacity=capacity,
            start=first,
            usage=Usage(track_usage),
            last_at=_noon(last_day).timestamp(),
            last_value=level,
            coarse=False,
            balance=0,
            last_order_day=None,
            installs=installs,
        )
        outlook = forecast(track, NOW, rules)
        days_left = outlook.days_left_total
        ordered: int | None = None
        if spec.kind != "waste" and days_left is not None and days_left <= rules.trigger_days - 1:
            # It crossed the trigger on an earlier day: that run ordered it (R8, R13).
            ordered = TODAY - max(1, int(rules.trigger_days - days_left))
            if spec.id == "black":
                black_order = ordered
        elif spec.kind == "waste" and black_order is not None and own.random() < 0.7:
            ordered = black_order  # R11: it came with the black toner
        elif spec.kind == "waste" and days_left is not None and days_left <= rules.trigger_days:
            # R11 keeps the room lasting as long as the black stock: a box this full had a
            # container come with the last black toner (collector.replenish.planner).
            ordered = TODAY - own.randint(LEAD_DAYS, 30)
        if ordered is not None:
            track = replace(track, balance=1, last_order_day=ordered)
            outlook = forecast(track, NOW, rules)
            counts.balance += 1
            delivered = TODAY - ordered >= LEAD_DAYS
            pending.lines[contact_id, ordered].append((serial, spec.id, spec.sku, delivered))
            states.append("toner-delivered" if delivered else "toner-ordered")
        elif installs and spec.kind != "waste":
            # An earlier order, delivered and installed.
            day = TODAY - own.randint(30, 120)
            track = replace(track, last_order_day=day)
            pending.lines[contact_id, day].append((serial, spec.id, spec.sku, True))
        figures = outlook.figures()
        colour = spec.colour
        rows["asr_supplies"].append((serial, spec.id, index, spec.kind, colour, spec.sku, capacity))
        rows["supply_tracks"].append(
            (
                serial,
                spec.id,
                _json_text(track.to_json()),
                _json_text(figures),
                outlook.runs_out_at(NOW),
                track.balance,
                LAST_RUN,
            )
        )
        counts.supplies += 1
        if reading_id is not None:
            left = max(0.0, level - today_use)
            rows["supplies"].append(
                (
                    reading_id,
                    index,
                    spec.kind,
                    colour,
                    round(100 * left / capacity, 1),
                    round(left * 10),
                    round(capacity * 10),
                    round(left, 1),
                    round(capacity - left, 1),
                    "measured",
                    spec.kind == "waste",
                )
            )
    if dark:
        since, state, sent = _noon(last_day) + timedelta(days=7), "disconnected", 1
    else:
        state = (
            "toner-ordered" if "toner-ordered" in states else (states or ["no-toner-pending"])[0]
        )
        since, sent = LAST_RUN - timedelta(days=own.randint(0, 30)), 0
    rows["device_states"].append((serial, state, "bench", False, since, sent, LAST_RUN))


def _shipments(
    rows: Rows, pending: Pending, counts: Counts, ids: Ids, customer: str, site: int
) -> None:
    for (contact_id, day), lines in sorted(pending.lines.items()):
        ids.shipment += 1
        placed = _evening(day)
        delivered = TODAY - day >= LEAD_DAYS
        status = "delivered" if delivered else "shipped"
        rows["shipments"].append(
            (
                ids.shipment,
                customer,
                site,
                contact_id,
                status,
                placed,
                placed + timedelta(hours=2),
                placed + timedelta(days=LEAD_DAYS) if delivered else None,
                1,
            )
        )
        for serial, supply_id, sku, _ in lines:
            ids.order += 1
            counts.orders += 1
            figures = _json_text({"bench": True})
            rows["orders"].append(
                (
                    ids.order,
                    ids.shipment,
                    serial,
                    supply_id,
                    sku,
                    1,
                    "trigger",
                    figures,
                    placed,
                    placed,
                )
            )
    pending.lines.clear()


def fleet_rows(devices: int, seed: int, rules: Rules, counts: Counts) -> Iterator[Rows]:
    """The fleet's rows, in chunks of about CHUNK devices (whole customers)."""
    rng = random.Random(seed)
    ids = Ids()
    rows = _empty()
    _head_rows(rows)
    placed = 0
    customer_no = 0
    in_chunk = 0
    while placed < devices:
        customer_no += 1
        customer = f"cust-{customer_no:06d}"
        kind = "mps" if rng.random() < 0.5 else "self"
        rows["customers"].append(
            (customer, NOW - timedelta(days=1000), kind, f"Customer {customer_no}", "it")
        )
        counts.customers += 1
        for s in range(1, rng.randint(1, 6) + 1):
            if placed >= devices:
                break
            ids.site += 1
            site_id = ids.site
            counts.sites += 1
            address = f"Via Roma {rng.randint(1, 200)}, 20100 Milano"
            rows["sites"].append(
                (site_id, customer, f"site-{s}", NOW - timedelta(days=999), address)
            )
            contact_ids = []
            for k in "ab"[: rng.randint(1, 2)]:
                ids.contact += 1
                counts.contacts += 1
                contact_ids.append(ids.contact)
                name = f"c{s}{k}"
                rows["contacts"].append(
                    (ids.contact, customer, name, f"{name}@{customer}.example", None)
                )
            pending = Pending()
            size = min(rng.randint(3, 7), devices - placed)
            for _ in range(size):
                placed += 1
                contact_id = rng.choice(contact_ids)
                _device(
                    rows, pending, counts, ids, rules, seed, placed, customer, site_id, contact_id
                )
            _shipments(rows, pending, counts, ids, customer, site_id)
            in_chunk += size
        if in_chunk >= CHUNK:
            yield rows
            rows, in_chunk = _empty(), 0
    yield rows


# --- building the database -----------------------------------------------------------------


def _progress(counts: Counts) -> None:
    if counts.devices % 20_000 < CHUNK:
        print(f"  built {counts.devices:,} devices", flush=True)


def _insert_sql(table: str) -> str:
    columns = COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _sqlite_value(value: Any) -> Any:
    return sqlite_time(value) if isinstance(value, datetime) else value


def _fill_sqlite(path: Path, devices: int, seed: int, rules: Rules) -> Counts:
    """The fleet's rows into the migrated file, with the collector's PRAGMAs."""
    counts = Counts()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        sqlite_pragmas(conn)
        for rows in fleet_rows(devices, seed, rules, counts):
            conn.execute("BEGIN")
            for table, data in rows.items():
                if data:
                    conn.executemany(
                        _insert_sql(table), [tuple(map(_sqlite_value, row)) for row in data]
                    )
            conn.execute("COMMIT")
            _progress(counts)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return counts


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def _remove(pattern: str, folder: Path) -> None:
    for leftover in folder.glob(pattern):
        leftover.unlink()


async def build_sqlite(path: Path, devices: int, seed: int, rules: Rules) -> Counts:
    """A migrated SQLite file at `path` with the fleet's rows."""
    _remove(f"{path.name}*", path.parent)
    db = Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db)
    finally:
        await db.close()
    return _fill_sqlite(path, devices, seed, rules)


def _pg_url(dsn: str, database: str) -> str:
    return make_url(dsn).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(dsn: str, sql: str) -> Any:
    engine = create_async_engine(dsn, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql))
            return result.all() if result.returns_rows else None
    finally:
        await engine.dispose()


async def _pg_connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


async def build_pg(dsn: str, name: str, devices: int, seed: int, rules: Rules) -> Counts:
    """A migrated PostgreSQL database `name` with the fleet's rows (made, or made again)."""
    await _pg_admin(dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await _pg_admin(dsn, f"CREATE DATABASE {name}")
    url = _pg_url(dsn, name)
    db = Database.open(url)
    try:
        await migrate(db)
    finally:
        await db.close()
    counts = Counts()
    conn = await _pg_connect(url)
    try:
        for rows in fleet_rows(devices, seed, rules, counts):
            async with conn.transaction():
                for table, data in rows.items():
                    if data:
                        await conn.copy_records_to_table(
                            table, records=data, columns=COLUMNS[table]
                        )
            _progress(counts)
        for table in SERIAL_TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does to a database in use
    finally:
        await conn.close()
    return counts


# --- measuring -----------------------------------------------------------------------------


class Memory:
    """The process's resident size, sampled in a thread: the peak since `reset`."""

    def __init__(self, every: float = 0.02) -> None:
        self._every = every
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self.now())

    def reset(self) -> int:
        """The resident size now, from which the next peak counts."""
        self.peak = self.now()
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class GCTimer:
    """Seconds the cyclic garbage collector ran, from gc.callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class Round:
    """One round's figures."""

    backend: str
    devices: int
    supplies: int
    points: int
    driver: float
    read: float
    read_peak_mb: float
    read_gc: float
    result: RunResult
    plan_peak_mb: float
    plan_gc: float
    shipments: int
    lines: int

    def row(self) -> str:
        r = self.result
        planning = r.decide_seconds + r.write_seconds
        total = r.read_seconds + planning
        return (
            f"| {self.backend} | {self.devices:,} | {self.supplies:,} | {self.driver:.1f} |"
            f" {self.read:.1f} | {r.read_seconds:.1f} | {r.decide_seconds:.1f} |"
            f" {r.write_seconds:.1f} | {total:.1f} | **{planning / self.read:.2f}** |"
            f" {r.decide_seconds / self.read:.2f} | {self.supplies / total:,.0f} |"
            f" {self.supplies / r.decide_seconds:,.0f} | {self.read_peak_mb:,.0f} /"
            f" {self.plan_peak_mb:,.0f} | {self.read_gc:.1f} / {self.plan_gc:.1f} |"
            f" {self.shipments:,} | {self.lines:,} |"
        )


HEADER = (
    "| database | devices | supplies | driver s | read s | run read s | decide s | write s"
    " | run total s | ratio | decide/read | sup/s | sup/s decide | peak MB read / run"
    " | GC s read / run | shipments | lines |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


async def driver_read(db: Database, url: str) -> tuple[float, int]:
    """Seconds to fetch every track row through the bare driver (JSON as text), and rows."""
    started = time.perf_counter()
    if db.dialect == "sqlite":
        conn = sqlite3.connect(make_url(url).database or "")
        try:
            count = len(
                conn.execute("SELECT serial, supply_id, track FROM supply_tracks").fetchall()
            )
        finally:
            conn.close()
    else:
        pg = await _pg_connect(url)
        try:
            count = len(await pg.fetch("SELECT serial, supply_id, track FROM supply_tracks"))
        finally:
            await pg.close()
    return time.perf_counter() - started, count


async def measure(
    backend: str, url: str, devices: int, rules: Rules, memory: Memory, chunk: int
) -> Round:
    """driver fetch, load_snapshot alone, then run_plan, on a fresh copy at `url`."""
    db = Database.open(url)
    timer = GCTimer()
    try:
        driver, _ = await driver_read(db, url)
        gc.collect()
        base = memory.reset()
        gc_before = timer.total
        started = time.perf_counter()
        with paused_gc():  # as run_plan reads: the same work, measured the same way
            snapshot = await load_snapshot(db, NOW)
        read = time.perf_counter() - started
        read_peak = (memory.peak - base) / 2**20
        read_gc = timer.total - gc_before
        supplies = len(snapshot.supplies)
        points = sum(len(p) for p in snapshot.points.values())
        del snapshot
        gc.collect()
        base = memory.reset()
        gc_before = timer.total
        result = await run_plan(db, rules, NOW, chunk=chunk)
        plan_peak = (memory.peak - base) / 2**20
        plan_gc = timer.total - gc_before
        if not result.ran:
            raise RuntimeError("run_plan did not run: the plan lock is held")

        def placed(conn: Connection) -> tuple[int, int]:
            count = select(func.count()).select_from(shipments)
            ships = conn.execute(count.where(shipments.c.plan_run_id == result.run_id)).scalar_one()
            lines = conn.execute(
                select(func.count())
                .select_from(orders.join(shipments, shipments.c.id == orders.c.shipment_id))
                .where(shipments.c.plan_run_id == result.run_id)
            ).scalar_one()
            return ships, lines

        ships, lines = await db.read(placed)
    finally:
        timer.close()
        await db.close()
    return Round(
        backend,
        devices,
        supplies,
        points,
        driver,
        read,
        read_peak,
        read_gc,
        result,
        plan_peak,
        plan_gc,
        ships,
        lines,
    )


async def as_worker(url: str, chunk: int, rules: Rules) -> int:
    """One worker process of `--workers`: its part of the run at NOW, as a JSON line."""
    db = Database.open(url)
    started = time.perf_counter()
    try:
        if db.dialect == "sqlite":  # the one embedded planner
            result = await run_plan(db, rules, NOW, chunk=chunk)
        else:
            result = await work_plan(db, rules, NOW, chunk=chunk)
    finally:
        await db.close()
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "chunks": result.chunks,
                "read": result.read_seconds,
                "decide": result.decide_seconds,
                "write": result.write_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


async def measure_workers(
    backend: str, url: str, devices: int, workers: int, chunk: int
) -> tuple[str, dict[str, Any]]:
    """The run at NOW made by `workers` processes (`plan --worker`'s work_plan, each its own
    process): the wall time from their start to the last one's end, each one's peak RSS."""
    command = [sys.executable, __file__, "--as-worker", url, "--chunk", str(chunk)]
    started = time.perf_counter()
    procs = [
        await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        for _ in range(workers)
    ]
    outs = [await proc.communicate() for proc in procs]
    wall = time.perf_counter() - started
    if any(proc.returncode for proc in procs):
        raise RuntimeError(f"a worker failed: {[proc.returncode for proc in procs]}")
    parts = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    db = Database.open(url)
    try:
        ships, lines = await db.read(
            lambda conn: (
                conn.execute(
                    select(func.count()).select_from(shipments).where(shipments.c.placed_at == NOW)
                ).scalar_one(),
                conn.execute(
                    select(func.count())
                    .select_from(orders.join(shipments, shipments.c.id == orders.c.shipment_id))
                    .where(shipments.c.placed_at == NOW)
                ).scalar_one(),
            )
        )
    finally:
        await db.close()
    each = ", ".join(
        f"{p['chunks']} chunks {p['peak_rss_mb']:.0f} MB"
        f" (read {p['read']:.1f} / decide {p['decide']:.1f} / write {p['write']:.1f} s)"
        for p in parts
    )
    row = (
        f"| {backend} | {devices:,} | {workers} | {chunk:,} | {wall:.1f} |"
        f" {max(p['peak_rss_mb'] for p in parts):.0f} | {each} | {ships:,} | {lines:,} |"
    )
    return row, {"wall": wall, "parts": parts, "shipments": ships, "lines": lines}


WORKERS_HEADER = (
    "| database | devices | workers | chunk | wall s | peak RSS MB (max of workers)"
    " | each worker | shipments | lines |\n|---|---|---|---|---|---|---|---|---|"
)


def _profiled(title: str, work: Callable[[], _T], top: int) -> tuple[_T, str]:
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        value = work()
    finally:
        profiler.disable()
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    out.write(f"\n### cProfile: {title} ({elapsed:.1f} s under the profiler)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return value, out.getvalue()


def profile_sync(conn: Connection, rules: Rules, top: int) -> str:
    """cProfile of load, daily and save (rolled back) on one connection, in this thread."""
    report = []
    loaded, text_ = _profiled("plans.load", lambda: load(conn, NOW), top)
    report.append(text_)
    conn.rollback()
    outcome, text_ = _profiled("daily.daily", partial(daily, loaded, NOW, rules), top)
    report.append(text_)
    del loaded
    gc.collect()
    _, text_ = _profiled("plans.save (rolled back)", lambda: save(conn, outcome, NOW, NOW), top)
    report.append(text_)
    conn.rollback()
    return "".join(report)


async def profile_round(backend: str, url: str, rules: Rules, top: int) -> str:
    """The three steps profiled on the database at `url`."""
    if backend == "sqlite":
        engine = create_engine(
            make_url(url).set(drivername="sqlite"),
            json_serializer=_json,
            json_deserializer=from_json,
        )
        event.listen(engine, "connect", lambda dbapi, _record: sqlite_pragmas(dbapi))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        try:
            with engine.connect() as conn:
                return profile_sync(conn, rules, top)
        finally:
            engine.dispose()
    async_engine = create_async_engine(url, json_serializer=_json, json_deserializer=from_json)
    try:
        async with async_engine.connect() as aconn:
            return await aconn.run_sync(lambda c: profile_sync(c, rules, top))
    finally:
        await async_engine.dispose()


# --- the built databases and their copies --------------------------------------------------


@dataclass
class Built:
    """A built database to copy from."""

    backend: str
    where: str  # the SQLite file, or the PostgreSQL database's name
    counts: dict[str, int]
    seconds: float


def _marker(keep: Path, backend: str, devices: int, seed: int) -> Path:
    return keep / f"plan-{backend}-{devices}-s{seed}.json"


async def _pg_exists(dsn: str, name: str) -> bool:
    rows = await _pg_admin(dsn, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    return bool(rows)


async def built(
    backend: str, devices: int, seed: int, rules: Rules, work: Path, keep: Path | None, dsn: str
) -> tuple[Built, bool]:
    """The built database for this fleet, from `keep` if it is there; whether it was reused."""
    folder = keep or work
    folder.mkdir(parents=True, exist_ok=True)
    where = (
        str(folder / f"plan-{devices}-s{seed}.db")
        if backend == "sqlite"
        else f"asr_bench_plan_{devices}_s{seed}"
    )
    marker = _marker(folder, backend, devices, seed)
    if keep is not None and marker.exists():
        saved = json.loads(marker.read_text())
        present = _is_file(where) if backend == "sqlite" else await _pg_exists(dsn, where)
        if saved.get("format") == FORMAT and saved.get("where") == where and present:
            return Built(backend, where, saved["counts"], saved["seconds"]), True
    started = time.perf_counter()
    if backend == "sqlite":
        counts = await build_sqlite(Path(where), devices, seed, rules)
    else:
        counts = await build_pg(dsn, where, devices, seed, rules)
    seconds = time.perf_counter() - started
    print(f"  built in {seconds:.0f} s: {counts.line()}")
    result = Built(backend, where, vars(counts), seconds)
    if keep is not None:
        marker.write_text(
            json.dumps(
                {"format": FORMAT, "where": where, "counts": vars(counts), "seconds": seconds}
            )
        )
    return result, False


@asynccontextmanager
async def copy_of(source: Built, work: Path, label: str, dsn: str) -> AsyncIterator[str]:
    """A fresh copy of the built database for one round: its URL; removed after."""
    if source.backend == "sqlite":
        path = work / f"round-{label}.db"
        shutil.copyfile(source.where, path)
        try:
            yield f"sqlite+aiosqlite:///{path}"
        finally:
            _remove(f"round-{label}.db*", work)
        return
    name = f"asr_bench_plan_round_{label}_{uuid.uuid4().hex[:6]}"
    await _pg_admin(dsn, f"CREATE DATABASE {name} TEMPLATE {source.where}")
    try:
        yield _pg_url(dsn, name)
    finally:
        await _pg_admin(dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc {os.cpu_count()} ({model or platform.machine()}),"
        f" {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM,"
        f" Linux {platform.release()}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, load average {load}"
    )


async def run(args: argparse.Namespace) -> int:
    rules = Rules()
    backends = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if "postgresql" in backends:
        version = await _pg_admin(args.pg_dsn, "SELECT version()")
        print(f"PostgreSQL: {version[0][0].split(',')[0]}")
    print(
        f"fleet: {args.devices:,} devices, seed {args.seed}, run at {NOW.isoformat()},"
        f" rules: defaults (history_days {rules.history_days}, trigger_days"
        f" {rules.trigger_days:g})",
        flush=True,
    )
    memory = Memory()
    rounds: list[Round] = []
    worker_rows: list[str] = []
    profiles: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="asr-bench-plan-") as tmp:
            work = Path(tmp)
            for backend in backends:
                print(f"{backend}: building (or reusing) the fleet", flush=True)
                source, reused = await built(
                    backend, args.devices, args.seed, rules, work, args.keep, args.pg_dsn
                )
                how = "reused" if reused else "built"
                print(
                    f"  {how} {source.where}: {Counts(**source.counts).line()}"
                    f" (build took {source.seconds:.0f} s)",
                    flush=True,
                )
                try:
                    if args.workers:
                        for n in range(args.rounds):
                            async with copy_of(source, work, f"{backend}w{n}", args.pg_dsn) as url:
                                row, _ = await measure_workers(
                                    backend, url, args.devices, args.workers, args.chunk
                                )
                            worker_rows.append(row)
                            print(f"  round {n + 1}: {row}", flush=True)
                        continue
                    for n in range(args.rounds):
                        async with copy_of(source, work, f"{backend}{n}", args.pg_dsn) as url:
                            gc.collect()
                            result = await measure(
                                backend, url, args.devices, rules, memory, args.chunk
                            )
                        rounds.append(result)
                        print(f"  round {n + 1}: {result.row()}", flush=True)
                    if args.profile:
                        async with copy_of(source, work, f"{backend}p", args.pg_dsn) as url:
                            profiles.append(await profile_round(backend, url, rules, args.top))
                finally:
                    if args.keep is None and backend == "postgresql":
                        await _pg_admin(
                            args.pg_dsn, f"DROP DATABASE IF EXISTS {source.where} WITH (FORCE)"
                        )
    finally:
        memory.stop()
    if worker_rows:
        print(f"\n{WORKERS_HEADER}")
        print("\n".join(worker_rows))
        return 0
    print(f"\n{HEADER}")
    for result in rounds:
        print(result.row())
    for result in rounds:
        r = result.result
        print(
            f"{result.backend}: {result.points:,} new reading points applied;"
            f" run counts {json.dumps(r.counts)}"
        )
    for text_ in profiles:
        print(text_)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--keep", type=Path, help="build into / reuse from this folder")
    parser.add_argument("--rounds", type=int, default=1, help="runs, each on a fresh copy")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile each step after")
    parser.add_argument("--top", type=int, default=25, help="profile entries to print")
    parser.add_argument("--pg-dsn", default=DEFAULT_PG)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="make the run with this many worker processes instead (PostgreSQL; SQLite: 1),"
        " and report each one's peak RSS",
    )
    parser.add_argument(
        "--chunk", type=int, default=CHUNK_DEVICES, help="devices per chunk of the run"
    )
    parser.add_argument("--as-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_worker:
        return asyncio.run(as_worker(args.as_worker, args.chunk, Rules()))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(_machine())
    print(code_version())
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
