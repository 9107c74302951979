"""Sites, contacts and registration as pages (R4, R18): /sites, its change forms, /register.

Is: the sites with their address, devices and contacts, each change form where the principal
may change it (else who does), and the devices waiting to be registered with their form.
Every change answers 303 with a flash message, or the page again with the form's error.
Its routes join collector.portal.page_kit's table.
Is not: who may change what, or the writes (collector.portal.changes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from collector.errors import InvalidRequest
from collector.portal import changes, queries
from collector.portal.auth import login_required
from collector.portal.errors import Forbidden, NotFound
from collector.portal.page_kit import (
    LANGUAGE_LABELS,
    ROUTES,
    csrf_refused_page,
    forbidden_page,
    form_int,
    form_text,
    logged_in,
    not_found_page,
    posted_form,
    render,
    request_db,
    request_now,
    see_other,
)
from collector.records import Principal

# --- sites and contacts (R18) --------------------------------------------------------------


@ROUTES.get("/sites")
@login_required
async def sites_page(request: web.Request) -> web.Response:
    """Sites with their address, the contacts, the devices; the change forms where allowed."""
    return await _sites(request, await logged_in(request))


async def _sites(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    form_id: str = "",
    error: InvalidRequest | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    views = await queries.sites(request_db(request), principal)
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
    return await render(request, "sites.html", context, status=status, active="sites")


async def _change(
    request: web.Request,
    form_id: str,
    fields: tuple[str, ...],
    done: str,
    location: str,
    apply: Callable[[Principal, Mapping[str, Any]], Awaitable[None]],
) -> web.Response:
    """One R18 change from a form: 303 with a flash; the form again; or the 403/404 page."""
    principal = await logged_in(request)
    try:
        form = await posted_form(request)
    except web.HTTPForbidden:
        return await csrf_refused_page(request)
    try:
        await apply(principal, form)
    except NotFound:
        return await not_found_page(request, "site, contact or device")
    except Forbidden as err:
        return await forbidden_page(request, err)
    except InvalidRequest as err:
        values = {k: form_text(form, k) for k in fields}
        return await _sites(
            request, principal, status=400, form_id=form_id, error=err, values=values
        )
    raise await see_other(request, done, location)


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
        return await not_found_page(request, "site")

    async def apply(principal: Principal, form: Mapping[str, Any]) -> None:
        await changes.change_site_address(
            request_db(request),
            principal,
            site_id,
            form_text(form, "address"),
            request_now(request),
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
        return await not_found_page(request, "contact")

    async def apply(principal: Principal, form: Mapping[str, Any]) -> None:
        await changes.change_contact(
            request_db(request),
            principal,
            contact_id,
            form_text(form, "email"),
            form_text(form, "display_name"),
            form_text(form, "language"),
            request_now(request),
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
            request_db(request),
            principal,
            serial,
            form_int(form, "site_id"),
            form_int(form, "contact_id"),
            request_now(request),
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
    return await _register(request, await logged_in(request))


async def _register(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    error: InvalidRequest | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    db = request_db(request)
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
    return await render(request, "register.html", context, status=status, active="register")


@ROUTES.post("/register")
@login_required
async def register(request: web.Request) -> web.Response:
    """R4: register a reporting device with its site and contact (a confirmation email)."""
    principal = await logged_in(request)
    try:
        form = await posted_form(request)
    except web.HTTPForbidden:
        return await csrf_refused_page(request)
    serial = form_text(form, "serial")
    try:
        await changes.register_device(
            request_db(request),
            principal,
            serial,
            form_int(form, "site_id"),
            form_int(form, "contact_id"),
            request_now(request),
        )
    except NotFound:
        return await not_found_page(request, "device")
    except Forbidden as err:
        return await forbidden_page(request, err)
    except InvalidRequest as err:
        values = {k: form_text(form, k) for k in ("serial", "site_id", "contact_id")}
        return await _register(request, principal, status=400, error=err, values=values)
    raise await see_other(
        request,
        f"Device {serial} registered: a confirmation email is on its way.",  # R4
        f"/devices/{serial}",
    )
