"""The portal's changes as written (R14, R15, R18): each one transaction with its audit row.

Is: the writes behind the portal's changes: a site's address, a supplies contact, a device's
assignment, an extra order and a supply's part number (a registration is
collector.store.write_registration's). Each first reads who owns the object and hands that
`Owner` (None: no such object) to the caller's `check`, which raises to refuse; the write
then happens in the same transaction, so a refusal writes nothing. Input errors found here
(a site that is not the customer's, a supply the device lacks) are InvalidRequest naming the
field.
Is not: who may do what, or the input's checks (collector.portal.changes, .helpdesk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, select, update

from collector.errors import InvalidRequest
from collector.records import Principal
from collector.store import fleet, shipping
from collector.store.database import Database
from collector.store.people import audit
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    contacts,
    customers,
    orders,
    sites,
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Owner:
    """Whose an object is: the customer and its kind (mps or self)."""

    customer_id: str
    kind: str


Check = Callable[[Owner | None], None]
"""The caller's say on a change: given the object's owner (None: no such object), raise to
refuse it, or return to let it be written."""


def _owner(conn: Connection, customer_id: str) -> Owner:
    kind: str = conn.execute(
        select(customers.c.kind).where(customers.c.id == customer_id)
    ).scalar_one()
    return Owner(customer_id, kind)


def approved(conn: Connection, row: Any, check: Check) -> Any:
    """`row`, once `check` let its owner's object change; a missing row is `check`'s to refuse."""
    check(None if row is None else _owner(conn, row.customer_id))
    if row is None:
        raise LookupError("a check let a missing object through")
    return row


async def in_transaction(db: Database, write: Callable[[Connection], _T]) -> _T:
    """`write` run in one transaction; its result."""
    async with db.transaction() as conn:
        return await conn.run_sync(write)


# --- R18: address, contact, assignment -----------------------------------------------------


async def set_site_address(
    db: Database, principal: Principal, site_id: int, address: str, now: datetime, check: Check
) -> None:
    """R18: a site's shipping address (orders already placed keep theirs); audited."""

    def write(conn: Connection) -> None:
        row = approved(
            conn,
            conn.execute(
                select(sites.c.customer_id, sites.c.name, sites.c.address).where(
                    sites.c.id == site_id
                )
            ).first(),
            check,
        )
        if row.address == address:
            return
        conn.execute(update(sites).where(sites.c.id == site_id).values(address=address))
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "site",
            str(site_id),
            "address-changed",
            {"name": row.name, "address": row.address},
            {"name": row.name, "address": address},
        )

    await in_transaction(db, write)


async def set_contact(
    db: Database,
    principal: Principal,
    contact_id: int,
    values: dict[str, str | None],
    now: datetime,
    check: Check,
) -> None:
    """R18: a supplies contact's email, display_name and language (`values`); audited."""

    def write(conn: Connection) -> None:
        row = approved(
            conn,
            conn.execute(
                select(
                    contacts.c.customer_id,
                    contacts.c.name,
                    contacts.c.email,
                    contacts.c.display_name,
                    contacts.c.language,
                ).where(contacts.c.id == contact_id)
            ).first(),
            check,
        )
        before = {"email": row.email, "display_name": row.display_name, "language": row.language}
        if before == values:
            return
        conn.execute(update(contacts).where(contacts.c.id == contact_id).values(values))
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "contact",
            str(contact_id),
            "contact-changed",
            {"name": row.name, **before},
            {"name": row.name, **values},
        )

    await in_transaction(db, write)


def site_and_contact(
    conn: Connection, customer_id: str, site_id: int, contact_id: int
) -> tuple[Any, Any]:
    """The customer's site and contact; InvalidRequest naming the field if not its own."""
    site = conn.execute(
        select(sites.c.id, sites.c.name).where(
            sites.c.id == site_id, sites.c.customer_id == customer_id
        )
    ).first()
    if site is None:
        raise InvalidRequest("site_id: not one of this customer's sites", "site_id")
    contact = conn.execute(
        select(contacts.c.id, contacts.c.name).where(
            contacts.c.id == contact_id, contacts.c.customer_id == customer_id
        )
    ).first()
    if contact is None:
        raise InvalidRequest("contact_id: not one of this customer's contacts", "contact_id")
    return site, contact


async def assign(
    db: Database,
    principal: Principal,
    serial: str,
    site_id: int,
    contact_id: int,
    now: datetime,
    check: Check,
) -> None:
    """R18: where a registered device ships and who is told (R10 groups by these); audited."""

    def write(conn: Connection) -> None:
        row = approved(
            conn,
            conn.execute(
                select(
                    asr_devices.c.customer_id, asr_devices.c.site_id, asr_devices.c.contact_id
                ).where(asr_devices.c.serial == serial)
            ).first(),
            check,
        )
        site_and_contact(conn, row.customer_id, site_id, contact_id)
        if (row.site_id, row.contact_id) == (site_id, contact_id):
            return
        conn.execute(
            update(asr_devices)
            .where(asr_devices.c.serial == serial)
            .values(site_id=site_id, contact_id=contact_id)
        )
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "device",
            serial,
            "assigned",
            {"site_id": row.site_id, "contact_id": row.contact_id},
            {"site_id": site_id, "contact_id": contact_id},
        )

    await in_transaction(db, write)


# --- R14: extra orders, R15: part numbers --------------------------------------------------


async def record_extra(
    db: Database,
    principal: Principal,
    serial: str,
    supply_id: str,
    quantity: int,
    note: str,
    now: datetime,
    waste_per_black: int,
    check: Check,
) -> int:
    """R14: an extra order for a registered device's supply; it counts in the balance.
    Audited; its shipment id."""

    def write(conn: Connection) -> int:
        row = approved(
            conn,
            conn.execute(
                select(asr_devices.c.customer_id).where(asr_devices.c.serial == serial)
            ).first(),
            check,
        )
        known = conn.execute(
            select(asr_supplies.c.supply_id).where(
                asr_supplies.c.serial == serial, asr_supplies.c.supply_id == supply_id
            )
        ).first()
        if known is None:
            raise InvalidRequest(f"supply_id: {serial} has no supply {supply_id!r}", "supply_id")
        shipment_id = fleet.record_extra_in(
            conn, serial, supply_id, quantity, now, note, waste_per_black
        )
        after = {
            "shipment_id": shipment_id,
            "supply_id": supply_id,
            "quantity": quantity,
            "note": note,
        }
        audit(conn, now, principal, row.customer_id, "order", serial, "extra-order", None, after)
        return shipment_id

    result: int = await in_transaction(db, write)
    return result


async def set_part_number(
    db: Database,
    principal: Principal,
    serial: str,
    supply_id: str,
    number: str,
    now: datetime,
    check: Check,
) -> list[int]:
    """A supply's part number, also on its order lines still without one; the shipments that
    then have every number get their warehouse request (shipping.release). Audited; the
    shipments released."""

    def write(conn: Connection) -> list[int]:
        row = approved(
            conn,
            conn.execute(
                select(asr_supplies.c.sku, asr_devices.c.customer_id)
                .join(asr_devices, asr_devices.c.serial == asr_supplies.c.serial)
                .where(asr_supplies.c.serial == serial, asr_supplies.c.supply_id == supply_id)
            ).first(),
            check,
        )
        key = (orders.c.serial == serial) & (orders.c.supply_id == supply_id)
        shipment_ids = list(
            conn.execute(
                select(orders.c.shipment_id).where(key, orders.c.sku.is_(None)).distinct()
            ).scalars()
        )
        conn.execute(
            update(asr_supplies)
            .where(asr_supplies.c.serial == serial, asr_supplies.c.supply_id == supply_id)
            .values(sku=number)
        )
        conn.execute(update(orders).where(key, orders.c.sku.is_(None)).values(sku=number))
        released = shipping.release(conn, shipment_ids, now)
        after = {"part_number": number, "shipments": shipment_ids, "released": released}
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "supply",
            f"{serial}/{supply_id}",
            "part-number-set",
            {"part_number": row.sku},
            after,
        )
        return released

    released: list[int] = await in_transaction(db, write)
    return released
