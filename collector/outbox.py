"""The outbox worker: sends an outbox's due rows through a pluggable sender (mail, warehouse).

Is: `Outbox.send_due`, one pass over one outbox at `now`:
1. *recover*: a row `sending` for longer than `lease_seconds` was claimed by a worker that
   stopped before it marked the answer. What becomes of it is the outbox's (OutboxTable):
   pending again and due at once when the far end is idempotent (the warehouse), or given up
   (`unconfirmed`, for the helpdesk) when a second send could duplicate it (email);
2. *read*: up to `batch_size` pending rows that are due, oldest first, each loaded by the
   sender; a row it cannot load (`Unsendable`) is `failed` without being tried;
3. *send*: through one session of the sender, one row at a time, each claimed first
   (`sending`, `attempts` + 1, in a transaction of its own and only if still pending, so two
   workers never send the same row), then marked by the sender's answer:
   - `Accepted`: done (`sent`, `acked`), with the sender's own columns;
   - `Refused`: `failed` for good, its reason in `last_error`;
   - `Later`: back to pending, due after a doubling delay (from `retry_seconds` up to
     `retry_max_seconds`), and the pass goes on;
   - `Unreachable` raised: the far end takes nothing now, so the pass stops; the row in hand
     and the ones not tried yet wait, each counting an attempt so the delay grows while it
     is down.
   A crash leaves at most the one row in hand `sending`, for *recover* above.
`Outbox.run` repeats the pass every `interval_seconds` until cancelled or `stop` is set.
Is not: what a row means, how it is sent or which answers are final (the senders:
collector.notify.outbox, collector.fulfil.webhook); the SQL (collector.store.outbox_rows, whose
`OutboxStore` hands the worker each due row as a record, and the worker hands it to the sender).
Is at least once for an idempotent far end, at most once otherwise; never exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from collector.store import outbox_rows as rows
from collector.store.database import Database
from collector.store.outbox_rows import OutboxStore, OutboxTable

log = logging.getLogger(__name__)
RecordT = TypeVar("RecordT")
ItemT = TypeVar("ItemT")


class Unsendable(Exception):
    """A row that cannot become a message (no address, no template): failed, never tried."""


class Unreachable(Exception):
    """The far end takes nothing now (down, busy, unreachable): stop the pass, retry later."""


@dataclass(frozen=True)
class Accepted:
    """The far end took it; `values`: the outbox's own columns to record (sent_at, ...)."""

    detail: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    """Refused for good: the same row would be refused again."""

    detail: str


@dataclass(frozen=True)
class Later:
    """Not taken this time, for a reason of this row's that may pass: try it again later."""

    detail: str


Answer = Accepted | Refused | Later
Send = Callable[[int, ItemT, datetime], Awaitable[Answer]]


class Schedule(Protocol):
    """The timings of an outbox (the `[mail]` and `[warehouse]` config sections have them)."""

    @property
    def interval_seconds(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def lease_seconds(self) -> float: ...
    @property
    def retry_seconds(self) -> float: ...
    @property
    def retry_max_seconds(self) -> float: ...


class Sender(Protocol[RecordT, ItemT]):
    """What an outbox sends through: how to load a row's record, and a session that sends one."""

    @property
    def name(self) -> str:
        """For the log: "mail", "warehouse"."""
        ...

    @property
    def box(self) -> OutboxTable[RecordT]:
        """The outbox's table."""
        ...

    @property
    def schedule(self) -> Schedule:
        """Its timings."""
        ...

    @property
    def stale_error(self) -> str:
        """The `last_error` of a recovered row."""
        ...

    def describe(self, row_id: int) -> str:
        """The row as the log names it ("notification 3", "fulfilment request ASR-...")."""
        ...

    async def load(self, record: RecordT) -> ItemT:
        """The item to send for an outbox row; Unsendable if it cannot be sent at all."""
        ...

    def session(self) -> AbstractAsyncContextManager[Send[ItemT]]:
        """A session with the far end (one SMTP connection...); Unreachable if there is none."""
        ...


@dataclass
class Pass:
    """What one pass did, by row id."""

    done: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    error: str | None = None  # why the pass stopped early


class Outbox(Generic[RecordT, ItemT]):
    """One outbox of one database, sent through one sender."""

    def __init__(self, db: Database, sender: Sender[RecordT, ItemT]) -> None:
        self.db = db
        self.sender = sender
        self.rows: OutboxStore[RecordT] = OutboxStore(db, sender.box)

    async def send_due(
        self, now: datetime, after_send: Callable[[int], None] | None = None
    ) -> Pass:
        """One pass at `now` (`after_send`: for tests, called between the far end's answer
        and its mark, where a crash would leave the row `sending`)."""
        sender = self.sender
        result = Pass()
        lease = now - timedelta(seconds=sender.schedule.lease_seconds)
        result.recovered = await self.rows.recover(lease, sender.stale_error)
        for row_id in result.recovered:
            log.warning("%s: %s", sender.describe(row_id), sender.stale_error)
        items = await self._due(now, result)
        if not items:
            return result
        untried = [row_id for row_id, _ in items]
        in_hand: list[int] = []
        try:
            async with sender.session() as send:
                for row_id, item in items:
                    untried.remove(row_id)
                    if not await self.rows.claim(row_id, now):
                        continue  # another worker took it
                    in_hand = [row_id]
                    answer = await send(row_id, item, now)
                    if after_send is not None:
                        after_send(row_id)
                    in_hand = []
                    await self._record(row_id, answer, now, result)
        except Unreachable as err:
            result.error = str(err)
            result.retry.extend(await self._put_back(in_hand, untried, now, str(err)))
            log.warning("%s: %s; %d wait for the next attempt", sender.name, err, len(result.retry))
        return result

    async def run(self, clock: Callable[[], datetime], stop: asyncio.Event | None = None) -> None:
        """Pass after pass, every `interval_seconds`, until cancelled or `stop` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.send_due(clock())
            except Exception:  # the loop's outer guard: log, try again at the next pass
                log.exception("%s: outbox pass failed", self.sender.name)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.sender.schedule.interval_seconds)

    async def _due(self, now: datetime, result: Pass) -> list[tuple[int, ItemT]]:
        items = []
        for row_id, record in await self.rows.due(now, self.sender.schedule.batch_size):
            try:
                items.append((row_id, await self.sender.load(record)))
            except Unsendable as err:
                await self.rows.mark(row_id, rows.FAILED, error=str(err), claimed=False)
                result.failed.append(row_id)
                log.error("%s cannot be sent: %s", self.sender.describe(row_id), err)
        return items

    async def _record(self, row_id: int, answer: Answer, now: datetime, result: Pass) -> None:
        name = self.sender.describe(row_id)
        if isinstance(answer, Accepted):
            await self.rows.mark(row_id, self.sender.box.done, values=answer.values)
            result.done.append(row_id)
        elif isinstance(answer, Refused):
            await self.rows.mark(row_id, rows.FAILED, error=answer.detail)
            result.failed.append(row_id)
            log.error("%s refused for good: %s", name, answer.detail)
        else:
            result.retry.extend(await self._put_back([row_id], [], now, answer.detail))
            log.warning("%s: %s", name, answer.detail)

    async def _put_back(
        self, claimed: list[int], untried: list[int], now: datetime, error: str
    ) -> list[int]:
        if not claimed and not untried:
            return []
        schedule = self.sender.schedule
        return await self.rows.put_back(
            claimed, untried, now, error, schedule.retry_seconds, schedule.retry_max_seconds
        )
