"""The portal's read model (R17): the fleet, a device and its supplies, orders, sites, audit.

Is: every read of the pages and the JSON API, each scoped by a Principal (the store's
collector.store.read_* modules read only what it sees: another customer's device, order or
site is simply not there, None or left out, never "forbidden"). This module shapes their
records into views: levels and days left are the forecast's (collector.replenish.forecast)
at `now`, from the stored track; the balance (R13) counts the orders not yet in the track
too, so an extra order (R14) shows at once; the next order date is the planner's own
(collector.replenish.due). The views are collector.portal.models' frozen records
(`to_dict()` for the API). Rule ids are for the helpdesk: a customer reads words. One device's
view is shaped in collector.portal.device_view, a supply's status in .supply_status.
Is not: SQL (collector.store), a writer (collector.portal.changes), or the daily run's
decisions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from collector.errors import InvalidRequest
from collector.portal.device_view import device
from collector.portal.inputs import is_id
from collector.portal.models import (
    Account,
    AuditEntry,
    ContactView,
    CustomerView,
    DeviceView,
    FleetRow,
    OrderLine,
    ShipmentEvent,
    ShipmentView,
    SiteDevice,
    SiteRef,
    SiteView,
    SupplyView,
    UnregisteredDevice,
)
from collector.portal.supply_status import (
    NOT_KNOWN,
    FiguresNow,
    device_state,
    finite,
    latest_percents,
    stored_figures,
)
from collector.records import Principal
from collector.replenish.due import at_trigger
from collector.replenish.lifecycle import DISCONNECTED
from collector.replenish.planner import CONSUMED_KINDS
from collector.replenish.settings import Rules
from collector.store import read_fleet, read_orders, read_sites
from collector.store.database import Database
from collector.store.read_orders import OPEN_STATUSES, STATUSES
from collector.store.read_records import (
    DeviceRow,
)

FILTERS = ("disconnected", "low", "high-usage", "open-orders")


# --- the account ---------------------------------------------------------------------------


async def account(db: Database, principal: Principal) -> Account:
    """Who the principal is, with its customer's name and kind."""
    found = None
    if principal.customer_id is not None:
        found = await read_sites.customer_name_kind(db, principal.customer_id)
    return Account(
        principal.user_id,
        principal.username,
        principal.role,
        principal.customer_id,
        found[0] if found is not None else None,
        found[1] if found is not None else None,
    )


async def customer_list(db: Database, principal: Principal) -> list[CustomerView]:
    """The customers the principal sees (the helpdesk: all), by id."""
    return await read_sites.customer_list(db, principal)


# --- the fleet -----------------------------------------------------------------------------


async def fleet(
    db: Database,
    principal: Principal,
    filter: str | None = None,
    *,
    now: datetime,
    rules: Rules | None = None,
) -> list[FleetRow]:
    """The registered devices the principal sees, by customer, site and serial (R17).

    `filter`: None, or one of FILTERS (disconnected, low, high-usage, open-orders).
    """
    if filter is not None and filter not in FILTERS:
        raise InvalidRequest(f"filter: one of {', '.join(FILTERS)}, not {filter!r}", "filter")
    rules = rules or Rules()
    found = await read_fleet.fleet_rows(db, principal)
    figures = stored_figures(found.figures, now)
    latest = latest_percents(found.latest)
    consumed: dict[str, list[str]] = defaultdict(list)
    for s in found.supplies:
        if s.kind in CONSUMED_KINDS:
            consumed[s.serial].append(s.supply_id)
    rows = [
        _fleet_row(row, consumed[row.serial], figures, latest, found.open_counts, now, rules)
        for row in found.devices
    ]
    return [r for r in rows if filter is None or filter in r.flags]


def _fleet_row(
    row: DeviceRow,
    consumed: list[str],
    figures: dict[tuple[str, str], FiguresNow],
    latest: dict[tuple[str, str], float],
    open_counts: dict[str, int],
    now: datetime,
    rules: Rules,
) -> FleetRow:
    percents: list[float] = []
    days: list[float] = []
    low = False
    for supply_id in consumed:
        key = (row.serial, supply_id)
        fig = figures.get(key, NOT_KNOWN)
        level = fig.percent if fig.percent is not None else latest.get(key)
        if level is not None:
            percents.append(level)
        if fig.days_left is not None:
            days.append(fig.days_left)
        # Low: at the planner's trigger (R8), counting the cartridges on their way (R13).
        low |= fig.days_left_total is not None and at_trigger(fig.days_left_total, rules)
    state, reason = device_state(row, now, rules)
    lowest = min(percents) if percents else None
    days_min = finite(min(days)) if days else None
    open_count = open_counts.get(row.serial, 0)
    high = bool(row.high_usage)
    flags = tuple(
        name
        for name, on in (
            ("disconnected", state == DISCONNECTED),
            ("low", low),
            ("high-usage", high),
            ("open-orders", open_count > 0),
        )
        if on
    )
    return FleetRow(
        serial=row.serial,
        model=row.model or row.seen_model,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        customer_kind=row.customer_kind,
        site_id=row.site_id,
        site_name=row.site_name,
        contact_id=row.contact_id,
        contact_name=row.display_name or row.email,
        contact_email=row.email,
        state=state,
        state_reason=reason,
        high_usage=high,
        last_reading_at=row.last_seen,
        lowest_percent=lowest,
        days_left_min=days_min,
        open_orders=open_count,
        flags=flags,
    )


async def unregistered(db: Database, principal: Principal) -> list[UnregisteredDevice]:
    """R4: devices the principal's customers' agents read that are not in ASR yet."""
    return await read_fleet.unregistered(db, principal)


# --- orders --------------------------------------------------------------------------------


async def orders(
    db: Database,
    principal: Principal,
    status: str | None = None,
    *,
    now: datetime,
    serial: str | None = None,
    limit: int = 500,
) -> list[ShipmentView]:
    """The shipments the principal sees, newest first (R15: each with its latest state).

    `status`: None (all), "open" (placed, backordered or shipped), or one of STATUSES.
    """
    del now  # the views hold times, not ages; kept for one signature across the read model
    statuses: tuple[str, ...] | None = None
    if status == "open":
        statuses = OPEN_STATUSES
    elif status is not None:
        if status not in STATUSES:
            raise InvalidRequest(
                f"status: open or one of {', '.join(STATUSES)}, not {status!r}", "status"
            )
        statuses = (status,)
    return await read_orders.orders(db, principal, statuses, serial=serial, limit=limit)


async def order(db: Database, principal: Principal, shipment_id: int) -> ShipmentView | None:
    """One shipment the principal sees; None otherwise."""
    return await read_orders.order(db, principal, shipment_id)


# --- sites and contacts --------------------------------------------------------------------


async def sites(
    db: Database, principal: Principal, *, site_id: int | None = None
) -> list[SiteView]:
    """The sites the principal sees, with the customer's contacts and the site's devices."""
    return await read_sites.sites(db, principal, site_id=site_id)


async def contact_list(db: Database, principal: Principal) -> list[ContactView]:
    """The contacts the principal sees, by customer and name."""
    return await read_sites.contact_list(db, principal)


async def contact(db: Database, principal: Principal, contact_id: int) -> ContactView | None:
    """One contact the principal sees; None otherwise."""
    if not is_id(contact_id):
        return None
    found = await read_sites.contact_list(db, principal, contact_id=contact_id)
    return found[0] if found else None


async def site(db: Database, principal: Principal, site_id: int) -> SiteView | None:
    """One site the principal sees, with its contacts and devices; None otherwise."""
    if not is_id(site_id):
        return None
    found = await sites(db, principal, site_id=site_id)
    return found[0] if found else None


# --- the audit trail -----------------------------------------------------------------------


async def audit_trail(db: Database, principal: Principal, limit: int = 100) -> list[AuditEntry]:
    """The latest changes the principal may see (its customer's; the helpdesk: all)."""
    return await read_sites.audit_trail(db, principal, limit)


__all__ = [
    "FILTERS",
    "Account",
    "AuditEntry",
    "ContactView",
    "CustomerView",
    "DeviceView",
    "FleetRow",
    "OrderLine",
    "ShipmentEvent",
    "ShipmentView",
    "SiteDevice",
    "SiteRef",
    "SiteView",
    "SupplyView",
    "UnregisteredDevice",
    "account",
    "audit_trail",
    "contact",
    "contact_list",
    "customer_list",
    "device",
    "fleet",
    "order",
    "orders",
    "site",
    "sites",
    "unregistered",
]
