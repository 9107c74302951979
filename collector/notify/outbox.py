"""The mailer: sends the notifications outbox over SMTP, each email at most once (R15, R16).

Is: the mail sender plugged into the outbox worker (collector.outbox), which claims, marks,
backs off and recovers. This module says what is particular to email:
- *load*: the worker hands over the row's record; what it is about is read from the store
  (collector.store.notices) and made a letter (collector.notify.compose); a row that cannot
  be addressed (a helpdesk notice with no helpdesk address, a contact gone) is `failed`;
- *session*: one SMTP connection per pass (STARTTLS or TLS and login as configured);
- *answers*: the server's acceptance marks the row `sent` with its Message-ID; a 5xx reply
  to the message or its recipient is final (`failed`); a 4xx reply to the recipient retries
  that message later; the server down or busy (another 4xx, a timeout) stops the pass;
- *recovery*: a row left `sending` may have been taken by the server, so it is never sent
  again: it becomes `unconfirmed`, logged and listed for the helpdesk.
`run_mailer` repeats the pass every `interval_seconds` inside `serve`;
`asr-collector mail --once` runs one pass.
Is not: the contents (collector.notify.compose) or the events that write the outbox rows.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import partial

import aiosmtplib

from collector.config import MailSection
from collector.notify.compose import Composer, Letter, Reader, has_template, language_of, letter
from collector.outbox import Accepted, Answer, Later, Outbox, Refused, Send, Unreachable, Unsendable
from collector.store import notices
from collector.store.database import Database
from collector.store.outbox_rows import NOTIFICATIONS, Notification


@dataclass
class Pass:
    """What one pass did."""

    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    error: str | None = None  # why the rest wait for the next attempt


class MailSender:
    """The notifications outbox's sender: composes each row and hands it to the SMTP server."""

    name = "mail"
    box = NOTIFICATIONS
    stale_error = "the mailer stopped while sending it; it may have gone, so it is not sent again"

    def __init__(self, db: Database, mail: MailSection) -> None:
        self.db = db
        self.schedule = self.mail = mail
        self.composer = Composer(mail.from_address)
        self.helpdesk = (
            Reader(mail.helpdesk_address, None, language_of(mail.helpdesk_language))
            if mail.helpdesk_address
            else None
        )

    def describe(self, row_id: int) -> str:
        """The row as the log names it."""
        return f"notification {row_id}"

    async def load(self, record: Notification) -> Letter:
        """The letter of a notification; Unsendable if it cannot be addressed."""
        try:
            has_template(record.kind)
            about = await notices.about(self.db, record)
            return letter(record, about, self.helpdesk, self.mail.portal_url)
        except LookupError as err:
            raise Unsendable(str(err)) from err

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Send[Letter]]:
        """One SMTP connection; Unreachable if the server cannot be reached or drops it."""
        try:
            async with self._smtp() as smtp:
                yield partial(self._send, smtp)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as err:
            raise Unreachable(f"{type(err).__name__}: {err}") from err

    async def _send(
        self, smtp: aiosmtplib.SMTP, row_id: int, item: Letter, now: datetime
    ) -> Answer:
        message: EmailMessage = self.composer.email(item, now)
        try:
            await smtp.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as err:
            code = err.recipients[0].code if err.recipients else 550
            return Refused(str(err)) if _permanent(code) else Later(str(err))
        except aiosmtplib.SMTPResponseException as err:
            if _permanent(err.code):
                return Refused(str(err))
            raise Unreachable(f"{type(err).__name__}: {err}") from err
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as err:
            raise Unreachable(f"{type(err).__name__}: {err}") from err
        return Accepted(values={"sent_at": now, "message_id": message["Message-ID"]})

    def _smtp(self) -> aiosmtplib.SMTP:
        mail = self.mail
        context = ssl.create_default_context(
            cafile=str(mail.ca_file) if mail.ca_file is not None else None
        )
        password = (
            mail.password_file.read_text().strip() if mail.password_file is not None else None
        )
        return aiosmtplib.SMTP(
            hostname=mail.host,
            port=mail.port,
            use_tls=mail.security == "tls",
            start_tls=mail.security == "starttls",
            tls_context=context if mail.security != "none" else None,
            username=mail.username,
            password=password,
            timeout=mail.timeout_seconds,
        )


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class Mailer:
    """Sends the outbox of one database with one configuration."""

    def __init__(self, db: Database, mail: MailSection) -> None:
        self.db = db
        self.mail = mail
        self.outbox: Outbox[Notification, Letter] = Outbox(db, MailSender(db, mail))

    async def send_due(
        self, now: datetime, after_send: Callable[[int], None] | None = None
    ) -> Pass:
        """One pass over the outbox at `now` (`after_send`: for tests, called between the
        server's answer and the mark, where a crash would leave the row `sending`)."""
        done = await self.outbox.send_due(now, after_send)
        return Pass(done.done, done.retry, done.failed, done.recovered, done.error)


async def run_mailer(mailer: Mailer, clock: Callable[[], datetime]) -> None:
    """Pass after pass, every `interval_seconds`, until cancelled."""
    await mailer.outbox.run(clock)
