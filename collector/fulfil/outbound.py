"""The dispatcher: sends the fulfilment outbox to the warehouse until each request is acknowledged.

Is: the fulfilment outbox (`fulfilment_requests`) on the outbox worker (collector.outbox),
with the sender `warehouse.mode` names:
- "webhook": the warehouse's HTTPS API (collector.fulfil.webhook), the production sender;
- "simulated": the built-in warehouse in this process (collector.fulfil.simulated), which
  takes every well-formed request at once.
A request left `sending` by a dispatcher that stopped is sent again (pending, due at once):
the warehouse keeps one shipment per `X-ASR-Delivery` reference, so it is retried until
acknowledged and fulfilled once. `run_dispatcher` repeats the pass every `interval_seconds`
inside `serve`. A warehouse's update about a shipment acknowledges its request as well.
Is not: the writing of the requests (placed with their shipment, collector.store.shipping),
nor the warehouse's updates (collector.fulfil.inbound).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from collector.config import WarehouseSection
from collector.errors import InvalidRequest
from collector.fulfil.simulated import SimulatedWarehouse, read_request
from collector.fulfil.webhook import DELIVERY_HEADER, RequestSender, WebhookSender
from collector.outbox import Accepted, Answer, Outbox, Refused, Send
from collector.store.database import Database

__all__ = ["DELIVERY_HEADER", "Dispatcher", "Pass", "SimulatedSender", "run_dispatcher"]
log = logging.getLogger(__name__)


@dataclass
class Pass:
    """What one pass did, by shipment id."""

    acked: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    error: str | None = None  # why the pass stopped early


class SimulatedSender(RequestSender):
    """Hands fulfilment requests to the built-in warehouse (mode "simulated")."""

    def __init__(self, warehouse: WarehouseSection, simulated: SimulatedWarehouse) -> None:
        super().__init__(warehouse)
        self.simulated = simulated

    def session(self) -> AbstractAsyncContextManager[Send[bytes]]:
        """Nothing to open: the warehouse is in this process."""
        return nullcontext(self._hand_over)

    async def _hand_over(self, shipment_id: int, body: bytes, now: datetime) -> Answer:
        try:
            order = read_request(body)
        except InvalidRequest as err:
            return Refused(f"the simulated warehouse refused it: {err}")
        # Its memory is the acknowledged row: collector.fulfil.inbound.apply_simulated
        # recomputes the fate from it, so nothing is kept here.
        fate = self.simulated.fate(order.shipment_id, now)
        log.debug("simulated warehouse: %s ships at %s", order.reference, fate.ships_at)
        return Accepted("taken by the simulated warehouse", {"acked_at": now})


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
        self.simulated: SimulatedWarehouse | None = None
        self._webhook: WebhookSender | None = None
        sender: RequestSender
        if warehouse.mode == "simulated":
            self.simulated = simulated or SimulatedWarehouse(warehouse)
            sender = SimulatedSender(warehouse, self.simulated)
        else:
            sender = self._webhook = WebhookSender(warehouse, session)
        self.outbox: Outbox[bytes] = Outbox(db, sender)

    async def close(self) -> None:
        """Close the HTTP session, if the dispatcher made it."""
        if self._webhook is not None:
            await self._webhook.close()

    async def send_due(
        self, now: datetime, after_send: Callable[[int], None] | None = None
    ) -> Pass:
        """One pass over the outbox at `now` (`after_send`: for tests, called between the
        warehouse's answer and the mark, where a crash would leave the row `sending`)."""
        done = await self.outbox.send_due(now, after_send)
        return Pass(done.done, done.retry, done.failed, done.recovered, done.error)


async def run_dispatcher(dispatcher: Dispatcher, clock: Callable[[], datetime]) -> None:
    """Pass after pass, every `interval_seconds`, until cancelled."""
    await dispatcher.outbox.run(clock)
