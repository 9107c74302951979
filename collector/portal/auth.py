"""Who is asking, for the portal's pages and API: sessions, API tokens and CSRF.

Is: the session (an encrypted cookie, `asr_session`: HttpOnly, SameSite=Lax, Secure unless
configured off, with the session id, user, role, customer, login time and a CSRF token; the
session id names a `portal_sessions` row, so a logout ends it on the server; its Fernet key
from `portal.session_key_file` or made once in the state directory); the user re-read from
the database on every request, so a disabled or deleted user is out at once; bearer API
tokens (`Authorization: Bearer asrp_...`); and the CSRF checks: a form's hidden
`csrf_token`, or for the JSON API called with the session cookie an `X-CSRF-Token` header on
unsafe methods (bearer calls carry no cookie, so they need none). The login itself, throttled
(`log_in`), is collector.portal.login_throttle's; its names are re-exported here.
Is not: what a principal may see or change (collector.portal.queries, .changes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_session
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from collector.appkeys import CLOCK, COLLECTOR
from collector.config import CollectorConfig
from collector.portal.login_throttle import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    THROTTLE,
    LoginThrottle,
    client_address,
    log_in,
)
from collector.records import CUSTOMER, HELPDESK, SYSTEM, Principal
from collector.store import people
from common.strictconfig import ConfigError

__all__ = [
    "ACCOUNT_LIMIT",
    "ADDRESS_LIMIT",
    "COOKIE_NAME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SYSTEM",
    "THROTTLE",
    "LoginThrottle",
    "Principal",
    "api_login_required",
    "check_csrf",
    "check_csrf_header",
    "client_address",
    "csrf_token",
    "current",
    "end_session",
    "helpdesk_required",
    "load_session_key",
    "log_in",
    "login_required",
    "safe_next",
    "setup_portal_auth",
    "start_session",
    "via_session",
]

COOKIE_NAME = "asr_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
KEY_FILE = "portal-session.key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/login"

log = logging.getLogger(__name__)

_PRINCIPAL = web.RequestKey("portal_principal", object)  # Principal | None, once looked up
_VIA = web.RequestKey("portal_via", str)  # "session", "token" or "" (anonymous)
MAX_AGE = web.AppKey("portal_max_age", int)  # seconds a login lasts
_SESSION_MIDDLEWARE: web.AppKey[Middleware] = web.AppKey("portal_session_middleware")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the session key -----------------------------------------------------------------------


def load_session_key(config: CollectorConfig) -> bytes:
    """The 32-byte session key: from `portal.session_key_file`, or made once in state_dir."""
    path = config.portal.session_key_file
    if path is None:
        path = config.collector.state_dir / KEY_FILE
        if not path.exists():
            _make_key(path)
    try:
        text = path.read_text().strip()
    except OSError as err:
        raise ConfigError(f"portal.session_key_file: cannot read {path}: {err}") from err
    try:
        key = base64.urlsafe_b64decode(text) if text else b""
    except (binascii.Error, ValueError) as err:
        raise ConfigError(f"portal.session_key_file: {path} is not base64: {err}") from err
    if len(key) != 32:
        raise ConfigError(f"portal.session_key_file: {path} must hold 32 bytes, base64")
    return key


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii") + "\n"
    try:  # O_EXCL: two processes starting at once keep the first key, mode 0600 from birth
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(text)


def setup_portal_auth(app: web.Application, config: CollectorConfig) -> None:
    """Install the session middleware (the encrypted `asr_session` cookie) and the login
    throttle on the app.

    The key is read (or made) when the app starts, not here: the factory touches no files.
    """
    app[MAX_AGE] = max(60, int(config.portal.session_max_age_hours * 3600))
    app[THROTTLE] = LoginThrottle(
        # portal.trusted_proxies: whose X-Forwarded-For names the client (nginx in front)
        trusted_proxies=tuple(config.portal.trusted_proxies)
    )
    app.middlewares.append(_sessions)
    app.on_startup.append(_open_sessions(config))


def _open_sessions(config: CollectorConfig) -> Callable[[web.Application], Awaitable[None]]:
    async def start(app: web.Application) -> None:
        key = await asyncio.to_thread(load_session_key, config)
        storage = EncryptedCookieStorage(
            Fernet(base64.urlsafe_b64encode(key)),
            cookie_name=COOKIE_NAME,
            max_age=app[MAX_AGE],
            httponly=True,
            secure=config.portal.cookie_secure,
            samesite="Lax",
        )
        app[_SESSION_MIDDLEWARE] = aiohttp_session.session_middleware(storage)

    return start


@web.middleware
async def _sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp_session's middleware, made with the key the app read when it started."""
    return await request.app[_SESSION_MIDDLEWARE](request, handler)


# --- sessions ------------------------------------------------------------------------------


async def start_session(request: web.Request, principal: Principal) -> None:
    """Log the principal in: a new session (nothing carried over) with a new CSRF token."""
    session = await aiohttp_session.new_session(request)
    assert principal.user_id is not None, "only users log in"
    db, now = request.app[COLLECTOR].db, request.app[CLOCK]()
    session["sid"] = await people.open_session(db, principal.user_id, now, request.app[MAX_AGE])
    session["uid"] = principal.user_id
    session["username"] = principal.username
    session["role"] = principal.role
    session["customer"] = principal.customer_id
    session["login_at"] = request.app[CLOCK]().timestamp()
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    request[_PRINCIPAL] = principal
    request[_VIA] = "session"


async def end_session(request: web.Request) -> None:
    """Log out: the session is ended on the server (a kept copy of the cookie is refused too),
    emptied, and its cookie removed."""
    session = await aiohttp_session.get_session(request)
    session_id = session.get("sid")
    if isinstance(session_id, str):
        await people.close_session(request.app[COLLECTOR].db, session_id, request.app[CLOCK]())
    session.invalidate()
    request[_PRINCIPAL] = None
    request[_VIA] = ""


async def current(request: web.Request) -> Principal | None:
    """Who is asking: the bearer API token's user, else the session's; None if nobody.

    The user is read again from the database (once per request): a user disabled or removed
    since the login is logged out.
    """
    if _PRINCIPAL in request:
        found = request[_PRINCIPAL]
        return found if isinstance(found, Principal) else None
    principal, via = await _lookup(request)
    request[_PRINCIPAL] = principal
    request[_VIA] = via
    return principal


async def _lookup(request: web.Request) -> tuple[Principal | None, str]:
    db = request.app[COLLECTOR].db
    now = request.app[CLOCK]()
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, ""
        return await people.token_principal(db, token.strip(), now), "token"
    session = await aiohttp_session.get_session(request)
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None, ""
    login_at = session.get("login_at")
    too_old = not isinstance(login_at, int | float) or (
        now.timestamp() - login_at > request.app[MAX_AGE]
    )
    session_id = session.get("sid")
    principal = None
    if not too_old and isinstance(session_id, str):
        principal = await people.session_principal(db, session_id, user_id, now)
    if principal is None or principal.role not in (HELPDESK, CUSTOMER):
        session.invalidate()  # expired, or the user was disabled or removed
        return None, ""
    return principal, "session"


async def via_session(request: web.Request) -> bool:
    """Whether the request is authenticated by the session cookie (not a bearer token)."""
    await current(request)
    return request.get(_VIA) == "session"


# --- CSRF ----------------------------------------------------------------------------------


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token for forms (a hidden input named `csrf_token`); made if none."""
    session = await aiohttp_session.get_session(request)
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


async def _expected_csrf(request: web.Request) -> str | None:
    session = await aiohttp_session.get_session(request)
    token = session.get(CSRF_FIELD)
    return token if isinstance(token, str) and token else None


def _same(given: object, expected: str | None) -> bool:
    return (
        isinstance(given, str)
        and expected is not None
        and secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    )


async def check_csrf(request: web.Request, form: Any) -> None:
    """HTTPForbidden unless the form's `csrf_token` is the session's."""
    if not _same(form.get(CSRF_FIELD), await _expected_csrf(request)):
        raise web.HTTPForbidden(text="The form has expired or did not come from this site.")


async def check_csrf_header(request: web.Request) -> bool:
    """Whether an API call may go on: safe methods and bearer calls always; else the header."""
    if request.method in SAFE_METHODS or not await via_session(request):
        return True
    return _same(request.headers.get(CSRF_HEADER), await _expected_csrf(request))


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this site only (no open redirect), else "/"."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


# --- decorators ----------------------------------------------------------------------------


def login_required(handler: Handler) -> Handler:
    """For pages: anonymous visitors are sent to the login page (303), then back here."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if await current(request) is None:
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}")
        return await handler(request)

    return wrapped


def helpdesk_required(handler: Handler) -> Handler:
    """For pages only the helpdesk sees: anonymous to the login page, others 403."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        principal = await current(request)
        if principal is None:
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}")
        if not principal.is_helpdesk:
            raise web.HTTPForbidden(text="This page is the helpdesk's.")
        return await handler(request)

    return wrapped


def api_login_required(handler: Handler) -> Handler:
    """For the JSON API: 401 without a session or token; 403 without the CSRF header."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if await current(request) is None:
            return web.json_response(
                {"error": "unauthenticated", "message": "log in or send a bearer API token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="asr-portal"'},
            )
        if not await check_csrf_header(request):
            return web.json_response(
                {
                    "error": "csrf",
                    "message": f"a session-authenticated {request.method} needs {CSRF_HEADER}",
                },
                status=403,
            )
        return await handler(request)

    return wrapped
