"""Drill: the disk of the agent's spool fills up, then has room again.

A real `asr-agent run` keeps its state directory (spool, state file, identity) on a tmpfs of its
own; it polls three simulated printers over UDP and pushes to a real `asr-collector serve` over
TLS. The test fills that disk to the last byte while the agent runs, then frees it. The agent must
keep polling, drop and count what it cannot store (metrics, heartbeat, then `status`), keep what
it had spooled intact, and deliver everything it stored, once each, when there is room again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from agent.profile import Profile
from agent.snmp import ber
from tests.agent.kit import (
    AgentProcess,
    CollectorSite,
    agent_config,
    free_port,
    spool_seqs,
    spool_stats,
    started_collector,
    wait_for,
)
from tests.drills.agent_kit import (
    FAST,
    Printers,
    agent_metrics,
    enroll,
    fill,
    make_pki,
    printers,
    start_agent,
    status,
    status_text,
    tmpfs,
)

NAMES = ["mono-1", "colour-2", "colour-3"]


def _spooled(state_dir: Path) -> dict[int, dict[str, object]]:
    """The readings in the spool now, by seq, as the JSON they were spooled as."""
    uri = (state_dir / "spool.db").resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT seq, reading FROM readings").fetchall()
    finally:
        conn.close()
    return {seq: json.loads(blob) for seq, blob in rows}


def _integrity(state_dir: Path) -> str:
    conn = sqlite3.connect((state_dir / "spool.db").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def test_drill_spool_disk_full_then_room_again(tmp_path: Path, profile: Profile) -> None:
    pki = make_pki(tmp_path / "pki", timedelta(days=1))
    state_dir = tmp_path / "agent-state"  # agent_config's state directory
    metrics_address = f"127.0.0.1:{free_port()}"
    collector = await started_collector(tmp_path / "collector", pki)
    try:
        async with printers(profile, NAMES) as fleet:
            with tmpfs(state_dir, "16m"):
                config = agent_config(
                    tmp_path / "agent.toml",
                    collector.url,
                    fleet.targets,
                    ca_file=pki.ca_cert,
                    schedule=FAST,
                    spool={"batch_size": 50},
                )
                text = config.read_text().replace(
                    "[agent]\n", f'[agent]\nmetrics_address = "{metrics_address}"\n', 1
                )
                config.write_text(text)
                await enroll(config, collector)
                agent = await start_agent(config)
                try:
                    await _drill(agent, config, state_dir, metrics_address, collector)
                finally:
                    code = await agent.stop()
                assert code == 0, agent.text()
                await _check_after(agent.text(), state_dir, collector, fleet)
    finally:
        await collector.stop()


async def _drill(
    agent: AgentProcess,
    config: Path,
    state_dir: Path,
    metrics_address: str,
    collector: CollectorSite,
) -> None:
    p = len(NAMES)
    # Normal life: readings spooled and delivered.
    await wait_for(lambda: len(collector.stored_seqs()) >= 2 * p, 30, "a first delivery")
    before = _spooled(state_dir)  # what is on disk when it fills: it must come out intact
    stored_before = set(collector.stored_seqs())

    filler, size = fill(state_dir)
    full_at = spool_stats(state_dir)
    assert full_at is not None
    # The agent goes on polling: each round's readings are dropped and counted.
    dropped = await wait_for(
        _metric_at_least(metrics_address, "asr_agent_spool_dropped", 5 * p),
        30,
        "readings dropped on the full disk",
    )
    assert agent.proc.returncode is None, agent.text()
    metrics = await agent_metrics(metrics_address)
    assert metrics["asr_agent_spool_disk_full"] == 1
    assert metrics["asr_agent_polls_total"] >= 5
    # The collector hears of the drops while the disk is still full (bare heartbeats).
    await wait_for(
        lambda: (collector.query("SELECT MAX(dropped_total) FROM heartbeats")[0][0] or 0) > 0,
        30,
        "a heartbeat counting drops",
    )
    during = await status(config)  # status still answers: it reads, it writes nothing
    assert during["spool"]["last_seq"] == full_at.last_seq  # nothing stored meanwhile
    assert dropped >= 5 * p

    filler.unlink()  # room again
    await wait_for(
        _metric_equals(metrics_address, "asr_agent_spool_disk_full", 0), 30, "room again"
    )
    after = await wait_for(
        lambda: (s := spool_stats(state_dir)) and s.last_seq >= full_at.last_seq + 2 * p and s,
        30,
        "new readings spooled",
    )
    await wait_for(
        lambda: len(collector.stored_seqs()) >= after.last_seq, 30, "delivery of the backlog"
    )
    # The drops are in the spool's file now: `status`, a process of its own, sees them.
    shown = await status(config)
    assert shown["spool"]["dropped_total"] == after.dropped_total > 0
    assert f"dropped {after.dropped_total}," in await status_text(config)
    # Every reading on disk when it filled was delivered, exactly as spooled.
    payloads = dict(collector.query("SELECT seq, payload FROM readings"))
    for seq, reading in before.items():
        assert json.loads(payloads[seq]) == reading, seq
    assert stored_before <= set(payloads)
    assert size > 0


def _metric_at_least(
    address: str, name: str, least: float
) -> Callable[[], Awaitable[float | None]]:
    async def check() -> float | None:
        value = (await agent_metrics(address)).get(name, 0.0)
        return value if value >= least else None

    return check


def _metric_equals(address: str, name: str, wanted: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await agent_metrics(address)).get(name) == wanted

    return check


async def _check_after(
    log: str, state_dir: Path, collector: CollectorSite, fleet: Printers
) -> None:
    stats = spool_stats(state_dir)
    assert stats is not None
    stored = collector.stored_seqs()
    left = spool_seqs(state_dir)
    # Everything stored was delivered once, in order; what is left waits for the next push.
    assert stored == sorted(stored) and len(stored) == len(set(stored))
    assert not set(stored) & set(left)
    assert sorted(stored + left) == list(range(1, stats.last_seq + 1))
    assert stats.rejected_total == 0
    # The drop count is exactly the readings read and not stored: each read ends with one GET
    # (agent.reader), which the printers count (a re-send of it counts once).
    reads = sum(p.answered[ber.GET] for p in fleet.printers.values())
    assert reads == stats.last_seq + stats.dropped_total, (reads, stats)
    heartbeats = collector.query("SELECT MAX(dropped_total) FROM heartbeats")[0][0]
    assert heartbeats == stats.dropped_total
    assert _integrity(state_dir) == "ok"
    # Said once when it started and once when it ended, not at every round; no traceback.
    assert log.count("the spool's disk is full") == 1, log
    assert log.count("the spool's disk has room again") == 1, log
    assert f"{stats.dropped_total} were dropped while it was full" in log
    assert "Traceback" not in log, log
