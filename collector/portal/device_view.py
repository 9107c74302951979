"""One device as the portal shows it (R13, R14, R17): registered, or read but not registered.

Is: the device view with each supply's level, rate, days left, balance (the orders not yet
in the track counted, so an extra order shows at once), next order date (the planner's own,
collector.replenish.due), forecast line and history; an unregistered device shows what its
latest reading says. Another customer's device is None, never "forbidden". Rule ids are for
the helpdesk: a customer reads words.
Is not: SQL (collector.store.read_device), or the fleet and the other reads
(collector.portal.queries).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from collector.portal.inputs import MAX_SERIAL, is_plain
from collector.portal.models import (
    DeviceView,
    SiteRef,
    SupplyView,
)
from collector.portal.supply_status import (
    device_state,
    finite,
    latest_percents,
    percent_of,
    supply_status,
)
from collector.records import Principal
from collector.replenish.due import due_in
from collector.replenish.forecast import Forecast, Track, day_number
from collector.replenish.lifecycle import DISCONNECTED
from collector.replenish.planner import CONSUMED_KINDS
from collector.replenish.settings import Rules
from collector.store import read_device
from collector.store.database import Database
from collector.store.read_orders import OPEN_STATUSES
from collector.store.read_records import (
    LevelReading,
    SupplyRow,
)

FORECAST_DAYS_SHOWN = 365.0  # the forecast line stops a year ahead


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
        level = percent_of(r)
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
    status = supply_status(track, found.uncounted.get(key, 0), now, rules, s)
    f = status.forecast
    level = status.percent if status.percent is not None else latest.get(key)
    state, _ = device_state(row, now, rules)
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
        days_left=finite(f.days_left) if f is not None else None,
        days_left_total=finite(f.days_left_total) if f is not None else None,
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
    latest = latest_percents(found.latest)
    state, reason = device_state(row, now, rules)
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
