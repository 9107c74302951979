"""Drill: the SMTP server down for a simulated day, then back (R4, R15: every email once).

The outbox holds the emails of real events (registrations, an order placed, backordered and
shipped). Nothing listens on the SMTP port for a day: the mailer, the real `asr-collector mail
--once` process run at simulated times (`--now`), tries at each pass where something is due and
puts every email back with a doubling delay, capped. Then aiosmtpd listens on that port: the
next passes deliver each email exactly once; none is marked failed or unconfirmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from itertools import pairwise
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import select

from collector.store import fleet as store
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.outbox_rows import backoff
from collector.store.schema import notifications
from tests.agent.kit import free_port, run
from tests.smtp import smtp_server

START = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
DAY = timedelta(days=1)
# The mailer's backoff (mail.retry_seconds, mail.retry_max_seconds): half an hour, doubling,
# at most eight hours apart; a pass is run wherever something is due.
RETRY_SECONDS, RETRY_MAX_SECONDS = 1800, 8 * 3600


@dataclass
class Inbox:
    """What the SMTP server accepted."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"


async def _events(db: Database) -> None:
    """Real events that write the outbox: devices registered (R4), an extra order placed,
    backordered and shipped (R15); an Italian self-service customer and a French MPS one
    (whose notices go to the helpdesk)."""
    await store.add_customer(
        db,
        "rossi",
        "self",
        START,
        name="Rossi S.r.l.",
        language="it",
        sites_=[("milano", "Via Roma 1, 20121 Milano")],
        contacts_=[
            store.ContactSpec("anna", "anna@rossi.example", "Anna Rossi"),
            store.ContactSpec("john", "john@rossi.example", "John Smith", language="en"),
        ],
    )
    await store.add_customer(
        db,
        "dupont",
        "mps",
        START,
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
        START,
    )
    shipment = await store.record_extra_order(db, "IT-1", "black", 2, START)
    await store.move_shipment(db, shipment, store.BACKORDERED, START)
    await store.move_shipment(db, shipment, store.SHIPPED, START)


async def _outbox(db: Database) -> dict[int, Any]:
    rows = await db.read(lambda c: list(c.execute(select(notifications))))
    return {row.id: row for row in rows}


def _next_due(outbox: dict[int, Any]) -> datetime | None:
    due = [row.next_attempt_at or START for row in outbox.values() if row.status == "pending"]
    return min(due, default=None)


async def _mail_once(config: Path, at: datetime) -> dict[str, Any]:
    done = await run(
        "collector.cli", "mail", "--once", "--config", str(config), "--now", at.isoformat()
    )
    assert done.code in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.code == (0 if result["error"] is None and not result["failed"] else 1)
    return result


async def test_r15_smtp_down_for_a_day_then_each_email_delivered_once(tmp_path: Path) -> None:
    state = tmp_path / "collector"
    port = free_port()  # where the SMTP server is down, and comes back
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{state}"\n'
        f'[mail]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\ntimeout_seconds = 5\n'
        'from_address = "asr@dealer.example"\nhelpdesk_address = "helpdesk@dealer.example"\n'
        f"retry_seconds = {RETRY_SECONDS}\nretry_max_seconds = {RETRY_MAX_SECONDS}\n"
    )
    db = Database.open(f"sqlite+aiosqlite:///{state / 'collector.db'}")
    try:
        await migrate(db)
        await _events(db)
        queued = await _outbox(db)
        assert len(queued) == 6 and {row.status for row in queued.values()} == {"pending"}

        # The day without a server: a pass wherever something is due.
        down_passes: list[datetime] = []
        while (at := _next_due(await _outbox(db))) is not None and at < START + DAY:
            before = await _outbox(db)
            due = {i for i, row in before.items() if (row.next_attempt_at or START) <= at}
            result = await _mail_once(config, at)
            assert (result["sent"], result["failed"], result["unconfirmed"]) == (0, 0, 0)
            assert result["retry"] == len(due) and str(port) in result["error"]
            after = await _outbox(db)
            for i in due:  # each put back with the next, longer delay
                row = after[i]
                assert (row.status, row.attempts) == ("pending", before[i].attempts + 1)
                delay = backoff(row.attempts, RETRY_SECONDS, RETRY_MAX_SECONDS)
                assert row.next_attempt_at == at + timedelta(seconds=delay)
            down_passes.append(at)
        gaps = [b - a for a, b in pairwise(down_passes)]
        assert gaps == sorted(gaps) and max(gaps) == timedelta(seconds=RETRY_MAX_SECONDS)

        # The server is back at the end of the day.
        inbox = Inbox()
        with smtp_server(inbox, tmp_path / "smtp.log", port):
            back = START + DAY
            early = await _mail_once(config, back)  # nothing is due yet: the backoff holds
            assert (early["sent"], early["retry"], early["error"]) == (0, 0, None)
            assert inbox.messages == [] and await _outbox(db) == after
            sent: list[int] = []
            up_passes = []
            while (at := _next_due(await _outbox(db))) is not None:
                assert at - back <= timedelta(seconds=RETRY_MAX_SECONDS)
                result = await _mail_once(config, at)
                assert (result["retry"], result["failed"], result["error"]) == (0, 0, None)
                sent.append(result["sent"])
                up_passes.append(at)
        outbox = await _outbox(db)
    finally:
        await db.close()
    assert sum(sent) == len(outbox) == len(inbox.messages) == 6
    assert {row.status for row in outbox.values()} == {"sent"}  # none failed or unconfirmed
    received = sorted(str(m["Message-ID"]) for m in inbox.messages)
    assert received == sorted(row.message_id for row in outbox.values())  # each once
    assert len(set(received)) == len(received)
    assert {row.attempts for row in outbox.values()} == {len(down_passes) + 1}
    print(
        f"SMTP down {DAY}: {len(down_passes)} passes tried and backed off"
        f" ({', '.join(str(a - START) for a in down_passes)}); back at {DAY}:"
        f" {len(outbox)} emails delivered once each at +{up_passes[-1] - START}"
    )
