"""The portal's read model's records: what the store's reads answer, each with to_dict().

Is: frozen records of customers, sites, contacts, shipments and the audit trail as stored,
and the raw rows the portal's fleet and device views are shaped from (times as ISO 8601 in
UTC, infinite numbers as null in `to_dict()`). Is not: the reads (collector.store.read_*),
or the views that add the forecast (collector.portal.models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, true

from collector.records import Principal

_T = TypeVar("_T")


def scoped(principal: Principal, column: ColumnElement[Any]) -> ColumnElement[bool]:
    """The customer's rows only, unless the helpdesk asks (R17)."""
    if principal.is_helpdesk:
        return true()
    if principal.customer_id is None:
        return false()  # nobody's: no rows
    return column == principal.customer_id


def chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    """`items` in slices of `size` (an IN list stays under the drivers' limits)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


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


class Record:
    """A read record that can say itself as JSON values."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values (times in ISO 8601, UTC)."""
        out: dict[str, Any] = _plain(self)
        return out


@dataclass(frozen=True)
class CustomerView(Record):
    id: str
    name: str | None
    kind: str  # mps or self
    language: str | None


@dataclass(frozen=True)
class UnregisteredDevice(Record):
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
class SiteRef(Record):
    id: int
    name: str
    address: str | None


@dataclass(frozen=True)
class ContactView(Record):
    id: int
    customer_id: str
    name: str
    email: str
    display_name: str | None
    language: str | None


@dataclass(frozen=True)
class OrderLine(Record):
    serial: str
    supply_id: str
    sku: str | None  # None: part number needed; the shipment waits for it
    quantity: int
    reason: str  # trigger, consolidated, waste-with-black, spike, extra


@dataclass(frozen=True)
class ShipmentEvent(Record):
    status: str
    at: datetime
    source: str  # plan, helpdesk, warehouse, readings, customer
    detail: dict[str, Any]


@dataclass(frozen=True)
class ShipmentView(Record):
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
class SiteDevice(Record):
    serial: str
    model: str | None
    contact_id: int
    state: str | None


@dataclass(frozen=True)
class SiteView(Record):
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
class AuditEntry(Record):
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


# --- the raw rows the portal's fleet and device views are shaped from -------------------------


@dataclass(frozen=True)
class DeviceRow:
    """A registered device with its customer, site, contact and stored state (R17)."""

    serial: str
    model: str | None
    customer_id: str
    customer_name: str | None
    customer_kind: str
    site_id: int
    site_name: str
    contact_id: int
    display_name: str | None
    email: str
    registered_at: datetime
    state: str | None  # None: before its first daily run
    reason: str | None
    high_usage: bool | None
    since: datetime | None
    last_seen: datetime | None
    first_seen: datetime | None
    seen_model: str | None


@dataclass(frozen=True)
class SupplyRow:
    """A registered supply (R4, R5), or one of an unregistered device's latest reading."""

    serial: str
    supply_id: str
    supply_index: str
    kind: str
    colour: str | None
    sku: str | None
    rated_yield: int | None


@dataclass(frozen=True)
class LevelReading:
    """A supply's gauge in one reading, as stored (the forecast reads its level, R1)."""

    serial: str
    supply_key: str  # the registered supply_id, or the reading's supply_index
    at: datetime
    percent: float | None
    grams_left: float | None
    grams_used: float | None
    quality: str
    receptacle: bool


@dataclass(frozen=True)
class StoredFigures:
    """A tracked supply's forecast figures as the last daily run stored them."""

    serial: str
    supply_id: str
    figures: dict[str, Any]
    updated_at: datetime
