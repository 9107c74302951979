"""The quarantine as read: readings the collector could not store, newest first.

Is: the latest quarantined readings with the customer and site of the agent that sent them,
the batch that brought them (its signed body stays in `batches`) and, for a conflict, the
customer the serial belongs to (registered in ASR, else first seen by one of its agents).
Is not: who may read it (collector.portal.quarantine), the ingest's decision to quarantine
(collector.store.ingest), nor a way to release a reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from collector.store.database import Database
from collector.store.read_records import Record
from collector.store.schema import (
    QUARANTINE_KINDS,
    agents,
    asr_devices,
    batches,
    devices,
    quarantine,
    sites,
)

KINDS = QUARANTINE_KINDS


@dataclass(frozen=True)
class QuarantinedReading(Record):
    """A reading the collector could not store, kept with the signed batch that brought it."""

    id: int
    received_at: datetime
    customer_id: str  # of the agent that sent it
    site_name: str
    agent_id: str
    seq: int
    kind: str  # invalid, unattributable, conflict
    field: str | None
    reason: str
    serial: str | None
    printer: str | None
    address: str | None
    batch_id: str
    owner_customer_id: str | None  # a conflict's: whose serial it is


def _query(customer_id: str | None, kind: str | None, limit: int) -> Any:
    agent_site = sites.alias("agent_site")
    first_agent = agents.alias("first_agent")
    first_site = sites.alias("first_site")
    owner = case(
        (
            quarantine.c.kind == "conflict",
            func.coalesce(asr_devices.c.customer_id, first_site.c.customer_id),
        ),
        else_=None,
    )
    joined = (
        quarantine.join(agents, agents.c.id == quarantine.c.agent_id)
        .join(agent_site, agent_site.c.id == agents.c.site_id)
        .join(batches, batches.c.id == quarantine.c.batch_pk)
        .outerjoin(asr_devices, asr_devices.c.serial == quarantine.c.serial)
        .outerjoin(devices, devices.c.serial == quarantine.c.serial)
        .outerjoin(first_agent, first_agent.c.id == devices.c.last_agent_id)
        .outerjoin(first_site, first_site.c.id == first_agent.c.site_id)
    )
    conditions = []
    if customer_id is not None:
        conditions.append(agent_site.c.customer_id == customer_id)
    if kind is not None:
        conditions.append(quarantine.c.kind == kind)
    return (
        select(
            quarantine.c.id,
            quarantine.c.received_at,
            agent_site.c.customer_id,
            agent_site.c.name.label("site_name"),
            quarantine.c.agent_id,
            quarantine.c.seq,
            quarantine.c.kind,
            quarantine.c.field,
            quarantine.c.reason,
            quarantine.c.serial,
            quarantine.c.printer,
            quarantine.c.address,
            batches.c.batch_id,
            owner.label("owner_customer_id"),
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(quarantine.c.received_at.desc(), quarantine.c.id.desc())
        .limit(limit)
    )


async def quarantined(
    db: Database, *, customer_id: str | None, kind: str | None, limit: int
) -> list[QuarantinedReading]:
    """The latest `limit` quarantined readings, newest first; of one customer's agents and of
    one kind if given."""
    query = _query(customer_id, kind, limit)
    rows = await db.read(lambda c: c.execute(query).all())
    return [QuarantinedReading(*row) for row in rows]
