"""The portal's changes (R4, R14, R18): each one transaction that also writes its audit row.

Is: who may do what, and the writes. For MPS customers the helpdesk changes shipping
addresses and supplies contacts, assigns and registers devices; for self-service customers
their own users do (R4, R18). Extra orders are the helpdesk's alone (R14). Another
customer's site, contact or device is "not found" (NotFound), never "forbidden", so nothing
of it leaks; Forbidden is for what the principal sees but its role may not change. Input is
checked first, with errors that name the field (InvalidRequest).
Is not: HTTP (collector.portal.api, .pages) or the reads (collector.portal.queries).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from collector import catalogue
from collector.errors import InvalidRequest
from collector.portal.errors import Forbidden, NotFound
from collector.portal.inputs import (
    MAX_ADDRESS,
    MAX_EXTRA_QUANTITY,
    MAX_NAME,
    MAX_NOTE,
    MAX_SERIAL,
    MAX_SUPPLY_ID,
    is_id,
    is_plain,
)
from collector.records import Principal
from collector.replenish.planner import ASR_KINDS
from collector.store import fleet
from collector.store.database import Database
from collector.store.people import audit
from collector.store.schema import (
    agents,
    asr_devices,
    asr_supplies,
    contacts,
    customers,
    devices,
    readings,
    sites,
    supplies,
)

LANGUAGES = ("it", "fr", "en")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NOT_PLAIN = "{}: valid Unicode without NUL or control characters (but tab and newline)"

# Customers read these: the rule ids (R4, R18; R14) stay here, out of the words.
HELPDESK_DOES_IT = "this customer is managed (MPS): the helpdesk makes this change"
CUSTOMER_DOES_IT = "this customer is self-service: its own users make this change"
EXTRA_VIA_HELPDESK = "extra orders go through the helpdesk"


# --- who may -------------------------------------------------------------------------------


def may_manage(principal: Principal, customer_kind: str) -> bool:
    """R4, R18: the helpdesk for MPS customers, the customer's own users for self-service."""
    if customer_kind == "mps":
        return principal.is_helpdesk
    return not principal.is_helpdesk


def _allow(principal: Principal, customer_id: str, customer_kind: str, what: str) -> None:
    """NotFound for another customer's object; Forbidden if the role may not change it."""
    if not principal.sees(customer_id):
        raise NotFound(f"no such {what}")
    if not may_manage(principal, customer_kind):
        raise Forbidden(HELPDESK_DOES_IT if customer_kind == "mps" else CUSTOMER_DOES_IT)


# --- validation ----------------------------------------------------------------------------


def clean_address(address: object) -> str:
    """A shipping address: non-empty, at most MAX_ADDRESS characters (R18)."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidRequest("address: required (where the supplies are shipped)", "address")
    if not is_plain(address):
        raise InvalidRequest(_NOT_PLAIN.format("address"), "address")
    text = "\n".join(line.strip() for line in address.strip().splitlines() if line.strip())
    if len(text) > MAX_ADDRESS:
        raise InvalidRequest(f"address: at most {MAX_ADDRESS} characters", "address")
    return text


def clean_email(email: object) -> str:
    """An email address: one @, no spaces, a dot in the domain."""
    if not isinstance(email, str) or not is_plain(email) or not _EMAIL.fullmatch(email.strip()):
        raise InvalidRequest("email: an address like name@example.com, without spaces", "email")
    text = email.strip()
    if len(text) > 254:
        raise InvalidRequest("email: at most 254 characters", "email")
    return text


def clean_language(language: object) -> str | None:
    """it, fr or en; empty or None: the customer's language."""
    if language is None or language == "":
        return None
    if language not in LANGUAGES:
        raise InvalidRequest(f"language: one of {', '.join(LANGUAGES)}", "language")
    return str(language)


def clean_display_name(name: object) -> str | None:
    """A contact's display name: optional, at most MAX_NAME characters."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidRequest("display_name: text", "display_name")
    if not is_plain(name):
        raise InvalidRequest(_NOT_PLAIN.format("display_name"), "display_name")
    text = " ".join(name.split())
    if len(text) > MAX_NAME:
        raise InvalidRequest(f"display_name: at most {MAX_NAME} characters", "display_name")
    return text or None


def _check_ids(serial: str, site_id: int, contact_id: int) -> None:
    """A serial that names nothing is not found; ids out of range are invalid (400)."""
    if not is_plain(serial) or not serial or len(serial) > MAX_SERIAL:
        raise NotFound("no such device", "serial")
    for field, value in (("site_id", site_id), ("contact_id", contact_id)):
        if not is_id(value):
            raise InvalidRequest(f"{field}: a whole number from 1 to 2**63 - 1", field)


def _customer_kind(conn: Connection, customer_id: str) -> str:
    kind: str = conn.execute(
        select(customers.c.kind).where(customers.c.id == customer_id)
    ).scalar_one()
    return kind


# --- R18: address, contact, assignment -----------------------------------------------------


async def change_site_address(
    db: Database, principal: Principal, site_id: int, address: str, now: datetime
) -> None:
    """R18: a site's shipping address (orders already placed keep theirs)."""
    text = clean_address(address)
    if not is_id(site_id):
        raise NotFound("no such site", "site_id")

    def write(conn: Connection) -> None:
        row = conn.execute(
            select(sites.c.customer_id, sites.c.name, sites.c.address).where(sites.c.id == site_id)
        ).first()
        if row is None:
            raise NotFound("no such site")
        _allow(principal, row.customer_id, _customer_kind(conn, row.customer_id), "site")
        if row.address == text:
            return
        conn.execute(update(sites).where(sites.c.id == site_id).values(address=text))
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "site",
            str(site_id),
            "address-changed",
            {"name": row.name, "address": row.address},
            {"name": row.name, "address": text},
        )

    async with db.transaction() as conn:
        await conn.run_sync(write)


async def change_contact(
    db: Database,
    principal: Principal,
    contact_id: int,
    email: str,
    display_name: str | None,
    language: str | None,
    now: datetime,
) -> None:
    """R18: a supplies contact's email, name and language (R15's emails go there)."""
    values = {
        "email": clean_email(email),
        "display_name": clean_display_name(display_name),
        "language": clean_language(language),
    }
    if not is_id(contact_id):
        raise NotFound("no such contact", "contact_id")

    def write(conn: Connection) -> None:
        row = conn.execute(
            select(
                contacts.c.customer_id,
                contacts.c.name,
                contacts.c.email,
                contacts.c.display_name,
                contacts.c.language,
            ).where(contacts.c.id == contact_id)
        ).first()
        if row is None:
            raise NotFound("no such contact")
        _allow(principal, row.customer_id, _customer_kind(conn, row.customer_id), "contact")
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

    async with db.transaction() as conn:
        await conn.run_sync(write)


def _site_and_contact(
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


async def assign_device(
    db: Database,
    principal: Principal,
    serial: str,
    site_id: int,
    contact_id: int,
    now: datetime,
) -> None:
    """R18: where a registered device ships and who is told (R10 groups by these)."""
    _check_ids(serial, site_id, contact_id)

    def write(conn: Connection) -> None:
        row = conn.execute(
            select(
                asr_devices.c.customer_id, asr_devices.c.site_id, asr_devices.c.contact_id
            ).where(asr_devices.c.serial == serial)
        ).first()
        if row is None:
            raise NotFound("no such device")
        _allow(principal, row.customer_id, _customer_kind(conn, row.customer_id), "device")
        _site_and_contact(conn, row.customer_id, site_id, contact_id)
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

    async with db.transaction() as conn:
        await conn.run_sync(write)


# --- R4: registration ----------------------------------------------------------------------


def _supply_specs(
    conn: Connection, serial: str, model: str | None, book: catalogue.Catalogue
) -> list[fleet.SupplySpec]:
    """R4, R5: the ASR supplies of the device's latest reading (toner, ink, waste), each with
    its part number and rated yield (R15; docs/catalogue.md)."""
    latest = conn.execute(
        select(readings.c.id, readings.c.payload)
        .where(readings.c.serial == serial)
        .order_by(readings.c.read_at.desc(), readings.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return []
    described = {str(s.get("index")): s for s in (latest.payload or {}).get("supplies", ()) if s}
    rows = conn.execute(
        select(supplies.c.supply_index, supplies.c.kind, supplies.c.colour, supplies.c.max_capacity)
        .where(supplies.c.reading_id == latest.id)
        .order_by(supplies.c.supply_index)
    )
    specs: list[fleet.SupplySpec] = []
    taken: set[str] = set()
    for index, kind, colour, capacity in rows:
        if kind not in ASR_KINDS:  # R5: drums, fusers, kits are ordered by hand
            continue
        base = "waste" if kind == "waste" else (colour or kind).lower().replace(" ", "-")
        supply_id = base if base not in taken else f"{base}-{index}"
        taken.add(supply_id)
        wire = described.get(index, {})
        reported = wire.get("part_number")
        # R15: the device's part number, else the catalogue's, else none ("part number
        # needed"); the description is never one (docs/catalogue.md).
        part = catalogue.resolve(
            book, model, kind, colour, reported if isinstance(reported, str) else None
        )
        grams = capacity / 10 if capacity and wire.get("unit") == "tenthsOfGrams" else None
        specs.append(
            fleet.SupplySpec(
                supply_id, index, kind, colour, part.part_number, grams, part.rated_yield
            )
        )
    return specs


async def register_device(
    db: Database,
    principal: Principal,
    serial: str,
    site_id: int,
    contact_id: int,
    now: datetime,
    book: catalogue.Catalogue | None = None,
) -> None:
    """R4: a reporting device into ASR; the confirmation notice goes out in the same transaction.

    The device must be read by an agent of one of the customer's sites; its supplies are the
    toner, ink and waste of its latest reading (R5). Part numbers and rated yields come from
    the device, else from `book` (default: the shipped catalogue), else are left to the
    helpdesk (docs/catalogue.md).
    """
    _check_ids(serial, site_id, contact_id)
    book = book or catalogue.default()

    def write(conn: Connection) -> None:
        seen = conn.execute(
            select(devices.c.serial, devices.c.model, sites.c.customer_id)
            .join(agents, agents.c.id == devices.c.last_agent_id)
            .join(sites, sites.c.id == agents.c.site_id)
            .where(devices.c.serial == serial)
        ).first()
        if seen is None or not principal.sees(seen.customer_id):
            raise NotFound("no such device")
        customer_id = seen.customer_id
        _allow(principal, customer_id, _customer_kind(conn, customer_id), "device")
        registered = conn.execute(
            select(asr_devices.c.serial).where(asr_devices.c.serial == serial)
        ).first()
        if registered is not None:
            raise InvalidRequest(f"serial: {serial} is registered already", "serial")
        site, contact = _site_and_contact(conn, customer_id, site_id, contact_id)
        specs = _supply_specs(conn, serial, seen.model, book)
        if not specs:
            raise InvalidRequest(  # R5
                f"serial: {serial} reports no toner, ink or waste container", "serial"
            )
        spec = fleet.DeviceSpec(
            serial, customer_id, site.name, contact.name, seen.model, tuple(specs)
        )
        fleet.register_in(conn, [spec], now)  # R4: with its 'registered' notice
        after = {
            "site_id": site_id,
            "contact_id": contact_id,
            "model": seen.model,
            "supplies": [
                {"supply_id": s.supply_id, "kind": s.kind, "colour": s.colour, "sku": s.sku}
                for s in specs
            ],
        }
        audit(conn, now, principal, customer_id, "device", serial, "registered", None, after)

    async with db.transaction() as conn:
        await conn.run_sync(write)


# --- R14: extra orders ---------------------------------------------------------------------


async def record_extra(
    db: Database,
    principal: Principal,
    serial: str,
    supply_id: str,
    quantity: int,
    note: str,
    now: datetime,
    waste_per_black: int = 1,
) -> int:
    """R14: an extra order recorded by the helpdesk; it counts in the balance. Its shipment id."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidRequest("quantity: a whole number", "quantity")
    if not 1 <= quantity <= MAX_EXTRA_QUANTITY:
        raise InvalidRequest(f"quantity: 1 to {MAX_EXTRA_QUANTITY}", "quantity")
    if not isinstance(note, str) or len(note) > MAX_NOTE or not is_plain(note):
        raise InvalidRequest(f"note: plain text of at most {MAX_NOTE} characters", "note")
    if not is_plain(supply_id) or not supply_id or len(supply_id) > MAX_SUPPLY_ID:
        raise InvalidRequest(f"supply_id: {serial} has no such supply", "supply_id")
    if not is_plain(serial) or not serial or len(serial) > MAX_SERIAL:
        raise NotFound("no such device", "serial")
    note = note.strip()

    def write(conn: Connection) -> int:
        row = conn.execute(
            select(asr_devices.c.customer_id).where(asr_devices.c.serial == serial)
        ).first()
        if row is None or not principal.sees(row.customer_id):
            raise NotFound("no such device")
        if not principal.is_helpdesk:
            raise Forbidden(EXTRA_VIA_HELPDESK)
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

    async with db.transaction() as conn:
        return await conn.run_sync(write)
