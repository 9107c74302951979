"""Drill: printers answering garbage next to printers that are fine.

A real `asr-agent run` polls seven simulated printers on one UDP port of 127.0.0.1 and pushes to
a real `asr-collector serve` over TLS. Two are fine. The others answer bytes that are not BER, the
first half of each message, under a request-id never sent, values of the wrong type (strings for
numbers, numbers for strings: no serial number left), or numbers out of every range the MIB
allows (negative levels and capacities that are no special value, enumerations that do not
exist). The agent must keep running, say which printer is wrong and how (status, log), deliver
the good printers' readings, and let nothing malformed into the collector's store.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

from agent.profile import Profile
from agent.snmp import ber
from sim.responder import Faults
from tests.agent.kit import agent_config, spool_stats, started_collector, wait_for
from tests.drills.agent_kit import enroll, make_pki, printers, start_agent, status, status_text

GOOD = ["good-1", "good-2"]
BROKEN = {
    "garbled": Faults(garbage=True),
    "cut": Faults(truncated=True),
    "stray": Faults(wrong_request_id=True),
}
ODD = {
    "mistyped": Faults(wrong_types=True),
    "negative": Faults(out_of_range=True),
}
# What each printer's status says is wrong with it.
DIAGNOSIS = {
    "garbled": "answered with malformed SNMP",
    "cut": "answered with malformed SNMP",
    "stray": "never asked",
    "mistyped": "prtGeneralSerialNumber: expected an OCTET STRING, got int",
    "negative": "is negative and not a known special value",
}
# What the log's one line about each odd printer shows first (at most six problems per line).
LOGGED = {"mistyped": "expected an INTEGER", "negative": "is not in the MIB's enumeration"}
SCHEDULE = {
    "poll_interval_seconds": 1,
    "poll_jitter_seconds": 0,
    "push_interval_seconds": 1,
    "push_jitter_seconds": 0,
    "backoff_base_seconds": 0.2,
    "backoff_max_seconds": 1,
}


async def test_drill_printers_answering_garbage(tmp_path: Path, profile: Profile) -> None:
    pki = make_pki(tmp_path / "pki", timedelta(days=1))
    state_dir = tmp_path / "agent-state"
    collector = await started_collector(tmp_path / "collector", pki)
    names = [*GOOD, *BROKEN, *ODD]
    try:
        async with printers(profile, names, {**BROKEN, **ODD}) as fleet:
            config = agent_config(
                tmp_path / "agent.toml",
                collector.url,
                fleet.targets,
                ca_file=pki.ca_cert,
                schedule=SCHEDULE,
            )
            # A broken printer is told from a sleeping one after its tries: keep them short.
            config.write_text(
                config.read_text().replace(
                    "timeout = 1.0\nretries = 2", "timeout = 0.3\nretries = 1"
                )
            )
            await enroll(config, collector)
            agent = await start_agent(config)
            try:

                def served(name: str) -> int:
                    rows = collector.query("SELECT COUNT(*) FROM readings WHERE printer = ?", name)
                    return int(rows[0][0])

                await wait_for(
                    lambda: all(served(n) >= 3 for n in [*GOOD, "negative"]), 30, "deliveries"
                )
                await wait_for(
                    lambda: (s := spool_stats(state_dir)) and s.rejected_total >= 2,
                    30,
                    "the mistyped printer's readings refused by the collector",
                )
                shown = await status(config)
                text = await status_text(config)
                assert agent.proc.returncode is None, agent.text()
            finally:
                code = await agent.stop()
            assert code == 0, agent.text()
            log = agent.text()
            stats = spool_stats(state_dir)
            assert stats is not None
            answered = {name: p.answered[ber.GET] for name, p in fleet.printers.items()}
            serials = {name: fleet.serial(name) for name in names}
            port = fleet.port
    finally:
        await collector.stop()

    # The agent says which printer is wrong, and how: in its status...
    states = {name: p["state"] for name, p in shown["printers"].items()}
    assert states == {
        **dict.fromkeys(GOOD, "answering"),
        **dict.fromkeys(BROKEN, "faulty"),
        **dict.fromkeys(ODD, "answering"),
    }
    for name in GOOD:
        assert shown["printers"][name]["error"] is None
    for name, diagnosis in DIAGNOSIS.items():
        assert diagnosis in shown["printers"][name]["error"], (name, shown["printers"][name])
        assert re.search(rf"  {name}: \w+, last answered .*{re.escape(diagnosis)}", text), text
    # ... and in its log, once, naming the printer and its address; never a good printer.
    for name in BROKEN:
        lines = [
            line for line in log.splitlines() if f"{name} (127.0.0.1:{port}) is faulty" in line
        ]
        assert len(lines) == 1 and DIAGNOSIS[name] in lines[0], (name, log)
    for name in ODD:
        wrong = f"{name} (127.0.0.1:{port}) answers values that break the Printer-MIB"
        lines = [line for line in log.splitlines() if wrong in line]
        assert len(lines) == 1 and LOGGED[name] in lines[0], (name, log)
    for name in GOOD:
        assert not re.search(rf"{name} \(127.0.0.1:{port}\) (is|answers values)", log), log
    assert "Traceback" not in log, log

    # The good printers' readings are all delivered or waiting in the spool, each once.
    stored = collector.query("SELECT seq, printer, serial, payload FROM readings ORDER BY seq")
    seqs = [row[0] for row in stored]
    assert len(seqs) == len(set(seqs))
    sent: dict[int, str] = {}
    for (body,) in collector.query("SELECT body FROM batches"):
        for item in json.loads(body)["readings"]:
            sent[item["seq"]] = item["printer"]
    waiting = _spooled(state_dir)
    assert not set(waiting) & set(sent)
    for name in GOOD:  # every read of a good printer (one GET each) is a reading, stored once
        mine = [row for row in stored if row[1] == name]
        assert {row[2] for row in mine} == {serials[name]}
        assert answered[name] == len(mine) + list(waiting.values()).count(name)
    # Nothing of the broken printers reached the spool; the mistyped one's readings (no serial
    # number) were refused by the collector (R3) and counted, not stored.
    assert not {row[1] for row in stored} & {*BROKEN, "mistyped"}
    refused = sorted(seq for seq, printer in sent.items() if printer == "mistyped")
    assert len(refused) == stats.rejected_total >= 2
    assert not set(refused) & set(seqs)
    # What was stored of the negative one: every odd value null, never a made-up number.
    for _, printer, _, payload in stored:
        for supply in json.loads(payload)["supplies"]:
            if printer == "negative":
                assert supply["percent"] is None and supply["quality"] == "unknown", supply
                assert supply["grams_left"] is None and supply["grams_used"] is None, supply
                assert any("negative and not a known special value" in n for n in supply["notes"])
    bounds = collector.query(
        "SELECT COUNT(*) FROM supplies WHERE percent < 0 OR percent > 100"
        " OR grams_left < 0 OR grams_used < 0"
    )
    assert bounds == [(0,)]
    beat = collector.query(
        "SELECT answering, faulty FROM heartbeats ORDER BY batch_pk DESC LIMIT 1"
    )
    assert beat == [(len(GOOD) + len(ODD), len(BROKEN))]


def _spooled(state_dir: Path) -> dict[int, str]:
    """The readings still in the agent's spool: seq -> printer."""
    conn = sqlite3.connect((state_dir / "spool.db").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT seq, printer FROM readings").fetchall())
    finally:
        conn.close()
