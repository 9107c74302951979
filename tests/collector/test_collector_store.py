"""The store on both databases: migrations, concurrent writers, pruning."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.errors import TokenUsed
from collector.rules import sort_readings
from collector.service import Collector, Settings
from collector.store import registry
from collector.store.database import Database
from collector.store.ingest import store_batch
from collector.store.migrate import current_revision, head_revision, migrate
from collector.store.schema import metadata
from tests.collector.kit import make_batch
from wire import signing
from wire.batch import encode_batch
from wire.enroll import EnrollRequest, encode_message
from wire.signing import SignatureHeaders, encode_public_key, sign

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _collector(db: Database) -> Collector:
    return Collector(db, Settings(), clock=lambda: NOW)


async def _enrolled(collector: Collector) -> tuple[str, Ed25519PrivateKey]:
    token, _ = await collector.create_token("acme", "milano")
    key = Ed25519PrivateKey.generate()
    request = EnrollRequest(token, encode_public_key(key.public_key()), "0.1.0", "edge-1")
    return (await collector.enroll(encode_message(request))).agent_id, key


async def test_migrations_make_the_schema_of_the_code(db: Database) -> None:
    assert await current_revision(db) == head_revision()
    assert await migrate(db) == head_revision()  # again: nothing to do

    def differences(conn: object) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, metadata))

    async with db.transaction() as conn:
        assert await conn.run_sync(differences) == []


async def test_same_batch_stored_concurrently_is_stored_once(db: Database) -> None:
    collector = _collector(db)
    agent_id, key = await _enrolled(collector)
    batch = make_batch(agent_id, range(1, 51), NOW)
    body = encode_batch(batch)
    sorted_ = sort_readings(batch, NOW, timedelta(minutes=5))

    async def store() -> list[str]:
        signed = SignatureHeaders.from_headers(sign(key, body, NOW))
        result = await store_batch(db, batch, body, signed, sorted_.storable, {}, NOW)
        return [r.status for r in result.results]

    outcomes = await asyncio.gather(*(store() for _ in range(4)))
    for seq in range(50):
        assert sorted(outcome[seq] for outcome in outcomes) == ["accepted"] + ["duplicate"] * 3
    counts = await db.row_counts()
    assert (counts["readings"], counts["batches"], counts["heartbeats"]) == (50, 1, 1)
    assert counts["nonces"] == 4


async def test_token_used_concurrently_enrolls_one_agent(db: Database) -> None:
    collector = _collector(db)
    token, _ = await collector.create_token("acme", "milano")

    async def enroll() -> str:
        key = encode_public_key(Ed25519PrivateKey.generate().public_key())
        try:
            await collector.enroll(encode_message(EnrollRequest(token, key, "0.1.0", "edge")))
        except TokenUsed:
            return "used"
        return "enrolled"

    outcomes = await asyncio.gather(*(enroll() for _ in range(3)))
    assert sorted(outcomes) == ["enrolled", "used", "used"]
    assert (await db.row_counts())["agents"] == 1


async def test_old_nonces_are_pruned(db: Database) -> None:
    collector = _collector(db)
    _, key = await _enrolled(collector)
    key_id = signing.key_id(key.public_key())
    async with db.transaction() as conn:
        for minutes in (0, 9, 11, 60):
            signed_at = NOW - timedelta(minutes=minutes)
            await registry.claim_nonce(db, conn, key_id, f"{minutes:032x}", signed_at)
    assert await collector.prune_nonces() == 2  # older than twice the 5 min clock skew
    assert (await db.row_counts())["nonces"] == 2
