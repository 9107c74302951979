"""The portal's HTML pages: server-rendered with jinja2, working without JavaScript (R4, R14-R18).

Is: thin views over the read model (collector.portal.queries) and the change flows
(collector.portal.changes): log in and out, the fleet with its filters, a device with its
supplies and the level chart (collector.portal.chart), the orders and their history (R15),
sites and contacts with their change forms (R18), registration (R4) and the helpdesk's extra
orders (R14). Every form carries the session's CSRF token; every change answers 303 with a
flash message, or the form again with the error; another customer's objects are a 404 page
that shows nothing of them; a role that may not make a change gets a 403 page saying who does.
Is not: who may see or change what (queries and changes decide), sessions (auth), or the
JSON API (collector.portal.api).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web
from markupsafe import Markup

from collector.appkeys import CLOCK, COLLECTOR, CONFIG
from collector.errors import InvalidRequest
from collector.portal import changes, quarantine, queries
from collector.portal.auth import (
    check_csrf,
    csrf_token,
    current,
    end_session,
    log_in,
    login_required,
    start_session,
)
from collector.portal.chart import level_chart
from collector.portal.errors import Forbidden, NotFound, Throttled
from collector.records import Principal
from collector.store.database import Database

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH = "flash"
HOME = "/fleet"
FILTER_LABELS = {
    "disconnected": "Disconnected",
    "low": "Low",
    "high-usage": "High usage",
    "open-orders": "Open orders",
}
STATE_LABELS = {
    "disconnected": "Disconnected",
    "no-usage-rate": "No usage rate yet",
    "no-toner-pending": "No toner pending",
    "activation": "Order due",
    "toner-ordered": "Toner ordered",
    "toner-delivered": "Toner delivered",
    "toner-replaced": "Toner replaced",
}
CHART_AHEAD = timedelta(days=90)  # the chart's forecast stops this far ahead of now
ORDER_FILTERS = ("open", "placed", "backordered", "shipped", "delivered", "installed", "cancelled")
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
LANGUAGE_LABELS = {"": "the customer's", "it": "Italiano", "fr": "Français", "en": "English"}
# Pages hold customers' data: never cached, so the back button after logout asks again.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

ROUTES = web.RouteTableDef()


def setup_pages(app: web.Application) -> None:
    """Install the pages' jinja2 environment (autoescaped) on the app."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        day=_day,
        num=_num,
        state=_state_label,
        language=_language_label,
        sentence=_sentence,
    )


# --- formatting ----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d}"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _state_label(state: str | None) -> str:
    return "Waiting for the daily run" if state is None else STATE_LABELS.get(state, state)


def _sentence(text: str) -> str:
    """The text with its first letter in capitals (and the rest as it is, unlike capitalize)."""
    return text[:1].upper() + text[1:]


def _language_label(language: str | None) -> str:
    return LANGUAGE_LABELS.get(language or "", language or "")


# --- rendering -----------------------------------------------------------------------------


def _db(request: web.Request) -> Database:
    return request.app[COLLECTOR].db


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


async def _principal(request: web.Request) -> Principal:
    """The logged-in principal (the handlers are behind login_required)."""
    principal = await current(request)
    if principal is None:  # the session ended between the check and here
        raise web.HTTPSeeOther("/login")
    return principal


async def _render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    active: str = "",
) -> web.Response:
    """A page with the base context: who is logged in, the CSRF token, the flash message."""
    principal = await current(request)
    session = await aiohttp_session.get_session(request)
    flash = session.pop(FLASH, None) if principal is not None else None
    account = await queries.account(_db(request), principal) if principal is not None else None
    base = {
        "principal": principal,
        "account": account,
        "csrf": await csrf_token(request),
        "flash": flash,
        "active": active,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


async def _error_page(
    request: web.Request, status: int, heading: str, message: str, who_does_it: str = ""
) -> web.Response:
    context = {
        "status": status,
        "heading": heading,
        "message": message,
        "who_does_it": who_does_it,
    }
    return await _render(request, "error.html", context, status=status)


async def _not_found(request: web.Request, what: str = "page") -> web.Response:
    # Says nothing of what was asked for: another customer's serial or site is not echoed.
    return await _error_page(request, 404, "Not found", f"There is no such {what} in your account.")


async def _forbidden(request: web.Request, err: Forbidden) -> web.Response:
    return await _error_page(
        request,
        403,
        "Not allowed",
        "Your account may not make this change.",
        f"Who does it: {err}.",
    )


async def _csrf_refused(request: web.Request) -> web.Response:
    return await _error_page(
        request,
        403,
        "Form refused",
        "The form has expired or did not come from this site: reload the page and try again.",
    )


async def _form(request: web.Request) -> Mapping[str, Any]:
    """The posted form, refused above `portal.max_form_bytes`; CSRF checked (HTTPForbidden)."""
    limit = request.app[CONFIG].portal.max_form_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    form = await request.post()
    await check_csrf(request, form)
    return form


async def _see_other(request: web.Request, message: str, location: str) -> web.HTTPSeeOther:
    """A 303 to `location` (to be raised) that shows `message` on the next page."""
    session = await aiohttp_session.get_session(request)
    session[FLASH] = message
    return web.HTTPSeeOther(location)


def _local(target: str | None) -> str:
    """`next` only to a path of this site: never another host, scheme or protocol-relative."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
        return HOME
    return target


def _int(form: Mapping[str, Any], field: str) -> int:
    value = form.get(field)
    try:
        return int(str(value))
    except (TypeError, ValueError) as err:
        raise InvalidRequest(f"{field}: a whole number", field) from err


def _text(form: Mapping[str, Any], field: str) -> str:
    value = form.get(field, "")
    return value if isinstance(value, str) else ""


# --- log in and out ------------------------------------------------------------------------


@ROUTES.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The login form; a logged-in user goes on to where it was heading."""
    target = _local(request.query.get("next"))
    if await current(request) is not None:
        raise web.HTTPSeeOther(target)
    return await _render(request, "login.html", {"next": target, "error": "", "username": ""})


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@ROUTES.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the user name and password; a new session, then on to `next` (a local path)."""
    try:
        form = await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    username = _text(form, "username").strip()
    target = _local(_text(form, "next"))
    try:
        principal = await log_in(request, username, _text(form, "password"))
    except Throttled as err:
        context = {
            "next": target,
            "error": f"Too many failed logins. Try again in {_wait(err.retry_after)}.",
            "username": username,
        }
        response = await _render(request, "login.html", context, status=429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    if principal is None:
        # One message for both: which of the two was wrong is not told.
        context = {
            "next": target,
            "error": "The user name or the password is wrong.",
            "username": username,
        }
        return await _render(request, "login.html", context, status=401)
    await start_session(request, principal)
    log.info("portal login: %s (%s)", principal.username, principal.role)
    raise web.HTTPSeeOther(target)


@ROUTES.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session (CSRF checked: another site cannot log the user out)."""
    try:
        await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    await end_session(request)
    raise web.HTTPSeeOther("/login")


@ROUTES.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(HOME)


# --- the fleet and a device (R17) ----------------------------------------------------------


@ROUTES.get("/fleet")
@login_required
async def fleet_page(request: web.Request) -> web.Response:
    """Every device the user sees with its state; filters: disconnected, low, ... (R16, R17)."""
    principal = await _principal(request)
    chosen = request.query.get("filter") or None
    if chosen is not None and chosen not in queries.FILTERS:
        return await _error_page(
            request, 400, "Unknown filter", "Choose one of the filters on the devices page."
        )
    db, now = _db(request), _now(request)
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
    return await _render(request, "fleet.html", context, active="fleet")


@ROUTES.get("/devices/{serial}")
@login_required
async def device_page(request: web.Request) -> web.Response:
    """A device: each supply's level, rate, days left, balance, next order and chart (R17)."""
    principal = await _principal(request)
    view = await queries.device(
        _db(request),
        principal,
        request.match_info["serial"],
        now=_now(request),
        rules=request.app[CONFIG].rules(),
    )
    if view is None:
        return await _not_found(request, "device")
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
    now = _now(request)
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
    return await _render(request, "device.html", context, status=status, active="fleet")


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
    principal = await _principal(request)
    serial = request.match_info["serial"]
    try:
        form = await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    db, now = _db(request), _now(request)
    supply_id = _text(form, "supply_id")
    try:
        quantity = _int(form, "quantity")
        shipment_id = await changes.record_extra(
            db,
            principal,
            serial,
            supply_id,
            quantity,
            _text(form, "note"),
            now,
            request.app[CONFIG].rules().waste_per_black,
        )
    except NotFound:
        return await _not_found(request, "device")
    except Forbidden as err:
        return await _forbidden(request, err)
    except InvalidRequest as err:
        view = await queries.device(db, principal, serial, now=now)
        if view is None:
            return await _not_found(request, "device")
        values = {k: _text(form, k) for k in ("supply_id", "quantity", "note")}
        return await _device(request, principal, view, status=400, error=err, values=values)
    raise await _see_other(
        request,
        f"Extra order recorded: {quantity} × {supply_id} (shipment {shipment_id}).",
        f"/devices/{serial}",
    )


# --- orders (R15) --------------------------------------------------------------------------


@ROUTES.get("/orders")
@login_required
async def orders_page(request: web.Request) -> web.Response:
    """Every shipment with its latest state and its history (R15)."""
    principal = await _principal(request)
    status = request.query.get("status") or None
    if status is not None and status not in ORDER_FILTERS:
        return await _error_page(
            request, 400, "Unknown status", "Choose one of the filters on the orders page."
        )
    shipments = await queries.orders(_db(request), principal, status, now=_now(request))
    context = {"shipments": shipments, "status": status, "statuses": ORDER_FILTERS}
    return await _render(request, "orders.html", context, active="orders")


# --- sites and contacts (R18) --------------------------------------------------------------


@ROUTES.get("/sites")
@login_required
async def sites_page(request: web.Request) -> web.Response:
    """Sites with their address, the contacts, the devices; the change forms where allowed."""
    return await _sites(request, await _principal(request))


async def _sites(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    form_id: str = "",
    error: InvalidRequest | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    views = await queries.sites(_db(request), principal)
    customers: dict[str, dict[str, Any]] = {}
    for site in views:
        entry = customers.setdefault(
            site.customer_id,
            {
                "id": site.customer_id,
                "name": site.customer_name,
                "kind": site.customer_kind,
                "contacts": site.contacts,
                "sites": [],
                "may_change": changes.may_manage(principal, site.customer_kind),
                "who_does_it": (
                    changes.HELPDESK_DOES_IT
                    if site.customer_kind == "mps"
                    else changes.CUSTOMER_DOES_IT
                ),
            },
        )
        entry["sites"].append(site)
    context = {
        "customers": list(customers.values()),
        "form_id": form_id,
        "error": error,
        "values": values or {},
        "languages": LANGUAGE_LABELS,
    }
    return await _render(request, "sites.html", context, status=status, active="sites")


async def _change(
    request: web.Request,
    form_id: str,
    fields: tuple[str, ...],
    done: str,
    location: str,
    apply: Callable[[Principal, Mapping[str, Any]], Awaitable[None]],
) -> web.Response:
    """One R18 change from a form: 303 with a flash; the form again; or the 403/404 page."""
    principal = await _principal(request)
    try:
        form = await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    try:
        await apply(principal, form)
    except NotFound:
        return await _not_found(request, "site, contact or device")
    except Forbidden as err:
        return await _forbidden(request, err)
    except InvalidRequest as err:
        values = {k: _text(form, k) for k in fields}
        return await _sites(
            request, principal, status=400, form_id=form_id, error=err, values=values
        )
    raise await _see_other(request, done, location)


def _path_int(request: web.Request, name: str) -> int | None:
    try:
        return int(request.match_info[name])
    except ValueError:
        return None


@ROUTES.post("/sites/{site_id}")
@login_required
async def change_site(request: web.Request) -> web.Response:
    """R18: a site's shipping address."""
    site_id = _path_int(request, "site_id")
    if site_id is None:
        return await _not_found(request, "site")

    async def apply(principal: Principal, form: Mapping[str, Any]) -> None:
        await changes.change_site_address(
            _db(request), principal, site_id, _text(form, "address"), _now(request)
        )

    return await _change(
        request,
        f"site-{site_id}",
        ("address",),
        "Shipping address changed.",
        f"/sites#site-{site_id}",
        apply,
    )


@ROUTES.post("/contacts/{contact_id}")
@login_required
async def change_contact(request: web.Request) -> web.Response:
    """R18: a supplies contact's email, name and language."""
    contact_id = _path_int(request, "contact_id")
    if contact_id is None:
        return await _not_found(request, "contact")

    async def apply(principal: Principal, form: Mapping[str, Any]) -> None:
        await changes.change_contact(
            _db(request),
            principal,
            contact_id,
            _text(form, "email"),
            _text(form, "display_name"),
            _text(form, "language"),
            _now(request),
        )

    return await _change(
        request,
        f"contact-{contact_id}",
        ("email", "display_name", "language"),
        "Supplies contact changed.",
        f"/sites#contact-{contact_id}",
        apply,
    )


@ROUTES.post("/devices/{serial}/assignment")
@login_required
async def assign_device(request: web.Request) -> web.Response:
    """R18: which site a device ships to and which contact is told (R10 groups by these)."""
    serial = request.match_info["serial"]

    async def apply(principal: Principal, form: Mapping[str, Any]) -> None:
        await changes.assign_device(
            _db(request),
            principal,
            serial,
            _int(form, "site_id"),
            _int(form, "contact_id"),
            _now(request),
        )

    return await _change(
        request,
        f"device-{serial}",
        ("site_id", "contact_id"),
        f"Device {serial}: site and contact changed.",
        f"/sites#device-{serial}",
        apply,
    )


# --- registration (R4) ---------------------------------------------------------------------


@ROUTES.get("/register")
@login_required
async def register_page(request: web.Request) -> web.Response:
    """R4: the devices the customer's agents read that are not in ASR, with the form."""
    return await _register(request, await _principal(request))


async def _register(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    error: InvalidRequest | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    db = _db(request)
    waiting = await queries.unregistered(db, principal)
    sites = await queries.sites(db, principal)
    contacts = await queries.contact_list(db, principal)
    context = {
        "devices": [
            {
                "device": d,
                "sites": [s for s in sites if s.customer_id == d.customer_id],
                "contacts": [c for c in contacts if c.customer_id == d.customer_id],
                "may_register": changes.may_manage(principal, d.customer_kind),
                "who_does_it": (
                    changes.HELPDESK_DOES_IT
                    if d.customer_kind == "mps"
                    else changes.CUSTOMER_DOES_IT
                ),
            }
            for d in waiting
        ],
        "error": error,
        "values": values or {},
    }
    return await _render(request, "register.html", context, status=status, active="register")


@ROUTES.post("/register")
@login_required
async def register(request: web.Request) -> web.Response:
    """R4: register a reporting device with its site and contact (a confirmation email)."""
    principal = await _principal(request)
    try:
        form = await _form(request)
    except web.HTTPForbidden:
        return await _csrf_refused(request)
    serial = _text(form, "serial")
    try:
        await changes.register_device(
            _db(request),
            principal,
            serial,
            _int(form, "site_id"),
            _int(form, "contact_id"),
            _now(request),
        )
    except NotFound:
        return await _not_found(request, "device")
    except Forbidden as err:
        return await _forbidden(request, err)
    except InvalidRequest as err:
        values = {k: _text(form, k) for k in ("serial", "site_id", "contact_id")}
        return await _register(request, principal, status=400, error=err, values=values)
    raise await _see_other(
        request,
        f"Device {serial} registered: a confirmation email is on its way.",  # R4
        f"/devices/{serial}",
    )


# --- the quarantine (helpdesk) -------------------------------------------------------------


@ROUTES.get("/quarantine")
@login_required
async def quarantine_page(request: web.Request) -> web.Response:
    """The helpdesk's: readings the collector set aside, newest first, by kind."""
    principal = await _principal(request)
    if not principal.is_helpdesk:
        return await _error_page(request, 403, "Not allowed", "This page is for the helpdesk only.")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in quarantine.KINDS:
        return await _error_page(
            request, 400, "Unknown filter", "Choose one of the filters on the set-aside page."
        )
    rows = await quarantine.quarantined(_db(request), principal, kind=kind)
    context = {
        "rows": rows,
        "kind": kind,
        "kinds": QUARANTINE_LABELS,
        "help": QUARANTINE_HELP,
        "limit": quarantine.DEFAULT_LIMIT,
    }
    return await _render(request, "quarantine.html", context, active="quarantine")


ROUTES.static("/static", STATIC)

# The helpdesk's queue has a module of its own; its routes join this table.
from collector.portal import helpdesk_pages as helpdesk_pages  # noqa: E402
