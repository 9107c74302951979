"""The real `asr-agent run` process pushing to the real `asr-collector serve` process over TLS
(a test CA, the agent verifying against it), printers served by our simulator, all on
127.0.0.1. kill -9 between poll and push and in the middle of a push, a collector down for a
simulated week, a pinned certificate that does not match (R2: signed, at least daily, never
lost, delivered late rather than dropped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.tls import fingerprint
from tests.agent.conftest import Fleet
from tests.agent.kit import (
    CollectorSite,
    LosingProxy,
    agent_config,
    collector_site,
    free_port,
    run,
    spool_seqs,
    spool_stats,
    start_agent,
    wait_for,
)
from tests.collector.kit import Pki

# Seconds instead of hours: polls every 0.3 s; after the push at start, no other push for an
# hour unless a test says so; failed pushes retried within a second.
FAST = {
    "poll_interval_seconds": 0.3,
    "poll_jitter_seconds": 0,
    "push_interval_seconds": 3600,
    "push_jitter_seconds": 0,
    "backoff_base_seconds": 0.2,
    "backoff_max_seconds": 1,
}
PRINTERS = 3  # the fleet fixture's


def _config(
    tmp_path: Path, pki: Pki, fleet: Fleet, url: str, pin: str | None = None, **schedule: Any
) -> Path:
    return agent_config(
        tmp_path / "agent.toml",
        url,
        fleet.targets,
        ca_file=pki.ca_cert,
        pin=pin,
        schedule={**FAST, **schedule},
        spool={"batch_size": 50},
    )


async def _enroll(config: Path, site: CollectorSite) -> None:
    token = await site.token()
    done = await run("agent.cli", "enroll", "--config", str(config), "--token", token)
    assert done.code == 0, done.stderr


async def _status(config: Path) -> dict[str, Any]:
    done = await run("agent.cli", "status", "--config", str(config), "--json")
    assert done.code == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def _assert_each_once_in_order(site: CollectorSite, state_dir: Path) -> list[int]:
    """The store holds seqs 1..n once each, stored in seq order; the spool holds the rest."""
    stored = site.stored_seqs()
    assert stored == list(range(1, len(stored) + 1)), stored
    assert site.query("SELECT COUNT(*), COUNT(DISTINCT seq) FROM readings")[0] == (len(stored),) * 2
    left = spool_seqs(state_dir)
    stats = spool_stats(state_dir)
    assert stats is not None
    assert sorted(stored + left) == list(range(1, stats.last_seq + 1))  # nothing lost
    assert (stats.dropped_total, stats.rejected_total) == (0, 0)
    return stored


async def test_r2_kill_9_between_poll_and_push_loses_nothing(
    tmp_path: Path, pki: Pki, fleet: Fleet, collector: CollectorSite
) -> None:
    config = _config(tmp_path, pki, fleet, collector.url)
    state_dir = tmp_path / "agent-state"
    await _enroll(config, collector)
    agent = await start_agent(config)
    try:
        # At start: a poll, then a push (never pushed before); then polls only.
        await wait_for(lambda: collector.stored_seqs() == [1, 2, 3], 60, "the push at start")
        spooled = await wait_for(
            lambda: (s := spool_stats(state_dir)) and s.ready >= 3 * PRINTERS and s, 60, "polls"
        )
        second = await start_agent(config, "agent-second.log")  # the state dir is taken
        assert await second.wait() == 2
        assert "another asr-agent run" in second.text()
    finally:
        agent.kill()
        await agent.wait()
    stats = spool_stats(state_dir)
    assert stats is not None and stats.in_flight == 0 and stats.ready >= spooled.ready
    killed_at = stats.last_seq
    # Restart with pushes every second: the spool goes out, nothing twice.
    config = _config(tmp_path, pki, fleet, collector.url, push_interval_seconds=1)
    agent = await start_agent(config, "agent-restarted.log")
    try:
        await wait_for(
            lambda: len(collector.stored_seqs()) >= killed_at, 60, "the spool after restart"
        )
    finally:
        assert await agent.stop() == 0, agent.text()
    stored = _assert_each_once_in_order(collector, state_dir)
    assert len(stored) >= killed_at


async def test_r2_kill_9_during_a_push_then_each_reading_is_stored_once(
    tmp_path: Path, pki: Pki, fleet: Fleet, collector: CollectorSite
) -> None:
    proxy = LosingProxy(pki, collector.url)
    await proxy.start()
    try:
        config = _config(tmp_path, pki, fleet, proxy.url)
        state_dir = tmp_path / "agent-state"
        await _enroll(config, collector)
        proxy.hold = True  # the collector stores the batch, the agent never hears so
        agent = await start_agent(config)
        try:
            await wait_for(lambda: proxy.held, 60, "the push at start to reach the collector")
            stats = spool_stats(state_dir)
            assert stats is not None and stats.in_flight == PRINTERS  # waiting for the answer
        finally:
            agent.kill()
            await agent.wait()
        assert collector.stored_seqs() == [1, 2, 3]
        (lost,) = proxy.held
        assert [r["status"] for r in lost["body"]["results"]] == ["accepted"] * PRINTERS
        proxy.hold = False
        agent = await start_agent(config, "agent-restarted.log")
        try:
            await wait_for(lambda: len(collector.stored_seqs()) >= 2 * PRINTERS, 60, "delivery")
        finally:
            assert await agent.stop() == 0, agent.text()
        _assert_each_once_in_order(collector, state_dir)
        # The lost batch went out again as the same batch: answered as duplicates, stored once.
        batch_id = lost["body"]["batch_id"]
        assert collector.query("SELECT COUNT(*) FROM batches WHERE batch_id = ?", batch_id) == [
            (1,)
        ]
        log = agent.text()
        assert "readings were in flight when the agent stopped: ready again" in log
        assert f"batch {batch_id}: 3 readings, 3 acked, 0 rejected (sent again)" in log
    finally:
        await proxy.close()


async def test_r2_collector_down_for_a_simulated_week_then_everything_in_order(
    tmp_path: Path, pki: Pki, fleet: Fleet
) -> None:
    site = collector_site(tmp_path / "collector", pki, port=free_port())
    await site.start()
    config = _config(
        tmp_path, pki, fleet, site.url, poll_interval_seconds=0.1, push_interval_seconds=1
    )
    state_dir = tmp_path / "agent-state"
    try:
        await _enroll(config, site)
    finally:
        await site.stop()
    week = 7 * 24  # hourly polls in a week, here every 0.1 s
    agent = await start_agent(config)
    try:
        await wait_for(
            lambda: (s := spool_stats(state_dir)) and s.depth >= week * PRINTERS,
            90,
            "a week of polls",
        )
        status = await _status(config)
        assert status["last_push_ok_at"] is None
        assert "cannot connect" in status["last_push_error"]  # refused, again and again
        assert status["spool"]["dropped_total"] == 0
        await site.start()  # back after a week, on the same address
        stats = spool_stats(state_dir)
        assert stats is not None
        await wait_for(
            lambda: len(site.stored_seqs()) >= stats.last_seq, 60, "the week to be delivered"
        )
    finally:
        assert await agent.stop() == 0, agent.text()
        await site.stop()
    stored = _assert_each_once_in_order(site, state_dir)
    assert len(stored) >= week * PRINTERS
    sizes = [row[0] for row in site.query("SELECT reading_count FROM batches ORDER BY id")]
    assert max(sizes) == 50 and len(sizes) >= week * PRINTERS // 50  # bounded batches
    assert site.query("SELECT MAX(dropped_total) FROM heartbeats") == [(0,)]


async def test_pinned_certificate_mismatch_refuses_to_push(
    tmp_path: Path, pki: Pki, fleet: Fleet, collector: CollectorSite
) -> None:
    right = fingerprint(pki.server_cert)
    config = _config(tmp_path, pki, fleet, collector.url, pin=right)
    await _enroll(config, collector)  # pinned to the right certificate: enrolled
    wrong = right[:-2] + ("00" if not right.endswith("00") else "11")
    config = _config(tmp_path, pki, fleet, collector.url, pin=wrong)
    state_dir = tmp_path / "agent-state"
    agent = await start_agent(config)
    try:
        await wait_for(lambda: "is not the pinned" in agent.text(), 60, "the push to be refused")
        await wait_for(lambda: (s := spool_stats(state_dir)) and s.ready >= PRINTERS, 60, "polls")
        status = await _status(config)
    finally:
        assert await agent.stop() == 0, agent.text()
    assert "nothing sent" in status["last_push_error"]
    assert collector.query("SELECT COUNT(*) FROM batches") == [(0,)]
    stats = spool_stats(state_dir)
    assert stats is not None and stats.depth == stats.last_seq  # every reading kept
