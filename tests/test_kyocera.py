"""Kyocera and UTAX (R3): the serial, the device's identity, from Kyocera's private MIB when
prtGeneralSerialNumber is empty; read over real UDP from our own responder (sim.responder)
serving synthetic devices from tests/data."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.poller import ANSWERING, Poller, PrinterSpec, SnmpClients
from agent.profile import Profile
from agent.snmp.session import Credentials, Target
from sim.responder import Responder, SimPrinter
from sim.snmprec import load_snmprec
from wire.reading import PrinterReading

DATA = Path(__file__).resolve().parent / "data"
KYOCERA_SERIAL = "Kyocera:1.3.6.1.4.1.1347.43.5.1.1.28.1"


@pytest.fixture
async def port() -> AsyncIterator[int]:
    printers = {p.stem: SimPrinter(load_snmprec(p)) for p in DATA.glob("*.snmprec")}
    async with Responder(printers) as bound:
        yield bound


async def _poll(profile: Profile, port: int, community: str, backend: str) -> PrinterReading:
    spec = PrinterSpec(
        community, Target("127.0.0.1", port, 1, 1), Credentials(community=community), backend
    )
    async with SnmpClients() as clients:
        outcome = await Poller(profile, clients).poll(spec)
    assert outcome.state == ANSWERING, outcome.error
    assert outcome.reading is not None
    return outcome.reading


@pytest.mark.parametrize("backend", ["native", "pysnmp"])
async def test_r3_kyocera_serial_from_its_private_mib(
    profile: Profile, port: int, backend: str
) -> None:
    reading = await _poll(profile, port, "kyocera_ecosys", backend)
    assert (reading.vendor, reading.serial) == ("Kyocera", "VCF9X00042")
    assert reading.serial_source == KYOCERA_SERIAL
    assert reading.model == "ECOSYS M6230cidn"
    assert reading.page_count == 53120
    black = next(s for s in reading.supplies if s.colour == "black")
    assert (black.index, black.kind, black.percent) == ("1.4", "toner", 20.0)
    waste = next(s for s in reading.supplies if s.kind == "waste")
    assert (waste.receptacle, waste.quality) == (True, "some-remaining")


async def test_r3_utax_is_a_kyocera(profile: Profile, port: int) -> None:
    """UTAX / TA Triumph-Adler sell Kyocera's machines under Kyocera's enterprise number; a
    blank standard serial (spaces and a NUL) is no serial."""
    reading = await _poll(profile, port, "utax_p4531", "native")
    assert (reading.vendor, reading.serial) == ("Kyocera", "LVA5Z01234")
    assert reading.serial_source == KYOCERA_SERIAL
    assert reading.model == "UTAX P-4531DN"
    toner, waste = reading.supplies
    assert (toner.kind, toner.colour) == ("toner", "black")  # "Toner Schwarz" (R11)
    assert (waste.kind, waste.receptacle) == ("waste", True)  # "Resttonerbehälter"


async def test_r3_the_agents_poll_command_reports_the_kyocera_serial(port: int) -> None:
    """`asr-agent poll --json`, as a user runs it, against the simulated Kyocera."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.cli",
        "poll",
        f"127.0.0.1:{port}",
        "--community",
        "kyocera_ecosys",
        "--json",
        "--timeout",
        "2",
        "--retries",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    polled = json.loads(out)
    assert (polled["serial"], polled["serial_source"]) == ("VCF9X00042", KYOCERA_SERIAL)
