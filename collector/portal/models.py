"""The portal's views (R17): frozen records of what the read model answers, each with to_dict().

Is: the shapes the pages render and the JSON API sends (times as ISO 8601 in UTC, infinite
numbers as null), the forecast's figures included; the records read as stored come from
collector.store.read_records (the helpdesk's from .read_helpdesk and .read_quarantine).
Is not: the reads themselves (collector.portal.queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from collector.store.read_helpdesk import CannotForecast, PartNumberNeeded
from collector.store.read_quarantine import QuarantinedReading
from collector.store.read_records import (
    AuditEntry,
    ContactView,
    CustomerView,
    OrderLine,
    Record,
    ShipmentEvent,
    ShipmentView,
    SiteDevice,
    SiteRef,
    SiteView,
    UnregisteredDevice,
)

# --- the views -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account(Record):
    """The principal, and what its customer is (MPS: the helpdesk changes things, R4, R18)."""

    user_id: int | None
    username: str
    role: str
    customer_id: str | None
    customer_name: str | None
    customer_kind: str | None  # mps or self; None for the helpdesk


@dataclass(frozen=True)
class FleetRow(Record):
    """One registered device in the fleet list."""

    serial: str
    model: str | None
    customer_id: str
    customer_name: str | None
    customer_kind: str
    site_id: int
    site_name: str
    contact_id: int
    contact_name: str  # the display name, else the email
    contact_email: str
    state: str  # collector.replenish.lifecycle.STATES
    state_reason: str
    high_usage: bool  # R6
    last_reading_at: datetime | None
    lowest_percent: float | None  # of its toner and ink, now
    days_left_min: float | None  # in the installed cartridges, now (R7, R17)
    open_orders: int  # shipments placed, backordered or shipped
    flags: tuple[str, ...]  # of FILTERS


@dataclass(frozen=True)
class SupplyView(Record):
    """One supply of a device, now (R7, R13, R17)."""

    supply_id: str
    kind: str  # toner, ink, waste (R5)
    colour: str | None
    sku: str | None  # the part number; None: part number needed (the helpdesk gives it)
    unit: str | None  # g or % (what the rate is in)
    level_percent: float | None  # toner left (a waste container's room left), now
    rate_per_day: float | None  # in `unit` (R7)
    rate_percent_per_day: float | None
    days_left: float | None  # in the installed cartridge
    days_left_total: float | None  # with the balance (R13): what the trigger looks at (R8)
    runs_out_at: datetime | None
    balance: int  # R13: cartridges ordered and not installed (R14's extras included)
    next_order_at: datetime | None  # when it reaches the trigger (R8); None: not planned
    next_order_reason: str
    confidence: float
    history: tuple[tuple[datetime, float], ...]  # (time, percent), the last history_days
    forecast_line: tuple[tuple[datetime, float], ...]  # (time, percent), now to empty
    basis: str = ""  # what days left come from: level, pages, cold-start, watch, none
    why: str = ""  # in plain words


@dataclass(frozen=True)
class DeviceView(Record):
    """One device: facts, state, where it ships and who is told, supplies, orders (R17)."""

    serial: str
    model: str | None
    registered: bool
    registered_at: datetime | None
    customer_id: str
    customer_name: str | None
    customer_kind: str
    site: SiteRef
    contact: ContactView | None  # None: not registered
    state: str | None  # None: not registered
    state_reason: str | None
    state_since: datetime | None
    high_usage: bool
    first_seen: datetime | None
    last_reading_at: datetime | None
    supplies: tuple[SupplyView, ...]
    open_orders: tuple[ShipmentView, ...]
    past_orders: tuple[ShipmentView, ...]


__all__ = [
    "Account",
    "AuditEntry",
    "CannotForecast",
    "ContactView",
    "CustomerView",
    "DeviceView",
    "FleetRow",
    "OrderLine",
    "PartNumberNeeded",
    "QuarantinedReading",
    "ShipmentEvent",
    "ShipmentView",
    "SiteDevice",
    "SiteRef",
    "SiteView",
    "SupplyView",
    "UnregisteredDevice",
]
