"""What the portal's pages share: the route table, the jinja2 setup, the labels and the helpers.

Is: the one RouteTableDef every page module adds to (collector.portal.pages gathers them), the
autoescaped template environment with its filters, and the helpers a page handler uses: who
is logged in, rendering with the base context (CSRF token, flash message, no-store headers),
the 403/404/400 pages, the posted form with its CSRF check, the 303 with a flash message, a
change from a posted form with its answers (posted_change), and a path's id (path_id).
Is not: a page (collector.portal.pages, .device_pages, .site_pages, .helpdesk_pages).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from collector.appkeys import CLOCK, COLLECTOR, CONFIG
from collector.errors import InvalidRequest
from collector.portal import queries
from collector.portal.auth import (
    check_csrf,
    csrf_token,
    current,
)
from collector.portal.errors import Forbidden, NotFound
from collector.records import Principal
from collector.store.database import Database

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH = "flash"
HOME = "/fleet"
STATE_LABELS = {
    "disconnected": "Disconnected",
    "no-usage-rate": "No usage rate yet",
    "no-toner-pending": "No toner pending",
    "activation": "Order due",
    "toner-ordered": "Toner ordered",
    "toner-delivered": "Toner delivered",
    "toner-replaced": "Toner replaced",
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

ROUTES = web.RouteTableDef()  # every page's route; collector.portal.pages installs it


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


def request_db(request: web.Request) -> Database:
    return request.app[COLLECTOR].db


def request_now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


async def logged_in(request: web.Request) -> Principal:
    """The logged-in principal (the handlers are behind login_required)."""
    principal = await current(request)
    if principal is None:  # the session ended between the check and here
        raise web.HTTPSeeOther("/login")
    return principal


async def render(
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
    account = (
        await queries.account(request_db(request), principal) if principal is not None else None
    )
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


async def error_page(
    request: web.Request, status: int, heading: str, message: str, who_does_it: str = ""
) -> web.Response:
    context = {
        "status": status,
        "heading": heading,
        "message": message,
        "who_does_it": who_does_it,
    }
    return await render(request, "error.html", context, status=status)


async def not_found_page(request: web.Request, what: str = "page") -> web.Response:
    # Says nothing of what was asked for: another customer's serial or site is not echoed.
    return await error_page(request, 404, "Not found", f"There is no such {what} in your account.")


async def forbidden_page(request: web.Request, err: Forbidden) -> web.Response:
    return await error_page(
        request,
        403,
        "Not allowed",
        "Your account may not make this change.",
        f"Who does it: {err}.",
    )


async def csrf_refused_page(request: web.Request) -> web.Response:
    return await error_page(
        request,
        403,
        "Form refused",
        "The form has expired or did not come from this site: reload the page and try again.",
    )


async def posted_form(request: web.Request) -> Mapping[str, Any]:
    """The posted form, refused above `portal.max_form_bytes`; CSRF checked (HTTPForbidden)."""
    limit = request.app[CONFIG].portal.max_form_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    form = await request.post()
    await check_csrf(request, form)
    return form


async def see_other(request: web.Request, message: str, location: str) -> web.HTTPSeeOther:
    """A 303 to `location` (to be raised) that shows `message` on the next page."""
    session = await aiohttp_session.get_session(request)
    session[FLASH] = message
    return web.HTTPSeeOther(location)


# A change's work: from who posted the form, the flash message and where the 303 goes.
Apply = Callable[[Principal, Mapping[str, Any]], Awaitable[tuple[str, str]]]
# The form's page again, with the error (400), for a form that did not pass.
Again = Callable[[Principal, Mapping[str, Any], InvalidRequest], Awaitable[web.Response]]


async def posted_change(
    request: web.Request, what: str, apply: Apply, again: Again
) -> web.Response:
    """A change from a posted form: the 403 page if the CSRF check refuses the form, else `apply`;
    its NotFound the 404 page of `what`, Forbidden the 403 page, InvalidRequest `again`; else
    the 303 with apply's message."""
    principal = await logged_in(request)
    try:
        form = await posted_form(request)
    except web.HTTPForbidden:
        return await csrf_refused_page(request)
    try:
        message, location = await apply(principal, form)
    except NotFound:
        return await not_found_page(request, what)
    except Forbidden as err:
        return await forbidden_page(request, err)
    except InvalidRequest as err:
        return await again(principal, form, err)
    raise await see_other(request, message, location)


IdHandler = Callable[[web.Request, int], Awaitable[web.Response]]


def path_id(
    name: str, what: str
) -> Callable[[IdHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """A handler given the path's `name` as a row id; the 404 page of `what` if not a number."""

    def wrap(handler: IdHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        @functools.wraps(handler)
        async def parsed(request: web.Request) -> web.Response:
            try:
                row_id = int(request.match_info[name])
            except ValueError:
                return await not_found_page(request, what)
            return await handler(request, row_id)

        return parsed

    return wrap


def local_target(target: str | None) -> str:
    """`next` only to a path of this site: never another host, scheme or protocol-relative."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
        return HOME
    return target


def form_int(form: Mapping[str, Any], field: str) -> int:
    value = form.get(field)
    try:
        return int(str(value))
    except (TypeError, ValueError) as err:
        raise InvalidRequest(f"{field}: a whole number", field) from err


def form_text(form: Mapping[str, Any], field: str) -> str:
    value = form.get(field, "")
    return value if isinstance(value, str) else ""
