"""The mailer against a real SMTP server on loopback (aiosmtpd), on both databases (R4, R15, R16).

Outbox rows are written by the real events (registration, extra orders, shipment moves); the
mailer sends them over SMTP; the test reads what the server received.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace as N
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from collector.config import MailSection
from collector.notify.compose import KINDS, LANGUAGES, Composer
from collector.notify.outbox import Mailer
from collector.store import fleet as store
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.schema import notifications
from tests.collector.kit import Pki
from tests.smtp import free_port, smtp_server

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
HELPDESK = "helpdesk@dealer.example"


@dataclass
class Inbox:
    """What the SMTP server accepted; a recipient in `refuse` gets a 550."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"

    def by_id(self) -> dict[str, EmailMessage]:
        return {str(m["Message-ID"]): m for m in self.messages}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    with smtp_server(inbox, tmp_path / "smtp.log", port):
        yield inbox, port


def _mail(port: int, **more: Any) -> MailSection:
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "from_address": "asr@dealer.example",
        "helpdesk_address": HELPDESK,
        "helpdesk_language": "fr",
        "portal_url": "https://asr.dealer.example/",
        "timeout_seconds": 5,
    }
    return MailSection(**(values | more))


async def _customers(db: Database) -> None:
    await store.add_customer(
        db,
        "rossi",
        "self",
        NOW,
        name="Rossi S.r.l.",
        language="it",
        sites_=[("milano", "Via Roma 1, 20121 Milano")],
        contacts_=[
            store.ContactSpec("anna", "anna@rossi.example", "Anna Rossi"),  # the customer's: it
            store.ContactSpec("john", "john@rossi.example", "John Smith", language="en"),
        ],
    )
    await store.add_customer(
        db,
        "dupont",
        "mps",
        NOW,
        name="Dupont SA",
        language="fr",
        sites_=[("lyon", "1 rue de la Paix, 69001 Lyon")],
        contacts_=[store.ContactSpec("marie", "marie@dupont.example")],
    )
    toner = store.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0)
    await store.register(
        db,
        [
            store.DeviceSpec("IT-1", "rossi", "milano", "anna", "MFP 1", (toner,)),
            store.DeviceSpec("EN-1", "rossi", "milano", "john", "MFP 2", (toner,)),
            store.DeviceSpec("FR-1", "dupont", "lyon", "marie", "MFP 3", (toner,)),
        ],
        NOW,
    )


async def _outbox(db: Database) -> dict[int, Any]:
    rows = await db.read(lambda c: list(c.execute(select(notifications))))
    return {row.id: row for row in rows}


async def test_r4_r15_emails_go_in_the_readers_language_mps_to_the_helpdesk(
    db: Database, smtp: tuple[Inbox, int]
) -> None:
    """R4 at registration; R15 placed, backordered, then shipped as a backorder; MPS: the
    helpdesk (in its language) instead of the customer; text and HTML parts."""
    inbox, port = smtp
    await _customers(db)
    shipment = await store.record_extra_order(db, "IT-1", "black", 2, NOW)  # R14, then R15
    await store.move_shipment(db, shipment, store.BACKORDERED, NOW)
    await store.move_shipment(db, shipment, store.SHIPPED, NOW + timedelta(days=2))
    mailer = Mailer(db, _mail(port))
    done = await mailer.send_due(NOW + timedelta(days=2))
    outbox = await _outbox(db)
    assert sorted(done.sent) == sorted(outbox) and not done.retry and not done.failed
    assert all(row.status == "sent" and row.attempts == 1 for row in outbox.values())
    received = inbox.by_id()
    assert len(received) == len(outbox)  # one message per notification
    got = {}
    for row in outbox.values():
        message = received[row.message_id]
        got[row.kind, str(message["To"])] = message
        assert message["Message-ID"] == f"<asr-notification-{row.id}@dealer.example>"
        assert message.get_body(("plain",)) is not None and message.get_body(("html",))
    assert set(got) == {
        ("registered", "Anna Rossi <anna@rossi.example>"),
        ("registered", "John Smith <john@rossi.example>"),
        ("registered", HELPDESK),  # R4, R16: MPS customers' notices go to the helpdesk
        ("order_placed", "Anna Rossi <anna@rossi.example>"),
        ("backordered", "Anna Rossi <anna@rossi.example>"),
        ("backorder_shipped", "Anna Rossi <anna@rossi.example>"),
    }
    languages = {key: str(m["Content-Language"]) for key, m in got.items()}
    assert languages[("registered", "John Smith <john@rossi.example>")] == "en"  # his own
    assert languages[("registered", HELPDESK)] == "fr"  # the helpdesk's
    assert languages[("order_placed", "Anna Rossi <anna@rossi.example>")] == "it"  # customer's
    placed = got["order_placed", "Anna Rossi <anna@rossi.example>"]
    text = placed.get_body(("plain",))
    assert text is not None and "IT-1" in text.get_content()  # R3: the serial on the label
    html = placed.get_body(("html",))
    assert html is not None and "IT-1" in html.get_content()
    helpdesk = got["registered", HELPDESK].get_body(("plain",))
    assert helpdesk is not None and "FR-1" in helpdesk.get_content()
    again = await mailer.send_due(NOW + timedelta(days=3))  # nothing left: nothing resent
    assert again.sent == [] and len(inbox.messages) == len(outbox)


async def test_a_server_that_is_down_is_retried_later_and_each_email_sent_once(
    db: Database, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    await _customers(db)
    down = Mailer(db, _mail(free_port(), retry_seconds=60))  # nothing listens there
    first = await down.send_due(NOW)
    assert first.sent == [] and len(first.retry) == 3 and first.error is not None
    rows = await _outbox(db)
    assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 1)}
    assert {r.next_attempt_at for r in rows.values()} == {NOW + timedelta(seconds=60)}
    second = await down.send_due(NOW + timedelta(seconds=61))  # still down: waits longer
    assert len(second.retry) == 3
    rows = await _outbox(db)
    assert {r.next_attempt_at for r in rows.values()} == {NOW + timedelta(seconds=181)}
    up = Mailer(db, _mail(port))
    assert (await up.send_due(NOW + timedelta(seconds=62))).sent == []  # not due yet
    third = await up.send_due(NOW + timedelta(seconds=200))
    assert len(third.sent) == 3 and len(inbox.messages) == 3
    assert {(r.status, r.attempts) for r in (await _outbox(db)).values()} == {("sent", 3)}


class Crash(BaseException):
    """The mailer process dies: nothing after it runs."""


async def test_a_crash_between_send_and_mark_never_sends_twice(
    db: Database, smtp: tuple[Inbox, int]
) -> None:
    """The server took the first message, the mailer died before marking it: after the lease
    it is `unconfirmed` (for the helpdesk to check), never sent again; the others go out once."""
    inbox, port = smtp
    await _customers(db)
    mailer = Mailer(db, _mail(port, lease_seconds=300))

    def die(notification_id: int) -> None:
        raise Crash(notification_id)

    with pytest.raises(Crash):
        await mailer.send_due(NOW, after_send=die)
    assert len(inbox.messages) == 1
    rows = await _outbox(db)
    first = min(rows)
    assert [rows[i].status for i in sorted(rows)] == ["sending", "pending", "pending"]
    soon = await mailer.send_due(NOW + timedelta(seconds=60))  # the lease still runs
    assert sorted(soon.sent) == sorted(rows)[1:] and soon.unconfirmed == []
    assert len(inbox.messages) == 3
    later = await mailer.send_due(NOW + timedelta(seconds=301))
    assert later.unconfirmed == [first] and later.sent == []
    assert len(inbox.messages) == 3  # each message once
    assert len({str(m["Message-ID"]) for m in inbox.messages}) == 3
    row = (await _outbox(db))[first]
    assert row.status == "unconfirmed" and "stopped while sending" in row.last_error


async def test_a_refused_recipient_fails_alone(db: Database, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    inbox.refuse.add("john@rossi.example")
    await _customers(db)
    done = await Mailer(db, _mail(port)).send_due(NOW)
    assert len(done.failed) == 1 and len(done.sent) == 2 and not done.retry
    rows = await _outbox(db)
    failed = rows[done.failed[0]]
    assert failed.status == "failed" and "550" in failed.last_error
    assert len(inbox.messages) == 2


async def test_a_helpdesk_notice_without_a_helpdesk_address_fails_naming_it(
    db: Database, smtp: tuple[Inbox, int]
) -> None:
    _, port = smtp
    await _customers(db)
    done = await Mailer(db, _mail(port, helpdesk_address=None)).send_due(NOW)
    assert len(done.failed) == 1 and len(done.sent) == 2
    row = (await _outbox(db))[done.failed[0]]
    assert row.recipient == "helpdesk" and "mail.helpdesk_address" in row.last_error


class Accounts:
    """An SMTP AUTH check with one account."""

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"asr",
            b"s3cret",
        )
        return AuthResult(success=ok)


async def test_starttls_and_login(db: Database, pki: Pki, tmp_path: Path) -> None:
    """STARTTLS with the server's certificate checked against our CA, then AUTH LOGIN."""
    inbox = Inbox()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    port = free_port()
    with smtp_server(
        inbox,
        tmp_path / "smtp.log",
        port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        authenticator=Accounts(),
        auth_require_tls=True,
    ):
        await _customers(db)
        secret = tmp_path / "smtp-password"
        secret.write_text("s3cret\n")
        mail = _mail(
            port,
            timeout_seconds=2,
            security="starttls",
            ca_file=pki.ca_cert,
            username="asr",
            password_file=secret,
        )
        done = await Mailer(db, mail).send_due(NOW)
        assert len(done.sent) == 3 and len(inbox.messages) == 3
        wrong = tmp_path / "wrong"
        wrong.write_text("nope\n")
        await store.record_extra_order(db, "IT-1", "black", 1, NOW)
        refused = Mailer(db, mail.model_copy(update={"password_file": wrong}))
        result = await refused.send_due(NOW)
        assert result.sent == [] and len(result.retry) == 1 and result.error  # waits, retried
        assert len(inbox.messages) == 3


async def test_r15_the_order_email_carries_the_part_number_or_says_it_is_to_be_confirmed(
    db: Database, smtp: tuple[Inbox, int]
) -> None:
    """The order email names each line's real part number (never a description); a line
    waiting for one says so in plain words, in the reader's language (issue 14)."""
    inbox, port = smtp
    await store.add_customer(
        db,
        "rossi",
        "self",
        NOW,
        language="it",
        sites_=[("milano", "Via Roma 1")],
        contacts_=[store.ContactSpec("anna", "anna@rossi.example", "Anna Rossi")],
    )
    toner = store.SupplySpec("black", "1.1", "toner", "black", "CF400A", 300.0)
    waste = store.SupplySpec("waste", "1.5", "waste", None, None)  # part number needed
    await store.register(
        db, [store.DeviceSpec("IT-7", "rossi", "milano", "anna", "MFP", (toner, waste))], NOW
    )
    await store.record_extra_order(db, "IT-7", "black", 1, NOW)
    await Mailer(db, _mail(port)).send_due(NOW)
    [placed] = [m for m in inbox.messages if "CF400A" in str(m.get_body(("plain",)))]
    text = placed.get_body(("plain",))
    html = placed.get_body(("html",))
    assert text is not None and html is not None
    assert "(cod. CF400A)" in text.get_content()
    assert "(cod. da confermare)" in text.get_content()
    assert "CF400A" in html.get_content() and "codice da confermare" in html.get_content()
    assert "None" not in text.get_content()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_with_and_without_optional_values(kind: str, language: str) -> None:
    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    line = N(serial="<X&1>", supply="black", sku="TN-K", quantity=2, reason="trigger")
    full = N(
        id=7,
        reference="ASR-000007",
        placed_at=at,
        address="Via Roma 1",
        tracking="1Z999",
        carrier="UPS",
        expected=at.date(),
        lines=[line],
    )
    bare = N(
        id=7,
        reference="ASR-000007",
        placed_at=at,
        address=None,
        tracking=None,
        carrier=None,
        expected=None,
        lines=[],
    )
    device = N(serial="<X&1>", model="MFP", site="milano", address="Via Roma 1", last_seen=at)
    plain = N(serial="S-2", model=None, site="milano", address=None, last_seen=None)
    composer = Composer("asr@dealer.example")
    for shipment, devices, helpdesk in ((full, [device, plain], True), (bare, [], False)):
        context = {
            "customer": N(id="rossi", name=None if helpdesk else "Rossi", kind="mps"),
            "contact": N(name="anna", email="anna@rossi.example", display_name=None),
            "to_helpdesk": helpdesk,
            "portal_url": "https://asr.example/" if helpdesk else None,
            "sent_for": 1,
            "devices": devices,
            "shipment": shipment,
        }
        subject, text, html = composer.render(kind, language, context)
        assert subject and "\n" not in subject
        assert text.strip()
        assert "<X&1>" not in html  # escaped
        if devices and kind in ("registered", "disconnected", "reconnected"):
            assert "&lt;X&amp;1&gt;" in html and "<X&1>" in text


def test_mail_once_from_the_command_line(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    """`asr-collector mail --once` sends what is due on the configured database."""
    inbox, port = smtp
    state = tmp_path / "state"
    state.mkdir()

    async def fill() -> None:
        db = Database.open(f"sqlite+aiosqlite:///{state / 'collector.db'}")
        try:
            await migrate(db)
            await _customers(db)
        finally:
            await db.close()

    asyncio.run(fill())
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{state}"\n'
        f'[mail]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        f'from_address = "asr@dealer.example"\nhelpdesk_address = "{HELPDESK}"\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "collector.cli", "mail", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "sent": 3,
        "retry": 0,
        "failed": 0,
        "unconfirmed": 0,
        "error": None,
    }
    assert sorted(str(m["To"]) for m in inbox.messages) == [
        "Anna Rossi <anna@rossi.example>",
        "John Smith <john@rossi.example>",
        HELPDESK,
    ]
