"""Migration 0011 (issue 16) on a fleet's tracks: how long packing them takes, and back.

    .venv/bin/python bench/track_migration.py --tracks 100000              # SQLite, a temp file
    .venv/bin/python bench/track_migration.py --tracks 100000 --database postgresql

Builds a database at revision 0010 holding `--tracks` tracks in the form stored before 0011
(90 days of usage as a JSON list, a page counter's on half of them: bench/tracks.py's), then
times the upgrade to 0011 and the downgrade back, each in one transaction, as the collector's
commands migrate a database when they open it. PostgreSQL: a scratch database on `--pg`
(created, then dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from benchinfo import code_version
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from tracks import stored_tracks

from collector.store.database import Database
from collector.store.migrate import MIGRATIONS

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
AT = "2026-12-01 00:00:00"


async def migrate(db: Database, revision: str, down: bool = False) -> float:
    """Seconds to migrate to `revision`."""

    def run(conn: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)

    t0 = time.perf_counter()
    async with db.transaction() as conn:
        await conn.run_sync(run)
    return time.perf_counter() - t0


async def fill(db: Database, count: int) -> None:
    """`count` tracks in the old form, four supplies a device."""
    tracks = stored_tracks(count, 11)
    devices = (count + 3) // 4
    async with db.transaction() as conn:
        for sql in (
            "INSERT INTO customers (id, created_at, kind) VALUES ('c', :t, 'self')",
            "INSERT INTO sites (id, customer_id, name, created_at) VALUES (1, 'c', 's', :t)",
            "INSERT INTO contacts (id, customer_id, name, email) VALUES (1, 'c', 'a', 'a@c.x')",
        ):
            await conn.execute(text(sql), {"t": _at(db)})
        await conn.execute(
            text(
                "INSERT INTO asr_devices (serial, customer_id, site_id, contact_id, registered_at)"
                " VALUES (:s, 'c', 1, 1, :t)"
            ),
            [{"s": f"D{d}", "t": _at(db)} for d in range(devices)],
        )
        rows = [(f"D{i // 4}", f"s{i % 4}", i % 4) for i in range(count)]
        await conn.execute(
            text(
                "INSERT INTO asr_supplies (serial, supply_id, supply_index, kind)"
                " VALUES (:s, :i, :x, 'toner')"
            ),
            [{"s": s, "i": i, "x": f"1.{x + 1}"} for s, i, x in rows],
        )
        await conn.execute(
            text(
                "INSERT INTO supply_tracks (serial, supply_id, track, forecast, balance,"
                " updated_at) VALUES (:s, :i, :k, '{}', 0, :t)"
            ),
            [
                {"s": s, "i": i, "k": json.dumps(track), "t": _at(db)}
                for (s, i, _), track in zip(rows, tracks, strict=True)
            ],
        )


def _at(db: Database) -> datetime:
    at = datetime.fromisoformat(AT).replace(tzinfo=timezone.utc)
    return at.replace(tzinfo=None) if db.dialect == "sqlite" else at


async def _admin(pg: str, sql: str) -> None:
    engine = create_async_engine(pg, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        name = f"asr_bench_m11_{uuid.uuid4().hex[:8]}"
        if args.database == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'm.db'}"
        else:
            await _admin(args.pg, f"CREATE DATABASE {name}")
            url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
        db = Database.open(url)
        try:
            await migrate(db, "0010")
            t0 = time.perf_counter()
            await fill(db, args.tracks)
            print(f"built {args.tracks:,} tracks at 0010 in {time.perf_counter() - t0:.1f} s")
            up = await migrate(db, "0011")
            down = await migrate(db, "0010", down=True)
            up_again = await migrate(db, "0011")
            n = args.tracks
            for label, s in (("upgrade", up), ("downgrade", down), ("upgrade again", up_again)):
                print(f"| {args.database} | {label} | {s:.1f} s | {n / s:,.0f} tracks/s |")
        finally:
            await db.close()
            if args.database != "sqlite":
                await _admin(args.pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg", default=PG, help="a PostgreSQL URL (asyncpg) to create it on")
    args = parser.parse_args()
    print(code_version(), f"| python {sys.version.split()[0]}")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
