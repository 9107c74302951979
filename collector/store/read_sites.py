"""Customers, sites, contacts and the audit trail as the portal reads them (R17, R18).

Is: each read scoped by a Principal: a customer's user sees its own customer's rows only
(another's are simply not there); the helpdesk sees all. Is not: a writer
(collector.portal.changes).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, true

from collector.records import Principal
from collector.store.database import Database
from collector.store.read_records import (
    AuditEntry,
    ContactView,
    CustomerView,
    SiteDevice,
    SiteView,
    scoped,
)
from collector.store.schema import asr_devices, audit_log, contacts, customers, device_states
from collector.store.schema import sites as site_rows


def contact_view(row: Any) -> ContactView:
    """A contacts row as its record."""
    return ContactView(row.id, row.customer_id, row.name, row.email, row.display_name, row.language)


async def customer_name_kind(db: Database, customer_id: str) -> tuple[str | None, str] | None:
    """The customer's name and kind (mps or self); None if there is no such customer."""
    row = await db.read(
        lambda c: c.execute(
            select(customers.c.name, customers.c.kind).where(customers.c.id == customer_id)
        ).first()
    )
    return (row.name, row.kind) if row is not None else None


async def customer_list(db: Database, principal: Principal) -> list[CustomerView]:
    """The customers the principal sees (the helpdesk: all), by id."""
    query = select(customers.c.id, customers.c.name, customers.c.kind, customers.c.language)
    query = query.where(scoped(principal, customers.c.id)).order_by(customers.c.id)
    rows = await db.read(lambda c: c.execute(query).all())
    return [CustomerView(*row) for row in rows]


async def sites(
    db: Database, principal: Principal, *, site_id: int | None = None
) -> list[SiteView]:
    """The sites the principal sees, with the customer's contacts and the site's devices."""
    only = true() if site_id is None else site_rows.c.id == site_id

    def read(conn: Any) -> list[SiteView]:
        rows = list(
            conn.execute(
                select(
                    site_rows.c.id,
                    site_rows.c.customer_id,
                    site_rows.c.name,
                    site_rows.c.address,
                    customers.c.name.label("customer_name"),
                    customers.c.kind,
                )
                .join(customers, customers.c.id == site_rows.c.customer_id)
                .where(scoped(principal, site_rows.c.customer_id), only)
                .order_by(site_rows.c.customer_id, site_rows.c.name)
            )
        )
        by_customer: dict[str, list[ContactView]] = defaultdict(list)
        for c in conn.execute(
            select(contacts)
            .where(scoped(principal, contacts.c.customer_id))
            .order_by(contacts.c.customer_id, contacts.c.name)
        ):
            by_customer[c.customer_id].append(contact_view(c))
        by_site: dict[int, list[SiteDevice]] = defaultdict(list)
        for d in conn.execute(
            select(
                asr_devices.c.serial,
                asr_devices.c.model,
                asr_devices.c.site_id,
                asr_devices.c.contact_id,
                device_states.c.state,
            )
            .outerjoin(device_states, device_states.c.serial == asr_devices.c.serial)
            .where(scoped(principal, asr_devices.c.customer_id))
            .order_by(asr_devices.c.serial)
        ):
            by_site[d.site_id].append(SiteDevice(d.serial, d.model, d.contact_id, d.state))
        return [
            SiteView(
                id=r.id,
                customer_id=r.customer_id,
                customer_name=r.customer_name,
                customer_kind=r.kind,
                name=r.name,
                address=r.address,
                contacts=tuple(by_customer[r.customer_id]),
                devices=tuple(by_site[r.id]),
            )
            for r in rows
        ]

    return await db.read(read)


async def contact_list(
    db: Database, principal: Principal, *, contact_id: int | None = None
) -> list[ContactView]:
    """The contacts the principal sees (or the one with `contact_id`), by customer and name."""
    query = select(contacts).where(scoped(principal, contacts.c.customer_id))
    if contact_id is not None:
        query = query.where(contacts.c.id == contact_id)
    query = query.order_by(contacts.c.customer_id, contacts.c.name)
    rows = await db.read(lambda c: list(c.execute(query)))
    return [contact_view(r) for r in rows]


async def audit_trail(db: Database, principal: Principal, limit: int = 100) -> list[AuditEntry]:
    """The latest changes the principal may see (its customer's; the helpdesk: all)."""
    query = (
        select(audit_log)
        .where(scoped(principal, audit_log.c.customer_id))
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    rows = await db.read(lambda c: list(c.execute(query)))
    return [
        AuditEntry(
            r.id,
            r.at,
            r.actor,
            r.role,
            r.customer_id,
            r.entity,
            r.entity_key,
            r.action,
            r.before,
            r.after,
        )
        for r in rows
    ]
