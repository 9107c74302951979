"""Mode "simulated": the built-in warehouse in the collector's process, instead of a webhook.

Is: `SimulatedMode`, what the edge (collector.app) hands the dispatcher's context in this mode
(collector.fulfil.outbound.InProcess): `SimulatedSender`, which hands each fulfilment request
to the built-in warehouse (collector.fulfil.simulated), taking every well-formed one at once;
and its driver, `apply_simulated` every `interval_seconds`, which applies the warehouse's due
updates with the same steps as its signed updates (collector.fulfil.inbound.apply), without
HTTP or signatures.
Is not: the production sender (collector.fulfil.webhook), which never imports this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime

from collector.config import WarehouseSection
from collector.errors import InvalidRequest, InvalidTransition, UnknownShipment
from collector.fulfil.inbound import apply
from collector.fulfil.simulated import SimulatedWarehouse, read_request
from collector.fulfil.webhook import RequestSender
from collector.fulfilment import Update
from collector.outbox import Accepted, Answer, Refused, Send
from collector.store import shipping, warehouse_updates
from collector.store.database import Database

log = logging.getLogger(__name__)


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
        # Its memory is the acknowledged row: apply_simulated recomputes the fate from it, so
        # nothing is kept here.
        fate = self.simulated.fate(order.shipment_id, now)
        log.debug("simulated warehouse: %s ships at %s", order.reference, fate.ships_at)
        return Accepted("taken by the simulated warehouse", {"acked_at": now})


class SimulatedMode:
    """The built-in warehouse of one configuration: its sender and its driver (InProcess)."""

    def __init__(
        self, warehouse: WarehouseSection, simulated: SimulatedWarehouse | None = None
    ) -> None:
        self.settings = warehouse
        self.warehouse = simulated or SimulatedWarehouse(warehouse)
        self.sender = SimulatedSender(warehouse, self.warehouse)

    async def run(self, db: Database, clock: Callable[[], datetime]) -> None:
        """Apply the warehouse's due updates every `interval_seconds`, until cancelled."""
        await run_simulated(db, self.warehouse, clock, self.settings.interval_seconds)


async def apply_simulated(
    db: Database, warehouse: SimulatedWarehouse, now: datetime
) -> list[Update]:
    """Apply every update of the built-in warehouse due at `now`.

    Its memory is the database: each acknowledged request of a shipment still on its way
    has its fate recomputed from the acknowledgement time (collector.fulfil.simulated), and
    only the steps after the shipment's status are applied, oldest first, one transaction
    each. A restart loses nothing and repeats nothing. The updates applied.
    """
    requests = await warehouse_updates.acknowledged(db)
    due = sorted(
        (
            update
            for request in requests
            for update in warehouse.following(
                request.shipment_id, request.acked_at, request.status, now
            )
        ),
        key=lambda u: (u.at, u.shipment_id, shipping.STATUSES.index(u.status)),
    )
    applied = []
    for update in due:
        try:
            changed = await apply(db, update, now, nonce=None)
        except (InvalidTransition, UnknownShipment) as err:  # moved meanwhile by someone else
            log.info(
                "simulated warehouse: %s %s skipped: %s", update.status, update.shipment_id, err
            )
            continue
        if changed:
            applied.append(update)
    return applied


async def run_simulated(
    db: Database,
    warehouse: SimulatedWarehouse,
    clock: Callable[[], datetime],
    interval_seconds: float,
) -> None:
    """Apply the simulated warehouse's due updates every `interval_seconds`, until cancelled."""
    while True:
        try:
            applied = await apply_simulated(db, warehouse, clock())
        except Exception:  # the loop's outer guard: log, try again at the next pass
            log.exception("simulated warehouse pass failed")
        else:
            if applied:
                log.info("simulated warehouse: %d update(s) applied", len(applied))
        await asyncio.sleep(interval_seconds)
