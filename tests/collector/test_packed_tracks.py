"""Migration 0011 (issue 16): stored tracks' daily usage packed, and back, on both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from collector.replenish.series import Days
from collector.replenish.track import Track
from collector.store.database import Database
from collector.store.migrate import MIGRATIONS
from collector.store.schema import supply_tracks
from tests.collector.conftest import PG_DSN

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)

_ROWS = """
INSERT INTO customers (id, created_at, kind) VALUES ('c', :t, 'self');
INSERT INTO sites (id, customer_id, name, created_at) VALUES (1, 'c', 's', :t);
INSERT INTO contacts (id, customer_id, name, email) VALUES (1, 'c', 'a', 'a@c.example');
INSERT INTO asr_devices (serial, customer_id, site_id, contact_id, registered_at)
  VALUES ('D1', 'c', 1, 1, :t);
INSERT INTO asr_supplies (serial, supply_id, supply_index, kind, colour, sku, rated_yield)
  VALUES ('D1', 'black', '1.1', 'toner', 'black', 'CF400A', 1500);
INSERT INTO asr_supplies (serial, supply_id, supply_index, kind, colour, sku, rated_yield)
  VALUES ('D1', 'waste', '1.2', 'waste', NULL, 'WB-9', 40000);
INSERT INTO asr_supplies (serial, supply_id, supply_index, kind, colour, sku, rated_yield)
  VALUES ('D1', 'cyan', '1.3', 'toner', 'cyan', 'CF401A', 1400)
"""

# As the collector stored tracks before 0011: JSON lists with nulls; one without a meter
# (stored before page counters were kept), one with the page counter's usage too.
_OLD: dict[str, dict[str, Any]] = {
    "black": {
        "unit": "g",
        "capacity": 700.0,
        "start": 739_000,
        "usage": [None, 10.0, 7.5, 0.333333, None, 12.123456],
        "last_at": 1.7e9,
        "last_value": 321.5,
        "coarse": False,
        "balance": 1,
        "last_order_day": 739_004,
        "installs": 2,
        "meter": {"start": 739_003, "usage": [None, 431.0, 80.25], "last": 5_000},
    },
    "waste": {
        "unit": "%",
        "capacity": 100.0,
        "start": None,
        "usage": [],
        "last_at": None,
        "last_value": None,
        "coarse": False,
        "balance": 0,
        "last_order_day": None,
        "installs": 0,
    },
}


async def _migrate(db: Database, revision: str, down: bool = False) -> None:
    def run(conn: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)

    async with db.transaction() as conn:
        await conn.run_sync(run)


async def _admin(sql: str) -> None:
    engine = create_async_engine(PG_DSN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of each kind, never migrated: the test migrates it."""
    if request.param == "sqlite":
        db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        yield db
        await db.close()
        return
    name = f"asr_m11_{uuid.uuid4().hex[:10]}"
    await _admin(f"CREATE DATABASE {name}")
    db = Database.open(make_url(PG_DSN).set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        await db.close()
        await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _stored(db: Database) -> dict[str, dict[str, Any]]:
    async with db.transaction() as conn:
        rows = await conn.execute(select(supply_tracks.c.supply_id, supply_tracks.c.track))
        return {row.supply_id: row.track for row in rows}


async def test_migration_0011_packs_stored_usage_and_unpacks_it_on_downgrade(
    fresh_db: Database,
) -> None:
    """Upgrading packs every stored track's usage (and its page counter's), a track loads to
    the same values as before, one already packed is left alone; downgrading gives back the
    JSON lists as they were."""
    await _migrate(fresh_db, "0010")
    at = NOW.replace(tzinfo=None) if fresh_db.dialect == "sqlite" else NOW
    async with fresh_db.transaction() as conn:
        for statement in filter(str.strip, _ROWS.split(";")):
            await conn.execute(text(statement), {"t": at})
        # A track the collector wrote packed already (a collector upgraded before the store).
        black = Track.from_json(_OLD["black"])
        packed = replace(black, usage=Days(black.usage, (28, 7)).freeze()).to_json()
        assert len(packed["usage_sums"]) == 2
        tracks = {**_OLD, "cyan": packed}
        for supply_id, track in tracks.items():
            await conn.execute(
                text(
                    "INSERT INTO supply_tracks (serial, supply_id, track, forecast, balance,"
                    " updated_at) VALUES ('D1', :s, :t, '{}', 0, :u)"
                ),
                {"s": supply_id, "t": json.dumps(track), "u": at},
            )
    await _migrate(fresh_db, "0011")
    stored = await _stored(fresh_db)
    assert isinstance(stored["black"]["usage"], str)
    assert isinstance(stored["black"]["meter"]["usage"], str)
    assert stored["cyan"] == packed
    for supply_id, old in _OLD.items():
        assert Track.from_json(stored[supply_id]) == Track.from_json(old)
        assert Track.from_json(stored[supply_id]).usage == tuple(old["usage"])
    assert "meter" not in stored["waste"]  # the rest of the object is as it was
    await _migrate(fresh_db, "0010", down=True)
    stored = await _stored(fresh_db)
    assert stored["black"] == _OLD["black"]
    assert stored["cyan"]["usage"] == _OLD["black"]["usage"]
    assert "usage_sums" not in stored["cyan"]
    assert stored["cyan"]["meter"]["usage"] == _OLD["black"]["meter"]["usage"]
    assert stored["waste"] == _OLD["waste"]
