"""A shipment's statuses and the steps between them, and the row each step writes (R13, R15).

Is: the statuses (placed, backordered, shipped, delivered, installed, cancelled), where a
shipment may go from each, the time column each sets, the sources a step may come from, and
`event_row`, the `shipment_events` row of a step.
Is not: the writes (collector.store.shipping, collector.store.warehouse_requests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

PLACED, BACKORDERED, SHIPPED, DELIVERED = "placed", "backordered", "shipped", "delivered"
INSTALLED, CANCELLED = "installed", "cancelled"
STATUSES = (PLACED, BACKORDERED, SHIPPED, DELIVERED, INSTALLED, CANCELLED)
OPEN = (PLACED, BACKORDERED, SHIPPED)  # on their way: in the device's "toner ordered" state
SOURCES = ("plan", "helpdesk", "warehouse", "readings", "customer")
PART_NUMBER_NEEDED = "part number needed"  # a line without one: the shipment waits

# Where a shipment may go from each status.
NEXT: dict[str, tuple[str, ...]] = {
    PLACED: (BACKORDERED, SHIPPED, CANCELLED),
    BACKORDERED: (SHIPPED, CANCELLED),
    SHIPPED: (DELIVERED, INSTALLED),
    DELIVERED: (INSTALLED,),
    INSTALLED: (),
    CANCELLED: (),
}
TIMES = {
    SHIPPED: "shipped_at",
    DELIVERED: "delivered_at",
    INSTALLED: "installed_at",
    CANCELLED: "cancelled_at",
}


def event_row(
    shipment_id: int, status: str, at: datetime, source: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """The `shipment_events` row of one step."""
    return {
        "shipment_id": shipment_id,
        "status": status,
        "at": at,
        "source": source,
        "detail": detail,
    }
