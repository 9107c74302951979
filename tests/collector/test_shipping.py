"""A shipment's life (R3, R13, R15, R18): every step stored with its time and source, the
notices each step owes, wrong steps refused with nothing changed, installs read off the data.

The store-level tests run on both databases; the installed-from-readings test runs a year of
a scenario through the real ingest and daily run (the simulation) and reads its store.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from collector.daily_run import run_plan
from collector.errors import InvalidTransition, UnknownShipment
from collector.replenish.settings import Rules
from collector.simulation.contract import load_fleet, load_usage
from collector.simulation.runner import simulate
from collector.store import fleet as store
from collector.store import shipping
from collector.store.database import Database
from collector.store.schema import (
    fulfilment_requests,
    notifications,
    orders,
    plan_runs,
    shipment_events,
    shipments,
    sites,
    supply_events,
    supply_tracks,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


async def _fleet(db: Database) -> None:
    await store.add_customer(
        db,
        "rossi",
        "self",
        NOW,
        name="Rossi S.r.l.",
        language="it",
        sites_=[("milano", "Via Roma 1, 20121 Milano")],
        contacts_=[store.ContactSpec("anna", "anna@rossi.example", "Anna Rossi")],
    )
    supplies = (
        store.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0),
        store.SupplySpec("waste", "1.2", "waste", None, "WB-1"),
    )
    await store.register(
        db, [store.DeviceSpec("SN-1", "rossi", "milano", "anna", "MFP 1", supplies)], NOW
    )


async def _rows(db: Database, table: Any, *where: Any) -> list[Any]:
    return await db.read(lambda c: list(c.execute(select(table).where(*where))))


async def _state(db: Database, shipment_id: int) -> tuple[Any, ...]:
    """Everything a step may change, to compare before and after a refused one."""
    head = await _rows(db, shipments, shipments.c.id == shipment_id)
    events = await _rows(db, shipment_events, shipment_events.c.shipment_id == shipment_id)
    notices = await _rows(db, notifications)
    return (tuple(head[0]), [tuple(e) for e in events], [tuple(n) for n in notices])


async def test_r3_r18_a_placed_shipment_keeps_its_address_and_asks_the_warehouse(
    db: Database,
) -> None:
    await _fleet(db)
    shipment_id = await store.record_extra_order(db, "SN-1", "black", 2, NOW, note="big job")
    # R18: the address changes after the order; the shipment keeps the one it was placed for.
    async with db.transaction() as conn:
        await conn.execute(update(sites).values(address="Corso Como 5, Milano"))
    [head] = await _rows(db, shipments, shipments.c.id == shipment_id)
    assert head.status == "placed" and head.address == "Via Roma 1, 20121 Milano"
    [event] = await _rows(db, shipment_events, shipment_events.c.shipment_id == shipment_id)
    assert (event.status, event.source, event.at) == ("placed", "helpdesk", NOW)
    [request] = await _rows(db, fulfilment_requests)
    assert request.shipment_id == shipment_id and request.status == "pending"
    body = json.loads(request.body)
    assert body["reference"] == f"ASR-{shipment_id:06d}"
    assert body["ship_to"]["address"] == "Via Roma 1, 20121 Milano"
    assert body["ship_to"]["contact"] == {"name": "Anna Rossi", "email": "anna@rossi.example"}
    # R3: every line names its device; R11: the waste container travels with black toner.
    assert [(line["serial"], line["supply_id"], line["quantity"]) for line in body["lines"]] == [
        ("SN-1", "black", 2),
        ("SN-1", "waste", 2),
    ]
    assert all("SN-1" in line["label"] for line in body["lines"])


async def test_r15_each_step_is_stored_with_time_and_source_and_told(db: Database) -> None:
    await _fleet(db)
    shipment_id = await store.record_extra_order(db, "SN-1", "black", 1, NOW)
    day = timedelta(days=1)
    assert await shipping.advance(db, shipment_id, "backordered", NOW + day, "warehouse")
    assert await shipping.advance(
        db,
        shipment_id,
        "shipped",
        NOW + 3 * day,
        "warehouse",
        tracking="1Z999",
        carrier="UPS",
        expected_at=NOW + 5 * day,
    )
    # A warehouse saying it twice changes nothing.
    assert not await shipping.advance(db, shipment_id, "shipped", NOW + 4 * day, "warehouse")
    assert await shipping.advance(db, shipment_id, "delivered", NOW + 5 * day, "warehouse")
    [head] = await _rows(db, shipments, shipments.c.id == shipment_id)
    assert (head.status, head.tracking, head.carrier) == ("delivered", "1Z999", "UPS")
    assert (head.shipped_at, head.delivered_at, head.expected_at) == (
        NOW + 3 * day,
        NOW + 5 * day,
        NOW + 5 * day,
    )
    events = await _rows(db, shipment_events, shipment_events.c.shipment_id == shipment_id)
    assert [(e.status, e.source, e.at) for e in sorted(events, key=lambda e: e.id)] == [
        ("placed", "helpdesk", NOW),
        ("backordered", "warehouse", NOW + day),
        ("shipped", "warehouse", NOW + 3 * day),
        ("delivered", "warehouse", NOW + 5 * day),
    ]
    kinds = [n.kind for n in sorted(await _rows(db, notifications), key=lambda n: n.id)]
    # R4, R15: registered; placed; a backorder email; the backordered item's shipping email.
    assert kinds == ["registered", "order_placed", "backordered", "backorder_shipped"]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["shipped", "delivered"], "backordered"),
        (["shipped", "delivered"], "cancelled"),
        (["cancelled"], "shipped"),
        ([], "delivered"),
        ([], "installed"),
    ],
)
async def test_a_step_the_shipment_cannot_take_changes_nothing(
    db: Database, path: list[str], refused: str
) -> None:
    await _fleet(db)
    shipment_id = await store.record_extra_order(db, "SN-1", "black", 1, NOW)
    for i, status in enumerate(path, start=1):
        await shipping.advance(db, shipment_id, status, NOW + timedelta(hours=i), "warehouse")
    before = await _state(db, shipment_id)
    with pytest.raises(InvalidTransition, match=f"cannot become {refused}"):
        await shipping.advance(db, shipment_id, refused, NOW + timedelta(days=9), "warehouse")
    assert await _state(db, shipment_id) == before


async def test_an_unknown_shipment_or_source_is_refused(db: Database) -> None:
    await _fleet(db)
    with pytest.raises(UnknownShipment, match="no shipment 999"):
        await shipping.advance(db, 999, "shipped", NOW, "warehouse")
    shipment_id = await store.record_extra_order(db, "SN-1", "black", 1, NOW)
    with pytest.raises(InvalidTransition, match="source 'courier'"):
        await shipping.advance(db, shipment_id, "shipped", NOW, "courier")


async def test_r13_a_cancelled_shipment_leaves_the_balance(db: Database) -> None:
    await _fleet(db)
    rules = Rules()
    kept = await store.record_extra_order(db, "SN-1", "black", 1, NOW)
    cancelled = await store.record_extra_order(db, "SN-1", "black", 2, NOW)
    await run_plan(db, rules, NOW + timedelta(hours=1))  # R14: both count in the balance

    async def balance() -> int:
        [row] = await _rows(
            db,
            supply_tracks,
            supply_tracks.c.serial == "SN-1",
            supply_tracks.c.supply_id == "black",
        )
        assert row.track["balance"] == row.balance
        return int(row.balance)

    assert await balance() == 3
    assert await shipping.advance(db, cancelled, "cancelled", NOW + timedelta(hours=2), "helpdesk")
    assert await balance() == 1
    # A cancelled extra order placed after the last run never enters it.
    late = await store.record_extra_order(db, "SN-1", "black", 4, NOW + timedelta(hours=3))
    await shipping.advance(db, late, "cancelled", NOW + timedelta(hours=4), "helpdesk")
    await run_plan(db, rules, NOW + timedelta(days=1))
    assert await balance() == 1
    [head] = await _rows(db, shipments, shipments.c.id == kept)
    assert head.status == "placed"


async def test_r10_r13_a_consolidated_shipment_waits_for_every_device_s_cartridge(
    db: Database,
) -> None:
    # Found by the demo: a shipment holding two devices' lines (R10) became installed when
    # the first device's cartridge went in, and the second device's was never put in.
    await _fleet(db)
    supplies = (store.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0),)
    await store.register(
        db, [store.DeviceSpec("SN-2", "rossi", "milano", "anna", "MFP 2", supplies)], NOW
    )
    shipment_id = await store.record_extra_order(db, "SN-1", "black", 1, NOW, waste_per_black=0)
    shipped = NOW + timedelta(hours=5)

    def consolidate(c: Any) -> int:
        c.execute(
            insert(orders).values(
                shipment_id=shipment_id,
                serial="SN-2",
                supply_id="black",
                sku="TN-K",
                quantity=1,
                reason="consolidated",
                figures={},
                placed_at=NOW,
            )
        )
        for serial in ("SN-1", "SN-2"):
            c.execute(
                insert(supply_tracks).values(
                    serial=serial,
                    supply_id="black",
                    track={"last_value": 40.0},
                    forecast={},
                    balance=1,
                    updated_at=NOW,
                )
            )
        return int(
            c.execute(
                insert(plan_runs).values(
                    as_of=NOW, started_at=NOW, finished_at=NOW, received_until=NOW, counts={}
                )
            ).inserted_primary_key[0]
        )

    async with db.transaction() as conn:
        run_id = await conn.run_sync(consolidate)
    await shipping.advance(db, shipment_id, "shipped", shipped, "warehouse")

    async def install(serial: str, at: datetime) -> list[int]:
        def write(c: Any) -> list[int]:
            c.execute(
                insert(supply_events).values(
                    serial=serial,
                    supply_id="black",
                    kind="install",
                    at=at,
                    detail={},
                    plan_run_id=run_id,
                )
            )
            return shipping.installed(c, [(serial, "black")], at, run_id)

        async with db.transaction() as conn:
            return await conn.run_sync(write)

    assert await install("SN-1", shipped + timedelta(days=1)) == []
    [head] = await _rows(db, shipments, shipments.c.id == shipment_id)
    assert head.status == "shipped"  # SN-2's cartridge is not in yet
    assert await install("SN-2", shipped + timedelta(days=2)) == [shipment_id]
    [head] = await _rows(db, shipments, shipments.c.id == shipment_id)
    assert head.status == "installed"


def test_r13_shipments_are_installed_when_the_readings_see_each_cartridge_in(
    tmp_path: Path,
) -> None:
    scenario = EXAMPLES / "one-contact-site"
    fleet = load_fleet(scenario / "fleet.json")
    usage = load_usage(scenario / "usage.csv", fleet)
    path = tmp_path / "sim.db"
    asyncio.run(simulate(fleet, usage, "asr", database=path))

    async def read() -> tuple[list[Any], list[Any], list[Any]]:
        db = Database.open(f"sqlite+aiosqlite:///{path}")
        try:
            heads = await _rows(db, shipments)
            events = await _rows(db, shipment_events)
            requests = await _rows(db, fulfilment_requests)
        finally:
            await db.close()
        return heads, events, requests

    heads, events, requests = asyncio.run(read())
    statuses = [head.status for head in heads]
    assert statuses.count("installed") >= len(heads) // 2, statuses
    by_shipment: dict[int, list[Any]] = {}
    for event in sorted(events, key=lambda e: (e.at, e.id)):
        by_shipment.setdefault(event.shipment_id, []).append(event)
    for head in heads:
        steps = [(e.status, e.source) for e in by_shipment[head.id]]
        assert steps[0] == ("placed", "plan")
        assert steps[-1][0] == head.status
        if head.status == "installed":
            assert steps[-1] == ("installed", "readings")
            assert ("shipped", "warehouse") in steps
            assert head.installed_at >= head.shipped_at >= head.placed_at
    assert {r.shipment_id for r in requests} == {head.id for head in heads}
