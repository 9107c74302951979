"""The helpdesk's queue as a page: /helpdesk, and the form that gives a part number.

Is: the page listing supplies that need a part number (with a form each) and supplies that
cannot be forecast (with why); the helpdesk's only (anyone else: the 403 page). Its routes join
collector.portal.pages' table.
Is not: the reads and the change (collector.portal.helpdesk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from collector.errors import InvalidRequest
from collector.portal import helpdesk
from collector.portal.auth import login_required
from collector.portal.errors import Forbidden, NotFound
from collector.portal.pages import (
    ROUTES,
    _csrf_refused,
    _db,
    _error_page,
    _forbidden,
    _form,
    _not_found,
    _now,
    _principal,
    _render,
    _see_other,
    _text,
)
from collector.records import Principal

ONLY = "This page is for the helpdesk only."


async def _queue(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    error: InvalidRequest | None = None,
    form_id: str = "",
    values: Mapping[str, Any] | None = None,
) -> web.Response:
    db = _db(request)
    context = {
        "needed": await helpdesk.part_numbers_needed(db, principal),
        "blind": await helpdesk.cannot_forecast(db, principal),
        "error": error,
        "error_form": form_id,
        "values": values or {},
    }
    return await _render(request, "helpdesk.html", context, status=status, active="helpdesk")


@ROUTES.get("/helpdesk")
@login_required
async def queue_page(request: web.Request) -> web.Response:
    """The helpdesk's queue: part numbers to give, supplies that cannot be forecast."""
    principal = await _principal(request)
    if not principal.is_helpdesk:
        return await _error_page(request, 403, "Not allowed", ONLY)
    return await _queue(request, principal)


@ROUTES.post("/devices/{serial}/supplies/{supply_id}/part-number")
@login_required
async def give_part_number(request: web.Request) -> web.Response:
    """The helpdesk gives a supply's part number; 303 back to the queue with what happened."""
    principal = await _principal(request)
    serial, supply_id = request.match_info["serial"], request.match_info["supply_id"]
    try:
        form = await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    number = _text(form, "part_number")
    try:
        released = await helpdesk.set_part_number(
            _db(request), principal, serial, supply_id, number, _now(request)
        )
    except NotFound:
        return await _not_found(request, "supply")
    except Forbidden as err:
        return await _forbidden(request, err)
    except InvalidRequest as err:
        form_id = f"{serial}/{supply_id}"
        return await _queue(request, principal, status=400, error=err, form_id=form_id, values=form)
    sent = f"; {len(released)} waiting order(s) sent to the warehouse" if released else ""
    message = f"Part number {number.strip()} set for {serial}, {supply_id}{sent}."
    raise await _see_other(request, message, "/helpdesk")
