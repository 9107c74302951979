"""The fleet and a device as pages (R14, R16, R17): /fleet, /devices/{serial} and its extra order.

Is: the fleet with its filters, a device with its supplies and each one's level chart
(collector.portal.chart), and the helpdesk's form for an extra order (R14). Its routes join
collector.portal.page_kit's table.
Is not: the reads or the change (collector.portal.queries, .changes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup

from collector.appkeys import CONFIG
from collector.errors import InvalidRequest
from collector.portal import changes, queries
from collector.portal.auth import login_required
from collector.portal.chart import level_chart
from collector.portal.page_kit import (
    ROUTES,
    error_page,
    form_int,
    form_text,
    logged_in,
    not_found_page,
    posted_change,
    render,
    request_db,
    request_now,
)
from collector.records import Principal

# --- the fleet and a device (R17) ----------------------------------------------------------

FILTER_LABELS = {
    "disconnected": "Disconnected",
    "low": "Low",
    "high-usage": "High usage",
    "open-orders": "Open orders",
}
CHART_AHEAD = timedelta(days=90)  # the chart's forecast stops this far ahead of now


@ROUTES.get("/fleet")
@login_required
async def fleet_page(request: web.Request) -> web.Response:
    """Every device the user sees with its state; filters: disconnected, low, ... (R16, R17)."""
    principal = await logged_in(request)
    chosen = request.query.get("filter") or None
    if chosen is not None and chosen not in queries.FILTERS:
        return await error_page(
            request, 400, "Unknown filter", "Choose one of the filters on the devices page."
        )
    db, now = request_db(request), request_now(request)
    rows = await queries.fleet(db, principal, None, now=now, rules=request.app[CONFIG].rules())
    counts = {name: sum(name in row.flags for row in rows) for name in queries.FILTERS}
    shown = [row for row in rows if chosen is None or chosen in row.flags]
    context = {
        "rows": shown,
        "total": len(rows),
        "chosen": chosen,
        "filters": FILTER_LABELS,
        "counts": counts,
        "now": now,
    }
    return await render(request, "fleet.html", context, active="fleet")


@ROUTES.get("/devices/{serial}")
@login_required
async def device_page(request: web.Request) -> web.Response:
    """A device: each supply's level, rate, days left, balance, next order and chart (R17)."""
    principal = await logged_in(request)
    view = await queries.device(
        request_db(request),
        principal,
        request.match_info["serial"],
        now=request_now(request),
        rules=request.app[CONFIG].rules(),
    )
    if view is None:
        return await not_found_page(request, "device")
    return await _device(request, principal, view)


async def _device(
    request: web.Request,
    principal: Principal,
    view: queries.DeviceView,
    *,
    status: int = 200,
    error: InvalidRequest | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    now = request_now(request)
    horizon = now + CHART_AHEAD
    charts = {
        s.supply_id: Markup(  # the chart escapes every text it draws
            level_chart(
                list(s.history),
                _until(s.forecast_line, horizon),
                now,
                trigger_at=s.next_order_at
                if s.next_order_at and s.next_order_at <= horizon
                else None,
                title=f"{_supply_name(s)} of {view.serial}: level over time",
            )
        )
        for s in view.supplies
    }
    context = {
        "device": view,
        "charts": charts,
        "names": {s.supply_id: _supply_name(s) for s in view.supplies},
        "extra_allowed": principal.is_helpdesk and view.registered,
        "orderable": [s for s in view.supplies if s.kind in ("toner", "ink")],
        "error": error,
        "values": values or {},
        "now": now,
    }
    return await render(request, "device.html", context, status=status, active="fleet")


def _until(line: Sequence[tuple[datetime, float]], end: datetime) -> list[tuple[datetime, float]]:
    """The line up to `end`, its last point on `end` where it goes on past it."""
    out: list[tuple[datetime, float]] = []
    for at, level in line:
        if at <= end:
            out.append((at, level))
            continue
        if out:
            (t0, v0) = out[-1]
            share = (end - t0) / (at - t0)
            out.append((end, v0 + (level - v0) * share))
        break
    return out


def _supply_name(supply: queries.SupplyView) -> str:
    what = {"toner": "toner", "ink": "ink", "waste": "waste toner container"}
    colour = f"{supply.colour.title()} " if supply.colour else ""
    return f"{colour}{what.get(supply.kind, supply.kind)}".capitalize()


@ROUTES.post("/devices/{serial}/extra-orders")
@login_required
async def extra_order(request: web.Request) -> web.Response:
    """R14: the helpdesk records an extra order for a device (it counts in the balance)."""
    serial = request.match_info["serial"]
    db, now = request_db(request), request_now(request)

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        supply_id = form_text(form, "supply_id")
        quantity = form_int(form, "quantity")
        shipment_id = await changes.record_extra(
            db,
            principal,
            serial,
            supply_id,
            quantity,
            form_text(form, "note"),
            now,
            request.app[CONFIG].rules().waste_per_black,
        )
        message = f"Extra order recorded: {quantity} × {supply_id} (shipment {shipment_id})."
        return message, f"/devices/{serial}"

    async def again(
        principal: Principal, form: Mapping[str, Any], err: InvalidRequest
    ) -> web.Response:
        view = await queries.device(db, principal, serial, now=now)
        if view is None:
            return await not_found_page(request, "device")
        values = {k: form_text(form, k) for k in ("supply_id", "quantity", "note")}
        return await _device(request, principal, view, status=400, error=err, values=values)

    return await posted_change(request, "device", apply, again)
