"""Notification emails: what one outbox row says, in its reader's language (R4, R15, R16).

Is: the context of a notification, read from the store (the customer, the contact, the
devices or the shipment it is about, and who reads it: the contact, or the helpdesk for an MPS
customer); and the email made of it from the one set of jinja2 templates in `templates/`,
in the reader's language through the message catalogues of `locale/` (collector.notify.i18n):
a subject, a text part and an HTML part, with a Message-ID fixed by the notification's id,
so a message is recognisable as the same one wherever it is seen.
Is not: the sending, retries and their bookkeeping (collector.notify.outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment
from sqlalchemy import Connection, select

from collector.fulfilment import reference
from collector.notify.i18n import LOCALE, environment
from collector.store.schema import (
    asr_devices,
    contacts,
    customers,
    devices,
    orders,
    shipments,
    sites,
)

LANGUAGES = ("it", "fr", "en")
DEFAULT_LANGUAGE = "en"
KINDS = (
    "registered",
    "order_placed",
    "shipped",
    "backordered",
    "backorder_shipped",
    "disconnected",
    "disconnected_followup",
    "reconnected",
)
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Reader:
    """Who reads a notification: the address and the language."""

    address: str
    name: str | None
    language: str


@dataclass(frozen=True)
class Letter:
    """One notification ready to send."""

    notification_id: int
    kind: str
    reader: Reader
    context: dict[str, Any]


def language_of(*choices: str | None) -> str:
    """The first of `choices` the templates speak, else English."""
    for choice in choices:
        if choice and choice.lower()[:2] in LANGUAGES:
            return choice.lower()[:2]
    return DEFAULT_LANGUAGE


def letter(
    conn: Connection,
    row: Any,
    helpdesk: Reader | None,
    portal_url: str | None,
) -> Letter:
    """The letter of an outbox row: its reader and its template context, read from the store.

    Raises LookupError when the row cannot be addressed (a helpdesk notice with no helpdesk
    address configured, a contact gone): such a row is failed, not retried.
    """
    if row.kind not in KINDS:
        raise LookupError(f"notification kind {row.kind!r} has no template")
    customer = conn.execute(select(customers).where(customers.c.id == row.customer_id)).one()
    contact = None
    if row.contact_id is not None:
        contact = conn.execute(select(contacts).where(contacts.c.id == row.contact_id)).one()
    if row.recipient == "helpdesk":
        if helpdesk is None:
            raise LookupError("a helpdesk notice, and mail.helpdesk_address is not set")
        reader = helpdesk
    elif contact is None:
        raise LookupError("a contact notice without a contact")
    else:
        language = language_of(contact.language, customer.language)
        reader = Reader(contact.email, contact.display_name, language)
    payload = row.payload or {}
    context: dict[str, Any] = {
        "customer": SimpleNamespace(id=customer.id, name=customer.name, kind=customer.kind),
        "contact": SimpleNamespace(
            name=contact.name if contact else "",
            email=contact.email if contact else "",
            display_name=contact.display_name if contact else None,
        ),
        "to_helpdesk": row.recipient == "helpdesk",
        "portal_url": portal_url,
        "sent_for": row.id,
    }
    if "serials" in payload:
        context["devices"] = _devices(conn, payload["serials"])
    if "shipment" in payload:
        context["shipment"] = _shipment(conn, int(payload["shipment"]))
    return Letter(row.id, row.kind, reader, context)


def _devices(conn: Connection, serials: list[str]) -> list[SimpleNamespace]:
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
    return [
        SimpleNamespace(
            serial=serial,
            model=found[serial].model if serial in found else None,
            site=found[serial].site if serial in found else "",
            address=found[serial].address if serial in found else None,
            last_seen=found[serial].last_seen if serial in found else None,
        )
        for serial in serials
    ]


def _shipment(conn: Connection, shipment_id: int) -> SimpleNamespace:
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
    return SimpleNamespace(
        id=row.id,
        placed_at=row.placed_at,
        address=row.address or row.site_address,  # the one on the label (R18)
        reference=reference(row.id),
        tracking=row.tracking,
        carrier=row.carrier,
        expected=row.expected_at,
        lines=[
            SimpleNamespace(
                serial=line.serial,
                supply=line.supply_id,
                sku=line.sku,
                quantity=line.quantity,
                reason=line.reason,
            )
            for line in lines
        ],
    )


class Composer:
    """Renders letters into emails with the templates."""

    def __init__(self, sender: str, templates: Path = TEMPLATES, locale: Path = LOCALE) -> None:
        self.sender = sender
        self.domain = sender.rpartition("@")[2] or "localhost"
        self.templates = templates
        self.locale = locale
        self.envs: dict[str, Environment] = {}

    def env(self, language: str) -> Environment:
        """The templates' environment in `language`, made when first needed."""
        if language not in self.envs:
            self.envs[language] = environment(language, self.templates, self.locale)
        return self.envs[language]

    def render(self, kind: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """The subject, text part and HTML part of a `kind` notice in `language`."""
        env = self.env(language)
        text = env.get_template(f"{kind}.txt")
        parts = text.new_context(dict(context))
        subject = "".join(text.blocks["subject"](parts)).strip()
        body = "".join(text.blocks["body"](parts)).strip() + "\n"
        html = env.get_template(f"{kind}.html").render(context)
        return " ".join(subject.split()), body, html

    def message_id(self, notification_id: int) -> str:
        """The Message-ID of a notification: the same on every attempt."""
        return f"<asr-notification-{notification_id}@{self.domain}>"

    def email(self, letter: Letter, now: datetime) -> EmailMessage:
        """The email of a letter, text and HTML alternatives."""
        subject, text, html = self.render(letter.kind, letter.reader.language, letter.context)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = formataddr((letter.reader.name or "", letter.reader.address))
        message["Date"] = format_datetime(now)
        message["Message-ID"] = self.message_id(letter.notification_id)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        message["Content-Language"] = letter.reader.language  # set_content drops Content-*
        return message
