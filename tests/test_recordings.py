"""Every real printer recording (../shared/printers) read over UDP through the real CLI (R1).

The raw values must equal LibreNMS's expected.json; our percent follows R1, and each place it
differs from LibreNMS's figure is explained by a named rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.poller import ANSWERING, Poller, PrinterSpec, SnmpClients
from agent.profile import Profile
from agent.snmp.session import Credentials, Target
from tests import snmpsim

RECORDINGS = sorted(
    json.loads((snmpsim.SHARED_PRINTERS / "expected.json").read_text())
    if snmpsim.SHARED_PRINTERS.is_dir()
    else []
)
# Without the recordings, each parametrized test shows one skip that says why (`-rs`).
CASES = RECORDINGS or [pytest.param("absent", marks=pytest.mark.skip(reason=snmpsim.SHARED_ABSENT))]
# RFC 2790's hrPrinterDetectedErrorState bits, as the test's own oracle.
ERROR_BITS = [
    "lowPaper",
    "noPaper",
    "lowToner",
    "noToner",
    "doorOpen",
    "jammed",
    "offline",
    "serviceRequested",
    "inputTrayMissing",
    "outputTrayMissing",
    "markerSupplyMissing",
    "outputNearFull",
    "outputFull",
    "inputTrayEmpty",
    "overduePreventMaint",
]
DEVICE_STATUS = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
CLASS = {1: "other", 3: "consumed", 4: "filled"}


def _poll_json(sim: snmpsim.Simulator, community: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "agent.cli",
        "poll",
        f"{sim.host}:{sim.port}",
        "--community",
        community,
        "--json",
        "--timeout",
        "2",
        "--retries",
        "1",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def polled(simulator: snmpsim.Simulator, shared_expected: dict[str, Any]) -> dict[str, Any]:
    """Each recording polled once through `asr-agent poll --json`."""
    devices = shared_expected["devices"]
    return {rec: _poll_json(simulator, devices[rec]["supplies_community"]) for rec in RECORDINGS}


def _is_waste(row: dict[str, Any]) -> bool:
    return any(q.startswith("waste_receptacle") for q in row["quirks"])


def _our_percent(row: dict[str, Any]) -> float | None:
    """R1, computed independently: share of capacity; percent full for receptacles."""
    level, capacity = row["level"], row["max_capacity"]
    if level is None or capacity is None or level < 0 or capacity <= 0 or level > capacity:
        return None
    share: float = level * 100 / capacity
    return round(100 - share if _is_waste(row) else share, 1)


def test_dev_set_is_complete(shared_expected: dict[str, Any]) -> None:
    assert len(RECORDINGS) == 15
    assert sum(len(rows) for rows in shared_expected["supplies"].values()) == 95


@pytest.mark.parametrize("recording", CASES)
def test_r1_raw_values_match_librenms(
    recording: str, polled: dict[str, Any], shared_expected: dict[str, Any]
) -> None:
    expected = shared_expected["supplies"][recording]
    got = {s["index"]: s for s in polled[recording]["supplies"]}
    assert sorted(got) == sorted(r["index"] for r in expected)
    for row in expected:
        s = got[row["index"]]
        assert s["description"] == row["description"], row["index"]
        assert s["type"] == row["type_name"], row["index"]
        assert s["class"] == (CLASS[row["class"]] if row["class"] is not None else None)
        assert s["unit"] == row["unit_name"], row["index"]
        assert s["max_capacity"] == row["max_capacity"], row["index"]
        assert s["level"] == row["level"], row["index"]


@pytest.mark.parametrize("recording", CASES)
def test_r1_percent_and_quality(
    recording: str, polled: dict[str, Any], shared_expected: dict[str, Any]
) -> None:
    for row in shared_expected["supplies"][recording]:
        s = next(s for s in polled[recording]["supplies"] if s["index"] == row["index"])
        assert s["receptacle"] == _is_waste(row), row["index"]
        assert s["percent"] == _our_percent(row), row["index"]
        if s["percent"] is None:
            expected_quality = "some-remaining" if row["level"] == -3 else "unknown"
            assert s["quality"] == expected_quality, row["index"]
        else:
            assert s["quality"] == "measured", row["index"]
        if s["receptacle"]:
            assert s["kind"] == "waste"
        # No mass unit in any real recording: no grams may be invented.
        assert s["grams_left"] is None and s["grams_used"] is None


@pytest.mark.parametrize("recording", CASES)
def test_r1_every_difference_from_librenms_has_a_rule(
    recording: str, polled: dict[str, Any], shared_expected: dict[str, Any]
) -> None:
    for row in shared_expected["supplies"][recording]:
        ours = next(s for s in polled[recording]["supplies"] if s["index"] == row["index"])
        theirs = row["librenms_percent"] if row["librenms_recorded"] else None
        if ours["percent"] is not None and theirs is not None:
            if ours["receptacle"]:
                # R1: a receptacle's level is its free space; LibreNMS shows space left,
                # we show percent full.
                assert abs(100 - ours["percent"] - theirs) <= 0.55, row["index"]
            else:
                # The same figure: LibreNMS rounds to a whole percent, we keep a decimal.
                assert abs(ours["percent"] - theirs) <= 0.55, row["index"]
            continue
        if ours["percent"] == theirs:
            continue
        # R1: never a made-up number. LibreNMS shows 50 for -3, assumes a capacity of 100
        # when it is -2, skips -2 levels, and reads Brother's level 0 as 100 %.
        assert ours["percent"] is None, row["index"]
        assert row["level"] < 0 or row["max_capacity"] <= 0, row["index"]


@pytest.mark.parametrize("recording", CASES)
def test_device_identity_and_status(
    recording: str, polled: dict[str, Any], shared_expected: dict[str, Any]
) -> None:
    device = shared_expected["devices"][recording]
    got = polled[recording]
    standard = (device["prtGeneralSerialNumber"] or {}).get("1")
    assert got["serial"] == (device["librenms"]["serial"] or standard)
    assert got["sys_object_id"] == device["sysObjectID"]
    assert got["model"]
    statuses = device["hrDeviceStatus"] or {}
    h = str(got["hr_device_index"])
    assert got["status"]["device"] == (DEVICE_STATUS[statuses[h]] if h in statuses else None)
    error_hex = (device["hrPrinterDetectedErrorState_hex"] or {}).get(h)
    if error_hex is not None:
        bits = bytes.fromhex(error_hex)
        names = [ERROR_BITS[b] for b in range(len(bits) * 8) if bits[b // 8] & (0x80 >> b % 8)]
        assert got["status"]["errors"] == names
    life = (device["prtMarkerLifeCount"] or {}).get(f"{h}.1")
    assert got["page_count"] == life
    assert got["status"]["power"] in ("ready", "standby", "unknown")


def test_colour_and_kind_of_known_rows(polled: dict[str, Any]) -> None:
    def supply(rec: str, index: str) -> dict[str, Any]:
        return next(s for s in polled[rec]["supplies"] if s["index"] == index)

    assert (supply("konica", "1.1")["kind"], supply("konica", "1.1")["colour"]) == ("toner", "cyan")
    assert supply("konica", "1.5")["kind"] == "drum"
    assert supply("konica", "1.13")["kind"] == "waste"
    assert supply("xerox", "1.1")["part_number"] == "006R01509"
    assert supply("xerox", "1.10")["receptacle"] is True
    assert supply("jetdirect", "1.1")["kind"] == "toner"  # "Black Cartridge", no type column
    assert supply("epson", "1.2")[("kind")] == "ink"
    assert supply("sharp", "1.5")["percent"] is None  # waste with capacity -2: no percent


# R3: the part numbers the recordings' descriptions carry; every other row has none (a
# description is never a part number: "Black Toner Cartridge", Xerox's "PN unknown").
_HP_COLOUR = {"1.1": "CF410A", "1.2": "CF411A", "1.3": "CF413A", "1.4": "CF412A"}
PART_NUMBERS = {
    "jetdirect": _HP_COLOUR,
    "jetdirect_context": _HP_COLOUR,
    "jetdirect_m130nw": {"1.1": "CF217A", "1.5": "CF219A"},
    "jetdirect_m252dw": {"1.1": "CF400X", "1.2": "CF401X", "1.3": "CF403X", "1.4": "CF402X"},
    "xerox": {
        "1.1": "006R01509",
        "1.2": "006R01512",
        "1.3": "006R01511",
        "1.4": "006R01510",
        "1.5": "013R00662",
        "1.6": "013R00662",
        "1.7": "013R00662",
        "1.8": "013R00662",
        "1.10": "008R13061",
        "1.11": "001R00613",
        "1.12": "008R13064",
    },
}


@pytest.mark.parametrize("recording", CASES)
def test_r3_part_numbers_the_recordings_carry(
    recording: str, polled: dict[str, Any], shared_expected: dict[str, Any]
) -> None:
    expected = PART_NUMBERS.get(recording, {})
    got = {s["index"]: s for s in polled[recording]["supplies"]}
    for row in shared_expected["supplies"][recording]:
        s = got[row["index"]]
        assert s["part_number"] == expected.get(row["index"]), row["index"]
        assert s["description"] == row["description"]  # the description stays whole


@pytest.mark.parametrize("backend", ["pysnmp"])
async def test_pysnmp_backend_reads_the_same(
    backend: str, simulator: snmpsim.Simulator, polled: dict[str, Any], profile: Profile
) -> None:
    """Both SNMP clients decode every recording to the same record."""
    specs = [
        PrinterSpec(
            rec,
            Target(simulator.host, simulator.port, 2, 1),
            Credentials(community=rec),
            backend=backend,
        )
        for rec in RECORDINGS
    ]
    async with SnmpClients() as clients:
        outcomes = await Poller(profile, clients, max_in_flight=4).poll_all(specs)
    for outcome in outcomes:
        assert outcome.state == ANSWERING, outcome.error
        assert outcome.reading is not None
        assert outcome.reading.to_dict() == polled[outcome.printer.name]


def test_installed_console_script(simulator: snmpsim.Simulator) -> None:
    """The `asr-agent` entry point itself, as a user runs it."""
    script = Path(sys.executable).parent / "asr-agent"
    done = subprocess.run(
        [
            str(script),
            "poll",
            f"{simulator.host}:{simulator.port}",
            "--community",
            "asr_mass_colour",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Black Toner Cartridge K-4500" in done.stdout
    assert "65.4%" in done.stdout
