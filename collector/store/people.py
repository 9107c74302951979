"""The portal's users: accounts with a role and a password (R4, R14).

Is: users' passwords hashed with argon2id (salted, the parameters in the hash; a hash made with
older parameters is redone at the next login), login that does the same work for an unknown
user as for a known one, and the helpdesk's user list; each change is audited.
Is not: sessions or API tokens (collector.store.tokens), the login throttle
(collector.store.login_throttle), the audit trail itself (collector.store.audit), sessions over
HTTP (collector.portal.auth), or what a role may do (collector.portal.changes).
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from collector.errors import InvalidRequest
from collector.records import CUSTOMER, HELPDESK, ROLES, SYSTEM, Principal
from collector.store.audit import audit as audit
from collector.store.database import Database
from collector.store.login_throttle import FORGET_FAILURES as FORGET_FAILURES
from collector.store.login_throttle import Charge as Charge
from collector.store.login_throttle import LoginLimit as LoginLimit
from collector.store.login_throttle import charge_login as charge_login
from collector.store.login_throttle import login_succeeded as login_succeeded
from collector.store.schema import customers, users
from collector.store.tokens import LAST_USED_STEP as LAST_USED_STEP
from collector.store.tokens import TOKEN_PREFIX as TOKEN_PREFIX
from collector.store.tokens import ApiToken as ApiToken
from collector.store.tokens import close_session as close_session
from collector.store.tokens import create_api_token as create_api_token
from collector.store.tokens import list_api_tokens as list_api_tokens
from collector.store.tokens import open_session as open_session
from collector.store.tokens import revoke_api_token as revoke_api_token
from collector.store.tokens import session_principal as session_principal
from collector.store.tokens import token_hash as token_hash
from collector.store.tokens import token_principal as token_principal

MIN_PASSWORD = 10
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")

_HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify unknown users' passwords against: the same work as for a known one."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _check(hashed: str, password: str) -> bool:
    # surrogatepass: a lone surrogate (valid JSON, no valid UTF-8) is only a wrong password
    try:
        return _HASHER.verify(hashed, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False


def is_username(name: str) -> bool:
    """Whether a user could have this name (add_user refuses any other)."""
    return _USERNAME.fullmatch(name) is not None


@dataclass(frozen=True)
class User:
    """A portal user as the helpdesk's lists show it (never its password hash)."""

    id: int
    username: str
    role: str
    customer_id: str | None
    display_name: str | None
    created_at: datetime
    disabled_at: datetime | None


# --- users ---------------------------------------------------------------------------------


async def add_user(
    db: Database,
    username: str,
    password: str,
    role: str,
    customer_id: str | None = None,
    display_name: str | None = None,
    *,
    now: datetime,
    by: Principal = SYSTEM,
) -> int:
    """A new user with an argon2id password hash; its id. Customer users need a customer."""
    if not _USERNAME.fullmatch(username):
        raise InvalidRequest(
            "username: 1 to 64 letters, digits or . _ @ + - (starting with a letter or digit)",
            "username",
        )
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"password: at least {MIN_PASSWORD} characters", "password")
    if role not in ROLES:
        raise InvalidRequest(f"role: one of {', '.join(ROLES)}, not {role!r}", "role")
    if role == CUSTOMER and not customer_id:
        raise InvalidRequest("customer_id: a customer user needs its customer", "customer_id")
    if role == HELPDESK and customer_id:
        raise InvalidRequest("customer_id: the helpdesk is no customer's", "customer_id")
    hashed = await asyncio.to_thread(_HASHER.hash, password)
    try:
        async with db.transaction() as conn:
            return await conn.run_sync(
                lambda c: _add_user(c, username, hashed, role, customer_id, display_name, now, by)
            )
    except IntegrityError as err:
        raise InvalidRequest(f"username: {username!r} is taken", "username") from err


def _add_user(
    conn: Connection,
    username: str,
    hashed: str,
    role: str,
    customer_id: str | None,
    display_name: str | None,
    now: datetime,
    by: Principal,
) -> int:
    if customer_id is not None:
        known = conn.execute(select(customers.c.id).where(customers.c.id == customer_id)).first()
        if known is None:
            raise InvalidRequest(f"customer_id: no customer {customer_id!r}", "customer_id")
    if conn.execute(select(users.c.id).where(users.c.username == username)).first() is not None:
        raise InvalidRequest(f"username: {username!r} is taken", "username")
    user_id: int = conn.execute(
        insert(users)
        .values(
            username=username,
            password_hash=hashed,
            role=role,
            customer_id=customer_id,
            display_name=display_name,
            created_at=now,
        )
        .returning(users.c.id)
    ).scalar_one()
    after = {"username": username, "role": role, "display_name": display_name}
    audit(conn, now, by, customer_id, "user", username, "created", None, after)
    return user_id


async def authenticate(
    db: Database, username: str, password: str, now: datetime
) -> Principal | None:
    """The user if the password is right and the user is enabled; else None, after the same work.

    A hash made with other parameters than today's is replaced by one made with today's. A
    name no user can have (see add_user: a NUL, a lone surrogate, 65 characters) is not looked
    up, and costs the same work.
    """
    if not is_username(username):
        await asyncio.to_thread(_check, _dummy_hash(), password)
        return None
    row = await db.read(
        lambda c: c.execute(
            select(
                users.c.id,
                users.c.username,
                users.c.password_hash,
                users.c.role,
                users.c.customer_id,
                users.c.disabled_at,
            ).where(users.c.username == username)
        ).first()
    )
    hashed = row.password_hash if row is not None else _dummy_hash()
    good = await asyncio.to_thread(_check, hashed, password)
    if row is None or not good or (row.disabled_at is not None and row.disabled_at <= now):
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        fresh = await asyncio.to_thread(_HASHER.hash, password)
        async with db.transaction() as conn:
            await conn.execute(
                update(users).where(users.c.id == row.id).values(password_hash=fresh)
            )
    return Principal(row.id, row.username, row.role, row.customer_id)


async def user_principal(db: Database, user_id: int, now: datetime) -> Principal | None:
    """The user with this id as a principal, if it exists and is not disabled (per request)."""
    row = await db.read(
        lambda c: c.execute(
            select(users.c.username, users.c.role, users.c.customer_id, users.c.disabled_at).where(
                users.c.id == user_id
            )
        ).first()
    )
    if row is None or (row.disabled_at is not None and row.disabled_at <= now):
        return None
    return Principal(user_id, row.username, row.role, row.customer_id)


async def set_password(
    db: Database, username: str, password: str, now: datetime, by: Principal = SYSTEM
) -> None:
    """Replace a user's password (argon2id)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"password: at least {MIN_PASSWORD} characters", "password")
    hashed = await asyncio.to_thread(_HASHER.hash, password)

    def write(conn: Connection) -> None:
        row = _user_row(conn, username)
        conn.execute(update(users).where(users.c.id == row.id).values(password_hash=hashed))
        audit(conn, now, by, row.customer_id, "user", username, "password-set", None, None)

    async with db.transaction() as conn:
        await conn.run_sync(write)


async def disable_user(
    db: Database, username: str, now: datetime, by: Principal = SYSTEM, disabled: bool = True
) -> None:
    """Disable a user (refused at login and at its next request), or enable it again."""

    def write(conn: Connection) -> None:
        row = _user_row(conn, username)
        value = now if disabled else None
        conn.execute(update(users).where(users.c.id == row.id).values(disabled_at=value))
        action = "disabled" if disabled else "enabled"
        audit(conn, now, by, row.customer_id, "user", username, action, None, None)

    async with db.transaction() as conn:
        await conn.run_sync(write)


async def list_users(db: Database) -> list[User]:
    """Every user, by username."""
    rows = await db.read(
        lambda c: c.execute(
            select(
                users.c.id,
                users.c.username,
                users.c.role,
                users.c.customer_id,
                users.c.display_name,
                users.c.created_at,
                users.c.disabled_at,
            ).order_by(users.c.username)
        ).all()
    )
    return [User(*row) for row in rows]


def _user_row(conn: Connection, username: str) -> Any:
    row = conn.execute(
        select(users.c.id, users.c.customer_id).where(users.c.username == username)
    ).first()
    if row is None:
        raise InvalidRequest(f"username: no user {username!r}", "username")
    return row
