"""Drill: the collector killed (kill -9) while an agent's batches flow into it, and started again
on the same database and port, on SQLite and on PostgreSQL (R2: readings are delivered late,
never lost, never stored twice).

The real processes on 127.0.0.1: `asr-agent run` polling simulated printers (sim.responder)
and pushing to `asr-collector serve` over TLS (the test CA). Each kill lands while the agent
has a batch in flight: the collector may die before, during or after the batch's transaction,
and the agent either hears nothing (it sends the batch again) or nothing at all goes through.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.agent.kit import spool_stats, start_agent, wait_for
from tests.collector.kit import Pki
from tests.drills.collector_kit import (
    CollectorService,
    StoreView,
    assert_each_once,
    delivered,
    enrolled_agent,
    quiet,
    scrape,
)
from tests.drills.conftest import Fleet

KILLS = 2
DUPLICATES = 'asr_ingest_readings_total{status="duplicate"}'


async def test_r2_collector_killed_during_ingest_then_each_reading_stored_once(
    database_url: str | None, tmp_path: Path, pki: Pki, fleet: Fleet
) -> None:
    collector = CollectorService(tmp_path / "collector", pki, database_url)
    store = StoreView(collector.db_url)
    state_dir = tmp_path / "agent-state"
    in_flight_at_kill: list[int] = []
    duplicates = 0.0  # readings the restarted collectors answered as stored already
    await collector.start()
    try:
        config = await enrolled_agent(tmp_path, pki, fleet.targets, collector)
        agent = await start_agent(config)
        try:
            for _ in range(KILLS):
                since = await store.count("readings")
                flowing = partial(_more_than, store, since + 10)
                await wait_for(flowing, 60, "batches to flow (again)")
                duplicates += (await scrape(collector.url, pki)).get(DUPLICATES, 0)
                flying = await wait_for(
                    lambda: (s := spool_stats(state_dir)) and s.in_flight,
                    30,
                    "a batch in flight",
                    step=0.002,
                )
                await collector.kill()
                in_flight_at_kill.append(flying)
                await collector.start()  # the same port and database
            fleet.switch_off()  # no more readings: the spool can empty
            await quiet(agent)
            await wait_for(lambda: delivered(store, state_dir), 60, "the spool to empty")
            duplicates += (await scrape(collector.url, pki)).get(DUPLICATES, 0)
        finally:
            assert await agent.stop() == 0, agent.text()
        stored = await store.stored()
        stats = spool_stats(state_dir)
    finally:
        assert await collector.stop() == 0, collector.logs()
        await store.close()
    assert len(in_flight_at_kill) == KILLS and all(in_flight_at_kill)
    assert stats is not None
    assert_each_once(stored, stats)
    assert "push failed, readings kept" in agent.text()  # the agent did see the collector go
    print(
        f"{collector.starts - 1} kills, {len(stored)} readings stored once each,"
        f" {duplicates:.0f} answered as duplicates after a restart"
    )


async def _more_than(store: StoreView, count: int) -> bool:
    return await store.count("readings") > count
