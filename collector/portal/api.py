"""The portal's JSON API under /api/v1/portal (openapi.yaml next to this file describes it).

Is: thin handlers over collector.portal.queries and .changes. Statuses: 401 without a session
or API token, 403 when the role may not (or a cookie-authenticated change lacks its
X-CSRF-Token), 404 for what does not exist or is another customer's (the body says nothing
of it), 400 for invalid input as {"error", "message", "field"}, 413 past
`portal.max_form_bytes`, 415 for a body that is not JSON.
Is not: the agents' API (/api/v1/readings, /enroll, /agents: collector.views).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

from aiohttp import web

from collector.appkeys import CLOCK, COLLECTOR, CONFIG
from collector.errors import (
    BodyTooLarge,
    CollectorError,
    InvalidRequest,
    StoreUnavailable,
    UnsupportedMediaType,
)
from collector.fulfilment import reference
from collector.portal import changes, inputs, quarantine, queries
from collector.portal.auth import (
    api_login_required,
    csrf_token,
    current,
    end_session,
    start_session,
    via_session,
)
from collector.portal.errors import Forbidden, NotFound, Throttled
from collector.portal.login_throttle import log_in
from collector.records import Principal
from collector.store.database import Database
from collector.views import json_body

PREFIX = "/api/v1/portal"
ROUTES = web.RouteTableDef()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_B = TypeVar("_B", bound=inputs.Body)

_STATUS: tuple[tuple[type[CollectorError], int], ...] = (
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (InvalidRequest, 400),
    (NotFound, 404),
    (Forbidden, 403),
    (StoreUnavailable, 503),
    (Throttled, 429),
)


def _error(
    status: int, error: str, message: str, field: str | None = None, retry_after: int | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if field:
        body["field"] = field
    if status == 503:
        retry_after = 30
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


def _refusals(handler: Handler) -> Handler:
    """The portal's errors as JSON answers with their statuses."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except CollectorError as err:
            status = next((s for kind, s in _STATUS if isinstance(err, kind)), 500)
            return _error(
                status,
                err.reason,
                str(err),
                getattr(err, "field", None),
                getattr(err, "retry_after", None),
            )

    return wrapped


def api(handler: Handler) -> Handler:
    """An API handler: authenticated (401), CSRF-checked for cookie sessions, errors as JSON."""
    return api_login_required(_refusals(handler))


async def _who(request: web.Request) -> Principal:
    principal = await current(request)
    assert principal is not None  # api_login_required let the request in
    return principal


def _db(request: web.Request) -> Database:
    return request.app[COLLECTOR].db


async def _body(request: web.Request, kind: type[_B]) -> _B:
    """The body as `kind`: refused past `portal.max_form_bytes` (413), not JSON or out of
    bounds (400, naming the field)."""
    body = await json_body(request, request.app[CONFIG].portal.max_form_bytes)
    return inputs.parse(kind, body)


def _serial(request: web.Request) -> str:
    return inputs.path_text(request.match_info["serial"], "serial", "device", inputs.MAX_SERIAL)


# --- session and account -------------------------------------------------------------------


@ROUTES.post(f"{PREFIX}/session")
@_refusals
async def login(request: web.Request) -> web.Response:
    """Log in with a username and password: the session cookie, and the CSRF token."""
    body = await _body(request, inputs.Login)
    principal = await log_in(request, body.username, body.password)
    if principal is None:
        return _error(401, "unauthenticated", "wrong username or password")
    await start_session(request, principal)
    me = await queries.account(_db(request), principal)
    return web.json_response({**me.to_dict(), "csrf_token": await csrf_token(request)})


@ROUTES.delete(f"{PREFIX}/session")
@api
async def logout(request: web.Request) -> web.Response:
    """Log out: the session cookie is removed."""
    await end_session(request)
    return web.Response(status=204)


@ROUTES.get(f"{PREFIX}/me")
@api
async def me(request: web.Request) -> web.Response:
    """Who is asking; with a session, the CSRF token its changes must send."""
    principal = await _who(request)
    body = (await queries.account(_db(request), principal)).to_dict()
    if await via_session(request):
        body["csrf_token"] = await csrf_token(request)
    return web.json_response(body)


# --- reads ---------------------------------------------------------------------------------


@ROUTES.get(f"{PREFIX}/devices")
@api
async def list_devices(request: web.Request) -> web.Response:
    """R17: the registered devices, optionally only those with a flag."""
    principal = await _who(request)
    rows = await queries.fleet(
        _db(request),
        principal,
        inputs.query_text(request.query.get("filter"), "filter"),
        now=request.app[CLOCK](),
        rules=request.app[CONFIG].rules(),
    )
    return web.json_response({"devices": [r.to_dict() for r in rows]})


@ROUTES.get(f"{PREFIX}/unregistered-devices")
@api
async def list_unregistered(request: web.Request) -> web.Response:
    """R4: devices the customer's agents read that are not in ASR yet."""
    rows = await queries.unregistered(_db(request), await _who(request))
    return web.json_response({"devices": [r.to_dict() for r in rows]})


@ROUTES.get(f"{PREFIX}/devices/{{serial}}")
@api
async def get_device(request: web.Request) -> web.Response:
    """R17: one device, its supplies (level, balance, next order) and its orders."""
    view = await queries.device(
        _db(request),
        await _who(request),
        _serial(request),
        now=request.app[CLOCK](),
        rules=request.app[CONFIG].rules(),
    )
    if view is None:
        raise NotFound("no such device")
    return web.json_response(view.to_dict())


@ROUTES.get(f"{PREFIX}/orders")
@api
async def list_orders(request: web.Request) -> web.Response:
    """R15: the orders and their latest state, newest first."""
    rows = await queries.orders(
        _db(request),
        await _who(request),
        inputs.query_text(request.query.get("status"), "status"),
        now=request.app[CLOCK](),
    )
    return web.json_response({"orders": [r.to_dict() for r in rows]})


@ROUTES.get(f"{PREFIX}/sites")
@api
async def list_sites(request: web.Request) -> web.Response:
    """R18: the sites with their shipping address, contacts and devices."""
    rows = await queries.sites(_db(request), await _who(request))
    return web.json_response({"sites": [r.to_dict() for r in rows]})


@ROUTES.get(f"{PREFIX}/audit")
@api
async def list_audit(request: web.Request) -> web.Response:
    """Who changed what and when, newest first."""
    text = inputs.query_text(request.query.get("limit"), "limit", 4) or "100"
    limit = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: 1 to 1000", "limit")
    rows = await queries.audit_trail(_db(request), await _who(request), limit)
    return web.json_response({"entries": [r.to_dict() for r in rows]})


@ROUTES.get(f"{PREFIX}/quarantine")
@api
async def list_quarantine(request: web.Request) -> web.Response:
    """The helpdesk's: readings the collector could not store, newest first."""
    principal = await _who(request)
    if not principal.is_helpdesk:
        raise Forbidden(quarantine.HELPDESK_ONLY)
    query = request.query
    text = inputs.query_text(query.get("limit"), "limit", 4) or str(quarantine.DEFAULT_LIMIT)
    limit = int(text) if text.isascii() and text.isdigit() else 0
    rows = await quarantine.quarantined(
        _db(request),
        principal,
        customer_id=inputs.query_text(query.get("customer_id"), "customer_id", 64),
        kind=inputs.query_text(query.get("kind"), "kind", 16),
        limit=limit,
    )
    return web.json_response({"readings": [r.to_dict() for r in rows]})


# --- changes -------------------------------------------------------------------------------


@ROUTES.patch(f"{PREFIX}/sites/{{site_id}}")
@api
async def patch_site(request: web.Request) -> web.Response:
    """R18: a site's shipping address."""
    principal = await _who(request)
    site_id = inputs.path_id(request.match_info["site_id"], "site_id", "site")
    body = await _body(request, inputs.AddressChange)
    db = _db(request)
    await changes.change_site_address(db, principal, site_id, body.address, request.app[CLOCK]())
    view = await queries.site(db, principal, site_id)
    if view is None:
        raise NotFound("no such site")
    return web.json_response(view.to_dict())


@ROUTES.patch(f"{PREFIX}/contacts/{{contact_id}}")
@api
async def patch_contact(request: web.Request) -> web.Response:
    """R18: a supplies contact's email, display name or language (fields left out are kept)."""
    principal = await _who(request)
    contact_id = inputs.path_id(request.match_info["contact_id"], "contact_id", "contact")
    body = await _body(request, inputs.ContactChange)
    given = body.model_fields_set
    db = _db(request)
    found = await queries.contact(db, principal, contact_id)
    if found is None:
        raise NotFound("no such contact")
    await changes.change_contact(
        db,
        principal,
        contact_id,
        body.email if "email" in given else found.email,
        body.display_name if "display_name" in given else found.display_name,
        body.language if "language" in given else found.language,
        request.app[CLOCK](),
    )
    view = await queries.contact(db, principal, contact_id)
    assert view is not None
    return web.json_response(view.to_dict())


@ROUTES.put(f"{PREFIX}/devices/{{serial}}/assignment")
@api
async def put_assignment(request: web.Request) -> web.Response:
    """R18: the site a device ships to and its supplies contact."""
    principal = await _who(request)
    serial = _serial(request)
    body = await _body(request, inputs.Assignment)
    db, now = _db(request), request.app[CLOCK]()
    await changes.assign_device(db, principal, serial, body.site_id, body.contact_id, now)
    return await _device_answer(request, principal, serial, 200)


@ROUTES.post(f"{PREFIX}/devices/{{serial}}/registration")
@api
async def post_registration(request: web.Request) -> web.Response:
    """R4: a reporting device into ASR; the confirmation email is queued at once."""
    principal = await _who(request)
    serial = _serial(request)
    body = await _body(request, inputs.Assignment)
    db, now = _db(request), request.app[CLOCK]()
    await changes.register_device(db, principal, serial, body.site_id, body.contact_id, now)
    return await _device_answer(request, principal, serial, 201)


async def _device_answer(
    request: web.Request, principal: Principal, serial: str, status: int
) -> web.Response:
    view = await queries.device(
        _db(request),
        principal,
        serial,
        now=request.app[CLOCK](),
        rules=request.app[CONFIG].rules(),
    )
    if view is None:
        raise NotFound("no such device")
    return web.json_response(view.to_dict(), status=status)


@ROUTES.post(f"{PREFIX}/devices/{{serial}}/extra-orders")
@api
async def post_extra_order(request: web.Request) -> web.Response:
    """R14: an extra order ahead of a big job, recorded by the helpdesk; counts in the balance."""
    principal = await _who(request)
    serial = _serial(request)
    body = await _body(request, inputs.ExtraOrder)
    rules = request.app[CONFIG].rules()
    shipment_id = await changes.record_extra(
        _db(request),
        principal,
        serial,
        body.supply_id,
        body.quantity,
        body.note,
        request.app[CLOCK](),
        waste_per_black=rules.waste_per_black,
    )
    found = await queries.order(_db(request), principal, shipment_id)
    body_out = (
        found.to_dict()
        if found is not None
        else {"id": shipment_id, "reference": reference(shipment_id)}
    )
    return web.json_response(body_out, status=201)


# --- the description -----------------------------------------------------------------------


def openapi_text() -> str:
    """This API's OpenAPI 3.1 description (YAML)."""
    return resources.files("collector.portal").joinpath("openapi.yaml").read_text("utf-8")


@ROUTES.get(f"{PREFIX}/openapi.yaml")
async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI description of this API (no login needed)."""
    return web.Response(text=openapi_text(), content_type="application/yaml")


# The helpdesk's queue and the caller's API tokens have modules of their own; their routes
# join this table.
from collector.portal import api_tokens as api_tokens  # noqa: E402
from collector.portal import helpdesk_api as helpdesk_api  # noqa: E402
