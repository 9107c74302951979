"""Drill: the agent's clock is a day off the collector's, ahead or behind.

A real `asr-agent run` runs under Debian's faketime (libfaketime: its wall clock a day off, its
monotonic clock left alone), polls three simulated printers over UDP and pushes to a real
`asr-collector serve` over TLS on the right clock. The collector refuses the agent's first push
(stale timestamp); the agent must learn the offset from that answer, correct every time it sends
by it, deliver every reading once and in order, and say so once; the collector must flag the
agent (log, metric). Replay protection must still hold: the nonce of a corrected request cannot
be used again, and a request signed on the wrong clock is still refused.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from agent.identity import load_key
from agent.profile import Profile
from tests.agent.kit import (
    CollectorSite,
    agent_config,
    free_port,
    spool_seqs,
    spool_stats,
    started_collector,
    wait_for,
)
from tests.collector.kit import Pki
from tests.drills.agent_kit import (
    FAST,
    agent_metrics,
    collector_metrics,
    enroll,
    make_pki,
    printers,
    start_agent,
    status,
    status_text,
    utcnow,
)
from wire.signing import sign

NAMES = ["mono-1", "colour-2", "colour-3"]
DAY = 86_400
# How far a corrected time may be from the collector's: the Date header's whole seconds, and
# the processes' start-up on a busy machine.
SLACK = timedelta(seconds=5)


def _at(text: str) -> datetime:
    """A time as the collector's SQLite stores it (naive UTC text)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("faked", "offset"), [("+1d", -DAY), ("-1d", DAY)], ids=["ahead", "behind"]
)
async def test_drill_agent_clock_a_day_off(
    tmp_path: Path, profile: Profile, faked: str, offset: int
) -> None:
    pki = make_pki(tmp_path / "pki", timedelta(days=3))  # still valid on a clock a day off
    state_dir = tmp_path / "agent-state"
    metrics_address = f"127.0.0.1:{free_port()}"
    collector = await started_collector(tmp_path / "collector", pki)
    try:
        async with printers(profile, NAMES) as fleet:
            config = agent_config(
                tmp_path / "agent.toml",
                collector.url,
                fleet.targets,
                ca_file=pki.ca_cert,
                schedule=FAST,
            )
            config.write_text(
                config.read_text().replace(
                    "[agent]\n", f'[agent]\nmetrics_address = "{metrics_address}"\n', 1
                )
            )
            await enroll(config, collector, clock_offset=faked)
            agent_id = json.loads((state_dir / "identity.json").read_text())["agent_id"]
            started = utcnow()
            agent = await start_agent(config, clock_offset=faked)
            try:
                # Several pushes go through, each after the first on the corrected clock.
                await wait_for(
                    lambda: len(collector.query("SELECT id FROM batches")) >= 3, 30, "pushes"
                )
                shown = await status(config)
                seen = await agent_metrics(metrics_address)
                flagged = await collector_metrics(collector.url, pki)
                text = await status_text(config)
            finally:
                code = await agent.stop()
            ended = utcnow()
            assert code == 0, agent.text()
        probes = await _replay_and_wrong_clock(collector.url, pki, collector, state_dir, offset)
    finally:
        await collector.stop()
    collector_log = collector.state_dir.joinpath("collector.log").read_text()
    agent_log = agent.text()

    # Every reading delivered once, in order, dated on the collector's clock.
    stored = collector.query("SELECT seq, printer, read_at FROM readings ORDER BY seq")
    seqs = [seq for seq, _, _ in stored]
    left = spool_seqs(state_dir)
    stats = spool_stats(state_dir)
    assert stats is not None and len(seqs) >= 3 * len(NAMES)
    assert sorted(seqs + left) == list(range(1, stats.last_seq + 1))
    assert len(seqs) == len(set(seqs)) and (stats.dropped_total, stats.rejected_total) == (0, 0)
    for name in NAMES:  # each printer's readings: in seq order is in time order
        read_at = [_at(at) for _, printer, at in stored if printer == name]
        assert read_at == sorted(read_at) and len(set(read_at)) == len(read_at), name
        assert started - SLACK <= read_at[0] and read_at[-1] <= ended + SLACK, (started, read_at)
    for sent_at, headers, body in collector.query("SELECT sent_at, headers, body FROM batches"):
        signed = datetime.fromtimestamp(int(json.loads(headers)["X-ASR-Timestamp"]), timezone.utc)
        assert started - SLACK <= signed <= ended + SLACK
        assert started - SLACK <= _at(sent_at) <= ended + SLACK
        beat = json.loads(body)["heartbeat"]
        assert abs(beat["clock_offset_seconds"] - offset) <= SLACK.total_seconds()

    # One refusal taught the agent; it said so once, and says it in its status and metrics.
    rejections = flagged[
        ("asr_rejections_total", (("endpoint", "readings"), ("reason", "stale-timestamp")))
    ]
    assert rejections == 1
    side = "ahead of" if offset < 0 else "behind"
    said = re.findall(rf"this box's clock is (\d+) s {side} the collector's", agent_log)
    assert len(said) == 1 and abs(int(said[0]) - DAY) <= SLACK.total_seconds(), agent_log
    assert abs(shown["clock_offset_seconds"] - offset) <= SLACK.total_seconds()
    assert shown["last_push_error"] is None
    assert re.search(rf"clock      \d+ s {side} the collector's", text), text
    assert abs(seen["asr_agent_clock_offset_seconds"] - offset) <= SLACK.total_seconds()

    # The collector flags the agent: a warning naming it, once, and a gauge per agent.
    warning = rf"agent {agent_id}: its clock is \d+ s {side} the collector's"
    assert len(re.findall(warning, collector_log)) == 1, collector_log
    # The refusals name it too: the agent's first push, then the probe on its wrong clock.
    assert collector_log.count(f"agent {agent_id}: timestamp is") == 2, collector_log
    gauge = flagged[("asr_agent_clock_offset_seconds", (("agent", agent_id),))]
    assert abs(gauge - offset) <= SLACK.total_seconds()

    # Replay protection holds: the agent's last request sent again as it was is a replay, and
    # one its key signs on its wrong clock is stale.
    assert probes == [(409, "replayed-nonce"), (401, "stale-timestamp")]


async def _replay_and_wrong_clock(
    url: str, pki: Pki, collector: CollectorSite, state_dir: Path, offset: int
) -> list[tuple[int, str]]:
    """The collector's answers to the agent's last request sent again as it was, and to the
    same body signed by the agent's key on the agent's wrong clock."""
    (headers, body) = collector.query("SELECT headers, body FROM batches ORDER BY id DESC")[0]
    wrong_clock = sign(load_key(state_dir), body, utcnow() - timedelta(seconds=offset))
    answers = []
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        for sent in (json.loads(headers), wrong_clock):
            async with http.post(
                f"{url}/api/v1/readings",
                data=body,
                headers={**sent, "Content-Type": "application/json"},
            ) as answer:
                answers.append((answer.status, str((await answer.json())["reason"])))
    return answers
