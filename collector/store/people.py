"""The portal's people: users with a role, their API tokens, and the audit trail (R4, R14, R18).

Is: users' passwords hashed with argon2id (salted, the parameters in the hash; a hash made with
older parameters is redone at the next login), login that does the same work for an unknown
user as for a known one, API tokens (`asrp_` and 32 random bytes) of which only the SHA-256 is
kept, and `audit`, the row every change writes in its own transaction.
The login throttle's counts are here too: one row per key (an account, a client address)
with its failed logins and, past its limit, until when it is refused; each attempt is counted
before its password is checked, in one transaction that locks the rows, so guesses sent in
parallel cannot get past the limit, and a right password gives the count back.
Is not: sessions or HTTP (collector.portal.auth), or what a role may do (collector.portal.changes).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from collector.errors import InvalidRequest
from collector.records import CUSTOMER, HELPDESK, ROLES, SYSTEM, Principal
from collector.store.database import Database
from collector.store.schema import (
    api_tokens,
    audit_log,
    customers,
    login_throttle,
    portal_sessions,
    users,
)

TOKEN_PREFIX = "asrp_"
MIN_PASSWORD = 10
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
# A key's failed logins are forgotten this long after its last one.
FORGET_FAILURES = timedelta(days=1)
# A token's last use is written at most this often: not one write per API call.
LAST_USED_STEP = timedelta(minutes=1)

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


def token_hash(token: str) -> str:
    """How an API token is kept: SHA-256 hex (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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


@dataclass(frozen=True)
class ApiToken:
    """One of a user's API tokens, without its value (shown once, when made)."""

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


# --- the audit trail -----------------------------------------------------------------------


def audit(
    conn: Connection,
    at: datetime,
    principal: Principal,
    customer_id: str | None,
    entity: str,
    entity_key: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record who changed what and when, in the transaction of the change itself."""
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=principal.username,
            role=principal.role,
            customer_id=customer_id,
            entity=entity,
            entity_key=entity_key,
            action=action,
            before=before,
            after=after,
        )
    )


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


# --- portal sessions -----------------------------------------------------------------------


async def open_session(db: Database, user_id: int, now: datetime, max_age_seconds: float) -> str:
    """A new login's session id (for the cookie; only its hash is kept); the user's sessions
    older than `max_age_seconds` are dropped on the way."""
    session_id = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        await conn.execute(
            delete(portal_sessions).where(
                portal_sessions.c.user_id == user_id,
                portal_sessions.c.created_at < now - timedelta(seconds=max_age_seconds),
            )
        )
        await conn.execute(
            insert(portal_sessions).values(
                id_hash=token_hash(session_id), user_id=user_id, created_at=now
            )
        )
    return session_id


async def session_principal(
    db: Database, session_id: str, user_id: int, now: datetime
) -> Principal | None:
    """The user of a session opened here and not ended (by a logout), if the user is still
    enabled; one read, made on every request of a logged-in user."""
    row = await db.read(
        lambda c: c.execute(
            select(users.c.username, users.c.role, users.c.customer_id, users.c.disabled_at)
            .join(portal_sessions, portal_sessions.c.user_id == users.c.id)
            .where(
                portal_sessions.c.id_hash == token_hash(session_id),
                portal_sessions.c.user_id == user_id,
                portal_sessions.c.ended_at.is_(None),
            )
        ).first()
    )
    if row is None or (row.disabled_at is not None and row.disabled_at <= now):
        return None
    return Principal(user_id, row.username, row.role, row.customer_id)


async def close_session(db: Database, session_id: str, now: datetime) -> None:
    """End a session on the server: its cookie, even a copy, no longer logs anyone in."""
    async with db.transaction() as conn:
        await conn.execute(
            update(portal_sessions)
            .where(
                portal_sessions.c.id_hash == token_hash(session_id),
                portal_sessions.c.ended_at.is_(None),
            )
            .values(ended_at=now)
        )


# --- API tokens ----------------------------------------------------------------------------


async def create_api_token(db: Database, user_id: int, name: str, now: datetime) -> str:
    """A new API token for the user, named `name`; its value, which is shown once."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidRequest("name: 1 to 64 characters", "name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    def write(conn: Connection) -> None:
        user = conn.execute(
            select(users.c.username, users.c.role, users.c.customer_id).where(users.c.id == user_id)
        ).first()
        if user is None:
            raise InvalidRequest(f"user_id: no user {user_id}", "user_id")
        taken = conn.execute(
            select(api_tokens.c.name).where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.name == name,
                api_tokens.c.revoked_at.is_(None),
            )
        ).first()
        if taken is not None:
            raise InvalidRequest(f"name: a token named {name!r} exists already", "name")
        conn.execute(
            insert(api_tokens).values(
                token_hash=token_hash(token), user_id=user_id, name=name, created_at=now
            )
        )
        who = Principal(user_id, user.username, user.role, user.customer_id)
        key = f"{user.username}/{name}"
        audit(conn, now, who, user.customer_id, "token", key, "created", None, {"name": name})

    async with db.transaction() as conn:
        await conn.run_sync(write)
    return token


async def token_principal(db: Database, token: str, now: datetime) -> Principal | None:
    """The user an API token speaks for, unless it is unknown, revoked or its user disabled."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    hashed = token_hash(token)
    row = await db.read(
        lambda c: c.execute(
            select(
                api_tokens.c.last_used_at,
                api_tokens.c.revoked_at,
                users.c.id,
                users.c.username,
                users.c.role,
                users.c.customer_id,
                users.c.disabled_at,
            )
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.token_hash == hashed)
        ).first()
    )
    if row is None or row.revoked_at is not None:
        return None
    if row.disabled_at is not None and row.disabled_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_STEP:
        async with db.transaction() as conn:
            await conn.execute(
                update(api_tokens).where(api_tokens.c.token_hash == hashed).values(last_used_at=now)
            )
    return Principal(row.id, row.username, row.role, row.customer_id)


async def revoke_api_token(db: Database, user_id: int, name: str, now: datetime) -> bool:
    """Revoke the user's live token named `name`; whether there was one."""

    def write(conn: Connection) -> bool:
        user = conn.execute(
            select(users.c.username, users.c.role, users.c.customer_id).where(users.c.id == user_id)
        ).first()
        if user is None:
            return False
        done = conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.name == name,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        ).rowcount
        if done:
            who = Principal(user_id, user.username, user.role, user.customer_id)
            key = f"{user.username}/{name}"
            audit(conn, now, who, user.customer_id, "token", key, "revoked", None, None)
        return bool(done)

    async with db.transaction() as conn:
        return await conn.run_sync(write)


async def list_api_tokens(db: Database, user_id: int) -> list[ApiToken]:
    """The user's tokens, newest first (values are never kept)."""
    rows = await db.read(
        lambda c: c.execute(
            select(
                api_tokens.c.name,
                api_tokens.c.created_at,
                api_tokens.c.last_used_at,
                api_tokens.c.revoked_at,
            )
            .where(api_tokens.c.user_id == user_id)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.name)
        ).all()
    )
    return [ApiToken(*row) for row in rows]


# --- the login throttle --------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimit:
    """How many failed logins a key may have, then how long it is refused: `base` at the
    limit, doubled with each further failure, at most `cap`."""

    failures: int
    base: timedelta
    cap: timedelta

    def lock(self, failures: int) -> timedelta | None:
        """How long a key with this many failed logins is refused after the last (None: not)."""
        if failures < self.failures:
            return None
        span: timedelta = self.base * 2 ** min(failures - self.failures, 30)
        return min(self.cap, span)


@dataclass(frozen=True)
class Charge:
    """One login attempt counted against its keys, or refused because one of them is locked."""

    refused_until: datetime | None = None  # a key is locked until then: refused, not counted
    refused_key: str | None = None
    locks: dict[str, datetime | None] = field(default_factory=dict)  # set by this attempt


async def charge_login(
    db: Database, keys: Sequence[tuple[str, LoginLimit]], now: datetime
) -> Charge:
    """Count a login attempt against each key before its password is checked (so parallel
    guesses cannot pass a limit), locking a key that reaches its limit; or, when a key is
    locked now, count nothing and say which and until when."""
    ordered = sorted(keys, key=lambda pair: pair[0])  # one lock order: no deadlock
    names = [key for key, _ in ordered]
    async with db.transaction() as conn:
        await conn.execute(
            delete(login_throttle).where(login_throttle.c.updated_at < now - FORGET_FAILURES)
        )
        await conn.execute(
            db.insert(login_throttle)
            .values([{"key": k, "failures": 0, "updated_at": now} for k in names])
            .on_conflict_do_nothing(index_elements=["key"])
        )
        rows = {
            row.key: row
            for row in await conn.execute(
                select(login_throttle)
                .where(login_throttle.c.key.in_(names))
                .order_by(login_throttle.c.key)
                .with_for_update()
            )
        }
        locked = [
            (row.locked_until, key)
            for key, row in rows.items()
            if row.locked_until is not None and row.locked_until > now
        ]
        if locked:
            until, key = max(locked)
            return Charge(refused_until=until, refused_key=key)
        locks: dict[str, datetime | None] = {}
        for key, limit in ordered:
            failures = rows[key].failures + 1
            span = limit.lock(failures)
            locks[key] = now + span if span is not None else None
            await conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key == key)
                .values(failures=failures, locked_until=locks[key], updated_at=now)
            )
    return Charge(locks=locks)


async def login_succeeded(db: Database, account_key: str, charge: Charge) -> None:
    """A right password: the account's count starts again; the other keys (the client's
    address) get this attempt's count back, and a lock it set is lifted."""
    async with db.transaction() as conn:
        await conn.execute(delete(login_throttle).where(login_throttle.c.key == account_key))
        for key, until in charge.locks.items():
            if key == account_key:
                continue
            await conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key == key, login_throttle.c.failures > 0)
                .values(failures=login_throttle.c.failures - 1)
            )
            if until is not None:  # unless a later failure has locked it since
                await conn.execute(
                    update(login_throttle)
                    .where(login_throttle.c.key == key, login_throttle.c.locked_until == until)
                    .values(locked_until=None)
                )
