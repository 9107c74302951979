"""Notification emails: what one outbox row says, in its reader's language (R4, R15, R16).

Is: the context of a notification, from what the store read of it (collector.store.notices:
the customer, the contact, the devices or the shipment it is about) and who reads it (the
contact, or the helpdesk for an MPS customer); and the email made of it from the one set of
jinja2 templates in `templates/`, in the reader's language through the message catalogues
of `locale/` (collector.notify.i18n): a subject, a text part and an HTML part, with a
Message-ID fixed by the notification's id, so a message is recognisable as the same one
wherever it is seen.
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

from collector.fulfilment import reference
from collector.notify.i18n import LOCALE, environment
from collector.store.notices import About, Shipment
from collector.store.outbox_rows import Notification

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


def has_template(kind: str) -> None:
    """Raises LookupError when there is no template for `kind`: such a row is failed."""
    if kind not in KINDS:
        raise LookupError(f"notification kind {kind!r} has no template")


def letter(
    notification: Notification,
    about: About,
    helpdesk: Reader | None,
    portal_url: str | None,
) -> Letter:
    """The letter of a notification: its reader and its template context, from what it is
    about (read from the store, collector.store.notices).

    Raises LookupError when the row cannot be addressed (a helpdesk notice with no helpdesk
    address configured, a contact gone): such a row is failed, not retried.
    """
    has_template(notification.kind)
    customer, contact = about.customer, about.contact
    if notification.recipient == "helpdesk":
        if helpdesk is None:
            raise LookupError("a helpdesk notice, and mail.helpdesk_address is not set")
        reader = helpdesk
    elif contact is None:
        raise LookupError("a contact notice without a contact")
    else:
        language = language_of(contact.language, customer.language)
        reader = Reader(contact.email, contact.display_name, language)
    context: dict[str, Any] = {
        "customer": SimpleNamespace(id=customer.id, name=customer.name, kind=customer.kind),
        "contact": SimpleNamespace(
            name=contact.name if contact else "",
            email=contact.email if contact else "",
            display_name=contact.display_name if contact else None,
        ),
        "to_helpdesk": notification.recipient == "helpdesk",
        "portal_url": portal_url,
        "sent_for": notification.id,
    }
    if about.devices is not None:
        context["devices"] = list(about.devices)
    if about.shipment is not None:
        context["shipment"] = _shipment(about.shipment)
    return Letter(notification.id, notification.kind, reader, context)


def _shipment(shipment: Shipment) -> SimpleNamespace:
    return SimpleNamespace(
        id=shipment.id,
        placed_at=shipment.placed_at,
        address=shipment.address,  # the one on the label (R18)
        reference=reference(shipment.id),
        tracking=shipment.tracking,
        carrier=shipment.carrier,
        expected=shipment.expected_at,
        lines=[
            SimpleNamespace(
                serial=line.serial,
                supply=line.supply_id,
                sku=line.sku,
                quantity=line.quantity,
                reason=line.reason,
            )
            for line in shipment.lines
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
        text = env.get_template(f"{kind}.txt")  # its layout (notice.txt) writes the body alone
        subject = "".join(text.blocks["subject"](text.new_context(dict(context)))).strip()
        body = text.render(context).strip() + "\n"
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
