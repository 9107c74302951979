"""The dispatcher: sends the fulfilment outbox to the warehouse until each request is acknowledged.

Is: the fulfilment outbox (`fulfilment_requests`) on the outbox worker (collector.outbox),
with the sender `warehouse.mode` names:
- "webhook": the warehouse's HTTPS API (collector.fulfil.webhook), the production sender;
- "simulated": the built-in warehouse in this process, which takes every well-formed request
  at once: its sender is given by the edge (collector.app hands collector.fulfil.views the
  `InProcess` of collector.fulfil.simulated_mode), so this module and the production sender
  never import the simulated warehouse (a contract of .importlinter).
A request left `sending` by a dispatcher that stopped is sent again (pending, due at once):
the warehouse keeps one shipment per `X-ASR-Delivery` reference, so it is retried until
acknowledged and fulfilled once. `run_dispatcher` repeats the pass every `interval_seconds`
inside `serve`. A warehouse's update about a shipment acknowledges its request as well.
Is not: the writing of the requests (placed with their shipment, collector.store.shipping),
nor the warehouse's updates (collector.fulfil.inbound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import aiohttp

from collector.config import WarehouseSection
from collector.fulfil.webhook import DELIVERY_HEADER, RequestSender, WebhookSender
from collector.outbox import Outbox
from collector.store.database import Database
from collector.store.outbox_rows import FulfilmentRequest

__all__ = ["DELIVERY_HEADER", "Dispatcher", "InProcess", "Pass", "run_dispatcher"]


@dataclass
class Pass:
    """What one pass did, by shipment id."""

    acked: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    error: str | None = None  # why the pass stopped early


class InProcess(Protocol):
    """A warehouse in this process (mode "simulated"), given by the edge: its sender, and
    the driver that applies its updates (collector.fulfil.simulated_mode)."""

    @property
    def sender(self) -> RequestSender: ...

    async def run(self, db: Database, clock: Callable[[], datetime]) -> None:
        """Apply its due updates every `interval_seconds`, until cancelled."""
        ...


class Dispatcher:
    """Sends the fulfilment outbox of one database to the configured warehouse."""

    def __init__(
        self,
        db: Database,
        warehouse: WarehouseSection,
        session: aiohttp.ClientSession | None = None,
        sender: RequestSender | None = None,
    ) -> None:
        """`sender`: an in-process warehouse's (InProcess.sender), else the webhook's."""
        if warehouse.mode == "off":
            raise ValueError('warehouse.mode is "off": there is nothing to send requests to')
        self.db = db
        self.warehouse = warehouse
        self._webhook: WebhookSender | None = None
        if sender is None:
            if warehouse.mode != "webhook":
                raise ValueError(
                    f"warehouse.mode is {warehouse.mode!r}: its sender is the edge's to give"
                    " (collector.fulfil.simulated_mode)"
                )
            sender = self._webhook = WebhookSender(warehouse, session)
        self.sender = sender
        self.outbox: Outbox[FulfilmentRequest, bytes] = Outbox(db, sender)

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
