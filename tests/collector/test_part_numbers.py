"""Real part numbers (issue 14; R3, R15): migration 0009, resolution at registration, the
helpdesk's queue (part number needed, cannot be forecast) with its access control, on both
databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from collector import catalogue
from collector.errors import InvalidRequest
from collector.portal import changes, helpdesk
from collector.records import Principal
from collector.store.database import Database
from collector.store.migrate import MIGRATIONS
from collector.store.schema import asr_supplies, audit_log, orders, readings, supply_tracks
from tests.collector.conftest import PG_DSN
from tests.collector.test_portal_api import Portal, portal  # noqa: F401  (the fixture)

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
HD = Principal(1, "hd", "helpdesk", None)


# --- migration 0009 ------------------------------------------------------------------------


async def _upgrade(db: Database, revision: str) -> None:
    def run(conn: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    async with db.transaction() as conn:
        await conn.run_sync(run)


_ROWS = """
INSERT INTO customers (id, created_at, kind) VALUES ('c', :t, 'self');
INSERT INTO sites (id, customer_id, name, created_at) VALUES (1, 'c', 's', :t);
INSERT INTO contacts (id, customer_id, name, email) VALUES (1, 'c', 'a', 'a@c.example');
INSERT INTO asr_devices (serial, customer_id, site_id, contact_id, registered_at)
  VALUES ('D1', 'c', 1, 1, :t);
INSERT INTO asr_supplies (serial, supply_id, supply_index, kind, colour, sku, rated_yield)
  VALUES ('D1', 'black', '1.1', 'toner', 'black', 'CF400A', 1500);
INSERT INTO shipments (id, customer_id, site_id, contact_id, status, placed_at)
  VALUES (1, 'c', 1, 1, 'placed', :t);
INSERT INTO orders (shipment_id, serial, supply_id, sku, quantity, reason, figures, placed_at)
  VALUES (1, 'D1', 'black', 'CF400A', 1, 'trigger', '{}', :t)
"""


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
    name = f"asr_m9_{uuid.uuid4().hex[:10]}"
    await _admin(f"CREATE DATABASE {name}")
    db = Database.open(make_url(PG_DSN).set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        await db.close()
        await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_migration_0009_keeps_rows_and_lets_part_numbers_be_unknown(
    fresh_db: Database,
) -> None:
    """Upgrading from 0008 with an order stored keeps its part numbers; NULL is allowed after."""
    await _upgrade(fresh_db, "0008")
    at = NOW.replace(tzinfo=None) if fresh_db.dialect == "sqlite" else NOW
    async with fresh_db.transaction() as conn:
        for statement in filter(str.strip, _ROWS.split(";")):
            await conn.execute(text(statement), {"t": at})
    await _upgrade(fresh_db, "0009")
    async with fresh_db.transaction() as conn:
        kept = (await conn.execute(select(asr_supplies.c.sku, asr_supplies.c.rated_yield))).one()
        assert tuple(kept) == ("CF400A", 1500)
        assert (await conn.execute(select(orders.c.sku))).scalar_one() == "CF400A"
        await conn.execute(update(asr_supplies).values(sku=None))  # allowed now
        await conn.execute(update(orders).values(sku=None))
    async with fresh_db.transaction() as conn:
        assert (await conn.execute(select(orders.c.sku))).scalar_one() is None


# --- resolution at registration ----------------------------------------------------------------

_BOOK = """
vendor = "Test"
[[model]]
name = "Test MFP"
match = ["MFP"]
[[model.supply]]
kind = "toner"
colour = "black"
parts = [{ number = "TK-100", yield = 7200 }, { number = "TK-100X", yield = 12000 }]
[[model.supply]]
kind = "waste"
parts = [{ number = "WB-9", yield = 40000 }]
"""


async def _latest_payload(served: Portal, serial: str) -> tuple[int, dict[str, Any]]:
    row = await served.db.read(
        lambda c: c.execute(
            select(readings.c.id, readings.c.payload)
            .where(readings.c.serial == serial)
            .order_by(readings.c.read_at.desc(), readings.c.id.desc())
            .limit(1)
        ).one()
    )
    return row.id, dict(row.payload)


async def _skus(served: Portal, serial: str) -> dict[str, tuple[str | None, int | None]]:
    rows = await served.db.read(
        lambda c: c.execute(
            select(asr_supplies.c.supply_id, asr_supplies.c.sku, asr_supplies.c.rated_yield).where(
                asr_supplies.c.serial == serial
            )
        ).all()
    )
    return {row.supply_id: (row.sku, row.rated_yield) for row in rows}


async def test_r15_registration_takes_the_devices_part_number_then_the_catalogues(
    portal: Portal,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The device's own part number first (with the catalogue's yield for it), else the
    catalogue's first part (and its yield), never the description."""
    path = tmp_path / "test.toml"
    path.write_text(_BOOK)
    book = catalogue.load([path])
    reading_id, payload = await _latest_payload(portal, "M2")
    for supply in payload["supplies"]:
        if supply.get("kind") == "toner":
            supply["part_number"] = "TK-100X"
            black_description = supply.get("description")
    assert black_description  # the printer gave a description: it is not the part number
    await _set_payload(portal, reading_id, payload)
    await changes.register_device(
        portal.db, HD, "M2", portal.ids["hq"], portal.ids["anna"], NOW, book
    )
    assert await _skus(portal, "M2") == {
        "black": ("TK-100X", 12000),  # (a) the device's own, with its rated yield
        "waste": ("WB-9", 40000),  # (b) the catalogue's, by model, kind and colour
    }


async def _set_payload(served: Portal, reading_id: int, payload: dict[str, Any]) -> None:
    async with served.db.transaction() as conn:
        await conn.execute(
            update(readings).where(readings.c.id == reading_id).values(payload=payload)
        )


async def test_r15_an_unknown_model_registers_with_part_number_needed(portal: Portal) -> None:  # noqa: F811
    """(c) Neither the device nor the catalogue knows it: NULL, never the description."""
    hd = await portal.client("hd")
    target = {"site_id": portal.ids["hq"], "contact_id": portal.ids["anna"]}
    done = await hd.call("POST", "/devices/M2/registration", target)
    assert done.status == 201, done.text
    assert {s["supply_id"]: s["sku"] for s in done.body["supplies"]} == {
        "black": None,
        "waste": None,
    }
    assert set((await _skus(portal, "M2")).values()) == {(None, None)}


# --- the helpdesk's queue ----------------------------------------------------------------------


async def test_the_queue_lists_part_numbers_needed_and_the_helpdesk_gives_one(
    portal: Portal,  # noqa: F811
) -> None:
    hd, mona = await portal.client("hd"), await portal.client("mona")
    target = {"site_id": portal.ids["hq"], "contact_id": portal.ids["anna"]}
    assert (await hd.call("POST", "/devices/M2/registration", target)).status == 201
    placed = await hd.call(
        "POST", "/devices/M2/extra-orders", {"supply_id": "black", "quantity": 1}
    )
    assert placed.status == 201, placed.text
    assert [line["sku"] for line in placed.body["lines"]] == [None, None]  # black and waste
    queue = await hd.call("GET", "/helpdesk/queue")
    assert queue.status == 200
    needed = {(r["serial"], r["supply_id"]): r for r in queue.body["part_numbers_needed"]}
    assert set(needed) == {("M2", "black"), ("M2", "waste")}
    assert needed["M2", "black"]["waiting_lines"] == 1
    assert needed["M2", "black"]["waiting_shipments"] == [placed.body["reference"]]
    # Customers never see the queue nor give part numbers.
    assert (await mona.call("GET", "/helpdesk/queue")).status == 403
    refused = await mona.call(
        "PUT", "/devices/M2/supplies/black/part-number", {"part_number": "TK-1"}
    )
    assert refused.status == 403
    # A description is refused, naming the field.
    bad = await hd.call(
        "PUT", "/devices/M2/supplies/black/part-number", {"part_number": "Black Toner Cartridge"}
    )
    assert bad.status == 400 and bad.body["field"] == "part_number"
    missing = await hd.call("PUT", "/devices/M9/supplies/black/part-number", {"part_number": "X1"})
    assert missing.status == 404
    done = await hd.call("PUT", "/devices/M2/supplies/black/part-number", {"part_number": "TK-1"})
    assert done.status == 200, done.text
    assert done.body["released"] == []  # the waste line still waits
    done = await hd.call("PUT", "/devices/M2/supplies/waste/part-number", {"part_number": "WB-1"})
    assert done.body["released"] == [placed.body["reference"]]
    after = await hd.call("GET", "/helpdesk/queue")
    assert after.body["part_numbers_needed"] == []
    device = await hd.call("GET", "/devices/M2")
    assert {s["supply_id"]: s["sku"] for s in device.body["supplies"]} == {
        "black": "TK-1",
        "waste": "WB-1",
    }
    entries = await portal.db.read(
        lambda c: c.execute(
            select(audit_log.c.action, audit_log.c.entity_key).where(
                audit_log.c.action == "part-number-set"
            )
        ).all()
    )
    assert sorted(tuple(e) for e in entries) == [
        ("part-number-set", "M2/black"),
        ("part-number-set", "M2/waste"),
    ]


async def test_the_queue_lists_supplies_that_cannot_be_forecast_with_why(portal: Portal) -> None:  # noqa: F811
    """A forecast whose basis is "none" is listed with its reason; one without a basis is not."""
    async with portal.db.transaction() as conn:
        rows = (await conn.execute(select(supply_tracks.c.serial, supply_tracks.c.supply_id))).all()
        assert ("M1", "black") in {tuple(r) for r in rows}
        blind = {"basis": "none", "why": "no level and no page counter"}
        await conn.execute(
            update(supply_tracks)
            .where(supply_tracks.c.serial == "M1", supply_tracks.c.supply_id == "black")
            .values(forecast=blind)
        )
        await conn.execute(
            update(supply_tracks)
            .where(supply_tracks.c.serial == "S1", supply_tracks.c.supply_id == "black")
            .values(forecast={"basis": "level", "why": "from the gauge"})
        )
    hd, sam = await portal.client("hd"), await portal.client("sam")
    queue = await hd.call("GET", "/helpdesk/queue")
    assert [(r["serial"], r["supply_id"], r["why"]) for r in queue.body["cannot_forecast"]] == [
        ("M1", "black", "no level and no page counter")
    ]
    assert (await sam.call("GET", "/helpdesk/queue")).status == 403
    page = await hd.http.get(hd.base + "/helpdesk")
    html = await page.text()
    assert page.status == 200 and "No level and no page counter" in html
    assert 'data-testid="cannot-forecast-row" data-serial="M1"' in html
    await sam.http.get(sam.base + "/fleet")
    refused = await sam.http.get(sam.base + "/helpdesk")
    assert refused.status == 403


async def test_the_queue_page_gives_a_part_number_through_its_form(portal: Portal) -> None:  # noqa: F811
    hd = await portal.client("hd")
    target = {"site_id": portal.ids["hq"], "contact_id": portal.ids["anna"]}
    assert (await hd.call("POST", "/devices/M2/registration", target)).status == 201
    page = await hd.http.get(hd.base + "/helpdesk")
    html = await page.text()
    assert 'data-testid="part-number-row" data-serial="M2" data-supply="black"' in html
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": csrf, "part_number": "not a part number"}
    bad = await hd.http.post(hd.base + "/devices/M2/supplies/black/part-number", data=form)
    assert bad.status == 400 and "Not set: part_number" in await bad.text()
    form["part_number"] = "TK-100"
    done = await hd.http.post(
        hd.base + "/devices/M2/supplies/black/part-number", data=form, allow_redirects=False
    )
    assert done.status == 303 and done.headers["Location"] == "/helpdesk"
    assert (await _skus(portal, "M2"))["black"][0] == "TK-100"


# --- the part number the helpdesk types ------------------------------------------------------


@given(st.text(max_size=50))
def test_a_typed_part_number_is_a_token_or_refused(value: str) -> None:
    try:
        cleaned = helpdesk.clean_part_number(value)
    except InvalidRequest as err:
        assert err.field == "part_number"
        return
    assert cleaned == value.strip() and catalogue.is_part_number(cleaned)
    assert " " not in cleaned and len(cleaned) <= 40


@pytest.mark.parametrize("value", ["CF400A", " TN-3280 ", "006R01509", "MX-61GTBA", "C13T945140"])
def test_real_part_numbers_are_taken(value: str) -> None:
    assert helpdesk.clean_part_number(value) == value.strip()


@pytest.mark.parametrize("value", ["Black Toner Cartridge", "Toner", "", "CF 400A", "X", None, 42])
def test_descriptions_and_junk_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest):
        helpdesk.clean_part_number(value)
