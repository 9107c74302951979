"""The outbox worker (collector.outbox) with a recording sender: claim, send, mark, back off,
recover after a crash, two workers at once, the loop and its stop. The mail and warehouse
senders have their own tests (test_mail.py, test_fulfil.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, insert, select

from collector.outbox import Accepted, Answer, Later, Outbox, Send, Unreachable, Unsendable
from collector.store.database import Database
from collector.store.outbox_rows import NOTIFICATIONS, Notification, OutboxTable
from collector.store.schema import customers, notifications

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
# A stale claim is sent again.
RESEND = OutboxTable(notifications.c.id, "sent", None, NOTIFICATIONS.record)


@dataclass(frozen=True)
class Timings:
    interval_seconds: float = 0.01
    batch_size: int = 50
    lease_seconds: float = 300
    retry_seconds: float = 60
    retry_max_seconds: float = 3600


@dataclass
class Recorder:
    """A sender that records what it is asked to send and answers as told."""

    box: OutboxTable[Notification] = RESEND
    schedule: Timings = field(default_factory=Timings)
    name: str = "test"
    stale_error: str = "stopped while sending it"
    sent: list[int] = field(default_factory=list)
    down: bool = False
    later: set[int] = field(default_factory=set)
    unsendable: set[int] = field(default_factory=set)
    delay: float = 0.0

    def describe(self, row_id: int) -> str:
        return f"row {row_id}"

    async def load(self, record: Notification) -> int:
        if record.id in self.unsendable:
            raise Unsendable("no address")
        return record.id

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Send[int]]:
        if self.down:
            raise Unreachable("the far end is down")
        yield self._send

    async def _send(self, row_id: int, item: int, now: datetime) -> Answer:
        await asyncio.sleep(self.delay)
        self.sent.append(item)
        if item in self.later:
            return Later("busy with this one")
        return Accepted(values={"sent_at": now})


async def _rows(db: Database, count: int) -> list[int]:
    def add(conn: Connection) -> list[int]:
        conn.execute(insert(customers).values(id="c1", created_at=NOW))
        return [
            conn.execute(
                insert(notifications)
                .values(kind="test", customer_id="c1", recipient="contact", created_at=NOW)
                .values(payload={})
                .returning(notifications.c.id)
            ).scalar_one()
            for _ in range(count)
        ]

    async with db.transaction() as conn:
        return await conn.run_sync(add)


async def _states(db: Database) -> dict[int, tuple[str, int, datetime | None]]:
    def read(conn: Connection) -> dict[int, tuple[str, int, datetime | None]]:
        query = select(
            notifications.c.id,
            notifications.c.status,
            notifications.c.attempts,
            notifications.c.next_attempt_at,
        )
        return {
            row.id: (row.status, row.attempts, row.next_attempt_at) for row in conn.execute(query)
        }

    return await db.read(read)


class Crash(Exception):
    pass


def _die(row_id: int) -> None:
    raise Crash(row_id)


async def test_a_row_claimed_and_never_marked_is_sent_again_once_its_claim_expires(
    db: Database,
) -> None:
    first, second = await _rows(db, 2)
    sender = Recorder()
    with pytest.raises(Crash):
        await Outbox(db, sender).send_due(NOW, after_send=_die)  # sent, then the crash
    assert (await _states(db))[first][0] == "sending"
    soon = await Outbox(db, sender).send_due(NOW + timedelta(seconds=60))  # lease still runs
    assert soon.recovered == [] and soon.done == [second]
    later = await Outbox(db, sender).send_due(NOW + timedelta(seconds=301))
    assert later.recovered == [first] and later.done == [first]
    assert sender.sent == [first, second, first]  # at least once
    assert (await _states(db))[first][:2] == ("sent", 2)


async def test_an_outbox_that_must_not_send_twice_gives_a_stale_claim_up(db: Database) -> None:
    first, second = await _rows(db, 2)
    sender = Recorder(box=NOTIFICATIONS)  # email: "unconfirmed", for the helpdesk
    with pytest.raises(Crash):
        await Outbox(db, sender).send_due(NOW, after_send=_die)
    later = await Outbox(db, sender).send_due(NOW + timedelta(seconds=301))
    assert later.recovered == [first] and later.done == [second]
    assert sender.sent == [first, second]  # at most once
    assert (await _states(db))[first][0] == "unconfirmed"


async def test_a_far_end_that_is_down_backs_every_row_off_doubling(db: Database) -> None:
    ids = await _rows(db, 3)
    sender = Recorder(down=True)
    outbox = Outbox(db, sender)
    first = await outbox.send_due(NOW)
    assert first.retry == ids and first.error == "the far end is down" and first.done == []
    assert set((await _states(db)).values()) == {("pending", 1, NOW + timedelta(seconds=60))}
    at = NOW + timedelta(seconds=61)
    assert (await outbox.send_due(at)).retry == ids
    assert set((await _states(db)).values()) == {("pending", 2, at + timedelta(seconds=120))}
    sender.down = False
    assert (await outbox.send_due(at + timedelta(seconds=60))).done == []  # not due yet
    assert (await outbox.send_due(at + timedelta(seconds=121))).done == ids
    assert sender.sent == ids


async def test_a_row_answered_later_waits_and_the_pass_goes_on(db: Database) -> None:
    ids = await _rows(db, 3)
    sender = Recorder(later={ids[1]}, unsendable={ids[2]})
    done = await Outbox(db, sender).send_due(NOW)
    assert (done.done, done.retry, done.failed, done.error) == ([ids[0]], [ids[1]], [ids[2]], None)
    states = await _states(db)
    assert states[ids[1]] == ("pending", 1, NOW + timedelta(seconds=60))
    assert states[ids[2]][0] == "failed" and ids[2] not in sender.sent  # never tried


async def test_two_workers_on_postgresql_never_send_a_row_twice(empty_pg_url: str) -> None:
    one, other = Database.open(empty_pg_url), Database.open(empty_pg_url)
    try:
        ids = await _rows(one, 40)
        senders = [Recorder(delay=0.002), Recorder(delay=0.002)]
        passes = await asyncio.gather(
            Outbox(one, senders[0]).send_due(NOW), Outbox(other, senders[1]).send_due(NOW)
        )
        sent = senders[0].sent + senders[1].sent
        assert sorted(sent) == ids  # each once, by one worker or the other
        assert sorted(passes[0].done + passes[1].done) == ids
        assert {state[:2] for state in (await _states(one)).values()} == {("sent", 1)}
    finally:
        await one.close()
        await other.close()


async def test_the_loop_sends_pass_after_pass_until_stopped(db: Database) -> None:
    ids = await _rows(db, 2)
    sender, stop = Recorder(), asyncio.Event()
    task = asyncio.create_task(Outbox(db, sender).run(lambda: NOW, stop))
    for _ in range(200):
        if len(sender.sent) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert sender.sent == ids
