"""Who may send: customers and sites (enough to bind agents), tokens, agents, keys, nonces.

Each function is one transaction. Races are settled by the database: a token is claimed by a
conditional UPDATE (two enrollments with one token: one wins), a nonce by its primary key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.errors import (
    KeyInUse,
    ReplayedNonce,
    RetiredKey,
    TokenExpired,
    TokenUnknown,
    TokenUsed,
    UnknownKey,
)
from collector.records import ACTIVE, RETIRED, REVOKED, AgentKey, Enrollment, EnrollToken
from collector.store.database import Database
from collector.store.schema import agent_keys, agents, customers, enroll_tokens, nonces, sites


def _key(row: RowMapping) -> AgentKey:
    return AgentKey(
        key_id=row["key_id"],
        agent_id=row["agent_id"],
        public_key=bytes(row["public_key"]),
        status=row["status"],
        created_at=row["created_at"],
        retired_at=row["retired_at"],
        revoked_at=row["revoked_at"],
    )


async def _site_id(
    db: Database, conn: AsyncConnection, customer: str, site: str, now: datetime
) -> int:
    await conn.execute(
        db.insert(customers).values(id=customer, created_at=now).on_conflict_do_nothing()
    )
    await conn.execute(
        db.insert(sites)
        .values(customer_id=customer, name=site, created_at=now)
        .on_conflict_do_nothing()
    )
    query = select(sites.c.id).where(sites.c.customer_id == customer, sites.c.name == site)
    site_id: int = (await conn.execute(query)).scalar_one()
    return site_id


async def create_token(
    db: Database, token_hash: str, customer: str, site: str, now: datetime, expires_at: datetime
) -> EnrollToken:
    """Store a new enrollment token (by hash) for a site, making customer and site if new."""
    async with db.transaction() as conn:
        site_id = await _site_id(db, conn, customer, site, now)
        await conn.execute(
            enroll_tokens.insert().values(
                token_hash=token_hash, site_id=site_id, created_at=now, expires_at=expires_at
            )
        )
    return EnrollToken(token_hash, customer, site, now, expires_at)


async def enroll(
    db: Database,
    token_hash: str,
    agent_id: str,
    public_key: bytes,
    key_id: str,
    hostname: str,
    agent_version: str,
    now: datetime,
) -> Enrollment:
    """Use up a token to make an agent with its first key; nothing changes if it fails."""
    async with db.transaction() as conn:
        claim = (
            update(enroll_tokens)
            .where(
                enroll_tokens.c.token_hash == token_hash,
                enroll_tokens.c.used_at.is_(None),
                enroll_tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(enroll_tokens.c.site_id)
        )
        site_id = (await conn.execute(claim)).scalar_one_or_none()
        if site_id is None:
            token = (
                (
                    await conn.execute(
                        select(enroll_tokens).where(enroll_tokens.c.token_hash == token_hash)
                    )
                )
                .mappings()
                .first()
            )
            if token is None:
                raise TokenUnknown("no such enrollment token")
            if token["used_at"] is not None:
                raise TokenUsed("this enrollment token was used already; make a new one")
            raise TokenExpired(
                f"this enrollment token expired on {token['expires_at'].isoformat()}"
            )
        await conn.execute(
            agents.insert().values(
                id=agent_id,
                site_id=site_id,
                hostname=hostname,
                agent_version=agent_version,
                enrolled_at=now,
            )
        )
        added = await conn.execute(
            db.insert(agent_keys)
            .values(
                key_id=key_id,
                agent_id=agent_id,
                public_key=public_key,
                status=ACTIVE,
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(agent_keys.c.key_id)
        )
        if added.first() is None:
            raise KeyInUse(f"key {key_id} is enrolled already: make a new key to enroll")
        await conn.execute(
            update(enroll_tokens)
            .where(enroll_tokens.c.token_hash == token_hash)
            .values(agent_id=agent_id)
        )
        names = (
            await conn.execute(
                select(sites.c.customer_id, sites.c.name).where(sites.c.id == site_id)
            )
        ).one()
    return Enrollment(agent_id=agent_id, key_id=key_id, customer=names[0], site=names[1])


async def find_key(db: Database, key_id: str) -> AgentKey | None:
    """The key with this id, None if there is none."""

    def read(conn: Connection) -> AgentKey | None:
        query = select(agent_keys).where(agent_keys.c.key_id == key_id)
        row = conn.execute(query).mappings().first()
        return _key(row) if row is not None else None

    return await db.read(read)


async def claim_nonce(
    db: Database, conn: AsyncConnection, key_id: str, nonce: str, signed_at: datetime
) -> None:
    """Record a request's nonce in the caller's transaction; ReplayedNonce if it was seen."""
    added = await conn.execute(
        db.insert(nonces)
        .values(key_id=key_id, nonce=nonce, signed_at=signed_at)
        .on_conflict_do_nothing()
        .returning(nonces.c.nonce)
    )
    if added.first() is None:
        raise ReplayedNonce(f"nonce {nonce} was used before with key {key_id}")


async def rotate_key(
    db: Database,
    old: AgentKey,
    new_key_id: str,
    new_public_key: bytes,
    nonce: str,
    signed_at: datetime,
    now: datetime,
) -> AgentKey:
    """Retire `old` and make the new key active; repeating a rotation that happened is a no-op."""
    async with db.transaction() as conn:
        await claim_nonce(db, conn, old.key_id, nonce, signed_at)
        existing = (
            (await conn.execute(select(agent_keys).where(agent_keys.c.key_id == new_key_id)))
            .mappings()
            .first()
        )
        if existing is not None:
            if existing["agent_id"] == old.agent_id and old.status == RETIRED:
                return _key(existing)  # the agent did not get our answer and asks again
            raise KeyInUse(f"key {new_key_id} is enrolled already")
        retired = await conn.execute(
            update(agent_keys)
            .where(agent_keys.c.key_id == old.key_id, agent_keys.c.status == ACTIVE)
            .values(status=RETIRED, retired_at=now)
            .returning(agent_keys.c.key_id)
        )
        if retired.first() is None:
            raise RetiredKey(f"key {old.key_id} is not the agent's active key")
        await conn.execute(
            agent_keys.insert().values(
                key_id=new_key_id,
                agent_id=old.agent_id,
                public_key=new_public_key,
                status=ACTIVE,
                created_at=now,
            )
        )
        row = (
            (await conn.execute(select(agent_keys).where(agent_keys.c.key_id == new_key_id)))
            .mappings()
            .one()
        )
    return _key(row)


async def revoke_key(db: Database, key_id: str, now: datetime) -> AgentKey:
    """Revoke a key for good: it is refused from now on (UnknownKey if there is none)."""
    async with db.transaction() as conn:
        await conn.execute(
            update(agent_keys)
            .where(agent_keys.c.key_id == key_id, agent_keys.c.status != REVOKED)
            .values(status=REVOKED, revoked_at=now)
        )
        row = (
            (await conn.execute(select(agent_keys).where(agent_keys.c.key_id == key_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise UnknownKey(f"no key {key_id}")
    return _key(row)


async def prune_nonces(db: Database, signed_before: datetime) -> int:
    """Forget nonces signed before this time (older requests fail the clock check anyway)."""
    async with db.transaction() as conn:
        result = await conn.execute(delete(nonces).where(nonces.c.signed_at < signed_before))
    return result.rowcount or 0


async def site_names(db: Database, customer: str) -> list[str] | None:
    """The names of the customer's sites, by name; None if there is no such customer."""

    def read(conn: Connection) -> list[str] | None:
        known = conn.execute(select(customers.c.id).where(customers.c.id == customer)).first()
        if known is None:
            return None
        query = select(sites.c.name).where(sites.c.customer_id == customer).order_by(sites.c.name)
        return list(conn.execute(query).scalars())

    return await db.read(read)
