"""Ingest throughput: readings/s through HTTPS + signature + validation + store, on SQLite and
PostgreSQL, beside the raw insert rate of the same rows into the same tables.

    .venv/bin/python bench/ingest.py [--batches 40] [--size 300] [--concurrency 4]
                                     [--pg-dsn postgresql+asyncpg://postgres@127.0.0.1:5432/test]

The collector runs as a real `asr-collector serve` process (HTTPS with a self-signed
certificate the client pins); this process is the agent: it enrolls, signs each batch just
before sending it and keeps `--concurrency` batches in flight. Each database is fresh and
migrated (PostgreSQL: a database made for the run and dropped after it).

"Raw" writes the rows a batch stores (the batch row with its body and signature headers, the
readings with their JSON payload, the supplies), with the same values as ingest stores them
(the same JSON text, SQLite's same time text), into a fresh database with the same schema and
indexes, one transaction per batch, rows prepared beforehand: executemany on SQLite (with the
collector's PRAGMAs), COPY on PostgreSQL. It is the ceiling the ingest path is measured
against (target: at least half of it).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from collector.service import Collector, Settings
from collector.store.database import Database, sqlite_pragmas
from collector.store.migrate import migrate
from collector.store.schema import sqlite_time
from collector.tls import fingerprint, self_signed
from wire.batch import Batch, BatchReading, Heartbeat, PrinterCounts, encode_batch
from wire.enroll import EnrollRequest, encode_message
from wire.reading import PrinterReading, Status, Supply
from wire.signing import encode_public_key, sign

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
COLOURS = ("black", "cyan", "magenta", "yellow")


def _reading(serial: str, level: int) -> PrinterReading:
    supplies = tuple(
        Supply(
            index=f"1.{i + 1}",
            description=f"{colour.title()} Toner Cartridge",
            type="toner",
            supply_class="consumed",
            colour=colour,
            unit="tenthsOfGrams",
            max_capacity=2400,
            level=level - 37 * i,
            percent=round(100 * (level - 37 * i) / 2400, 1),
            grams_left=(level - 37 * i) / 10,
            grams_used=(2400 - level + 37 * i) / 10,
            quality="measured",
            kind="toner",
            receptacle=False,
        )
        for i, colour in enumerate(COLOURS)
    ) + (
        Supply(
            index="1.5",
            description="Waste Toner Box",
            type="wasteToner",
            supply_class="filled",
            colour=None,
            unit="percent",
            max_capacity=100,
            level=-3,
            percent=None,
            grams_left=None,
            grams_used=None,
            quality="some-remaining",
            kind="waste",
            receptacle=True,
        ),
    )
    return PrinterReading(
        serial=serial,
        serial_source="prtGeneralSerialNumber",
        model="Acme ColorLaser CL-4500dn",
        sys_object_id="1.3.6.1.4.1.99999.1.4500",
        sys_descr="Acme ColorLaser CL-4500dn; firmware 2.1",
        vendor="acme",
        uptime_seconds=86400.5,
        page_count=184321 + level,
        power_on_count=None,
        counter_unit="impressions",
        status=Status(device="running", printer="idle", errors=(), power="ready"),
        supplies=supplies,
    )


def make_batches(agent_id: str, count: int, size: int, now: datetime) -> list[Batch]:
    """`count` batches of `size` readings from a fleet of 200 printers, seqs from 1."""
    batches = []
    for b in range(count):
        items = []
        for i in range(size):
            seq = b * size + i + 1
            items.append(
                BatchReading(
                    seq=seq,
                    read_at=now - timedelta(seconds=count * size - seq),
                    printer=f"printer-{seq % 200}",
                    address=f"10.0.{seq % 200 // 100}.{seq % 100 + 1}:161",
                    reading=_reading(f"CL45-{seq % 200:06d}", 2400 - seq % 2000),
                )
            )
        batches.append(
            Batch(
                agent_id=agent_id,
                batch_id=str(uuid.uuid4()),
                sent_at=now,
                readings=tuple(items),
                heartbeat=Heartbeat(
                    agent_version="bench",
                    uptime_seconds=3600.0,
                    printers=PrinterCounts(answering=200),
                    spool_depth=size,
                    dropped_total=0,
                    last_poll_at=now,
                ),
            )
        )
    return batches


# --- databases -----------------------------------------------------------------------------


@dataclass
class Target:
    """A fresh, migrated database for one measurement."""

    kind: str
    url: str
    drop: str | None = None  # PostgreSQL: the database to drop after


async def _admin(dsn: str, sql: str) -> None:
    engine = create_async_engine(dsn, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def fresh(kind: str, work: Path, pg_dsn: str, label: str) -> Target:
    if kind == "sqlite":
        target = Target(kind, f"sqlite+aiosqlite:///{work / label}.db")
    else:
        name = f"asr_bench_{label}_{uuid.uuid4().hex[:8]}"
        await _admin(pg_dsn, f"CREATE DATABASE {name}")
        url = make_url(pg_dsn).set(database=name).render_as_string(hide_password=False)
        target = Target(kind, url, name)
    db = Database.open(target.url)
    try:
        await migrate(db)
    finally:
        await db.close()
    return target


async def dispose(target: Target, pg_dsn: str) -> None:
    if target.drop:
        await _admin(pg_dsn, f"DROP DATABASE IF EXISTS {target.drop} WITH (FORCE)")


# --- the whole path ------------------------------------------------------------------------


async def _start_collector(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector.cli",
        "serve",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError("asr-collector serve exited")
        if line.startswith("listening on "):
            return proc, line.split()[-1]


async def whole_path(
    target: Target, work: Path, label: str, batches: int, size: int, concurrency: int
) -> tuple[float, int]:
    """Readings/s through `asr-collector serve`, and the readings it accepted."""
    cert, key_file, _ = self_signed(work / f"tls-{label}", "127.0.0.1", datetime.now(timezone.utc))
    config = work / f"collector-{label}.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{work}"\nlog_level = "warning"\n'
        f'[server]\nhost = "127.0.0.1"\nport = 0\ntls_cert = "{cert}"\ntls_key = "{key_file}"\n'
        f'[database]\nurl = "{target.url}"\n'
    )
    db = Database.open(target.url)
    try:
        token, _ = await Collector(db, Settings()).create_token("bench", "lab")
    finally:
        await db.close()
    proc, url = await _start_collector(config)
    accepted = 0
    try:
        pin = bytes.fromhex(fingerprint(cert).replace(":", ""))
        connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(pin), limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            agent_key = Ed25519PrivateKey.generate()
            enroll = EnrollRequest(token, encode_public_key(agent_key.public_key()), "bench", "b")
            async with http.post(
                url + "/api/v1/enroll",
                data=encode_message(enroll),
                headers={"Content-Type": "application/json"},
            ) as response:
                agent_id = (await response.json())["agent_id"]
            now = datetime.now(timezone.utc)
            bodies = [encode_batch(b) for b in make_batches(agent_id, batches + 2, size, now)]

            async def send(body: bytes) -> int:
                headers = sign(agent_key, body, datetime.now(timezone.utc))
                headers["Content-Type"] = "application/json"
                async with http.post(url + "/api/v1/readings", data=body, headers=headers) as r:
                    reply = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"{r.status}: {reply}")
                    return sum(x["status"] == "accepted" for x in reply["results"])

            for body in bodies[:2]:  # warm up: connections, caches, first pages
                await send(body)
            queue = list(bodies[2:])
            started = time.perf_counter()

            async def worker() -> int:
                done = 0
                while queue:
                    done += await send(queue.pop(0))
                return done

            accepted = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
            elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        await proc.wait()
    return accepted / elapsed, accepted


# --- the raw insert ------------------------------------------------------------------------


def _raw_rows(
    batches: list[Batch], agent_id: str, key_id: str, now: datetime
) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Per batch: the batch row, reading rows and supply rows (ids given), as ingest writes."""
    out = []
    reading_id = 0
    signer = Ed25519PrivateKey.generate()
    for n, batch in enumerate(batches, start=1):
        body = encode_batch(batch)
        headers = to_json(sign(signer, body, now)).decode()  # as ingest keeps them, for audit
        batch_row = (
            n,
            agent_id,
            batch.batch_id,
            key_id,
            now,
            now,
            len(batch.readings),
            headers,
            body,
        )
        readings, supplies = [], []
        for item in batch.readings:
            reading_id += 1
            readings.append(
                (
                    reading_id,
                    agent_id,
                    item.seq,
                    n,
                    item.reading.serial,
                    item.printer,
                    item.address,
                    item.read_at,
                    now,
                    to_json(item.reading.to_dict()).decode(),  # ingest's payload text
                )
            )
            for s in item.reading.supplies:
                supplies.append(
                    (
                        reading_id,
                        s.index,
                        s.kind,
                        s.colour,
                        s.percent,
                        s.level,
                        s.max_capacity,
                        s.grams_left,
                        s.grams_used,
                        s.quality,
                        s.receptacle,
                    )
                )
        out.append((batch_row, readings, supplies))
    return out


BATCH_COLUMNS = (
    "id",
    "agent_id",
    "batch_id",
    "key_id",
    "sent_at",
    "received_at",
    "reading_count",
    "headers",
    "body",
)
READING_COLUMNS = (
    "id",
    "agent_id",
    "seq",
    "batch_pk",
    "serial",
    "printer",
    "address",
    "read_at",
    "received_at",
    "payload",
)
SUPPLY_COLUMNS = (
    "reading_id",
    "supply_index",
    "kind",
    "colour",
    "percent",
    "level",
    "max_capacity",
    "grams_left",
    "grams_used",
    "quality",
    "receptacle",
)


async def _parent_rows(target: Target, now: datetime) -> tuple[str, str]:
    """An agent and key for the raw rows' foreign keys, made through the real service."""
    db = Database.open(target.url)
    try:
        collector = Collector(db, Settings())
        token, _ = await collector.create_token("bench", "lab")
        key = Ed25519PrivateKey.generate()
        request = EnrollRequest(token, encode_public_key(key.public_key()), "bench", "b")
        enrolled = await collector.enroll(encode_message(request))
    finally:
        await db.close()
    return enrolled.agent_id, enrolled.key_id


def _sqlite_raw(path: str, rows: list[Any]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(conn)  # the collector's: WAL, synchronous=NORMAL, foreign keys, busy timeout

    def q(table: str, columns: tuple[str, ...]) -> str:
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )

    def ts(value: Any) -> Any:
        return sqlite_time(value) if isinstance(value, datetime) else value

    prepared = [
        (
            tuple(ts(v) for v in batch_row),
            [tuple(ts(v) for v in r) for r in readings],
            supplies,
        )
        for batch_row, readings, supplies in rows
    ]
    started = time.perf_counter()
    for batch_row, readings, supplies in prepared:
        conn.execute("BEGIN")
        conn.execute(q("batches", BATCH_COLUMNS), batch_row)
        conn.executemany(q("readings", READING_COLUMNS), readings)
        conn.executemany(q("supplies", SUPPLY_COLUMNS), supplies)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def _pg_raw(url: str, rows: list[Any]) -> float:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
    )
    try:
        started = time.perf_counter()
        for batch_row, readings, supplies in rows:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "batches", records=[batch_row], columns=BATCH_COLUMNS
                )
                await conn.copy_records_to_table(
                    "readings", records=readings, columns=READING_COLUMNS
                )
                await conn.copy_records_to_table(
                    "supplies", records=supplies, columns=SUPPLY_COLUMNS
                )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def raw_insert(target: Target, batches: int, size: int) -> float:
    """Readings/s of the raw insert of the same rows."""
    now = datetime.now(timezone.utc)
    agent_id, key_id = await _parent_rows(target, now)
    rows = _raw_rows(make_batches(agent_id, batches, size, now), agent_id, key_id, now)
    if target.kind == "sqlite":
        elapsed = _sqlite_raw(make_url(target.url).database or "", rows)
    else:
        elapsed = await _pg_raw(target.url, rows)
    return batches * size / elapsed


# --- main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as tmp:
        work = Path(tmp)
        for kind in args.backends.split(","):
            rates, raws = [], []
            for attempt in range(args.repeat):  # alternated, best kept: the machine is shared
                label = f"{kind}{attempt}"
                path_target = await fresh(kind, work, args.pg_dsn, f"path{attempt}")
                raw_target = await fresh(kind, work, args.pg_dsn, f"raw{attempt}")
                try:
                    rate, accepted = await whole_path(
                        path_target, work, label, args.batches, args.size, args.concurrency
                    )
                    assert accepted == args.batches * args.size, accepted
                    raws.append(await raw_insert(raw_target, args.batches, args.size))
                    rates.append(rate)
                finally:
                    await dispose(path_target, args.pg_dsn)
                    await dispose(raw_target, args.pg_dsn)
            rate, raw = max(rates), max(raws)
            results.append((kind, rate, raw))
            print(
                f"| {kind} | {rate:,.0f} | {raw:,.0f} | {rate / raw:.2f} |"
                f"  (runs: ingest {', '.join(f'{r:,.0f}' for r in rates)};"
                f" raw {', '.join(f'{r:,.0f}' for r in raws)})",
                flush=True,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="timed batches per database")
    parser.add_argument("--size", type=int, default=300, help="readings per batch")
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-dsn", default=DEFAULT_PG)
    args = parser.parse_args()
    print(
        f"{args.batches} batches of {args.size} readings (5 supplies each),"
        f" {args.concurrency} in flight, best of {args.repeat}\n"
        "| database | ingest readings/s | raw insert readings/s | ratio |\n|---|---|---|---|"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
