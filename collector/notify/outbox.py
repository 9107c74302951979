"""The mailer: sends the notifications outbox over SMTP, each email at most once (R15, R16).

Is: `send_due`, one pass over the outbox at `now`:
1. *recover*: a row `sending` for longer than the lease was claimed by a mailer that stopped
   between claiming it and marking it sent. The SMTP server may have taken the message, so it
   is never sent again: it becomes `unconfirmed`, logged and listed for the helpdesk;
2. *read*: up to `batch_size` `pending` rows that are due, composed from the store;
3. *send*: over one SMTP connection (STARTTLS or TLS and login as configured), one message at
   a time: claimed (`sending`, in a transaction of its own and only if still `pending`, so
   several collector processes never take the same row), handed to the server, and marked
   `sent` with its Message-ID once the server accepts it. A crash leaves at most the one
   message in flight `sending`. A failure that may pass (the
   server down or busy, a 4xx reply, a timeout) puts the rest back to `pending` with a later
   `next_attempt_at` (doubling from `retry_seconds` up to `retry_max_seconds`); a message
   refused for good (a 5xx reply to it) or that cannot be addressed is `failed`.
`run_mailer` repeats it every `interval_seconds` inside `serve`; `asr-collector mail --once`
runs one pass.
Is not: the contents (collector.notify.compose) or the events that write the outbox rows.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import aiosmtplib
from sqlalchemy import Connection, select, update

from collector.config import MailSection
from collector.notify.compose import Composer, Letter, Reader, language_of, letter
from collector.store import claims
from collector.store.database import Database
from collector.store.schema import notifications

log = logging.getLogger(__name__)
_T = TypeVar("_T")
PENDING, SENDING, SENT, UNCONFIRMED, FAILED = (
    "pending",
    "sending",
    "sent",
    "unconfirmed",
    "failed",
)


@dataclass
class Pass:
    """What one pass did."""

    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    error: str | None = None  # why the rest wait for the next attempt


class Mailer:
    """Sends the outbox of one database with one configuration."""

    def __init__(self, db: Database, mail: MailSection) -> None:
        self.db = db
        self.mail = mail
        self.composer = Composer(mail.from_address)
        self.helpdesk = (
            Reader(mail.helpdesk_address, None, language_of(mail.helpdesk_language))
            if mail.helpdesk_address
            else None
        )

    async def send_due(
        self, now: datetime, after_send: Callable[[int], None] | None = None
    ) -> Pass:
        """One pass over the outbox at `now` (`after_send`: for tests, called between the
        server's acceptance and the mark, where a crash would leave the row `sending`)."""
        result = Pass()
        result.unconfirmed = await self._transaction(lambda c: self._recover(c, now))
        for notification_id in result.unconfirmed:
            log.warning(
                "notification %d: its mailer stopped while sending it; it may have gone,"
                " so it is not sent again (unconfirmed)",
                notification_id,
            )
        letters, unaddressable = await self._transaction(lambda c: self._due(c, now))
        for notification_id, reason in unaddressable:
            await self._mark(notification_id, FAILED, now, error=reason)
            result.failed.append(notification_id)
        if not letters:
            return result
        waiting: list[int] = []  # claimed, not sent yet
        untried = [item.notification_id for item in letters]
        try:
            async with self._smtp() as smtp:
                for item in letters:
                    message = self.composer.email(item, now)
                    untried.remove(item.notification_id)
                    claim = partial(_claim, notification_id=item.notification_id, now=now)
                    if not await self._transaction(claim):
                        continue  # another mailer took it
                    waiting.append(item.notification_id)
                    try:
                        await smtp.send_message(message)
                    except aiosmtplib.SMTPRecipientsRefused as err:
                        waiting.remove(item.notification_id)
                        if _permanent(err.recipients[0].code if err.recipients else 550):
                            await self._mark(item.notification_id, FAILED, now, error=str(err))
                            result.failed.append(item.notification_id)
                        else:
                            await self._retry([item.notification_id], [], now, str(err))
                            result.retry.append(item.notification_id)
                        continue
                    except aiosmtplib.SMTPResponseException as err:
                        if not _permanent(err.code):
                            raise
                        waiting.remove(item.notification_id)
                        await self._mark(item.notification_id, FAILED, now, error=str(err))
                        result.failed.append(item.notification_id)
                        continue
                    if after_send is not None:
                        after_send(item.notification_id)
                    waiting.remove(item.notification_id)
                    await self._mark(
                        item.notification_id, SENT, now, message_id=message["Message-ID"]
                    )
                    result.sent.append(item.notification_id)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as err:
            result.error = f"{type(err).__name__}: {err}"
            result.retry.extend(await self._retry(waiting, untried, now, result.error))
            log.warning(
                "mail: %s; %d message(s) wait for the next attempt", result.error, len(result.retry)
            )
        return result

    async def _transaction(self, work: Callable[[Connection], _T]) -> _T:
        async with self.db.transaction() as conn:
            return await conn.run_sync(work)

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

    def _recover(self, conn: Connection, now: datetime) -> list[int]:
        stale = now - timedelta(seconds=self.mail.lease_seconds)
        return list(
            conn.execute(
                update(notifications)
                .where((notifications.c.status == SENDING) & (notifications.c.claimed_at < stale))
                .values(status=UNCONFIRMED, last_error="the mailer stopped while sending it")
                .returning(notifications.c.id)
            ).scalars()
        )

    def _due(self, conn: Connection, now: datetime) -> tuple[list[Letter], list[tuple[int, str]]]:
        due = (
            select(notifications)
            .where(
                (notifications.c.status == PENDING)
                & (
                    notifications.c.next_attempt_at.is_(None)
                    | (notifications.c.next_attempt_at <= now)
                )
            )
            .order_by(notifications.c.id)
            .limit(self.mail.batch_size)
        )
        rows = list(conn.execute(due))
        letters, unaddressable = [], []
        for row in rows:
            try:
                letters.append(letter(conn, row, self.helpdesk, self.mail.portal_url))
            except LookupError as err:
                unaddressable.append((row.id, str(err)))
        return letters, unaddressable

    async def _mark(
        self,
        notification_id: int,
        status: str,
        now: datetime,
        error: str | None = None,
        message_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == SENT:
            values.update(sent_at=now, message_id=message_id)
        await self._transaction(
            lambda c: c.execute(
                update(notifications).where(notifications.c.id == notification_id).values(values)
            )
        )

    async def _retry(
        self, claimed: list[int], untried: list[int], now: datetime, error: str
    ) -> list[int]:
        """Back to `pending` for a later attempt: the rows this pass claimed, and those it
        did not get to (the server was down), which count an attempt too. Their ids."""

        def back(conn: Connection) -> list[int]:
            return claims.put_back(
                conn,
                notifications.c.id,
                claimed,
                untried,
                now,
                error,
                self.mail.retry_seconds,
                self.mail.retry_max_seconds,
            )

        return await self._transaction(back) if claimed or untried else []


def _claim(conn: Connection, notification_id: int, now: datetime) -> bool:
    """Take a pending row for sending; False if another mailer took it first."""
    return claims.claim(conn, notifications.c.id, notification_id, now)


def _permanent(code: int) -> bool:
    return 500 <= code < 600


async def run_mailer(mailer: Mailer, clock: Callable[[], datetime]) -> None:
    """Pass after pass, every `interval_seconds`, until cancelled."""
    while True:
        try:
            await mailer.send_due(clock())
        except Exception:  # the loop's outer guard: log, try again at the next pass
            log.exception("mail pass failed")
        await asyncio.sleep(mailer.mail.interval_seconds)
