"""Sites, contacts and registration as pages (R4, R18): /sites, its change forms, /register.

Is: the sites with their address, devices and contacts, each change form where the principal
may change it (else who does), and the devices waiting to be registered with their form.
Every change answers 303 with a flash message, or the page again with the form's error.
Its routes join collector.portal.page_kit's table.
Is not: who may change what, or the writes (collector.portal.changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from collector.errors import InvalidRequest
from collector.portal import changes, queries
from collector.portal.auth import login_required
from collector.portal.page_kit import (
    LANGUAGE_LABELS,
    ROUTES,
    Apply,
    form_int,
    form_text,
    logged_in,
    path_id,
    posted_change,
    render,
    request_db,
    request_now,
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
    request: web.Request, form_id: str, fields: tuple[str, ...], apply: Apply
) -> web.Response:
    """One R18 change from a form (posted_change): its error shown on /sites at `form_id`."""

    async def again(
        principal: Principal, form: Mapping[str, Any], err: InvalidRequest
    ) -> web.Response:
        values = {k: form_text(form, k) for k in fields}
        return await _sites(
            request, principal, status=400, form_id=form_id, error=err, values=values
        )

    return await posted_change(request, "site, contact or device", apply, again)


@ROUTES.post("/sites/{site_id}")
@login_required
@path_id("site_id", "site")
async def change_site(request: web.Request, site_id: int) -> web.Response:
    """R18: a site's shipping address."""

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        await changes.change_site_address(
            request_db(request),
            principal,
            site_id,
            form_text(form, "address"),
            request_now(request),
        )
        return "Shipping address changed.", f"/sites#site-{site_id}"

    return await _change(request, f"site-{site_id}", ("address",), apply)


@ROUTES.post("/contacts/{contact_id}")
@login_required
@path_id("contact_id", "contact")
async def change_contact(request: web.Request, contact_id: int) -> web.Response:
    """R18: a supplies contact's email, name and language."""

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        await changes.change_contact(
            request_db(request),
            principal,
            contact_id,
            form_text(form, "email"),
            form_text(form, "display_name"),
            form_text(form, "language"),
            request_now(request),
        )
        return "Supplies contact changed.", f"/sites#contact-{contact_id}"

    fields = ("email", "display_name", "language")
    return await _change(request, f"contact-{contact_id}", fields, apply)


@ROUTES.post("/devices/{serial}/assignment")
@login_required
async def assign_device(request: web.Request) -> web.Response:
    """R18: which site a device ships to and which contact is told (R10 groups by these)."""
    serial = request.match_info["serial"]

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        await changes.assign_device(
            request_db(request),
            principal,
            serial,
            form_int(form, "site_id"),
            form_int(form, "contact_id"),
            request_now(request),
        )
        return f"Device {serial}: site and contact changed.", f"/sites#device-{serial}"

    return await _change(request, f"device-{serial}", ("site_id", "contact_id"), apply)


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

    async def apply(principal: Principal, form: Mapping[str, Any]) -> tuple[str, str]:
        serial = form_text(form, "serial")
        await changes.register_device(
            request_db(request),
            principal,
            serial,
            form_int(form, "site_id"),
            form_int(form, "contact_id"),
            request_now(request),
        )
        return (
            f"Device {serial} registered: a confirmation email is on its way.",  # R4
            f"/devices/{serial}",
        )

    async def again(
        principal: Principal, form: Mapping[str, Any], err: InvalidRequest
    ) -> web.Response:
        values = {k: form_text(form, k) for k in ("serial", "site_id", "contact_id")}
        return await _register(request, principal, status=400, error=err, values=values)

    return await posted_change(request, "device", apply, again)
