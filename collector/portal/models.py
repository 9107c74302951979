"""The portal's views (R17): frozen records of what the read model answers, each with to_dict().

Is: the shapes the pages render and the JSON API sends (times as ISO 8601 in UTC, infinite
numbers as null). Is not: the reads themselves (collector.portal.queries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _View:
    def to_dict(self) -> dict[str, Any]:
        """The view as JSON values (times in ISO 8601, UTC)."""
        out: dict[str, Any] = _plain(self)
        return out


# --- the views -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account(_View):
    """The principal, and what its customer is (MPS: the helpdesk changes things, R4, R18)."""

    user_id: int | None
    username: str
    role: str
    customer_id: str | None
    customer_name: str | None
    customer_kind: str | None  # mps or self; None for the helpdesk


@dataclass(frozen=True)
class CustomerView(_View):
    id: str
    name: str | None
    kind: str  # mps or self
    language: str | None


@dataclass(frozen=True)
class FleetRow(_View):
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
class UnregisteredDevice(_View):
    """A device an agent of the customer reads, not in ASR yet (R4: can be registered)."""

    serial: str
    model: str | None
    customer_id: str
    customer_name: str | None
    customer_kind: str
    site_id: int
    site_name: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class SiteRef(_View):
    id: int
    name: str
    address: str | None


@dataclass(frozen=True)
class ContactView(_View):
    id: int
    customer_id: str
    name: str
    email: str
    display_name: str | None
    language: str | None


@dataclass(frozen=True)
class SupplyView(_View):
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
class OrderLine(_View):
    serial: str
    supply_id: str
    sku: str | None  # None: part number needed; the shipment waits for it
    quantity: int
    reason: str  # trigger, consolidated, waste-with-black, spike, extra


@dataclass(frozen=True)
class ShipmentEvent(_View):
    status: str
    at: datetime
    source: str  # plan, helpdesk, warehouse, readings, customer
    detail: dict[str, Any]


@dataclass(frozen=True)
class ShipmentView(_View):
    """An order (one shipment) and its latest state (R15)."""

    id: int
    reference: str  # ASR-000123
    customer_id: str
    site_id: int
    site_name: str
    status: str
    placed_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    installed_at: datetime | None
    cancelled_at: datetime | None
    expected_at: datetime | None
    tracking: str | None
    carrier: str | None
    address: str | None
    placed_by: str  # plan (ASR) or helpdesk (R14)
    lines: tuple[OrderLine, ...]
    events: tuple[ShipmentEvent, ...]


@dataclass(frozen=True)
class DeviceView(_View):
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


@dataclass(frozen=True)
class SiteDevice(_View):
    serial: str
    model: str | None
    contact_id: int
    state: str | None


@dataclass(frozen=True)
class SiteView(_View):
    """A site: its shipping address (R18), the customer's contacts, its devices."""

    id: int
    customer_id: str
    customer_name: str | None
    customer_kind: str
    name: str
    address: str | None
    contacts: tuple[ContactView, ...]  # the customer's: any can be a device's contact here
    devices: tuple[SiteDevice, ...]


@dataclass(frozen=True)
class AuditEntry(_View):
    id: int
    at: datetime
    actor: str
    role: str
    customer_id: str | None
    entity: str
    entity_key: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class QuarantinedReading(_View):
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


@dataclass(frozen=True)
class PartNumberNeeded(_View):
    """A registered supply with no part number: its order lines wait for the helpdesk's."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    customer_id: str
    site_name: str
    model: str | None
    waiting_lines: int  # order lines without a part number, in shipments not yet sent
    waiting_shipments: tuple[str, ...]  # their references (ASR-000123)


@dataclass(frozen=True)
class CannotForecast(_View):
    """A supply the forecast has no usable evidence for (no level, no page counter)."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    customer_id: str
    site_name: str
    model: str | None
    why: str  # the forecast's own words ("no level and no page counter")
    updated_at: datetime  # the daily run that said so
