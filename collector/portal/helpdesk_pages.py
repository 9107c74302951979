"""The helpdesk's pages: its queue (/helpdesk, with the form that gives a part number) and
the quarantine (/quarantine).

Is: the page listing supplies that need a part number (with a form each) and supplies that
cannot be forecast (with why); the helpdesk's only (anyone else: the 403 page). Its routes join
collector.portal.page_kit's table.
Is not: the reads and the change (collector.portal.helpdesk, .quarantine).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from collector.errors import InvalidRequest
from collector.portal import helpdesk, quarantine
from collector.portal.auth import login_required
from collector.portal.page_kit import (
    ROUTES,
    error_page,
    form_text,
    logged_in,
    posted_change,
    render,
    request_db,
    request_now,
)
from collector.records import Principal

ONLY = "This page is for the helpdesk only."

QUARANTINE_LABELS = {
    "invalid": "Unreadable data",
    "unattributable": "No serial number",
    "conflict": "Another customer's device",
}
QUARANTINE_HELP = {
    "invalid": "The printer sent a value that cannot be stored; the reading was set aside.",
    "unattributable": "The reading names no device, so it cannot be counted for one.",
    "conflict": "The serial number belongs to another customer's device; nothing was changed.",
}


async def _queue(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    error: InvalidRequest | None = None,
    form_id: str = "",
    values: Mapping[str, Any] | None = None,
) -> web.Response:
    db = request_db(request)
    context = {
        "needed": await helpdesk.part_numbers_needed(db, principal),
        "blind": await helpdesk.cannot_forecast(db, principal),
        "error": error,
        "error_form": form_id,
        "values": values or {},
    }
    return await render(request, "helpdesk.html", context, status=status, active="helpdesk")


@ROUTES.get("/helpdesk")
@login_required
async def queue_page(request: web.Request) -> web.Response:
    """The helpdesk's queue: part numbers to give, supplies that cannot be forecast."""
    principal = await logged_in(request)
    if not principal.is_helpdesk:
        return await error_page(request, 403, "Not allowed", ONLY)
    return await _queue(request, principal)


@ROUTES.post("/devices/{serial}/supplies/{supply_id}/part-number")
@login_required
async def give_part_number(request: web.Request) -> web.Response:
    """The helpdesk gives a supply's part number; 303 back to the queue with what happened."""
    serial, supply_id = request.match_info["serial"], request.match_info["supply_id"]

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        number = form_text(form, "part_number")
        released = await helpdesk.set_part_number(
            request_db(request), principal, serial, supply_id, number, request_now(request)
        )
        sent = f"; {len(released)} waiting order(s) sent to the warehouse" if released else ""
        return f"Part number {number.strip()} set for {serial}, {supply_id}{sent}.", "/helpdesk"

    async def again(
        principal: Principal, form: Mapping[str, Any], err: InvalidRequest
    ) -> web.Response:
        form_id = f"{serial}/{supply_id}"
        return await _queue(request, principal, status=400, error=err, form_id=form_id, values=form)

    return await posted_change(request, "supply", apply, again)


# --- the quarantine (helpdesk) -------------------------------------------------------------


@ROUTES.get("/quarantine")
@login_required
async def quarantine_page(request: web.Request) -> web.Response:
    """The helpdesk's: readings the collector set aside, newest first, by kind."""
    principal = await logged_in(request)
    if not principal.is_helpdesk:
        return await error_page(request, 403, "Not allowed", "This page is for the helpdesk only.")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in quarantine.KINDS:
        return await error_page(
            request, 400, "Unknown filter", "Choose one of the filters on the set-aside page."
        )
    rows = await quarantine.quarantined(request_db(request), principal, kind=kind)
    context = {
        "rows": rows,
        "kind": kind,
        "kinds": QUARANTINE_LABELS,
        "help": QUARANTINE_HELP,
        "limit": quarantine.DEFAULT_LIMIT,
    }
    return await render(request, "quarantine.html", context, active="quarantine")
