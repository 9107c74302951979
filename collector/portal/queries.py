"""The portal's read model (R17): the fleet, a device and its supplies, orders, sites, audit.

Is: every read of the pages and the JSON API, each scoped by a Principal (the store's
collector.store.read_* modules read only what it sees: another customer's device, order or
site is simply not there, None or left out, never "forbidden"). This module shapes their
records into views: levels and days left are the forecast's (collector.replenish.forecast)
at `now`, from the stored track; the balance (R13) counts the orders not yet in the track
too, so an extra order (R14) shows at once; the next order date is the planner's own
(collector.replenish.due). The views are collector.portal.models' frozen records
(`to_dict()` for the API). Rule ids are for the helpdesk: a customer reads words.
Is not: SQL (collector.store), a writer (collector.portal.changes), or the daily run's
decisions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.errors import InvalidRequest
from collector.portal.inputs import MAX_SERIAL, is_id, is_plain
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
from collector.records import Principal
from collector.replenish.daily import Supply, hints, point_of
from collector.replenish.due import due_in
from collector.replenish.forecast import Forecast, Track, day_number, forecast, with_order
from collector.replenish.lifecycle import DISCONNECTED, NO_USAGE_RATE
from collector.replenish.planner import CONSUMED_KINDS
from collector.replenish.settings import Rules
from collector.store import read_device, read_fleet, read_orders, read_sites
from collector.store.database import Database
from collector.store.read_orders import OPEN_STATUSES, STATUSES
from collector.store.read_records import (
    DeviceRow,
    LevelReading,
    StoredFigures,
    SupplyRow,
)

LOW_PERCENT = 15.0  # a supply below this is low, whatever its days left
FILTERS = ("disconnected", "low", "high-usage", "open-orders")
FORECAST_DAYS_SHOWN = 365.0  # the forecast line stops a year ahead


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


@dataclass(frozen=True)
class _Status:
    percent: float | None
    forecast: Forecast | None


def _status(
    track: Track | None, uncounted: int, now: datetime, rules: Rules, supply: SupplyRow
) -> _Status:
    if track is None:
        return _Status(None, None)
    plain = Supply(
        supply.serial, supply.supply_id, supply.kind, supply.colour, supply.sku, supply.rated_yield
    )
    rated, slow, waste = hints(plain)  # as the daily run forecasts it (the fleet's aside)
    counted = with_order(track, uncounted, None) if uncounted else track
    f = forecast(counted, now, rules, None, rated, slow, waste)
    percent = None
    if f.remaining is not None and f.capacity:
        percent = round(max(0.0, min(100.0, 100.0 * f.remaining / f.capacity)), 1)
    return _Status(percent, f)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 1)


def _state(row: DeviceRow, now: datetime, rules: Rules) -> tuple[str, str]:
    """The stored state, or before the first daily run what it can only be."""
    if row.state is not None:
        return row.state, row.reason or ""
    seen = row.last_seen or row.registered_at
    if now - seen >= timedelta(days=rules.disconnected_after_days):
        return DISCONNECTED, "no reading yet: ASR cannot order without data"
    return NO_USAGE_RATE, "no usage rate yet: waiting for the daily run"


def _figures(
    stored: Iterable[StoredFigures], now: datetime
) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """Each tracked supply's percent and days left now, from its stored forecast figures.

    The same numbers as the forecast at `now` (the level falls at the rate since the run that
    stored them), without reading the tracks: the fleet list reads every device's.
    """
    out: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for row in stored:
        fig = row.figures
        remaining, capacity, rate = (
            fig.get("remaining"),
            fig.get("capacity"),
            fig.get("rate_per_day"),
        )
        if remaining is None:
            out[(row.serial, row.supply_id)] = (None, None)
            continue
        elapsed = max(0.0, (now - row.updated_at).total_seconds()) / 86_400
        left = max(0.0, remaining - (rate or 0.0) * elapsed)
        percent = round(max(0.0, min(100.0, 100.0 * left / capacity)), 1) if capacity else None
        days = round(left / rate, 1) if rate else None
        out[(row.serial, row.supply_id)] = (percent, days)
    return out


def _percent_of(r: LevelReading) -> float | None:
    """A stored supply reading's level in percent, as the forecast reads it (R1)."""
    point = point_of(r.at, r.percent, r.grams_left, r.grams_used, r.quality, r.receptacle, None)
    if point.remaining is None or not point.capacity:
        return None
    return round(max(0.0, min(100.0, 100.0 * point.remaining / point.capacity)), 1)


def _latest_percents(latest: Iterable[LevelReading]) -> dict[tuple[str, str], float]:
    out = {}
    for r in latest:
        level = _percent_of(r)
        if level is not None:
            out[(r.serial, r.supply_key)] = level
    return out


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
    figures = _figures(found.figures, now)
    latest = _latest_percents(found.latest)
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
    figures: dict[tuple[str, str], tuple[float | None, float | None]],
    latest: dict[tuple[str, str], float],
    open_counts: dict[str, int],
    now: datetime,
    rules: Rules,
) -> FleetRow:
    percents: list[float] = []
    days: list[float] = []
    for supply_id in consumed:
        key = (row.serial, supply_id)
        level, left = figures.get(key, (None, None))
        level = level if level is not None else latest.get(key)
        if level is not None:
            percents.append(level)
        if left is not None:
            days.append(left)
    state, reason = _state(row, now, rules)
    lowest = min(percents) if percents else None
    days_min = _finite(min(days)) if days else None
    open_count = open_counts.get(row.serial, 0)
    high = bool(row.high_usage)
    flags = tuple(
        name
        for name, on in (
            ("disconnected", state == DISCONNECTED),
            (
                "low",
                (lowest is not None and lowest < LOW_PERCENT)
                or (days_min is not None and days_min < rules.trigger_days),
            ),
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


# --- one device ----------------------------------------------------------------------------


def _said(principal: Principal, words: str, rule: str) -> str:
    """Words for everyone; the rule's id too for the helpdesk (ids are ours, not customers')."""
    return f"{words} ({rule})" if principal.is_helpdesk and rule else words


def _next_order(
    supply: SupplyRow,
    f: Forecast | None,
    track: Track | None,
    state: str,
    high_usage: bool,
    now: datetime,
    rules: Rules,
) -> tuple[datetime | None, str, str]:
    """When the planner orders the supply (collector.replenish.due), why then or why not
    planned, and the rule that says so."""
    if supply.kind not in CONSUMED_KINDS:
        return None, "waste containers come with the black toner; extras via the helpdesk", "R11"
    if high_usage:
        return None, "high usage: this device's supplies are ordered by hand", "R6"
    if state == DISCONNECTED:
        return None, "disconnected: ASR cannot order without data", "R16"
    if f is None or f.rate is None:
        return None, "no usage rate yet", "R7"
    last = track.last_order_day if track is not None else None
    wait = due_in(f, last, day_number(now), rules)
    if wait is None:
        return None, "no usage seen: no order planned", ""
    if wait <= 0:
        return now, f"{rules.trigger_days:g} days of supply left: due at the next daily run", "R8"
    when = now + timedelta(days=min(wait, FORECAST_DAYS_SHOWN * 100))
    assert f.days_left_total is not None
    if f.days_left_total <= rules.trigger_days:
        return when, "just ordered: no new order until its usage jumps or the guard ends", "R12"
    on_the_way = f", counting {f.balance} cartridge(s) already ordered" if f.balance else ""
    return when, f"when {rules.trigger_days:g} days of supply remain{on_the_way}", "R8"


def _forecast_line(
    percent: float | None, f: Forecast | None, now: datetime
) -> tuple[tuple[datetime, float], ...]:
    """The installed cartridge's level from now to empty, at the rate (R7)."""
    if percent is None or f is None or f.rate is None or f.rate <= 0 or not f.capacity:
        return ()
    per_day = 100.0 * f.rate / f.capacity
    days = percent / per_day
    if days <= FORECAST_DAYS_SHOWN:
        return ((now, percent), (now + timedelta(days=days), 0.0))
    end = round(percent - per_day * FORECAST_DAYS_SHOWN, 1)
    return ((now, percent), (now + timedelta(days=FORECAST_DAYS_SHOWN), end))


def _history(readings: Iterable[LevelReading]) -> dict[str, list[tuple[datetime, float]]]:
    """Each supply index's level over time: the last reading of each day (UTC)."""
    daily: dict[str, dict[object, tuple[datetime, float]]] = defaultdict(dict)
    for r in readings:
        level = _percent_of(r)
        if level is not None:
            daily[r.supply_key][r.at.date()] = (r.at, level)
    return {index: list(days.values()) for index, days in daily.items()}


async def device(
    db: Database,
    principal: Principal,
    serial: str,
    *,
    now: datetime,
    rules: Rules | None = None,
) -> DeviceView | None:
    """One device the principal sees, registered or read by its agents; None otherwise."""
    if not is_plain(serial) or not serial or len(serial) > MAX_SERIAL:
        return None  # names nothing: not worth a query (and a NUL would fail PostgreSQL's)
    rules = rules or Rules()
    since = now - timedelta(days=rules.history_days)
    found = await read_device.device_rows(db, principal, serial, since)
    if found is None:
        return None
    if isinstance(found, read_device.UnregisteredRows):
        return _unregistered_view(principal, found)
    return _registered_view(principal, found, now, rules)


def _supply_view(
    principal: Principal,
    s: SupplyRow,
    found: read_device.RegisteredRows,
    history: dict[str, list[tuple[datetime, float]]],
    latest: dict[tuple[str, str], float],
    now: datetime,
    rules: Rules,
) -> SupplyView:
    key = (s.serial, s.supply_id)
    row = found.device
    track = found.tracks.get(key)
    status = _status(track, found.uncounted.get(key, 0), now, rules, s)
    f = status.forecast
    level = status.percent if status.percent is not None else latest.get(key)
    state, _ = _state(row, now, rules)
    when, words, rule = _next_order(s, f, track, state, bool(row.high_usage), now, rules)
    rate = f.rate if f is not None else None
    per_cent = (
        round(100.0 * rate / f.capacity, 3)
        if f is not None and rate is not None and f.capacity
        else None
    )
    ends = None
    if f is not None and f.days_left_total is not None and math.isfinite(f.days_left_total):
        ends = f.runs_out_at(now)
    return SupplyView(
        supply_id=s.supply_id,
        kind=s.kind,
        colour=s.colour,
        sku=s.sku,
        unit=f.unit if f is not None else None,
        level_percent=level,
        rate_per_day=round(rate, 3) if rate is not None else None,
        rate_percent_per_day=per_cent,
        days_left=_finite(f.days_left) if f is not None else None,
        days_left_total=_finite(f.days_left_total) if f is not None else None,
        runs_out_at=ends or found.runs_out.get(s.supply_id),
        balance=f.balance if f is not None else found.uncounted.get(key, 0),
        next_order_at=when,
        next_order_reason=_said(principal, words, rule),
        confidence=f.confidence if f is not None else 0.0,
        history=tuple(history.get(s.supply_index, ())),
        forecast_line=_forecast_line(level, f, now),
        basis=f.basis if f is not None else "",
        why=f.why if f is not None else "",
    )


def _registered_view(
    principal: Principal, found: read_device.RegisteredRows, now: datetime, rules: Rules
) -> DeviceView:
    row = found.device
    history = _history(found.history)
    latest = _latest_percents(found.latest)
    state, reason = _state(row, now, rules)
    views = [_supply_view(principal, s, found, history, latest, now, rules) for s in found.supplies]
    shipped = found.shipments
    return DeviceView(
        serial=row.serial,
        model=row.model or row.seen_model,
        registered=True,
        registered_at=row.registered_at,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        customer_kind=row.customer_kind,
        site=found.site,
        contact=found.contact,
        state=state,
        state_reason=reason,
        state_since=row.since,
        high_usage=bool(row.high_usage),
        first_seen=row.first_seen,
        last_reading_at=row.last_seen,
        supplies=tuple(views),
        open_orders=tuple(s for s in shipped if s.status in OPEN_STATUSES),
        past_orders=tuple(s for s in shipped if s.status not in OPEN_STATUSES),
    )


def _unregistered_view(principal: Principal, found: read_device.UnregisteredRows) -> DeviceView:
    row = found.device
    history = _history(found.history)
    views = []
    for s in found.supplies:
        points = history.get(s.supply_index, [])
        views.append(
            SupplyView(
                supply_id=s.supply_index,
                kind=s.kind,
                colour=s.colour,
                sku=None,  # not registered: no part number yet
                unit=None,
                level_percent=points[-1][1] if points else None,
                rate_per_day=None,
                rate_percent_per_day=None,
                days_left=None,
                days_left_total=None,
                runs_out_at=None,
                balance=0,
                next_order_at=None,
                next_order_reason=_said(principal, "not registered in ASR yet", "R4"),
                confidence=0.0,
                history=tuple(points),
                forecast_line=(),
            )
        )
    return DeviceView(
        serial=row.serial,
        model=row.model,
        registered=False,
        registered_at=None,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        customer_kind=row.customer_kind,
        site=SiteRef(row.site_id, row.site_name, found.address),
        contact=None,
        state=None,
        state_reason=None,
        state_since=None,
        high_usage=False,
        first_seen=row.first_seen,
        last_reading_at=row.last_seen,
        supplies=tuple(views),
        open_orders=(),
        past_orders=(),
    )


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
