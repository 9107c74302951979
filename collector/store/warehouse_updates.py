"""The warehouse's updates in the store: the SQL of collector.fulfil.inbound.

Is: `take`, one update's nonce, step and acknowledgement in one transaction; `prune_nonces`;
and `acknowledged`, the requests the warehouse took whose shipments are still on their way
(what the built-in simulated warehouse recomputes its updates from).
Is not: the checks of an update (signature, body: collector.fulfil.inbound), nor a shipment's
steps themselves (collector.store.shipping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection, delete, select, update

from collector.store import shipping
from collector.store.database import Database
from collector.store.schema import fulfilment_requests, shipments, warehouse_nonces


@dataclass(frozen=True)
class Acknowledged:
    """A request the warehouse acknowledged, of a shipment still on its way."""

    shipment_id: int
    acked_at: datetime
    status: str  # the shipment's


async def take(
    db: Database, shipment_id: int, step: shipping.Step, now: datetime, nonce: str | None
) -> bool | None:
    """In one transaction: the update's `nonce` stored, the shipment's `step` taken, and its
    request, if still waiting for its acknowledgement, acknowledged (the warehouse has it).
    None when the nonce was taken before (a replay: nothing changed); else whether the
    shipment changed. UnknownShipment or InvalidTransition roll it all back."""
    async with db.transaction() as conn:
        return await conn.run_sync(
            partial(_take, db=db, shipment_id=shipment_id, step=step, now=now, nonce=nonce)
        )


def _take(
    conn: Connection,
    db: Database,
    shipment_id: int,
    step: shipping.Step,
    now: datetime,
    nonce: str | None,
) -> bool | None:
    if nonce is not None:
        stored = conn.execute(
            db.insert(warehouse_nonces)
            .values(nonce=nonce, received_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(warehouse_nonces.c.nonce)
        ).first()
        if stored is None:
            return None
    changed = shipping.take(conn, [shipment_id], step, now)[shipment_id]
    if nonce is not None:
        # The warehouse speaks of the shipment: it has the request, whose ack may have been
        # lost. No need to send it again.
        conn.execute(
            update(fulfilment_requests)
            .where(
                (fulfilment_requests.c.shipment_id == shipment_id)
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


async def prune_nonces(db: Database, older: datetime) -> int:
    """Forget the nonces received before `older`. How many were pruned."""
    async with db.transaction() as conn:
        pruned = await conn.execute(
            delete(warehouse_nonces).where(warehouse_nonces.c.received_at < older)
        )
    return int(pruned.rowcount or 0)


async def acknowledged(db: Database) -> list[Acknowledged]:
    """The acknowledged requests whose shipments are still open (collector.store.shipping)."""

    def read(conn: Connection) -> list[Acknowledged]:
        rows = conn.execute(
            select(
                fulfilment_requests.c.shipment_id,
                fulfilment_requests.c.acked_at,
                shipments.c.status,
            )
            .join(shipments, shipments.c.id == fulfilment_requests.c.shipment_id)
            .where(
                (fulfilment_requests.c.status == "acked")
                & fulfilment_requests.c.acked_at.is_not(None)
                & shipments.c.status.in_(shipping.OPEN)
            )
        )
        return [Acknowledged(int(r.shipment_id), r.acked_at, r.status) for r in rows]

    return await db.read(read)
