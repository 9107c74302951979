"""The portal's read model (R17): the fleet, a device and its supplies, orders, sites, audit.

Is: every read of the pages and the JSON API, each scoped by a Principal: a customer's user
sees its own customer's objects only, and another customer's device, order or site is
simply not there (None or left out, never "forbidden"), so nothing of it leaks. Levels and
days left are the forecast's (collector.replenish.forecast) at `now`, from the stored track;
the balance (R13) counts the orders not yet in the track too, so an extra order (R14) shows
at once. The views are collector.portal.models' frozen records (`to_dict()` for the API).
Is not: a writer (collector.portal.changes), or the daily run's decisions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, select, true

from collector.errors import InvalidRequest
from collector.fulfilment import reference
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
from collector.replenish.forecast import Forecast, Track, forecast, with_order
from collector.replenish.lifecycle import DISCONNECTED, NO_USAGE_RATE
from collector.replenish.planner import CONSUMED_KINDS
from collector.replenish.settings import Rules
from collector.store.database import Database
from collector.store.schema import (
    agents,
    asr_devices,
    asr_supplies,
    audit_log,
    contacts,
    customers,
    device_states,
    devices,
    readings,
    shipment_events,
    shipments,
    supplies,
    supply_tracks,
)
from collector.store.schema import orders as order_lines
from collector.store.schema import sites as site_rows

LOW_PERCENT = 15.0  # a supply below this is low, whatever its days left
OPEN_STATUSES = ("placed", "backordered", "shipped")
STATUSES = ("placed", "backordered", "shipped", "delivered", "installed", "cancelled")
FILTERS = ("disconnected", "low", "high-usage", "open-orders")
FORECAST_DAYS_SHOWN = 365.0  # the forecast line stops a year ahead
_T = TypeVar("_T")


# --- scoping -------------------------------------------------------------------------------


def _scope(principal: Principal, column: ColumnElement[Any]) -> ColumnElement[bool]:
    """The customer's rows only, unless the helpdesk asks."""
    if principal.is_helpdesk:
        return true()
    if principal.customer_id is None:
        return false()  # nobody's: no rows
    return column == principal.customer_id


# --- the account ---------------------------------------------------------------------------


async def account(db: Database, principal: Principal) -> Account:
    """Who the principal is, with its customer's name and kind."""
    row = None
    if principal.customer_id is not None:
        cid = principal.customer_id
        row = await db.read(
            lambda c: c.execute(
                select(customers.c.name, customers.c.kind).where(customers.c.id == cid)
            ).first()
        )
    return Account(
        principal.user_id,
        principal.username,
        principal.role,
        principal.customer_id,
        row.name if row is not None else None,
        row.kind if row is not None else None,
    )


async def customer_list(db: Database, principal: Principal) -> list[CustomerView]:
    """The customers the principal sees (the helpdesk: all), by id."""
    query = select(customers.c.id, customers.c.name, customers.c.kind, customers.c.language)
    query = query.where(_scope(principal, customers.c.id)).order_by(customers.c.id)
    rows = await db.read(lambda c: c.execute(query).all())
    return [CustomerView(*row) for row in rows]


# --- the fleet -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Status:
    percent: float | None
    forecast: Forecast | None


def _status(
    track: Track | None, uncounted: int, now: datetime, rules: Rules, supply: Any
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


def _fleet_query(principal: Principal) -> Select[Any]:
    return (
        select(
            asr_devices.c.serial,
            asr_devices.c.model,
            asr_devices.c.customer_id,
            customers.c.name.label("customer_name"),
            customers.c.kind.label("customer_kind"),
            asr_devices.c.site_id,
            site_rows.c.name.label("site_name"),
            asr_devices.c.contact_id,
            contacts.c.display_name,
            contacts.c.email,
            asr_devices.c.registered_at,
            device_states.c.state,
            device_states.c.reason,
            device_states.c.high_usage,
            device_states.c.since,
            devices.c.last_seen,
            devices.c.first_seen,
            devices.c.model.label("seen_model"),
        )
        .join(customers, customers.c.id == asr_devices.c.customer_id)
        .join(site_rows, site_rows.c.id == asr_devices.c.site_id)
        .join(contacts, contacts.c.id == asr_devices.c.contact_id)
        .outerjoin(device_states, device_states.c.serial == asr_devices.c.serial)
        .outerjoin(devices, devices.c.serial == asr_devices.c.serial)
        .where(_scope(principal, asr_devices.c.customer_id))
    )


def _state(row: Any, now: datetime, rules: Rules) -> tuple[str, str]:
    """The stored state, or before the first daily run what it can only be."""
    if row.state is not None:
        return row.state, row.reason
    seen = row.last_seen or row.registered_at
    if now - seen >= timedelta(days=rules.disconnected_after_days):
        return DISCONNECTED, "no reading yet: ASR cannot order without data"
    return NO_USAGE_RATE, "no usage rate yet: waiting for the daily run"


def _tracks(conn: Connection, where: ColumnElement[bool]) -> dict[tuple[str, str], Track]:
    query = (
        select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track)
        .join(asr_devices, asr_devices.c.serial == supply_tracks.c.serial)
        .where(where)
    )
    return {(s, i): Track.from_json(t) for s, i, t in conn.execute(query)}


def _figures(
    conn: Connection, where: ColumnElement[bool], now: datetime
) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """Each tracked supply's percent and days left now, from its stored forecast figures.

    The same numbers as the forecast at `now` (the level falls at the rate since the run that
    stored them), without reading the tracks: the fleet list reads every device's.
    """
    query = (
        select(
            supply_tracks.c.serial,
            supply_tracks.c.supply_id,
            supply_tracks.c.forecast,
            supply_tracks.c.updated_at,
        )
        .join(asr_devices, asr_devices.c.serial == supply_tracks.c.serial)
        .where(where)
    )
    out: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for serial, supply_id, fig, updated_at in conn.execute(query):
        remaining, capacity, rate = (
            fig.get("remaining"),
            fig.get("capacity"),
            fig.get("rate_per_day"),
        )
        if remaining is None:
            out[(serial, supply_id)] = (None, None)
            continue
        elapsed = max(0.0, (now - updated_at).total_seconds()) / 86_400
        left = max(0.0, remaining - (rate or 0.0) * elapsed)
        percent = round(max(0.0, min(100.0, 100.0 * left / capacity)), 1) if capacity else None
        days = round(left / rate, 1) if rate else None
        out[(serial, supply_id)] = (percent, days)
    return out


def _uncounted(conn: Connection, where: ColumnElement[bool]) -> dict[tuple[str, str], int]:
    """R13/R14: cartridges ordered and not yet in a track's balance (none cancelled)."""
    query = (
        select(order_lines.c.serial, order_lines.c.supply_id, func.sum(order_lines.c.quantity))
        .join(shipments, shipments.c.id == order_lines.c.shipment_id)
        .join(asr_devices, asr_devices.c.serial == order_lines.c.serial)
        .where(where, order_lines.c.counted_at.is_(None), shipments.c.status != "cancelled")
        .group_by(order_lines.c.serial, order_lines.c.supply_id)
    )
    return {(s, i): int(q) for s, i, q in conn.execute(query)}


def _open_counts(conn: Connection, where: ColumnElement[bool]) -> dict[str, int]:
    query = (
        select(order_lines.c.serial, func.count(func.distinct(order_lines.c.shipment_id)))
        .join(shipments, shipments.c.id == order_lines.c.shipment_id)
        .join(asr_devices, asr_devices.c.serial == order_lines.c.serial)
        .where(where, shipments.c.status.in_(OPEN_STATUSES))
        .group_by(order_lines.c.serial)
    )
    return {serial: int(count) for serial, count in conn.execute(query)}


def _supply_rows(conn: Connection, where: ColumnElement[bool]) -> list[Any]:
    query = (
        select(asr_supplies)
        .join(asr_devices, asr_devices.c.serial == asr_supplies.c.serial)
        .where(where)
        .order_by(asr_supplies.c.serial, asr_supplies.c.supply_index)
    )
    return list(conn.execute(query))


def _latest_percents(conn: Connection, where: ColumnElement[bool]) -> dict[tuple[str, str], float]:
    """Each registered supply's percent in its device's latest reading (before any track)."""
    query = (
        select(
            readings.c.serial,
            asr_supplies.c.supply_id,
            readings.c.read_at,
            supplies.c.percent,
            supplies.c.grams_left,
            supplies.c.grams_used,
            supplies.c.quality,
            supplies.c.receptacle,
        )
        .select_from(asr_devices)
        .join(devices, devices.c.serial == asr_devices.c.serial)
        .join(
            readings,
            and_(readings.c.serial == devices.c.serial, readings.c.read_at == devices.c.last_seen),
        )
        .join(supplies, supplies.c.reading_id == readings.c.id)
        .join(
            asr_supplies,
            and_(
                asr_supplies.c.serial == readings.c.serial,
                asr_supplies.c.supply_index == supplies.c.supply_index,
            ),
        )
        .where(where)
    )
    out = {}
    for serial, supply_id, at, percent, left, used, quality, receptacle in conn.execute(query):
        level = _percent_of(at, percent, left, used, quality, receptacle)
        if level is not None:
            out[(serial, supply_id)] = level
    return out


def _percent_of(
    at: datetime,
    percent: float | None,
    left: float | None,
    used: float | None,
    quality: str,
    receptacle: bool,
) -> float | None:
    """A stored supply reading's level in percent, as the forecast reads it (R1)."""
    point = point_of(at, percent, left, used, quality, receptacle, None)
    if point.remaining is None or not point.capacity:
        return None
    return round(max(0.0, min(100.0, 100.0 * point.remaining / point.capacity)), 1)


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
    where = _scope(principal, asr_devices.c.customer_id)

    def read(conn: Connection) -> list[FleetRow]:
        query = _fleet_query(principal).order_by(
            asr_devices.c.customer_id, site_rows.c.name, asr_devices.c.serial
        )
        rows = list(conn.execute(query))
        figures = _figures(conn, where, now)
        open_counts = _open_counts(conn, where)
        consumed: dict[str, list[str]] = defaultdict(list)
        for s in _supply_rows(conn, where):
            if s.kind in CONSUMED_KINDS:
                consumed[s.serial].append(s.supply_id)
        untracked = sorted(
            {
                serial
                for serial, ids in consumed.items()
                if any((serial, i) not in figures for i in ids)
            }
        )
        latest: dict[tuple[str, str], float] = {}
        for chunk in _chunks(untracked, 500):  # before their first daily run: the readings'
            latest.update(_latest_percents(conn, and_(where, asr_devices.c.serial.in_(chunk))))
        out = []
        for row in rows:
            percents: list[float] = []
            days: list[float] = []
            for supply_id in consumed[row.serial]:
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
            out.append(
                FleetRow(
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
            )
        return out

    rows = await db.read(read)
    return [r for r in rows if filter is None or filter in r.flags]


def _unregistered_query(principal: Principal) -> Select[Any]:
    return (
        select(
            devices.c.serial,
            devices.c.model,
            site_rows.c.customer_id,
            customers.c.name.label("customer_name"),
            customers.c.kind.label("customer_kind"),
            site_rows.c.id.label("site_id"),
            site_rows.c.name.label("site_name"),
            site_rows.c.address,
            devices.c.first_seen,
            devices.c.last_seen,
        )
        .join(agents, agents.c.id == devices.c.last_agent_id)
        .join(site_rows, site_rows.c.id == agents.c.site_id)
        .join(customers, customers.c.id == site_rows.c.customer_id)
        .outerjoin(asr_devices, asr_devices.c.serial == devices.c.serial)
        .where(asr_devices.c.serial.is_(None), _scope(principal, site_rows.c.customer_id))
    )


async def unregistered(db: Database, principal: Principal) -> list[UnregisteredDevice]:
    """R4: devices the principal's customers' agents read that are not in ASR yet."""
    query = _unregistered_query(principal).order_by(
        site_rows.c.customer_id, site_rows.c.name, devices.c.serial
    )
    rows = await db.read(lambda c: list(c.execute(query)))
    return [
        UnregisteredDevice(
            r.serial,
            r.model,
            r.customer_id,
            r.customer_name,
            r.customer_kind,
            r.site_id,
            r.site_name,
            r.first_seen,
            r.last_seen,
        )
        for r in rows
    ]


# --- one device ----------------------------------------------------------------------------


def _next_order(
    kind: str, f: Forecast | None, state: str, high_usage: bool, now: datetime, rules: Rules
) -> tuple[datetime | None, str]:
    """When the supply reaches the trigger (R8), and why then, or why not planned."""
    if kind not in CONSUMED_KINDS:
        return None, "waste containers ship with black toner (R11); extras via the helpdesk"
    if high_usage:
        return None, "high usage: this device's supplies are ordered by hand (R6)"
    if state == DISCONNECTED:
        return None, "disconnected: ASR cannot order without data (R16)"
    if f is None or f.rate is None:
        return None, "no usage rate yet (R7)"
    if f.days_left_total is None or not math.isfinite(f.days_left_total) or f.rate <= 0:
        return None, "no usage seen: no order planned"
    on_the_way = f" counting {f.balance} cartridge(s) ordered (R13)" if f.balance else ""
    wait = f.days_left_total - rules.trigger_days
    if wait <= 0:
        return now, f"at the {rules.trigger_days:g}-day trigger: due at the next daily run (R8)"
    when = now + timedelta(days=min(wait, FORECAST_DAYS_SHOWN * 100))
    why = f"when {rules.trigger_days:g} days of supply remain (R8){on_the_way}"
    return when, why


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


def _history(
    conn: Connection, serial: str, since: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Each supply index's level over time: the last reading of each day (UTC)."""
    query = (
        select(
            supplies.c.supply_index,
            readings.c.read_at,
            supplies.c.percent,
            supplies.c.grams_left,
            supplies.c.grams_used,
            supplies.c.quality,
            supplies.c.receptacle,
        )
        .join(supplies, supplies.c.reading_id == readings.c.id)
        .where(readings.c.serial == serial, readings.c.read_at >= since)
        .order_by(readings.c.read_at)
    )
    daily: dict[str, dict[Any, tuple[datetime, float]]] = defaultdict(dict)
    for index, at, percent, left, used, quality, receptacle in conn.execute(query):
        level = _percent_of(at, percent, left, used, quality, receptacle)
        if level is not None:
            daily[index][at.date()] = (at, level)
    return {index: list(days.values()) for index, days in daily.items()}


def _latest_reading_supplies(conn: Connection, serial: str) -> list[Any]:
    """The supplies of the device's latest reading (R4: what registration takes)."""
    latest = conn.execute(
        select(readings.c.id, readings.c.payload)
        .where(readings.c.serial == serial)
        .order_by(readings.c.read_at.desc(), readings.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return []
    return list(
        conn.execute(
            select(supplies)
            .where(supplies.c.reading_id == latest.id)
            .order_by(supplies.c.supply_index)
        )
    )


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

    def read(conn: Connection) -> DeviceView | None:
        row = conn.execute(_fleet_query(principal).where(asr_devices.c.serial == serial)).first()
        if row is None:
            return _unregistered_view(conn, principal, serial, now, rules)
        where = asr_devices.c.serial == serial
        tracks = _tracks(conn, where)
        uncounted = _uncounted(conn, where)
        latest = _latest_percents(conn, where)
        history = _history(conn, serial, now - timedelta(days=rules.history_days))
        runs_out = dict(
            (r.supply_id, r.runs_out_at)
            for r in conn.execute(
                select(supply_tracks.c.supply_id, supply_tracks.c.runs_out_at).where(
                    supply_tracks.c.serial == serial
                )
            )
        )
        state, reason = _state(row, now, rules)
        high = bool(row.high_usage)
        views = []
        for s in _supply_rows(conn, where):
            key = (serial, s.supply_id)
            status = _status(tracks.get(key), uncounted.get(key, 0), now, rules, s)
            f = status.forecast
            level = status.percent if status.percent is not None else latest.get(key)
            when, why = _next_order(s.kind, f, state, high, now, rules)
            rate = f.rate if f is not None else None
            per_cent = (
                round(100.0 * rate / f.capacity, 3)
                if f is not None and rate is not None and f.capacity
                else None
            )
            balance = f.balance if f is not None else uncounted.get(key, 0)
            ends = None
            if f is not None and f.days_left_total is not None and math.isfinite(f.days_left_total):
                ends = f.runs_out_at(now)
            views.append(
                SupplyView(
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
                    runs_out_at=ends or runs_out.get(s.supply_id),
                    balance=balance,
                    next_order_at=when,
                    next_order_reason=why,
                    confidence=f.confidence if f is not None else 0.0,
                    history=tuple(history.get(s.supply_index, ())),
                    forecast_line=_forecast_line(level, f, now),
                    basis=f.basis if f is not None else "",
                    why=f.why if f is not None else "",
                )
            )
        site = conn.execute(
            select(site_rows.c.id, site_rows.c.name, site_rows.c.address).where(
                site_rows.c.id == row.site_id
            )
        ).one()
        contact = conn.execute(select(contacts).where(contacts.c.id == row.contact_id)).one()
        shipped = _shipments(conn, _device_shipments(serial))
        return DeviceView(
            serial=serial,
            model=row.model or row.seen_model,
            registered=True,
            registered_at=row.registered_at,
            customer_id=row.customer_id,
            customer_name=row.customer_name,
            customer_kind=row.customer_kind,
            site=SiteRef(site.id, site.name, site.address),
            contact=_contact(contact),
            state=state,
            state_reason=reason,
            state_since=row.since,
            high_usage=high,
            first_seen=row.first_seen,
            last_reading_at=row.last_seen,
            supplies=tuple(views),
            open_orders=tuple(s for s in shipped if s.status in OPEN_STATUSES),
            past_orders=tuple(s for s in shipped if s.status not in OPEN_STATUSES),
        )

    return await db.read(read)


def _unregistered_view(
    conn: Connection, principal: Principal, serial: str, now: datetime, rules: Rules
) -> DeviceView | None:
    row = conn.execute(_unregistered_query(principal).where(devices.c.serial == serial)).first()
    if row is None:
        return None
    history = _history(conn, serial, now - timedelta(days=rules.history_days))
    views = []
    for s in _latest_reading_supplies(conn, serial):
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
                next_order_reason="not registered in ASR (R4)",
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
        site=SiteRef(row.site_id, row.site_name, row.address),
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


def _contact(row: Any) -> ContactView:
    return ContactView(row.id, row.customer_id, row.name, row.email, row.display_name, row.language)


# --- orders --------------------------------------------------------------------------------


def _device_shipments(serial: str) -> ColumnElement[bool]:
    return shipments.c.id.in_(
        select(order_lines.c.shipment_id).where(order_lines.c.serial == serial)
    )


def _shipments(
    conn: Connection, where: ColumnElement[bool], limit: int | None = None
) -> list[ShipmentView]:
    query = (
        select(shipments, site_rows.c.name.label("site_name"))
        .join(site_rows, site_rows.c.id == shipments.c.site_id)
        .where(where)
        .order_by(shipments.c.placed_at.desc(), shipments.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = list(conn.execute(query))
    ids = [row.id for row in rows]
    lines: dict[int, list[OrderLine]] = defaultdict(list)
    events: dict[int, list[ShipmentEvent]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for o in conn.execute(
            select(order_lines)
            .where(order_lines.c.shipment_id.in_(chunk))
            .order_by(order_lines.c.id)
        ):
            lines[o.shipment_id].append(
                OrderLine(o.serial, o.supply_id, o.sku, o.quantity, o.reason)
            )
        for e in conn.execute(
            select(shipment_events)
            .where(shipment_events.c.shipment_id.in_(chunk))
            .order_by(shipment_events.c.at, shipment_events.c.id)
        ):
            events[e.shipment_id].append(ShipmentEvent(e.status, e.at, e.source, dict(e.detail)))
    return [
        ShipmentView(
            id=row.id,
            reference=reference(row.id),
            customer_id=row.customer_id,
            site_id=row.site_id,
            site_name=row.site_name,
            status=row.status,
            placed_at=row.placed_at,
            shipped_at=row.shipped_at,
            delivered_at=row.delivered_at,
            installed_at=row.installed_at,
            cancelled_at=row.cancelled_at,
            expected_at=row.expected_at,
            tracking=row.tracking,
            carrier=row.carrier,
            address=row.address,
            placed_by="plan" if row.plan_run_id is not None else "helpdesk",
            lines=tuple(lines[row.id]),
            events=tuple(events[row.id]),
        )
        for row in rows
    ]


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
    where = _scope(principal, shipments.c.customer_id)
    if status == "open":
        where = and_(where, shipments.c.status.in_(OPEN_STATUSES))
    elif status is not None:
        if status not in STATUSES:
            raise InvalidRequest(
                f"status: open or one of {', '.join(STATUSES)}, not {status!r}", "status"
            )
        where = and_(where, shipments.c.status == status)
    if serial is not None:
        where = and_(where, _device_shipments(serial))
    return await db.read(lambda c: _shipments(c, where, limit))


async def order(db: Database, principal: Principal, shipment_id: int) -> ShipmentView | None:
    """One shipment the principal sees; None otherwise."""
    where = and_(_scope(principal, shipments.c.customer_id), shipments.c.id == shipment_id)
    found = await db.read(lambda c: _shipments(c, where, 1))
    return found[0] if found else None


# --- sites and contacts --------------------------------------------------------------------


async def sites(
    db: Database, principal: Principal, *, site_id: int | None = None
) -> list[SiteView]:
    """The sites the principal sees, with the customer's contacts and the site's devices."""

    only = true() if site_id is None else site_rows.c.id == site_id

    def read(conn: Connection) -> list[SiteView]:
        rows = list(
            conn.execute(
                select(
                    site_rows.c.id,
                    site_rows.c.customer_id,
                    site_rows.c.name,
                    site_rows.c.address,
                    customers.c.name.label("customer_name"),
                    customers.c.kind,
                )
                .join(customers, customers.c.id == site_rows.c.customer_id)
                .where(_scope(principal, site_rows.c.customer_id), only)
                .order_by(site_rows.c.customer_id, site_rows.c.name)
            )
        )
        by_customer: dict[str, list[ContactView]] = defaultdict(list)
        for c in conn.execute(
            select(contacts)
            .where(_scope(principal, contacts.c.customer_id))
            .order_by(contacts.c.customer_id, contacts.c.name)
        ):
            by_customer[c.customer_id].append(_contact(c))
        by_site: dict[int, list[SiteDevice]] = defaultdict(list)
        for d in conn.execute(
            select(
                asr_devices.c.serial,
                asr_devices.c.model,
                asr_devices.c.site_id,
                asr_devices.c.contact_id,
                device_states.c.state,
            )
            .outerjoin(device_states, device_states.c.serial == asr_devices.c.serial)
            .where(_scope(principal, asr_devices.c.customer_id))
            .order_by(asr_devices.c.serial)
        ):
            by_site[d.site_id].append(SiteDevice(d.serial, d.model, d.contact_id, d.state))
        return [
            SiteView(
                id=r.id,
                customer_id=r.customer_id,
                customer_name=r.customer_name,
                customer_kind=r.kind,
                name=r.name,
                address=r.address,
                contacts=tuple(by_customer[r.customer_id]),
                devices=tuple(by_site[r.id]),
            )
            for r in rows
        ]

    return await db.read(read)


async def contact_list(db: Database, principal: Principal) -> list[ContactView]:
    """The contacts the principal sees, by customer and name."""
    query = (
        select(contacts)
        .where(_scope(principal, contacts.c.customer_id))
        .order_by(contacts.c.customer_id, contacts.c.name)
    )
    rows = await db.read(lambda c: list(c.execute(query)))
    return [_contact(r) for r in rows]


# --- the audit trail -----------------------------------------------------------------------


async def audit_trail(db: Database, principal: Principal, limit: int = 100) -> list[AuditEntry]:
    """The latest changes the principal may see (its customer's; the helpdesk: all)."""
    query = (
        select(audit_log)
        .where(_scope(principal, audit_log.c.customer_id))
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    rows = await db.read(lambda c: list(c.execute(query)))
    return [
        AuditEntry(
            r.id,
            r.at,
            r.actor,
            r.role,
            r.customer_id,
            r.entity,
            r.entity_key,
            r.action,
            r.before,
            r.after,
        )
        for r in rows
    ]


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


async def contact(db: Database, principal: Principal, contact_id: int) -> ContactView | None:
    """One contact the principal sees; None otherwise."""
    if not is_id(contact_id):
        return None
    query = select(contacts).where(
        contacts.c.id == contact_id, _scope(principal, contacts.c.customer_id)
    )
    row = await db.read(lambda c: c.execute(query).first())
    return _contact(row) if row is not None else None


async def site(db: Database, principal: Principal, site_id: int) -> SiteView | None:
    """One site the principal sees, with its contacts and devices; None otherwise."""
    if not is_id(site_id):
        return None
    found = await sites(db, principal, site_id=site_id)
    return found[0] if found else None
