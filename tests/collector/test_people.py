"""The portal's people on both databases: argon2id passwords, API tokens, the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from collector.errors import InvalidRequest
from collector.records import Principal
from collector.store import fleet, people
from collector.store.database import Database
from collector.store.schema import api_tokens, audit_log, users

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


async def _customer(db: Database) -> None:
    await fleet.add_customer(db, "acme", "self", NOW, name="Acme")


async def _hashes(db: Database) -> dict[str, str]:
    query = select(users.c.username, users.c.password_hash)
    rows = await db.read(lambda c: c.execute(query).all())
    return {username: hashed for username, hashed in rows}


async def test_passwords_are_argon2id_and_salted(db: Database) -> None:
    await _customer(db)
    await people.add_user(db, "anna", PASSWORD, "customer", "acme", now=NOW)
    await people.add_user(db, "helpdesk", PASSWORD, "helpdesk", now=NOW)
    hashes = await _hashes(db)
    assert all(h.startswith("$argon2id$") for h in hashes.values())
    assert hashes["anna"] != hashes["helpdesk"]  # the same password, salted apart
    assert PASSWORD not in "".join(hashes.values())
    anna = await people.authenticate(db, "anna", PASSWORD, NOW)
    assert anna is not None
    assert (anna.username, anna.role, anna.customer_id) == ("anna", "customer", "acme")
    assert anna.sees("acme") and not anna.sees("other") and not anna.is_helpdesk
    helpdesk = await people.authenticate(db, "helpdesk", PASSWORD, NOW)
    assert helpdesk is not None and helpdesk.is_helpdesk and helpdesk.sees("other")


async def test_wrong_password_unknown_and_disabled_users_are_refused(db: Database) -> None:
    await _customer(db)
    await people.add_user(db, "anna", PASSWORD, "customer", "acme", now=NOW)
    assert await people.authenticate(db, "anna", PASSWORD + "!", NOW) is None
    assert await people.authenticate(db, "nobody", PASSWORD, NOW) is None
    user_id = (await people.authenticate(db, "anna", PASSWORD, NOW)).user_id  # type: ignore[union-attr]
    assert user_id is not None
    await people.disable_user(db, "anna", NOW)
    assert await people.authenticate(db, "anna", PASSWORD, NOW) is None
    assert await people.user_principal(db, user_id, NOW) is None  # sessions end too
    await people.disable_user(db, "anna", NOW, disabled=False)
    assert await people.authenticate(db, "anna", PASSWORD, NOW) is not None


async def test_users_are_checked(db: Database) -> None:
    await _customer(db)
    cases = [
        (("bad name", PASSWORD, "helpdesk", None), "username"),
        (("anna", "short", "helpdesk", None), "password"),
        (("anna", PASSWORD, "admin", None), "role"),
        (("anna", PASSWORD, "customer", None), "customer_id"),
        (("anna", PASSWORD, "customer", "nobody"), "customer_id"),
        (("anna", PASSWORD, "helpdesk", "acme"), "customer_id"),
    ]
    for (username, password, role, customer), field in cases:
        with pytest.raises(InvalidRequest) as err:
            await people.add_user(db, username, password, role, customer, now=NOW)
        assert err.value.field == field
    await people.add_user(db, "anna", PASSWORD, "customer", "acme", now=NOW)
    with pytest.raises(InvalidRequest, match="taken"):
        await people.add_user(db, "anna", PASSWORD, "helpdesk", now=NOW)


async def test_old_parameters_are_rehashed_at_login(db: Database) -> None:
    await people.add_user(db, "helpdesk", PASSWORD, "helpdesk", now=NOW)
    weak = people.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with db.transaction() as conn:
        await conn.execute(users.update().values(password_hash=weak))
    assert await people.authenticate(db, "helpdesk", PASSWORD, NOW) is not None
    rehashed = (await _hashes(db))["helpdesk"]
    assert rehashed != weak and not people._HASHER.check_needs_rehash(rehashed)


async def test_api_tokens_are_hashed_at_rest_and_revocable(db: Database) -> None:
    await _customer(db)
    user_id = await people.add_user(db, "anna", PASSWORD, "customer", "acme", now=NOW)
    token = await people.create_api_token(db, user_id, "ci", NOW)
    assert token.startswith("asrp_") and len(token) > 40
    stored = await db.read(lambda c: c.execute(select(api_tokens)).one())
    assert stored.token_hash == people.token_hash(token) and token not in str(tuple(stored))
    later = NOW + timedelta(hours=1)
    principal = await people.token_principal(db, token, later)
    assert principal == Principal(user_id, "anna", "customer", "acme")
    used = await db.read(lambda c: c.execute(select(api_tokens.c.last_used_at)).scalar_one())
    assert used == later
    assert await people.token_principal(db, token + "x", later) is None
    assert await people.token_principal(db, "not-a-token", later) is None
    with pytest.raises(InvalidRequest, match="exists"):
        await people.create_api_token(db, user_id, "ci", NOW)
    assert await people.revoke_api_token(db, user_id, "ci", later)
    assert not await people.revoke_api_token(db, user_id, "ci", later)
    assert await people.token_principal(db, token, later) is None  # revoked: refused
    listed = await people.list_api_tokens(db, user_id)
    assert [(t.name, t.revoked_at) for t in listed] == [("ci", later)]


async def test_tokens_of_disabled_users_are_refused(db: Database) -> None:
    user_id = await people.add_user(db, "helpdesk", PASSWORD, "helpdesk", now=NOW)
    token = await people.create_api_token(db, user_id, "ci", NOW)
    await people.disable_user(db, "helpdesk", NOW)
    assert await people.token_principal(db, token, NOW) is None


async def test_every_change_is_audited(db: Database) -> None:
    await _customer(db)
    user_id = await people.add_user(db, "anna", PASSWORD, "customer", "acme", now=NOW)
    await people.create_api_token(db, user_id, "ci", NOW)
    await people.revoke_api_token(db, user_id, "ci", NOW)
    await people.disable_user(db, "anna", NOW)
    rows = await db.read(
        lambda c: c.execute(
            select(
                audit_log.c.actor,
                audit_log.c.role,
                audit_log.c.customer_id,
                audit_log.c.entity,
                audit_log.c.entity_key,
                audit_log.c.action,
            ).order_by(audit_log.c.id)
        ).all()
    )
    assert [tuple(r) for r in rows] == [
        ("system", "system", "acme", "user", "anna", "created"),
        ("anna", "customer", "acme", "token", "anna/ci", "created"),
        ("anna", "customer", "acme", "token", "anna/ci", "revoked"),
        ("system", "system", "acme", "user", "anna", "disabled"),
    ]
