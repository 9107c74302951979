"""The portal's HTML pages: server-rendered with jinja2, working without JavaScript (R4, R14-R18).

Is: thin views over the read model (collector.portal.queries) and the change flows
(collector.portal.changes): log in and out, the fleet with its filters, a device with its
supplies and the level chart (collector.portal.chart), the orders and their history (R15),
sites and contacts with their change forms (R18), registration (R4) and the helpdesk's extra
orders (R14). Every form carries the session's CSRF token; every change answers 303 with a
flash message, or the form again with the error; another customer's objects are a 404 page
that shows nothing of them; a role that may not make a change gets a 403 page saying who does.
Here: log in and out, and the orders; the fleet and a device are in .device_pages, sites,
contacts and registration in .site_pages, the helpdesk's queue and the quarantine in
.helpdesk_pages, what they share in .page_kit. This module gathers their routes in ROUTES.
Is not: who may see or change what (queries and changes decide), sessions (auth), or the
JSON API (collector.portal.api).
"""

from __future__ import annotations

import logging
import math

from aiohttp import web

from collector.portal import device_pages, helpdesk_pages, queries, site_pages
from collector.portal.auth import current, end_session, login_required, start_session
from collector.portal.errors import Throttled
from collector.portal.login_throttle import log_in
from collector.portal.page_kit import (
    HOME,
    ROUTES,
    STATIC,
    csrf_refused_page,
    error_page,
    form_text,
    local_target,
    logged_in,
    posted_form,
    render,
    request_db,
    request_now,
    setup_pages,
)

__all__ = ["ROUTES", "device_pages", "helpdesk_pages", "setup_pages", "site_pages"]

log = logging.getLogger(__name__)

ORDER_FILTERS = ("open", "placed", "backordered", "shipped", "delivered", "installed", "cancelled")


# --- log in and out ------------------------------------------------------------------------


@ROUTES.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The login form; a logged-in user goes on to where it was heading."""
    target = local_target(request.query.get("next"))
    if await current(request) is not None:
        raise web.HTTPSeeOther(target)
    return await render(request, "login.html", {"next": target, "error": "", "username": ""})


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@ROUTES.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the user name and password; a new session, then on to `next` (a local path)."""
    try:
        form = await posted_form(request)
    except web.HTTPForbidden:
        return await csrf_refused_page(request)
    username = form_text(form, "username").strip()
    target = local_target(form_text(form, "next"))
    try:
        principal = await log_in(request, username, form_text(form, "password"))
    except Throttled as err:
        context = {
            "next": target,
            "error": f"Too many failed logins. Try again in {_wait(err.retry_after)}.",
            "username": username,
        }
        response = await render(request, "login.html", context, status=429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    if principal is None:
        # One message for both: which of the two was wrong is not told.
        context = {
            "next": target,
            "error": "The user name or the password is wrong.",
            "username": username,
        }
        return await render(request, "login.html", context, status=401)
    await start_session(request, principal)
    log.info("portal login: %s (%s)", principal.username, principal.role)
    raise web.HTTPSeeOther(target)


@ROUTES.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session (CSRF checked: another site cannot log the user out)."""
    try:
        await posted_form(request)
    except web.HTTPForbidden:
        return await csrf_refused_page(request)
    await end_session(request)
    raise web.HTTPSeeOther("/login")


@ROUTES.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(HOME)


# --- orders (R15) --------------------------------------------------------------------------


@ROUTES.get("/orders")
@login_required
async def orders_page(request: web.Request) -> web.Response:
    """Every shipment with its latest state and its history (R15)."""
    principal = await logged_in(request)
    status = request.query.get("status") or None
    if status is not None and status not in ORDER_FILTERS:
        return await error_page(
            request, 400, "Unknown status", "Choose one of the filters on the orders page."
        )
    shipments = await queries.orders(
        request_db(request), principal, status, now=request_now(request)
    )
    context = {"shipments": shipments, "status": status, "statuses": ORDER_FILTERS}
    return await render(request, "orders.html", context, active="orders")


ROUTES.static("/static", STATIC)
