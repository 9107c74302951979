"""The portal's changes (R4, R14, R18): who may make them, and their input checked.

Is: who may do what, and the input's checks; the writes are collector.store.write_changes',
each one transaction that also writes its audit row, and this module hands each the check
that refuses (NotFound, Forbidden) inside that transaction. For MPS customers the helpdesk
changes shipping addresses and supplies contacts, assigns and registers devices; for
self-service customers their own users do (R4, R18). Extra orders are the helpdesk's alone
(R14). Another customer's site, contact or device is "not found" (NotFound), never
"forbidden", so nothing of it leaks; Forbidden is for what the principal sees but its role
may not change. Input is checked first, with errors that name the field (InvalidRequest).
Is not: SQL (collector.store), HTTP (collector.portal.api, .pages) or the reads
(collector.portal.queries).
"""

from __future__ import annotations

import re
from datetime import datetime

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
from collector.store import write_changes, write_registration
from collector.store.database import Database
from collector.store.write_changes import Check, Owner

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


def _may_change(principal: Principal, what: str) -> Check:
    """The store's check on a change of a `what` (site, contact, device) by `principal`."""

    def check(owner: Owner | None) -> None:
        if owner is None:
            raise NotFound(f"no such {what}")
        _allow(principal, owner.customer_id, owner.kind, what)

    return check


def _may_order_extra(principal: Principal) -> Check:
    """The store's check on an extra order: a device the principal sees, the helpdesk's (R14)."""

    def check(owner: Owner | None) -> None:
        if owner is None or not principal.sees(owner.customer_id):
            raise NotFound("no such device")
        if not principal.is_helpdesk:
            raise Forbidden(EXTRA_VIA_HELPDESK)

    return check


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


# --- R18: address, contact, assignment -----------------------------------------------------


async def change_site_address(
    db: Database, principal: Principal, site_id: int, address: str, now: datetime
) -> None:
    """R18: a site's shipping address (orders already placed keep theirs)."""
    text = clean_address(address)
    if not is_id(site_id):
        raise NotFound("no such site", "site_id")
    await write_changes.set_site_address(
        db, principal, site_id, text, now, _may_change(principal, "site")
    )


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
    await write_changes.set_contact(
        db, principal, contact_id, values, now, _may_change(principal, "contact")
    )


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
    await write_changes.assign(
        db, principal, serial, site_id, contact_id, now, _may_change(principal, "device")
    )


# --- R4: registration ----------------------------------------------------------------------


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
    await write_registration.register(
        db,
        principal,
        serial,
        site_id,
        contact_id,
        now,
        book or catalogue.default(),
        _may_change(principal, "device"),
    )


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
    return await write_changes.record_extra(
        db,
        principal,
        serial,
        supply_id,
        quantity,
        note.strip(),
        now,
        waste_per_black,
        _may_order_extra(principal),
    )
