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
Also `apply`, the same steps without HTTP or signatures (what the collector's own driver of the
simulated warehouse uses, collector.fulfil.simulated_mode), and the nonces' pruning.
Is not: the HTTP status of each refusal (the views), nor the sending of requests (outbound),
nor the SQL (collector.store.warehouse_updates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.errors import CollectorError, ReplayedNonce
from collector.fulfil.signing import verify
from collector.fulfilment import Update, reference
from collector.store import shipping, warehouse_updates
from collector.store.database import Database

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
    return Taken(update, await apply(db, update, now, signed.nonce))


async def apply(db: Database, update: Update, now: datetime, nonce: str | None) -> bool:
    """Apply one update to its shipment, in one transaction (collector.store.warehouse_updates):
    with its `nonce` (None: the collector's own simulated warehouse, unsigned). Whether the
    shipment changed; ReplayedUpdate, UnknownShipment or InvalidTransition change nothing."""
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
    changed = await warehouse_updates.take(db, update.shipment_id, step, now, nonce)
    if changed is None:
        raise ReplayedUpdate(f"nonce {nonce} was used before: a replayed update")
    return changed


async def prune_nonces(db: Database, now: datetime, skew_seconds: float) -> int:
    """Forget nonces received more than twice the clock skew ago: their updates' timestamps
    are stale by now, so a replay is refused as stale instead. How many were pruned."""
    return await warehouse_updates.prune_nonces(db, now - timedelta(seconds=2 * skew_seconds))
