"""The poll round (agent/work.py) over real UDP to our simulator: readings spooled with their
seqs in one go, and each printer's last answer kept in state.json, so a printer in power-save
is still `asleep` (not `unreachable`) after the agent restarts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from agent.delivery import Deliverer
from agent.metrics import AgentMetrics
from agent.poller import ANSWERING, ASLEEP, Poller, PrinterSpec, SnmpClients
from agent.profile import Profile
from agent.push import Answer
from agent.snmp.session import Credentials, Target
from agent.spool import Spool
from agent.state import STATE_FILE, AgentState, load_state
from agent.work import AgentWork, address
from sim.responder import Faults
from tests.agent.conftest import Fleet
from tests.agent.kit import fill, tmpfs


class Unused:
    """A sender and key source the poll round must not touch."""

    async def send_readings(self, body: bytes, headers: object) -> Answer:
        raise AssertionError("a poll round sends nothing")

    def current(self) -> object:
        raise AssertionError("a poll round signs nothing")

    def finish_rotation(self) -> bool:
        raise AssertionError("a poll round signs nothing")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _specs(fleet: Fleet) -> list[PrinterSpec]:
    return [
        PrinterSpec(name, Target("127.0.0.1", fleet.port, timeout=0.2, retries=1),
                    Credentials(community=name))
        for name in fleet.printers
    ]  # fmt: skip


async def _round(
    profile: Profile, fleet: Fleet, state_dir: Path, metrics: AgentMetrics | None = None
) -> AgentWork:
    state_path = state_dir / STATE_FILE
    async with SnmpClients() as clients:
        with Spool.open(state_dir / "spool.db", cap_rows=100) as spool:
            unused = Unused()
            deliverer = Deliverer(spool, unused, "agent", unused, 10, 10**6, _now)
            work = AgentWork(
                _specs(fleet),
                Poller(profile, clients),
                spool,
                deliverer,
                load_state(state_path),
                state_path,
                _now,
                metrics,
            )
            await work.poll()
            return work


async def test_a_poll_round_spools_every_answer_in_one_go(
    tmp_path: Path, profile: Profile, fleet: Fleet
) -> None:
    work = await _round(profile, fleet, tmp_path)
    with Spool.open(tmp_path / "spool.db", cap_rows=100) as spool:
        taken = spool.take(10, 10**6)
    assert taken is not None
    assert [(r.seq, r.printer, r.address) for r in taken.readings] == [
        (n + 1, name, f"127.0.0.1:{fleet.port}") for n, name in enumerate(fleet.printers)
    ]
    assert all(r.reading.serial for r in taken.readings)
    assert work.state.counts(fleet.printers).answering == 3
    assert work.state.last_poll_at is not None


async def test_r2_a_printer_asleep_stays_asleep_across_a_restart(
    tmp_path: Path, profile: Profile, fleet: Fleet
) -> None:
    await _round(profile, fleet, tmp_path)
    saved = load_state(tmp_path / STATE_FILE)
    name = next(iter(fleet.printers))
    assert saved.printers[name].state == ANSWERING
    assert saved.printers[name].last_answered is not None
    fleet.printers[name].faults = Faults(asleep=True)  # power-save, or switched off tonight
    work = await _round(profile, fleet, tmp_path)  # a new process: memory from state.json only
    assert work.state.printers[name].state == ASLEEP
    assert work.state.printers[name].last_answered == saved.printers[name].last_answered
    assert work.state.counts(fleet.printers).to_dict()["asleep"] == 1


def test_an_unreadable_state_file_is_an_empty_state(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    assert load_state(tmp_path / STATE_FILE) == AgentState()


def test_an_ipv6_printer_address_is_bracketed() -> None:
    spec = PrinterSpec("v6", Target("2001:db8::1", 161), Credentials())
    assert address(spec) == "[2001:db8::1]:161"


async def test_the_metrics_show_the_printers_states_and_the_spool(
    tmp_path: Path, profile: Profile, fleet: Fleet
) -> None:
    metrics = AgentMetrics()
    server = metrics.serve("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        await _round(profile, fleet, tmp_path, metrics)
        name = next(iter(fleet.printers))
        fleet.printers[name].faults = Faults(asleep=True)
        await _round(profile, fleet, tmp_path, metrics)
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            text = await response.text()
    finally:
        server.shutdown()
    assert 'asr_agent_printers{state="answering"} 2.0' in text
    assert 'asr_agent_printers{state="asleep"} 1.0' in text
    assert "asr_agent_polls_total 2.0" in text
    assert "asr_agent_readings_spooled_total 5.0" in text  # 3, then 2 (one asleep)
    assert "asr_agent_spool_depth 5.0" in text
    assert "asr_agent_spool_dropped 0.0" in text
    assert "asr_agent_last_poll_timestamp_seconds" in text


def test_a_state_file_of_an_older_agent_still_reads(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(
        '{"printers": {"p": {"state": "faulty", "last_answered": null}},'
        ' "last_poll_at": null, "last_push_at": null, "last_push_ok_at": null,'
        ' "last_push_error": null}'
    )
    state = load_state(tmp_path / STATE_FILE)
    assert (state.printers["p"].state, state.printers["p"].error) == ("faulty", None)
    assert state.clock_offset_seconds is None


async def test_a_printer_that_breaks_the_mib_is_remembered_with_what_is_wrong(
    tmp_path: Path, profile: Profile, fleet: Fleet
) -> None:
    bad, good = list(fleet.printers)[:2]
    fleet.printers[bad].faults = Faults(out_of_range=True)
    await _round(profile, fleet, tmp_path)
    saved = load_state(tmp_path / STATE_FILE)
    assert saved.printers[bad].state == ANSWERING  # answering still: its reading is kept
    assert "negative and not a known special value" in (saved.printers[bad].error or "")
    assert saved.printers[good].error is None


async def test_a_full_disk_drops_and_counts_and_keeps_the_state_in_memory(
    tmp_path: Path, profile: Profile, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = AgentMetrics()
    with (
        tmpfs(tmp_path / "disk", "2m") as disk,
        Spool.open(disk / "spool.db", cap_rows=100) as spool,
    ):
        async with SnmpClients() as clients:
            unused = Unused()
            state_path = disk / STATE_FILE
            work = AgentWork(
                _specs(fleet),
                Poller(profile, clients),
                spool,
                Deliverer(spool, unused, "agent", unused, 10, 10**6, _now),
                AgentState(),
                state_path,
                _now,
                metrics,
            )
            await work.poll()
            saved = load_state(state_path)
            filler, _ = fill(disk)
            await work.poll()  # a round that stores nothing: dropped, counted, logged
            await work.poll()
            assert work.state.last_poll_at != saved.last_poll_at  # kept in memory
            assert load_state(state_path) == saved  # state.json could not be written
            text = metrics.exposition().decode()
            assert "asr_agent_spool_dropped 6.0" in text
            assert "asr_agent_spool_disk_full 1.0" in text
            assert caplog.text.count("the spool's disk is full: 3 readings not stored") == 1
            assert caplog.text.count("the state is kept in memory") == 1
            filler.unlink()
            await work.poll()
            assert "the spool's disk has room again: readings are spooled; 6 were" in caplog.text
            assert load_state(state_path) == work.state
        stats = spool.stats()
    assert (stats.last_seq, stats.dropped_total, stats.disk_full) == (6, 6, False)
