"""The audit trail: one row per change, written in the transaction of the change (R18).

Is: `audit`, which every change to users, tokens, devices and orders calls with who, what and
the before/after values.
Is not: reading the trail (the helpdesk's pages), or deciding who may change what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from collector.records import Principal
from collector.store.schema import audit_log


def audit(
    conn: Connection,
    at: datetime,
    principal: Principal,
    customer_id: str | None,
    entity: str,
    entity_key: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record who changed what and when, in the transaction of the change itself."""
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=principal.username,
            role=principal.role,
            customer_id=customer_id,
            entity=entity,
            entity_key=entity_key,
            action=action,
            before=before,
            after=after,
        )
    )
