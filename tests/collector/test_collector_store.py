"""The store on both databases: migrations, concurrent writers, large batches, pruning."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from collector.errors import TokenUsed
from collector.rules import sort_readings
from collector.service import Collector, Settings
from collector.store import registry
from collector.store.database import Database
from collector.store.ingest import store_batch
from collector.store.migrate import current_revision, head_revision, migrate
from collector.store.schema import metadata, readings, supplies
from tests.collector.kit import make_batch
from wire import signing
from wire.batch import Batch, encode_batch
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


async def test_overlapping_batch_stores_each_new_reading_with_its_own_supplies(
    db: Database,
) -> None:
    # Many rows: more supplies than one INSERT takes on SQLite, half of them duplicates.
    collector = _collector(db)
    agent_id, key = await _enrolled(collector)
    first, second = (
        make_batch(agent_id, range(1, 151), NOW),
        make_batch(agent_id, range(1, 401), NOW),
    )
    for batch in (first, second):
        body = encode_batch(batch)
        signed = SignatureHeaders.from_headers(sign(key, body, NOW))
        result = await store_batch(db, batch, body, signed, batch.readings, {}, NOW)
    statuses = [r.status for r in result.results]
    assert statuses == ["duplicate"] * 150 + ["accepted"] * 250
    counts = await db.row_counts()
    assert (counts["readings"], counts["supplies"], counts["batches"]) == (400, 2000, 2)
    async with db.transaction(write=False) as conn:
        rows = await conn.execute(
            select(readings.c.seq, supplies.c.supply_index, supplies.c.level)
            .join(supplies, supplies.c.reading_id == readings.c.id)
            .order_by(readings.c.seq, supplies.c.supply_index)
        )
        by_seq: dict[int, list[tuple[str, int]]] = {}
        for seq, index, level in rows:
            by_seq.setdefault(seq, []).append((index, level))
    assert sorted(by_seq) == list(range(1, 401))
    for seq, found in by_seq.items():  # kit.reading: black toner at 2000 - seq, then 100 less
        assert found[:4] == [(f"1.{i + 1}", 2000 - seq - 100 * i) for i in range(4)], seq


async def test_two_handles_on_one_database_store_each_reading_once(db_url: str) -> None:
    # Two collector processes, as far as the database can tell: each has its own connections
    # (on SQLite, its own writer thread); their batches overlap.
    first, second = Database.open(db_url), Database.open(db_url)
    try:
        collector = _collector(first)
        agent_id, key = await _enrolled(collector)
        batches = [make_batch(agent_id, range(start, start + 60), NOW) for start in (1, 31, 61)]

        async def store(db: Database, batch: Batch) -> list[tuple[int, str]]:
            body = encode_batch(batch)
            signed = SignatureHeaders.from_headers(sign(key, body, NOW))
            result = await store_batch(db, batch, body, signed, batch.readings, {}, NOW)
            return [(r.seq, r.status) for r in result.results]

        outcomes = await asyncio.gather(
            *(store(db, batch) for batch in batches for db in (first, second))
        )
        accepted = sorted(
            seq for outcome in outcomes for seq, status in outcome if status == "accepted"
        )
        assert accepted == list(range(1, 121))
        counts = await first.row_counts()
        assert (counts["readings"], counts["supplies"], counts["batches"]) == (120, 600, 3)
    finally:
        await first.close()
        await second.close()


async def test_batches_and_other_writes_take_turns(db: Database) -> None:
    collector = _collector(db)
    agent_id, key = await _enrolled(collector)

    async def store(seqs: range) -> None:
        batch = make_batch(agent_id, seqs, NOW)
        body = encode_batch(batch)
        signed = SignatureHeaders.from_headers(sign(key, body, NOW))
        await store_batch(db, batch, body, signed, batch.readings, {}, NOW)

    await asyncio.gather(
        *(store(range(start, start + 50)) for start in (1, 51, 101)),
        *(collector.create_token("acme", f"site-{n}") for n in range(3)),
        *(collector.prune_nonces() for _ in range(2)),
    )
    counts = await db.row_counts()
    assert (counts["readings"], counts["enroll_tokens"], counts["nonces"]) == (150, 4, 3)
