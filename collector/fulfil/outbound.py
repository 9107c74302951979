"""The dispatcher: sends the fulfilment outbox to the warehouse until each request is acknowledged.

Is: `send_due`, one pass over `fulfilment_requests` at `now`, the mailer's pattern
(collector.notify.outbox) with one difference, idempotent redelivery:
1. *recover*: a row `sending` for longer than the lease was claimed by a dispatcher that
   stopped before it knew the answer. The warehouse may have it already; it is sent again all
   the same (back to `pending`, due at once) because every request carries its shipment's
   reference as the idempotency key `X-ASR-Delivery`, by which the warehouse keeps one
   shipment per reference. Retried until acknowledged, fulfilled once;
2. *read*: up to `batch_size` `pending` rows that are due, oldest shipment first;
3. *send*: one at a time, each claimed first (`sending`, in a transaction of its own and only
   if still `pending`, so several collectors never take the same row), POSTed signed
   (collector.fulfil.signing) over HTTPS, the warehouse's certificate checked against
   `ca_file` (or the system's CAs), and marked by the answer:
   - 2xx, or 409 (the warehouse has this reference already): `acked`;
   - 408 or another 5xx: back to `pending` later (doubling from `retry_seconds` up to
     `retry_max_seconds`), and the pass goes on with the next row;
   - 429, 503, a timeout, a connection or TLS failure: the warehouse cannot take requests
     now, so the pass stops; this row and the ones not tried yet wait, each counting an
     attempt so their backoff grows while it is down;
   - any other answer (400, 401, 404, a redirect...): `failed` with the answer in
     `last_error`, for the helpdesk: the same bytes would be refused again.
In mode "simulated" the requests go to the built-in warehouse in this process instead
(collector.fulfil.simulated) and are acknowledged at once.
`run_dispatcher` repeats the pass every `interval_seconds` inside `serve`.
A warehouse's update about a shipment acknowledges its request as well (inbound).
Is not: the writing of the requests (placed with their shipment, collector.store.shipping),
nor the warehouse's updates (collector.fulfil.inbound).
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

import aiohttp
from sqlalchemy import Connection, select, update

from collector.config import WarehouseSection
from collector.errors import InvalidRequest
from collector.fulfil.signing import load_key, sign
from collector.fulfil.simulated import SimulatedWarehouse, read_request
from collector.fulfilment import reference
from collector.store import claims
from collector.store.database import Database
from collector.store.schema import fulfilment_requests

log = logging.getLogger(__name__)
_T = TypeVar("_T")
PENDING, SENDING, ACKED, FAILED = "pending", "sending", "acked", "failed"
DELIVERY_HEADER = "X-ASR-Delivery"
USER_AGENT = "asr-collector (fulfilment)"
_table = fulfilment_requests


@dataclass
class Pass:
    """What one pass did, by shipment id."""

    acked: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    error: str | None = None  # why the pass stopped early


class _Unreachable(Exception):
    """The warehouse takes no requests now: stop the pass, try again later."""


@dataclass(frozen=True)
class _Answer:
    outcome: str  # ACKED, FAILED, or "retry"
    detail: str


class Dispatcher:
    """Sends the fulfilment outbox of one database to the configured warehouse."""

    def __init__(
        self,
        db: Database,
        warehouse: WarehouseSection,
        session: aiohttp.ClientSession | None = None,
        simulated: SimulatedWarehouse | None = None,
    ) -> None:
        if warehouse.mode == "off":
            raise ValueError('warehouse.mode is "off": there is nothing to send requests to')
        self.db = db
        self.warehouse = warehouse
        self.simulated = None
        self._key = b""
        if warehouse.mode == "simulated":
            self.simulated = simulated or SimulatedWarehouse(warehouse)
        else:
            assert warehouse.secret_file is not None and warehouse.url is not None  # config
            self._key = load_key(warehouse.secret_file)
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the HTTP session, if the dispatcher made it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def send_due(
        self, now: datetime, after_send: Callable[[int], None] | None = None
    ) -> Pass:
        """One pass over the outbox at `now` (`after_send`: for tests, called between the
        warehouse's answer and the mark, where a crash would leave the row `sending`)."""
        result = Pass()
        result.recovered = await self._transaction(lambda c: self._recover(c, now))
        for shipment_id in result.recovered:
            log.warning(
                "fulfilment request %s: its dispatcher stopped while sending it; sending it"
                " again with the same %s key",
                reference(shipment_id),
                DELIVERY_HEADER,
            )
        rows = await self._transaction(lambda c: self._due(c, now))
        untried = [shipment_id for shipment_id, _ in rows]
        for shipment_id, body in rows:
            untried.remove(shipment_id)
            if not await self._transaction(partial(_claim, shipment_id=shipment_id, now=now)):
                continue  # another dispatcher took it
            try:
                answer = await self._deliver(shipment_id, body, now)
            except _Unreachable as err:
                result.error = str(err)
                result.retry.extend(await self._retry([shipment_id], untried, now, str(err)))
                log.warning(
                    "warehouse: %s; %d request(s) wait for the next attempt",
                    err,
                    len(result.retry),
                )
                return result
            if after_send is not None:
                after_send(shipment_id)
            if answer.outcome == ACKED:
                await self._mark(shipment_id, ACKED, now)
                result.acked.append(shipment_id)
            elif answer.outcome == FAILED:
                await self._mark(shipment_id, FAILED, now, error=answer.detail)
                result.failed.append(shipment_id)
                log.error(
                    "fulfilment request %s refused for good: %s",
                    reference(shipment_id),
                    answer.detail,
                )
            else:
                result.retry.extend(await self._retry([shipment_id], [], now, answer.detail))
                log.warning("fulfilment request %s: %s", reference(shipment_id), answer.detail)
        return result

    async def _deliver(self, shipment_id: int, body: bytes, now: datetime) -> _Answer:
        if self.simulated is not None:
            try:
                order = read_request(body)
            except InvalidRequest as err:
                return _Answer(FAILED, f"the simulated warehouse refused it: {err}")
            # Its memory is the acknowledged row: collector.fulfil.inbound.apply_simulated
            # recomputes the fate from it, so nothing is kept here.
            fate = self.simulated.fate(order.shipment_id, now)
            log.debug("simulated warehouse: %s ships at %s", order.reference, fate.ships_at)
            return _Answer(ACKED, "taken by the simulated warehouse")
        url = self.warehouse.url
        assert url is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: reference(shipment_id),
            **sign(self._key, body, now),
        }
        try:
            async with self._http().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.content.read(300)).decode("utf-8", "replace")
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise _Unreachable(f"cannot reach {url}: {type(err).__name__}: {err}") from err
        detail = f"HTTP {status}: {text}".strip()
        if 200 <= status < 300 or status == 409:  # 409: it has this reference already
            return _Answer(ACKED, detail)
        if status in (429, 503):
            raise _Unreachable(f"{url} answered {detail}")
        if status == 408 or status >= 500:
            return _Answer("retry", detail)
        return _Answer(FAILED, detail)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            ca_file = self.warehouse.ca_file
            context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file is not None else None
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=self.warehouse.timeout_seconds),
            )
        return self._session

    async def _transaction(self, work: Callable[[Connection], _T]) -> _T:
        async with self.db.transaction() as conn:
            return await conn.run_sync(work)

    def _recover(self, conn: Connection, now: datetime) -> list[int]:
        stale = now - timedelta(seconds=self.warehouse.lease_seconds)
        return list(
            conn.execute(
                update(_table)
                .where((_table.c.status == SENDING) & (_table.c.claimed_at < stale))
                .values(
                    status=PENDING,
                    claimed_at=None,
                    next_attempt_at=None,
                    last_error="the dispatcher stopped while sending it: sent again",
                )
                .returning(_table.c.shipment_id)
            ).scalars()
        )

    def _due(self, conn: Connection, now: datetime) -> list[tuple[int, bytes]]:
        due = (
            select(_table.c.shipment_id, _table.c.body)
            .where(
                (_table.c.status == PENDING)
                & (_table.c.next_attempt_at.is_(None) | (_table.c.next_attempt_at <= now))
            )
            .order_by(_table.c.shipment_id)
            .limit(self.warehouse.batch_size)
        )
        return [(row.shipment_id, bytes(row.body)) for row in conn.execute(due)]

    async def _mark(
        self, shipment_id: int, status: str, now: datetime, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "claimed_at": None, "last_error": error}
        if status == ACKED:
            values["acked_at"] = now
        await self._transaction(
            lambda c: c.execute(
                update(_table)
                .where((_table.c.shipment_id == shipment_id) & (_table.c.status == SENDING))
                .values(values)
            )
        )

    async def _retry(
        self, claimed: list[int], untried: list[int], now: datetime, error: str
    ) -> list[int]:
        """Back to `pending` for a later attempt: the rows this pass claimed, and those it
        did not get to (the warehouse was down), which count an attempt too. Their ids."""

        def back(conn: Connection) -> list[int]:
            return claims.put_back(
                conn,
                _table.c.shipment_id,
                claimed,
                untried,
                now,
                error,
                self.warehouse.retry_seconds,
                self.warehouse.retry_max_seconds,
            )

        return await self._transaction(back) if claimed or untried else []


def _claim(conn: Connection, shipment_id: int, now: datetime) -> bool:
    """Take a pending row for sending; False if another dispatcher took it first."""
    return claims.claim(conn, _table.c.shipment_id, shipment_id, now)


async def run_dispatcher(dispatcher: Dispatcher, clock: Callable[[], datetime]) -> None:
    """Pass after pass, every `interval_seconds`, until cancelled."""
    while True:
        try:
            await dispatcher.send_due(clock())
        except Exception:  # the loop's outer guard: log, try again at the next pass
            log.exception("fulfilment pass failed")
        await asyncio.sleep(dispatcher.warehouse.interval_seconds)
