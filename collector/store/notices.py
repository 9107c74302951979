"""What a notification is about, read for its email: the SQL of collector.notify.compose.

Is: `about`, one read of a notification's customer, contact, and the devices or the shipment
its payload names, as records.
Is not: who reads it, in which language, or its words (collector.notify.compose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from collector.store.database import Database
from collector.store.outbox_rows import Notification
from collector.store.schema import (
    asr_devices,
    contacts,
    customers,
    devices,
    orders,
    shipments,
    sites,
)


@dataclass(frozen=True)
class Customer:
    """The customer a notification is for."""

    id: str
    name: str
    kind: str
    language: str | None


@dataclass(frozen=True)
class Contact:
    """The contact a notification is addressed to."""

    name: str
    email: str
    display_name: str | None
    language: str | None


@dataclass(frozen=True)
class Device:
    """A device a notification names; its fields None or "" when it is not registered."""

    serial: str
    model: str | None
    site: str
    address: str | None
    last_seen: datetime | None


@dataclass(frozen=True)
class Line:
    """One order of a shipment."""

    serial: str
    supply_id: str
    sku: str | None
    quantity: int
    reason: str


@dataclass(frozen=True)
class Shipment:
    """A shipment a notification is about; `address`: the one on its label (R18)."""

    id: int
    placed_at: datetime
    address: str | None
    tracking: str | None
    carrier: str | None
    expected_at: datetime | None
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class About:
    """What a notification is about: `devices` and `shipment` when its payload names them."""

    customer: Customer
    contact: Contact | None
    devices: tuple[Device, ...] | None
    shipment: Shipment | None


async def about(db: Database, notification: Notification) -> About:
    """What `notification` is about, read in one transaction."""

    def read(conn: Connection) -> About:
        return read_about(conn, notification)

    return await db.read(read)


def read_about(conn: Connection, notification: Notification) -> About:
    """What `notification` is about (the customer and a contact id that are gone raise)."""
    row = conn.execute(select(customers).where(customers.c.id == notification.customer_id)).one()
    customer = Customer(row.id, row.name, row.kind, row.language)
    contact = None
    if notification.contact_id is not None:
        found = conn.execute(select(contacts).where(contacts.c.id == notification.contact_id))
        person = found.one()
        contact = Contact(person.name, person.email, person.display_name, person.language)
    payload = notification.payload
    listed = _devices(conn, payload["serials"]) if "serials" in payload else None
    shipment = _shipment(conn, int(payload["shipment"])) if "shipment" in payload else None
    return About(customer, contact, listed, shipment)


def _devices(conn: Connection, serials: Sequence[str]) -> tuple[Device, ...]:
    query = (
        select(
            asr_devices.c.serial,
            asr_devices.c.model,
            sites.c.name.label("site"),
            sites.c.address,
            devices.c.last_seen,
        )
        .join(sites, sites.c.id == asr_devices.c.site_id)
        .outerjoin(devices, devices.c.serial == asr_devices.c.serial)
        .where(asr_devices.c.serial.in_(serials))
    )
    found = {row.serial: row for row in conn.execute(query)}
    return tuple(
        Device(
            serial=serial,
            model=found[serial].model if serial in found else None,
            site=found[serial].site if serial in found else "",
            address=found[serial].address if serial in found else None,
            last_seen=found[serial].last_seen if serial in found else None,
        )
        for serial in serials
    )


def _shipment(conn: Connection, shipment_id: int) -> Shipment:
    query = (
        select(shipments, sites.c.address.label("site_address"))
        .join(sites, sites.c.id == shipments.c.site_id)
        .where(shipments.c.id == shipment_id)
    )
    row = conn.execute(query).one()
    lines = conn.execute(
        select(
            orders.c.serial, orders.c.supply_id, orders.c.sku, orders.c.quantity, orders.c.reason
        )
        .where(orders.c.shipment_id == shipment_id)
        .order_by(orders.c.id)
    )
    return Shipment(
        id=row.id,
        placed_at=row.placed_at,
        address=row.address or row.site_address,
        tracking=row.tracking,
        carrier=row.carrier,
        expected_at=row.expected_at,
        lines=tuple(Line(*line) for line in lines),
    )
