"""The quarantine as the helpdesk reads it: readings the collector could not store.

Is: the latest quarantined readings, newest first (collector.store.read_quarantine says what
each carries), with the filters checked. The helpdesk's alone: any other principal is refused
(Forbidden).
Is not: the query (collector.store.read_quarantine), the ingest's decision to quarantine
(collector.store), nor a way to release a reading.
"""

from __future__ import annotations

from collector.errors import InvalidRequest
from collector.portal.errors import Forbidden
from collector.records import Principal
from collector.store import read_quarantine
from collector.store.database import Database
from collector.store.read_quarantine import QuarantinedReading

KINDS = read_quarantine.KINDS
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
HELPDESK_ONLY = "the quarantine is shown to the helpdesk only"


async def quarantined(
    db: Database,
    principal: Principal,
    *,
    customer_id: str | None = None,
    kind: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[QuarantinedReading]:
    """The latest quarantined readings, newest first (the helpdesk only: else Forbidden)."""
    if not principal.is_helpdesk:
        raise Forbidden(HELPDESK_ONLY)
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(f"kind: one of {', '.join(KINDS)}", "kind")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: 1 to {MAX_LIMIT}", "limit")
    return await read_quarantine.quarantined(db, customer_id=customer_id, kind=kind, limit=limit)
