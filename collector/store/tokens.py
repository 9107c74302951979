"""Portal sessions and API tokens: bearer secrets of which only the SHA-256 is kept (R4, R14).

Is: a login's session (opened, looked up on every request, ended at logout), and API tokens
(`asrp_` and 32 random bytes, shown once when made; named, revocable, their last use written at
most once a minute).
Is not: cookies or HTTP (collector.portal.auth), or users and passwords (collector.store.people).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from collector.errors import InvalidRequest
from collector.records import Principal
from collector.store.audit import audit
from collector.store.database import Database
from collector.store.schema import api_tokens, portal_sessions, users

TOKEN_PREFIX = "asrp_"
# A token's last use is written at most this often: not one write per API call.
LAST_USED_STEP = timedelta(minutes=1)


def token_hash(token: str) -> str:
    """How an API token is kept: SHA-256 hex (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    """One of a user's API tokens, without its value (shown once, when made)."""

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


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
