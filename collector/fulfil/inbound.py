"""The warehouse's updates taken in: checked, then applied to their shipment in one transaction.

Is: what `POST /api/v1/warehouse/updates` does apart from HTTP (collector.fulfil.views), in
this order, each refusal changing nothing:
1. the HMAC signature over the exact body, with the key of `warehouse.inbound_secret_file`
   (collector.fulfil.signing), and its timestamp within ±`clock_skew_seconds` of now;
2. the body, an `Update` (collector.fulfilment), each wrong field named;
3. in one transaction: the nonce stored (taken before: a replay, refused) and the shipment's
   step (collector.store.shipping: event, times, tracking and the R15 email in the outbox).
   A step the shipment cannot take (delivered, then backordered) or an unknown shipment rolls
   the nonce back with it; a step taken already changes nothing and says so. The shipment's
   request, if still waiting for its acknowledgement, is acknowledged: the warehouse has it.
Also the collector's own driver of the simulated warehouse (`apply_simulated`, mode
"simulated"), which applies the same steps without HTTP or signatures, and the nonces' pruning.
Is not: the HTTP status of each refusal (the views), nor the sending of requests (outbound).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy import update as sa_update

from collector.errors import CollectorError, InvalidTransition, ReplayedNonce, UnknownShipment
from collector.fulfil.signing import verify
from collector.fulfil.simulated import SimulatedWarehouse
from collector.fulfilment import Update, reference
from collector.store import shipping
from collector.store.database import Database
from collector.store.schema import fulfilment_requests, shipments, warehouse_nonces

log = logging.getLogger(__name__)
SOURCE = "warehouse"


class ReplayedUpdate(ReplayedNonce):
    """An update whose nonce was taken before: a replay, refused."""

    reason = "replayed"


class UpdatesOff(CollectorError):
    """No key to check the warehouse's updates with: the inbound API is off."""

    reason = "updates-off"


@dataclass(frozen=True)
class Taken:
    """An update applied: whether its shipment changed (False: it had that status already)."""

    update: Update
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "shipment_id": self.update.shipment_id,
            "reference": reference(self.update.shipment_id),
            "status": self.update.status,
            "changed": self.changed,
        }


async def take_update(
    db: Database,
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    skew_seconds: float,
) -> Taken:
    """Check a signed update and apply it; SignatureRefused, InvalidRequest, ReplayedUpdate,
    UnknownShipment or InvalidTransition when it is refused (and then nothing changed)."""
    signed = verify(key, headers, body, now, skew_seconds)
    update = Update.decode(body)
    async with db.transaction() as conn:
        changed = await conn.run_sync(
            partial(_apply, db=db, update=update, now=now, nonce=signed.nonce)
        )
    return Taken(update, changed)


def _apply(
    conn: Connection, db: Database, update: Update, now: datetime, nonce: str | None
) -> bool:
    if nonce is not None:
        stored = conn.execute(
            db.insert(warehouse_nonces)
            .values(nonce=nonce, received_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(warehouse_nonces.c.nonce)
        ).first()
        if stored is None:
            raise ReplayedUpdate(f"nonce {nonce} was used before: a replayed update")
    detail: dict[str, Any] = {}
    if update.note is not None:
        detail["note"] = update.note
    if update.expected_at is not None:
        detail["expected_at"] = update.expected_at.isoformat()
    step = shipping.Step(
        update.status,
        update.at,
        SOURCE,
        tracking=update.tracking,
        carrier=update.carrier,
        expected_at=update.expected_at,
        detail=detail,
    )
    changed = shipping.take(conn, [update.shipment_id], step, now)[update.shipment_id]
    if nonce is not None:
        # The warehouse speaks of the shipment: it has the request, whose ack may have been
        # lost. No need to send it again.
        conn.execute(
            sa_update(fulfilment_requests)
            .where(
                (fulfilment_requests.c.shipment_id == update.shipment_id)
                & fulfilment_requests.c.status.in_(("pending", "sending"))
            )
            .values(
                status="acked",
                acked_at=now,
                claimed_at=None,
                last_error="acknowledged by the warehouse's update",
            )
        )
    return changed


async def prune_nonces(db: Database, now: datetime, skew_seconds: float) -> int:
    """Forget nonces received more than twice the clock skew ago: their updates' timestamps
    are stale by now, so a replay is refused as stale instead. How many were pruned."""
    older = now - timedelta(seconds=2 * skew_seconds)
    async with db.transaction() as conn:
        pruned = await conn.execute(
            delete(warehouse_nonces).where(warehouse_nonces.c.received_at < older)
        )
    return int(pruned.rowcount or 0)


async def apply_simulated(
    db: Database, warehouse: SimulatedWarehouse, now: datetime
) -> list[Update]:
    """Mode "simulated": apply every update of the built-in warehouse due at `now`.

    Its memory is the database: each acknowledged request of a shipment still on its way
    has its fate recomputed from the acknowledgement time (collector.fulfil.simulated), and
    only the steps after the shipment's status are applied, oldest first, one transaction
    each. A restart loses nothing and repeats nothing. The updates applied.
    """

    def open_requests(conn: Connection) -> list[Any]:
        return list(
            conn.execute(
                select(fulfilment_requests.c.shipment_id, fulfilment_requests.c.acked_at)
                .add_columns(shipments.c.status)
                .join(shipments, shipments.c.id == fulfilment_requests.c.shipment_id)
                .where(
                    (fulfilment_requests.c.status == "acked")
                    & fulfilment_requests.c.acked_at.is_not(None)
                    & shipments.c.status.in_(shipping.OPEN)
                )
            ).all()
        )

    rows = await db.read(open_requests)
    due = sorted(
        (
            update
            for row in rows
            for update in warehouse.following(row.shipment_id, row.acked_at, row.status, now)
        ),
        key=lambda u: (u.at, u.shipment_id, shipping.STATUSES.index(u.status)),
    )
    applied = []
    for update in due:
        try:
            async with db.transaction() as conn:
                changed = await conn.run_sync(
                    partial(_apply, db=db, update=update, now=now, nonce=None)
                )
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
