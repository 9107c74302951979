"""The fleet in ASR: customers, sites, contacts, registered devices and their supplies (R4, R5).

Is: the writes that put devices into ASR and move orders along, each one transaction:
registration (R4: the confirmation notice goes to the outbox in the same transaction), extra
orders recorded by the helpdesk (R14), and a shipment's way to the customer (R15: placed,
backordered, shipped, delivered; each step leaves its notice in the outbox).
Is not: the flows and forms around them (the customers issue), or sending the notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from collector.errors import InvalidRequest
from collector.replenish.planner import ASR_KINDS, EXTRA, WASTE_WITH_BLACK
from collector.store import shipping
from collector.store.database import Database
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    contacts,
    customers,
    notifications,
    orders,
    shipments,
    sites,
)
from collector.store.shipping import BACKORDERED as BACKORDERED
from collector.store.shipping import DELIVERED as DELIVERED
from collector.store.shipping import PLACED as PLACED
from collector.store.shipping import SHIPPED as SHIPPED


@dataclass(frozen=True)
class ContactSpec:
    """A customer's supplies contact."""

    name: str
    email: str
    display_name: str | None = None
    language: str | None = None  # it, fr, en; None: the customer's


@dataclass(frozen=True)
class SupplySpec:
    """A supply of a registered device, and which supply of the readings it is."""

    supply_id: str
    supply_index: str
    kind: str  # R5: toner, ink or waste
    colour: str | None
    sku: str | None  # the part number; None: part number needed (docs/catalogue.md)
    capacity_grams: float | None = None
    rated_yield: int | None = None  # pages per cartridge on the box (catalogue), if known


@dataclass(frozen=True)
class DeviceSpec:
    """A device to register: where it ships and who is told (R10, R18)."""

    serial: str
    customer: str
    site: str
    contact: str
    model: str | None
    supplies: tuple[SupplySpec, ...]


def recipient(kind: str) -> str:
    """R16: who is told about a customer's devices: the helpdesk for MPS, else the contact."""
    return "helpdesk" if kind == "mps" else "contact"


async def add_customer(
    db: Database,
    customer: str,
    kind: str,
    now: datetime,
    *,
    name: str | None = None,
    language: str | None = None,
    sites_: Sequence[tuple[str, str | None]] = (),
    contacts_: Sequence[ContactSpec] = (),
) -> None:
    """Create or update a customer with its sites (name, address) and contacts (R18)."""
    if kind not in ("mps", "self"):
        raise InvalidRequest("kind must be 'mps' or 'self'", "kind")
    async with db.transaction() as conn:
        await conn.run_sync(
            lambda c: _add_customer(db, c, customer, kind, now, name, language, sites_, contacts_)
        )


def _add_customer(
    db: Database,
    conn: Connection,
    customer: str,
    kind: str,
    now: datetime,
    name: str | None,
    language: str | None,
    sites_: Sequence[tuple[str, str | None]],
    contacts_: Sequence[ContactSpec],
) -> None:
    values = {"kind": kind, "name": name, "language": language}
    conn.execute(
        db.insert(customers)
        .values(id=customer, created_at=now, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values)
    )
    for site, address in sites_:
        conn.execute(
            db.insert(sites)
            .values(customer_id=customer, name=site, created_at=now, address=address)
            .on_conflict_do_update(
                index_elements=["customer_id", "name"], set_={"address": address}
            )
        )
    for contact in contacts_:
        set_ = {
            "email": contact.email,
            "display_name": contact.display_name,
            "language": contact.language,
        }
        conn.execute(
            db.insert(contacts)
            .values(customer_id=customer, name=contact.name, **set_)
            .on_conflict_do_update(index_elements=["customer_id", "name"], set_=set_)
        )


async def register(db: Database, devices: Sequence[DeviceSpec], now: datetime) -> None:
    """R4: put devices into ASR (one transaction); a confirmation notice for each."""
    async with db.transaction() as conn:
        await conn.run_sync(lambda c: register_in(c, devices, now))


def _register(conn: Connection, devices: Sequence[DeviceSpec], now: datetime) -> None:
    site_ids = {
        (row.customer_id, row.name): row.id
        for row in conn.execute(select(sites.c.id, sites.c.customer_id, sites.c.name))
    }
    contact_ids = {
        (row.customer_id, row.name): row.id
        for row in conn.execute(select(contacts.c.id, contacts.c.customer_id, contacts.c.name))
    }
    kinds = dict(conn.execute(select(customers.c.id, customers.c.kind)).all())
    device_rows: list[dict[str, Any]] = []
    supply_rows: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for d in devices:
        site_id = site_ids.get((d.customer, d.site))
        contact_id = contact_ids.get((d.customer, d.contact))
        if site_id is None or contact_id is None:
            missing = "site" if site_id is None else "contact"
            name = d.site if site_id is None else d.contact
            raise InvalidRequest(f"{d.serial}: {d.customer} has no {missing} {name!r}", missing)
        device_rows.append(
            {
                "serial": d.serial,
                "customer_id": d.customer,
                "site_id": site_id,
                "contact_id": contact_id,
                "model": d.model,
                "registered_at": now,
            }
        )
        supply_rows.extend(
            {
                "serial": d.serial,
                "supply_id": s.supply_id,
                "supply_index": s.supply_index,
                "kind": s.kind,
                "colour": s.colour,
                "sku": s.sku,
                "capacity_grams": s.capacity_grams,
                "rated_yield": s.rated_yield,
            }
            for s in d.supplies
        )
        to = recipient(kinds[d.customer])  # R4: confirmed at once; MPS: to the helpdesk
        notices.append(
            notice_row("registered", d.customer, contact_id, to, now, serials=[d.serial])
        )
    if device_rows:
        conn.execute(asr_devices.insert(), device_rows)
        conn.execute(notifications.insert(), notices)
    if supply_rows:
        conn.execute(asr_supplies.insert(), supply_rows)


def notice_row(
    kind: str, customer: str, contact_id: int, to: str, now: datetime, **payload: Any
) -> dict[str, Any]:
    """An outbox row for the mailer: what happened, to whom (contact or helpdesk), and when."""
    return {
        "kind": kind,
        "customer_id": customer,
        "contact_id": contact_id,
        "recipient": to,
        "created_at": now,
        "payload": payload,
        "sent_at": None,
    }


async def record_extra_order(
    db: Database,
    serial: str,
    supply_id: str,
    quantity: int,
    now: datetime,
    note: str = "",
    waste_per_black: int = 1,
) -> int:
    """R14: an extra order recorded by the helpdesk; it counts in the balance. Its shipment id.

    R11: black toner ordered this way brings its waste containers too, as ASR's orders do.
    """
    async with db.transaction() as conn:
        return await conn.run_sync(
            lambda c: record_extra_in(c, serial, supply_id, quantity, now, note, waste_per_black)
        )


def _record_extra(
    conn: Connection,
    serial: str,
    supply_id: str,
    quantity: int,
    now: datetime,
    note: str,
    waste_per_black: int,
) -> int:
    row = conn.execute(
        select(
            asr_devices.c.customer_id,
            asr_devices.c.site_id,
            asr_devices.c.contact_id,
            asr_supplies.c.sku,
            asr_supplies.c.kind,
            asr_supplies.c.colour,
            customers.c.kind.label("customer_kind"),
        )
        .join(asr_supplies, asr_supplies.c.serial == asr_devices.c.serial)
        .join(customers, customers.c.id == asr_devices.c.customer_id)
        .where(asr_devices.c.serial == serial, asr_supplies.c.supply_id == supply_id)
    ).first()
    if row is None:
        raise InvalidRequest(f"no registered supply {supply_id!r} on device {serial!r}", "supply")
    shipment_id: int = conn.execute(
        shipments.insert()
        .values(
            customer_id=row.customer_id,
            site_id=row.site_id,
            contact_id=row.contact_id,
            status=PLACED,
            placed_at=now,
        )
        .returning(shipments.c.id)
    ).scalar_one()
    line = {
        "shipment_id": shipment_id,
        "serial": serial,
        "placed_at": now,
        "counted_at": None,  # the next plan run adds it to the balance
    }
    lines = [
        {
            **line,
            "supply_id": supply_id,
            "sku": row.sku,
            "quantity": quantity,
            "reason": EXTRA,
            "figures": {"note": note, "recorded_by": "helpdesk"},
        }
    ]
    if row.kind == "toner" and (row.colour or "").lower() == "black" and waste_per_black > 0:
        waste = conn.execute(
            select(asr_supplies.c.supply_id, asr_supplies.c.sku)
            .where(asr_supplies.c.serial == serial, asr_supplies.c.kind == "waste")
            .order_by(asr_supplies.c.supply_id)
        ).first()
        if waste is not None:
            figures = {"with": supply_id, "recorded_by": "helpdesk"}
            lines.append(
                {
                    **line,
                    "supply_id": waste.supply_id,
                    "sku": waste.sku,
                    "quantity": quantity * waste_per_black,
                    "reason": WASTE_WITH_BLACK,
                    "figures": figures,
                }
            )
    conn.execute(orders.insert(), lines)
    shipping.placed(conn, [shipment_id], now, "helpdesk")  # to the warehouse (R3)
    to = recipient(row.customer_kind)
    conn.execute(  # R15: an order placed, the helpdesk's as ASR's
        notifications.insert(),
        [
            notice_row(
                "order_placed", row.customer_id, row.contact_id, to, now, shipment=shipment_id
            )
        ],
    )
    return shipment_id


async def move_shipment(
    db: Database, shipment_id: int, status: str, now: datetime, source: str = "warehouse"
) -> None:
    """R15: a shipment is backordered, shipped or delivered; the contact's notice goes out."""
    await move_shipments(db, [shipment_id], status, now, source)


async def move_shipments(
    db: Database, ids: Sequence[int], status: str, now: datetime, source: str = "warehouse"
) -> None:
    """Several shipments take the same step, in one transaction (collector.store.shipping)."""
    if status not in (BACKORDERED, SHIPPED, DELIVERED):
        raise InvalidRequest(f"status {status!r}: backordered, shipped or delivered", "status")
    if ids:
        step = shipping.Step(status, now, source)
        async with db.transaction() as conn:
            await conn.run_sync(lambda c: shipping.take(c, ids, step, now))


def register_in(conn: Connection, devices: Sequence[DeviceSpec], now: datetime) -> None:
    """R4: `register` inside the caller's transaction (the portal's, with its audit row)."""
    for device in devices:
        for supply in device.supplies:
            if supply.kind not in ASR_KINDS:  # R5: drums, fusers, kits are ordered by hand
                raise InvalidRequest(
                    f"{device.serial} {supply.supply_id}: kind {supply.kind!r} is outside ASR"
                    f" (only {', '.join(ASR_KINDS)})",
                    "kind",
                )
    _register(conn, devices, now)


def record_extra_in(
    conn: Connection,
    serial: str,
    supply_id: str,
    quantity: int,
    now: datetime,
    note: str = "",
    waste_per_black: int = 1,
) -> int:
    """R14: `record_extra_order` inside the caller's transaction (the portal's, audited)."""
    if quantity < 1:
        raise InvalidRequest("quantity must be 1 or more", "quantity")
    return _record_extra(conn, serial, supply_id, quantity, now, note, waste_per_black)
