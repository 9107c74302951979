"""Drill: a printer whose supply description holds a NUL byte, next to a healthy one.

The real processes on 127.0.0.1: `asr-agent run` (the FLOWING schedule) polls two printers
simulated by sim/responder.py over UDP and pushes to `asr-collector serve` over TLS, which
stores into PostgreSQL. One printer answers `Black\\0Toner` for its first supply's description
(prtMarkerSuppliesDescription) and a level past Integer32. PostgreSQL's JSONB refuses a NUL, so
a reading carrying one must never reach the store, nor block the readings behind it.

The agent's boundary: it cuts the printer's text to the wire's bounds (wire.reading.
bound_reading) and says so in the reading's notes; every reading of both printers is stored
once and the spool empties. The collector's boundary: a batch signed with the agent's key
holding one healthy reading and one with a NUL is answered 200, the healthy one `accepted`,
the other `rejected` naming its field, kept in the quarantine and counted in the metrics.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.identity import load_key
from agent.profile import Profile
from agent.snmp import ber
from agent.snmp.ber import Typed
from sim.fleet import supply_oid
from sim.responder import Faults
from tests.agent.kit import start_agent, wait_for
from tests.collector.kit import Pki
from tests.drills.agent_kit import printers
from tests.drills.collector_kit import (
    CollectorService,
    StoreView,
    assert_each_once,
    delivered,
    enrolled_agent,
    quiet,
    scrape,
)
from wire.batch import iso_utc
from wire.signing import sign

HEALTHY, POISONED = "healthy", "poisoned"
NUL_TEXT = b"Black\x00Toner"
HUGE_LEVEL = 2**40  # a BER INTEGER past Integer32: no supplies.level column holds it
CLEANED = "BlackToner"
NOTE = "supplies[0].description: NUL characters removed"
QUARANTINED = 'asr_readings_quarantined_total{kind="invalid"}'
FIELD = "readings[1].reading.supplies[0].description"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_nul_in_a_printers_text_blocks_nothing_and_is_quarantined_at_the_collector(
    tmp_path: Path, pki: Pki, profile: Profile, database_url: str
) -> None:
    started = time.monotonic()
    collector = CollectorService(tmp_path / "collector", pki, database_url)
    store = StoreView(database_url)
    state_dir = tmp_path / "agent-state"
    await collector.start()
    try:
        async with printers(profile, [HEALTHY, POISONED]) as fleet:
            poisoned = fleet.printers[POISONED].data
            poisoned.set(supply_oid(profile, "description", 1), Typed(ber.OCTET_STRING, NUL_TEXT))
            poisoned.set(supply_oid(profile, "level", 1), Typed(ber.INTEGER, HUGE_LEVEL))
            config = await enrolled_agent(tmp_path, pki, fleet.targets, collector)
            agent = await start_agent(config)
            try:
                await wait_for(
                    lambda: _each_stored(store, {HEALTHY: 10, POISONED: 10}),
                    30,
                    "readings of both printers to be stored",
                )
                for printer in fleet.printers.values():  # no more readings: the spool can empty
                    printer.faults = Faults(asleep=True)
                await quiet(agent)
                stats = await wait_for(lambda: delivered(store, state_dir), 30, "an empty spool")
                assert agent.proc.returncode is None, agent.text()
            finally:
                assert await agent.stop() == 0, agent.text()
            answered = fleet.printers[HEALTHY].answered[ber.GET]
            serials = {name: fleet.serial(name) for name in (HEALTHY, POISONED)}
        stored = await store.stored()
        payloads = await store.rows("SELECT printer, serial, payload FROM readings ORDER BY id")
        quarantined_by_agent = await store.count("quarantine")

        # The collector's own boundary: a batch with a NUL, signed by the agent's key.
        last_seq = stats.last_seq
        status, answer = await _post_poison(collector.url, pki, state_dir, store, last_seq)
        quarantined = await store.rows("SELECT seq, kind, field, reason, printer FROM quarantine")
        direct = await store.rows(
            "SELECT seq, printer, payload FROM readings WHERE seq > :seq", seq=last_seq
        )
        metrics = await scrape(collector.url, pki)
    finally:
        assert await collector.stop() == 0, collector.logs()
        await store.close()
    elapsed = time.monotonic() - started

    # Every reading the agent spooled, of both printers, is stored once; nothing refused.
    assert_each_once(stored, stats)
    assert quarantined_by_agent == 0
    by_printer = {name: [p for n, _, p in payloads if n == name] for name in serials}
    assert {(n, s) for n, s, _ in payloads} == set(serials.items())
    # Every read of the healthy printer (one GET each) is stored: the one read cut short by
    # the switch-off at most excepted (a GET answered, its supplies' walk never).
    assert 0 <= answered - len(by_printer[HEALTHY]) <= 1, (answered, len(by_printer[HEALTHY]))
    for payload in by_printer[HEALTHY]:
        assert not any("NUL" in note for note in _payload(payload)["notes"])
    # The poisoned printer's readings: the NUL removed and said so, the huge level dropped.
    for payload in by_printer[POISONED]:
        reading = _payload(payload)
        supply = reading["supplies"][0]
        assert supply["description"] == CLEANED, supply
        assert supply["level"] is None and supply["percent"] is None, supply
        assert NOTE in reading["notes"], reading["notes"]

    # The collector: 200, the healthy reading accepted, the one with a NUL rejected by field.
    assert status == 200, answer
    fates = {r["seq"]: (r["status"], r.get("error", "")) for r in answer["results"]}
    assert fates[last_seq + 1] == ("accepted", ""), fates
    assert fates[last_seq + 2][0] == "rejected", fates
    assert fates[last_seq + 2][1].startswith(f"{FIELD}: holds a NUL character"), fates
    assert [(seq, printer) for seq, printer, _ in direct] == [(last_seq + 1, HEALTHY)]
    assert [(q[0], q[1], q[4]) for q in quarantined] == [(last_seq + 2, "invalid", HEALTHY)]
    assert quarantined[0][2] == FIELD and "NUL" in quarantined[0][3], quarantined
    assert metrics.get(QUARANTINED) == 1, {k: v for k, v in metrics.items() if "quarant" in k}
    log = collector.logs()
    assert "Traceback" not in log and "Error handling request" not in log, log
    assert "Traceback" not in agent.text()
    print(
        f"{len(by_printer[HEALTHY])} healthy and {len(by_printer[POISONED])} cleaned readings"
        f" stored once each, spool depth {stats.depth}; direct batch: 1 accepted, "
        f"{len(quarantined)} quarantined ({QUARANTINED} = {metrics.get(QUARANTINED):.0f});"
        f" {elapsed:.1f} s"
    )


def _payload(value: Any) -> dict[str, Any]:
    """A readings.payload as a dict (JSONB comes back decoded, JSON text may not)."""
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)


async def _each_stored(store: StoreView, least: dict[str, int]) -> bool:
    """Whether the store holds at least `least[printer]` readings of each printer."""
    rows = dict(await store.rows("SELECT printer, COUNT(*) FROM readings GROUP BY printer"))
    return all(rows.get(name, 0) >= count for name, count in least.items())


async def _post_poison(
    url: str, pki: Pki, state_dir: Path, store: StoreView, last_seq: int
) -> tuple[int, dict[str, Any]]:
    """POST, signed with the agent's key, a batch of two copies of a healthy reading the agent
    sent (seqs after its last), the second's first supply description holding a NUL."""
    bodies = [row[0] for row in await store.rows("SELECT body FROM batches ORDER BY id DESC")]
    sent = [json.loads(bytes(body)) for body in bodies]
    doc = next(d for d in sent if any(r["printer"] == HEALTHY for r in d["readings"]))
    good = next(r for r in doc["readings"] if r["printer"] == HEALTHY)
    now = datetime.now(timezone.utc)
    items = []
    for offset in (1, 2):
        item = json.loads(json.dumps(good))
        item["seq"] = last_seq + offset
        item["read_at"] = iso_utc(now)
        items.append(item)
    items[1]["reading"]["supplies"][0]["description"] = NUL_TEXT.decode()
    doc.update(batch_id=str(uuid.uuid4()), sent_at=iso_utc(now), readings=items)
    body = json.dumps(doc).encode()  # the NUL goes as \u0000, as JSON allows
    assert b"\\u0000" in body
    headers = sign(load_key(state_dir), body, now)
    headers["Content-Type"] = "application/json"
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(url + "/api/v1/readings", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()
