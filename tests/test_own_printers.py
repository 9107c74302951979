"""Our own recordings (tests/printers) over UDP: what the real ones lack, plus SNMPv3 and exits."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.poller import (
    ANSWERING,
    NOT_A_PRINTER,
    REFUSED,
    UNREACHABLE,
    Poller,
    PrinterSpec,
    SnmpClients,
)
from agent.profile import Profile
from agent.snmp.session import Credentials, Target
from tests import snmpsim
from wire.reading import PrinterReading, Supply


async def _read(
    sim: snmpsim.Simulator, profile: Profile, credentials: Credentials, backend: str = "native"
) -> PrinterReading:
    spec = PrinterSpec("p", Target(sim.host, sim.port, 2, 1), credentials, backend)
    async with SnmpClients() as clients:
        outcome = await Poller(profile, clients).poll(spec)
    assert outcome.state == ANSWERING, outcome.error
    assert outcome.reading is not None
    return outcome.reading


def _supply(reading: PrinterReading, index: str) -> Supply:
    return next(s for s in reading.supplies if s.index == index)


@pytest.mark.parametrize("backend", ["native", "pysnmp"])
async def test_r1_mass_units_give_grams_and_percent(
    simulator: snmpsim.Simulator, profile: Profile, backend: str
) -> None:
    reading = await _read(simulator, profile, Credentials(community="asr_mass_colour"), backend)
    black = _supply(reading, "1.1")
    assert (black.unit, black.max_capacity, black.level) == ("tenthsOfGrams", 2400, 1570)
    assert (black.percent, black.grams_left, black.grams_used) == (65.4, 157.0, 83.0)
    assert (black.kind, black.colour, black.supply_class, black.quality) == (
        "toner",
        "black",
        "consumed",
        "measured",
    )
    # Colour from prtMarkerColorantValue: the description does not name it.
    assert _supply(reading, "1.2").colour == "cyan"
    assert _supply(reading, "1.2").percent == 50.0
    magenta = _supply(reading, "1.3")
    assert (magenta.percent, magenta.quality, magenta.grams_left) == (None, "some-remaining", None)
    assert _supply(reading, "1.4").percent == 0.0  # truly empty is a measurement


async def test_r1_receptacle_by_class_is_percent_full(
    simulator: snmpsim.Simulator, profile: Profile
) -> None:
    reading = await _read(simulator, profile, Credentials(community="asr_mass_colour"))
    waste = _supply(reading, "1.5")
    # Level 2250 of 9000 is the space left (RFC 3805): 75 % full, 675 g collected.
    assert (waste.supply_class, waste.receptacle, waste.kind) == ("filled", True, "waste")
    assert (waste.percent, waste.grams_left, waste.grams_used) == (75.0, 225.0, 675.0)
    drum = _supply(reading, "1.6")
    assert (drum.kind, drum.unit, drum.percent, drum.grams_left) == (
        "drum",
        "impressions",
        75.0,
        None,
    )
    starter = _supply(reading, "1.7")  # a capacity of 4 steps
    assert (starter.percent, starter.quality) == (75.0, "coarse")


async def test_identity_counters_and_power_save(
    simulator: snmpsim.Simulator, profile: Profile
) -> None:
    reading = await _read(simulator, profile, Credentials(community="asr_mass_colour"))
    assert reading.serial == "CL45-0001234"
    assert reading.serial_source == "prtGeneralSerialNumber"
    assert reading.model == "Acme ColorLaser CL-4500dn"
    assert reading.sys_object_id == "1.3.6.1.4.1.99999.1.4500"
    assert (reading.page_count, reading.power_on_count, reading.counter_unit) == (
        184321,
        1200,
        "impressions",
    )
    assert reading.uptime_seconds == 1234.56
    # RFC 3805 overall status: running + other is standby (power-save); it is read normally.
    assert reading.status.power == "standby"
    assert reading.status.errors == ("lowToner",)


async def test_odd_values_give_notes_never_wrong_numbers(
    simulator: snmpsim.Simulator, profile: Profile
) -> None:
    reading = await _read(simulator, profile, Credentials(community="asr_odd"))
    assert reading.serial is None  # empty prtGeneralSerialNumber, no vendor fallback
    assert reading.status.errors == ("jammed", "overduePreventMaint")
    assert reading.status.power == "ready"  # warning + idle
    hp = _supply(reading, "1.1")
    assert hp.description == "Black Cartridge HP CF217A"  # HP's text + hex form
    assert _supply(reading, "1.2").description == "ブラックトナー"  # UTF-8
    cp1252 = _supply(reading, "1.3")
    assert cp1252.description == "Toner noir é"
    assert (cp1252.percent, cp1252.quality) == (None, "unknown")  # level 101 > max 100
    wrong_type = _supply(reading, "1.4")
    assert wrong_type.level is None and wrong_type.percent is None
    assert any("level: expected an INTEGER" in n for n in wrong_type.notes)
    zero_capacity = _supply(reading, "1.5")
    assert (zero_capacity.percent, zero_capacity.quality) == (None, "unknown")
    ink = _supply(reading, "1.6")
    assert (ink.kind, ink.supply_class, ink.percent) == ("ink", None, None)
    assert any("class: expected an INTEGER" in n for n in ink.notes)
    assert _supply(reading, "1.7").description == "Black Ink"  # hex octets sent as text
    mystery = _supply(reading, "1.8")
    assert (mystery.type, mystery.percent, mystery.quality) == (None, None, "unknown")
    assert any("not in the MIB's enumeration" in n for n in mystery.notes)
    assert any("-7 is negative" in n for n in mystery.notes)


@pytest.mark.parametrize("user", sorted(snmpsim.V3_USERS))
async def test_snmpv3_reads_like_v2c(
    simulator: snmpsim.Simulator, profile: Profile, user: str
) -> None:
    v3 = snmpsim.v3_credentials(user, "jetdirect_m252dw")
    expected = await _read(simulator, profile, Credentials(community="asr_mass_colour"))
    v3_mass = await _read(
        simulator, profile, Credentials(**{**v3.__dict__, "context": "asr_mass_colour"})
    )
    assert v3_mass == expected


@pytest.fixture(scope="module")
def private_simulator() -> Iterator[tuple[snmpsim.Simulator, Path]]:
    """snmpsim run from a copy of its environment, with its recordings, in a folder of mode
    700 whose path holds a space: a checkout in a private home, as a newcomer makes one."""
    venv = snmpsim.environment()
    if venv is None:
        pytest.fail("snmpsim is not installed: run `make setup` (it makes .venv-sim)")
    private = Path(tempfile.mkdtemp(prefix="asr-private-"))  # mode 700, like /root
    try:
        home = private / "my checkout"
        shutil.copytree(venv, home / ".venv-sim", symlinks=True)
        recordings = sorted(snmpsim.OWN_PRINTERS.glob("*.snmprec"))
        responder = snmpsim.start(home / ".venv-sim", recordings, home / "responder")
        try:
            yield responder.sim, private
        finally:
            responder.stop()
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.parametrize("user", sorted(snmpsim.V3_USERS))
async def test_snmpv3_from_a_private_folder(
    private_simulator: tuple[snmpsim.Simulator, Path], profile: Profile, user: str
) -> None:
    """The simulator's Python and data under a mode-700 folder answer SNMPv3 with privacy:
    nothing it loads late (cryptography, at the first encrypted request) is out of its reach."""
    simulator, private = private_simulator
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    v3 = snmpsim.v3_credentials(user, "asr_mass_colour")
    expected = await _read(simulator, profile, Credentials(community="asr_mass_colour"))
    assert await _read(simulator, profile, v3) == expected


@pytest.mark.parametrize(
    ("change", "why"),
    [({"auth_key": "wrong-auth-key"}, "digest"), ({"user": "nobody-here"}, "user")],
)
async def test_snmpv3_wrong_credentials_are_refused(
    simulator: snmpsim.Simulator, profile: Profile, change: dict[str, str], why: str
) -> None:
    auth, auth_key, priv, priv_key = snmpsim.V3_USERS["asr-sha256-aes"]
    fields = {
        "version": "3",
        "user": "asr-sha256-aes",
        "auth_protocol": auth,
        "auth_key": auth_key,
        "priv_protocol": priv,
        "priv_key": priv_key,
        "context": "asr_mass_colour",
        **change,
    }
    spec = PrinterSpec("p", Target(simulator.host, simulator.port, 0.5, 0), Credentials(**fields))
    async with SnmpClients() as clients:
        outcome = await Poller(profile, clients).poll(spec)
    assert outcome.state == REFUSED, (why, outcome.error)
    assert outcome.reading is None


async def test_wrong_community_is_silence_then_asleep(
    simulator: snmpsim.Simulator, profile: Profile
) -> None:
    spec = PrinterSpec(
        "p",
        Target(simulator.host, simulator.port, 0.1, 1),
        Credentials(community="no-such-community"),
    )
    async with SnmpClients() as clients:
        poller = Poller(profile, clients)
        first = await poller.poll(spec)
        assert first.state == UNREACHABLE  # never answered
        from datetime import datetime, timezone

        poller.remember("p", datetime.now(timezone.utc))
        second = await poller.poll(spec)
        assert second.state == "asleep"  # answered recently: power-save or off for the night


async def test_not_a_printer(simulator: snmpsim.Simulator, profile: Profile) -> None:
    spec = PrinterSpec(
        "r", Target(simulator.host, simulator.port, 1, 1), Credentials(community="asr_router")
    )
    async with SnmpClients() as clients:
        outcome = await Poller(profile, clients).poll(spec)
    assert outcome.state == NOT_A_PRINTER
    assert "Acme Router" in (outcome.error or "")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--community", "asr_router"], 5, "not-a-printer"),
        (
            ["--community", "nobody-knows-me", "--timeout", "0.1", "--retries", "1"],
            3,
            "unreachable",
        ),
        (
            [
                "--user",
                "asr-sha256-aes",
                "--auth-protocol",
                "SHA256",
                "--auth-key",
                "bad-key-123",
                "--priv-protocol",
                "AES",
                "--priv-key",
                "privkey-aes",
                "--context",
                "asr_odd",
                "--timeout",
                "0.5",
                "--retries",
                "0",
            ],
            4,
            "refused",
        ),
    ],
)
def test_cli_exit_status_and_one_line_error(
    simulator: snmpsim.Simulator, args: list[str], status: int, message: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "poll",
            f"{simulator.host}:{simulator.port}",
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("asr-agent:") and message in lines[0]


@pytest.mark.parametrize("backend", ["native", "pysnmp"])
async def test_snmpv1_reads_like_v2c(
    simulator: snmpsim.Simulator, profile: Profile, backend: str
) -> None:
    """v1 has no GETBULK and answers a missing object with noSuchName: same record anyway."""
    v2c = await _read(simulator, profile, Credentials(community="asr_mass_colour"))
    v1 = await _read(simulator, profile, Credentials(version="1", community="asr_mass_colour"),
                     backend)  # fmt: skip
    assert v1 == v2c
    xerox_v1 = await _read(simulator, profile, Credentials(version="1", community="asr_odd"))
    assert xerox_v1 == await _read(simulator, profile, Credentials(community="asr_odd"))


async def test_silence_is_logged_once_per_change_of_state(
    simulator: snmpsim.Simulator, profile: Profile, caplog: pytest.LogCaptureFixture
) -> None:
    silent = PrinterSpec("p", Target(simulator.host, simulator.port, 0.05, 0),
                         Credentials(community="no-such-community"))  # fmt: skip
    awake = PrinterSpec("p", Target(simulator.host, simulator.port, 1, 1),
                        Credentials(community="asr_mass_colour"))  # fmt: skip
    caplog.set_level("INFO", logger="agent.poller")
    async with SnmpClients() as clients:
        poller = Poller(profile, clients)
        for spec in (awake, silent, silent, silent, awake, awake):
            await poller.poll(spec)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "is asleep" in messages[0] and "last answered" in messages[0]
    assert "answers again (was asleep)" in messages[1]
