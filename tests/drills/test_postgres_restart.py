"""Drill: PostgreSQL restarted while an agent's batches flow into the collector (R2).

The real processes on 127.0.0.1: `asr-agent run` polling simulated printers and pushing to
`asr-collector serve` over TLS, which stores into a PostgreSQL server of the drill's own (so
the restart disturbs nothing else; see tests/drills/collector_kit.py). PostgreSQL is stopped
(`pg_ctl stop -m fast`, as `pg_ctlcluster restart` does: open transactions rolled back, every
connection closed) while a batch is in flight, left down until the agent has been told to come
back later, and started again. The collector is never restarted: it must answer 503 with a
Retry-After while the database is gone, then reconnect on its own; the agent retries; every
reading is stored once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from collector.errors import StoreUnavailable
from collector.store.database import Database
from tests.agent.kit import spool_stats, start_agent, wait_for
from tests.collector.kit import Pki
from tests.drills.collector_kit import (
    CollectorService,
    PrivatePostgres,
    StoreView,
    assert_each_once,
    delivered,
    enrolled_agent,
    probe_readings,
    quiet,
    scrape,
)
from tests.drills.conftest import Fleet

TOLD_TO_WAIT = "the collector did not take the batch (503 store-unavailable)"
UNAVAILABLE = 'asr_rejections_total{endpoint="readings",reason="store-unavailable"}'


async def test_r2_postgres_restarted_during_ingest_then_each_reading_stored_once(
    tmp_path: Path, pki: Pki, fleet: Fleet, private_postgres: PrivatePostgres
) -> None:
    postgres = private_postgres
    collector = CollectorService(tmp_path / "collector", pki, postgres.url)
    store = StoreView(postgres.url)
    state_dir = tmp_path / "agent-state"
    await collector.start()
    try:
        config = await enrolled_agent(tmp_path, pki, fleet.targets, collector)
        agent = await start_agent(config)
        try:
            await wait_for(lambda: _stored_more_than(store, 20), 60, "batches to flow")
            await wait_for(
                lambda: (s := spool_stats(state_dir)) and s.in_flight,
                30,
                "a batch in flight",
                step=0.002,
            )
            await asyncio.to_thread(postgres.stop, "fast")
            gone = await probe_readings(collector.url, pki)
            await wait_for(lambda: TOLD_TO_WAIT in agent.text(), 30, "the agent to hear a 503")
            await asyncio.to_thread(postgres.start)
            await wait_for(
                lambda: _probe_status(collector.url, pki, 401), 60, "the collector to reconnect"
            )
            since = await store.count("readings")
            await wait_for(
                lambda: _stored_more_than(store, since + 10), 60, "batches to flow again"
            )
            fleet.switch_off()  # no more readings: the spool can empty
            await quiet(agent)
            await wait_for(lambda: delivered(store, state_dir), 60, "the spool to empty")
            metrics = await scrape(collector.url, pki)
        finally:
            assert await agent.stop() == 0, agent.text()
        stored = await store.stored()
        stats = spool_stats(state_dir)
        assert collector.alive() and collector.starts == 1  # it recovered on its own
    finally:
        assert await collector.stop() == 0, collector.logs()
        await store.close()
    assert (gone.status, gone.reason, gone.retry_after) == (503, "store-unavailable", "30")
    # Told to come back later, never an internal error: the database going is not a bug.
    assert "(500 " not in agent.text()
    assert "Error handling request" not in collector.logs()
    assert metrics.get(UNAVAILABLE, 0) >= 1
    assert stats is not None
    assert_each_once(stored, stats)
    print(
        f"{len(stored)} readings stored once each; {metrics[UNAVAILABLE]:.0f} requests answered"
        " 503 while PostgreSQL was down"
    )


async def _stored_more_than(store: StoreView, count: int) -> bool:
    return await store.count("readings") > count


async def _probe_status(url: str, pki: Pki, status: int) -> bool:
    return (await probe_readings(url, pki)).status == status


async def test_a_statement_cut_by_a_postgres_restart_is_store_unavailable(
    private_postgres: PrivatePostgres,
) -> None:
    """The server stopped under a running statement: the store says "unavailable, retry later"
    (the collector's 503), not an unexpected error (its 500), then works again by itself."""
    db = Database.open(private_postgres.url)
    try:
        await db.ping()  # a pooled connection, as a serving collector has

        async def long_statement() -> None:
            async with db.transaction() as conn:
                await conn.execute(text("SELECT pg_sleep(30)"))

        statement = asyncio.create_task(long_statement())
        await wait_for(lambda: _sleeping(private_postgres), 30, "the statement to run", step=0.05)
        await asyncio.to_thread(private_postgres.stop, "fast")
        with pytest.raises(StoreUnavailable):
            await statement
        with pytest.raises(StoreUnavailable):
            await db.ping()
        await asyncio.to_thread(private_postgres.start)
        await db.ping()
    finally:
        await db.close()


async def _sleeping(postgres: PrivatePostgres) -> bool:
    store = StoreView(postgres.admin_url)
    try:
        rows = await store.rows(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
            " AND state = 'active'"
        )
    finally:
        await store.close()
    return bool(rows[0][0])
