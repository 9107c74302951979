"""The simulated printers, read over real UDP on 127.0.0.1 by the agent's clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from agent.poller import (
    ANSWERING,
    ASLEEP,
    FAULTY,
    UNREACHABLE,
    Poller,
    PollOutcome,
    PrinterSpec,
    SnmpClients,
)
from agent.profile import load_profile
from agent.snmp import ber
from agent.snmp.ber import Typed, parse_oid
from agent.snmp.session import Credentials, Target
from sim.cli import main as sim_main
from sim.fleet import community, make_fleet, make_printer, supply_oid
from sim.responder import Dataset, Faults, Responder, SimPrinter, answer
from sim.snmprec import format_snmprec, load_snmprec, parse_snmprec
from tests import snmpsim

PROFILE = load_profile()
RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "printers"
SUPPLIES = PROFILE.supplies_table
SYS_DESCR = PROFILE.scalars["sysDescr"]
FLEET = 6


@dataclass
class Sim:
    """A running responder, its printers and its port."""

    responder: Responder
    printers: dict[str, SimPrinter]
    port: int


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    printers = {name: SimPrinter(e) for name, e in make_fleet(PROFILE, FLEET).items()}
    responder = Responder(printers)
    async with responder as port:
        yield Sim(responder, printers, port)


def spec(
    port: int,
    name: str,
    backend: str = "native",
    version: str = "2c",
    timeout: float = 0.2,
    retries: int = 1,
) -> PrinterSpec:
    return PrinterSpec(
        name,
        Target("127.0.0.1", port, timeout=timeout, retries=retries, backoff=1.0),
        Credentials(version=version, community=name),
        backend,
    )


async def poll(*specs: PrinterSpec) -> list[PollOutcome]:
    """Each printer read once by a fresh agent."""
    async with SnmpClients() as clients:
        return await Poller(PROFILE, clients).poll_all(specs)


async def exchange(port: int, payload: bytes, timeout: float = 0.3) -> bytes | None:
    """One datagram out, the answer back (None on silence): the raw wire, no client."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, payload)
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
        except asyncio.TimeoutError:
            return None


def request(
    name: str,
    pdu: int,
    oids: list[tuple[int, ...]],
    version: int = ber.V2C,
    nr: int = 0,
    mr: int = 0,
) -> bytes:
    return ber.encode_request(version, name.encode(), pdu, 4242, oids, nr, mr)


# ---------------------------------------------------------------------------- snmprec


def test_snmprec_reads_every_recording_sorted() -> None:
    paths = sorted((RECORDINGS / "snmprec").glob("*.snmprec"))
    if not paths:
        pytest.skip(snmpsim.SHARED_ABSENT)
    for path in paths:
        entries = load_snmprec(path)
        assert [oid for oid, _ in entries] == sorted(oid for oid, _ in entries)
        assert parse_snmprec(format_snmprec(entries), path.name) == entries


def test_snmprec_types_and_round_trip() -> None:
    text = (
        "1.3.6.1.2.1.1.3.0|67|233425120\n"
        "1.3.6.1.2.1.1.1.0|4|Printer  \n"
        "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2\n"
        "1.3.6.1.2.1.4.20.1.3.1|64|255.255.255.0\n"
        "1.3.6.1.2.1.4.20.1.3.2|64x|c3dafe61\n"
        "1.3.6.1.2.1.43.11.1.1.6.1.1|4x|e9bb92e889b2\n"
        "1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615\n"
        "1.3.6.1.2.1.2.2.1.10.1|65|7\n"
        "1.3.6.1.2.1.2.2.1.5.1|66|100\n"
        "1.3.6.1.2.1.43.11.1.1.9.1.1|2|-3\n"
        "1.3.6.1.2.1.99.0|5|\n"
    )
    entries = dict(parse_snmprec(text))
    assert entries[SYS_DESCR] == Typed(ber.OCTET_STRING, b"Printer")  # lines are stripped
    assert entries[parse_oid("1.3.6.1.2.1.4.20.1.3.1")] == Typed(
        ber.IP_ADDRESS, b"\xff\xff\xff\x00"
    )
    assert entries[parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1")] == Typed(ber.INTEGER, -3)
    assert entries[parse_oid("1.3.6.1.2.1.31.1.1.1.6.1")].tag == ber.COUNTER64
    again = parse_snmprec(format_snmprec(entries.items()))
    assert again == sorted(entries.items())
    assert "|4x|e9bb92e889b2" in format_snmprec(entries.items())  # non-ASCII goes as hex


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1.3.6.1.2.1.1.1.0|4", "expected OID|TAG|VALUE"),
        ("1.3.6.x.1|2|1", "not a numeric OID"),
        ("1.3.6.1.2.1.1.3.0|67|-1", "out of range"),
        ("1.3.6.1.2.1.1.3.0|2|ten", "invalid literal"),
        ("1.3.6.1.2.1.1.1.0|4x|zz", "non-hexadecimal"),
        ("1.3.6.1.2.1.1.1.0|99|1", "unsupported tag"),
        ("1.3.6.1.2.1.1.1.0|4:delay|x", "unsupported tag"),
    ],
)
def test_snmprec_malformed_line_names_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"^lab\.snmprec:2: .*{reason}"):
        parse_snmprec(f"1.3.6.1.2.1.1.5.0|4|ok\n{line}\n", "lab.snmprec")


def test_snmprec_repeated_oid_keeps_its_last_value() -> None:
    entries = parse_snmprec("1.3.6.1.2.1.1.5.0|4|a\n1.3.6.1.2.1.1.5.0|4|b\n")
    assert entries == [(PROFILE.scalars["sysName"], Typed(ber.OCTET_STRING, b"b"))]


# ---------------------------------------------------------------------------- fleet


def test_fleet_is_deterministic_and_covers_the_mix() -> None:
    fleet = make_fleet(PROFILE, 10, seed=7)
    assert fleet == make_fleet(PROFILE, 10, seed=7)
    assert fleet != make_fleet(PROFILE, 10, seed=8)
    assert fleet[community(3)] == make_printer(PROFILE, 3, seed=7)  # independent of fleet size
    cells: dict[str, set[int | bytes | tuple[int, ...] | None]] = {}
    for entries in fleet.values():
        for oid, value in entries:
            if oid[: len(SUPPLIES)] == SUPPLIES:
                column = next(
                    k for k, v in PROFILE.supply_columns.items() if v == oid[len(SUPPLIES)]
                )
                cells.setdefault(column, set()).add(value.value)
    assert {13, 19} <= cells["unit"]  # tenthsOfGrams and percent
    assert 4 in cells["class"] and {3, 4, 9} <= cells["type"]  # waste receptacle, opc
    assert set(PROFILE.supply_columns) == set(cells)


async def test_native_and_pysnmp_read_the_same_printer_alike(sim: Sim) -> None:
    names = [community(n) for n in range(FLEET)]
    native = await poll(*(spec(sim.port, n) for n in names))
    pysnmp = await poll(*(spec(sim.port, n, backend="pysnmp") for n in names))
    for a, b in zip(native, pysnmp):
        assert a.state == b.state == ANSWERING, (a.error, b.error)
        assert a.reading is not None and b.reading is not None
        assert a.reading.to_dict() == b.reading.to_dict()
    readings = [o.reading for o in native if o.reading]
    assert [len(r.supplies) for r in readings] == [3, 6, 3, 6, 3, 6]
    assert [r.status.power for r in readings].count("standby") == 1  # printer 4 sleeps
    mass = readings[2].supplies[0]
    assert mass.unit == "tenthsOfGrams" and mass.grams_left is not None
    waste = next(s for s in readings[1].supplies if s.kind == "waste")
    assert waste.receptacle and waste.supply_class == "filled"
    assert readings[1].supplies[2].colour == "magenta"  # from prtMarkerColorantValue


async def test_v1_walk_reads_what_v2c_bulk_reads(sim: Sim) -> None:
    v2c, v1 = await poll(spec(sim.port, community(3)), spec(sim.port, community(3), version="1"))
    assert v1.state == ANSWERING, v1.error
    assert v1.reading is not None and v2c.reading is not None
    assert v1.reading.to_dict() == v2c.reading.to_dict()


async def test_toner_going_down_is_read_on_the_next_poll(sim: Sim) -> None:
    name = community(0)
    level = supply_oid(PROFILE, "level", 1)
    sim.printers[name].data.set(level, Typed(ber.INTEGER, 3))
    (outcome,) = await poll(spec(sim.port, name))
    assert outcome.reading is not None and outcome.reading.supplies[0].percent == 3.0


# ---------------------------------------------------------------------------- protocol


async def test_v2c_get_answers_no_such_object_and_instance(sim: Sim) -> None:
    oids = [SYS_DESCR, SYS_DESCR[:-1] + (1,), parse_oid("1.3.6.1.2.1.1.9.0"), SYS_DESCR[:-1]]
    raw = await exchange(sim.port, request(community(0), ber.GET, oids))
    assert raw is not None
    msg = ber.decode_message(raw)
    assert (msg.pdu_type, msg.request_id, msg.error_status) == (ber.RESPONSE, 4242, 0)
    assert [v for _, v in msg.varbinds][1:] == [
        ber.NO_SUCH_INSTANCE_VALUE,
        ber.NO_SUCH_OBJECT_VALUE,
        ber.NO_SUCH_OBJECT_VALUE,
    ]


async def test_v1_get_missing_object_is_no_such_name_with_index(sim: Sim) -> None:
    missing = parse_oid("1.3.6.1.2.1.1.9.0")
    raw = await exchange(sim.port, request(community(0), ber.GET, [SYS_DESCR, missing], ber.V1))
    assert raw is not None
    msg = ber.decode_message(raw)
    assert (msg.error_status, msg.error_index) == (2, 2)
    assert msg.varbinds == ((SYS_DESCR, None), (missing, None))  # the request, echoed


async def test_get_next_past_the_end(sim: Sim) -> None:
    last = make_printer(PROFILE, 0)[-1][0]
    v2c = await exchange(sim.port, request(community(0), ber.GET_NEXT, [last]))
    v1 = await exchange(sim.port, request(community(0), ber.GET_NEXT, [last], ber.V1))
    assert v2c is not None and v1 is not None
    assert ber.decode_message(v2c).varbinds == ((last, ber.END_OF_MIB_VIEW_VALUE),)
    assert (ber.decode_message(v1).error_status, ber.decode_message(v1).error_index) == (2, 1)


async def test_v1_get_bulk_and_wrong_community_are_dropped(sim: Sim) -> None:
    bulk_v1 = request(community(0), ber.GET_BULK, [SUPPLIES], ber.V1, 0, 5)
    assert await exchange(sim.port, bulk_v1, timeout=0.1) is None
    wrong = request("public", ber.GET, [SYS_DESCR])
    assert await exchange(sim.port, wrong, timeout=0.1) is None
    assert sim.responder.bad_community == 1


def test_get_bulk_rows_then_end_of_mib_view() -> None:
    data = Dataset(make_printer(PROFILE, 0))
    last = data.entries()[-1][0]
    msg = ber.Message(ber.V2C, b"c", ber.GET_BULK, 1, 1, 3, ((SYS_DESCR, None), (last, None)))
    raw = answer(data, msg)
    assert raw is not None
    got = ber.decode_message(raw).varbinds
    # The non-repeater's successor, then one row whose only repeater has ended: RFC 3416
    # lets the response stop after a row of endOfMibView.
    assert [oid for oid, _ in got] == [data.entries()[1][0], last]
    assert got[1][1] is ber.END_OF_MIB_VIEW_VALUE


async def test_get_bulk_is_cut_to_max_bytes_and_too_big_when_nothing_fits(sim: Sim) -> None:
    columns = [(*SUPPLIES, n) for n in PROFILE.supply_columns.values()]
    ask = request(community(1), ber.GET_BULK, [SYS_DESCR[:-1], *columns], nr=1, mr=50)
    roomy = answer(sim.printers[community(1)].data, ber.decode_message(ask), max_bytes=65000)
    assert roomy is not None
    full = ber.decode_message(roomy)
    sim.responder.max_bytes = 484  # the smallest message every SNMP agent must accept
    cut = await exchange(sim.port, ask)
    assert cut is not None and len(cut) <= 484
    msg = ber.decode_message(cut)
    assert msg.error_status == 0
    assert 1 < len(msg.varbinds) < len(full.varbinds)
    assert msg.varbinds == full.varbinds[: len(msg.varbinds)]  # fewer, never different

    sim.responder.max_bytes = 60
    raw = await exchange(sim.port, request(community(1), ber.GET_BULK, [SYS_DESCR[:-1]], nr=1))
    assert raw is not None
    too_big = ber.decode_message(raw)
    assert (too_big.error_status, too_big.error_index, too_big.varbinds) == (1, 0, ())


async def test_agent_reads_fully_through_small_messages(sim: Sim) -> None:
    (roomy,) = await poll(spec(sim.port, community(3)))
    sim.responder.max_bytes = 484
    (tight,) = await poll(spec(sim.port, community(3)))
    assert tight.state == ANSWERING, tight.error
    assert tight.reading is not None and roomy.reading is not None
    assert tight.reading.to_dict() == roomy.reading.to_dict()


# ---------------------------------------------------------------------------- faults


async def test_printer_waking_up_answers_within_the_retries(sim: Sim) -> None:
    printer = sim.printers[community(0)]
    printer.faults = Faults(drop_first=2)
    (outcome,) = await poll(spec(sim.port, community(0), timeout=0.1, retries=3))
    assert outcome.state == ANSWERING, outcome.error
    assert printer.received == printer.served + 2


async def test_asleep_printer_is_asleep_or_unreachable(sim: Sim) -> None:
    async with SnmpClients() as clients:
        poller = Poller(PROFILE, clients, unreachable_after=timedelta(hours=1))
        first = await poller.poll(spec(sim.port, community(0)))
        for name in (community(0), community(1)):
            sim.printers[name].faults = Faults(asleep=True)
        dozing = await poller.poll(spec(sim.port, community(0), timeout=0.05))
        never = await poller.poll(spec(sim.port, community(1), timeout=0.05))
    assert first.state == ANSWERING
    assert dozing.state == ASLEEP and dozing.reading is None  # answered an hour ago or less
    assert "no answer" in (dozing.error or "")
    assert never.state == UNREACHABLE  # never answered this agent
    asleep = sim.printers[community(1)]
    assert (asleep.received, asleep.served) == (2, 0)


@pytest.mark.parametrize("backend", ["native", "pysnmp"])
@pytest.mark.parametrize(
    "faults",
    [Faults(garbage=True), Faults(truncated=True), Faults(wrong_request_id=True)],
    ids=["garbage", "truncated", "wrong-request-id"],
)
async def test_broken_answers_fail_cleanly(sim: Sim, faults: Faults, backend: str) -> None:
    printer = sim.printers[community(0)]
    printer.faults = faults
    async with SnmpClients() as clients:
        outcome = await Poller(PROFILE, clients).poll(
            spec(sim.port, community(0), backend, timeout=0.05)
        )
        malformed = clients.native.malformed
    assert outcome.reading is None
    assert printer.served == printer.received == 2  # both tries were answered
    if backend == "native":
        # Our client says what was wrong: the printer is faulty, not asleep.
        assert outcome.state == FAULTY, outcome.error
        expected = "never asked" if faults.wrong_request_id else "malformed SNMP"
        assert expected in (outcome.error or "")
        assert malformed == (0 if faults.wrong_request_id else 2)
    else:
        # pysnmp drops answers it cannot use: the read times out, it does not crash.
        assert outcome.state == UNREACHABLE
        assert outcome.error and "no answer" in outcome.error


async def test_broken_printers_sharing_an_address_are_each_told_their_own_fault(
    sim: Sim,
) -> None:
    """Printers behind one address (one port, several communities): the garbage of one is not
    taken for the silence of another, nor the answers of a good one for a cure."""
    broken = {community(0): Faults(garbage=True), community(1): Faults(wrong_request_id=True)}
    for name, faults in broken.items():
        sim.printers[name].faults = faults
    outcomes = await poll(*(spec(sim.port, name, timeout=0.1) for name in sorted(sim.printers)))
    by_name = {o.printer.name: o for o in outcomes}
    assert by_name[community(0)].state == FAULTY
    assert "malformed SNMP" in (by_name[community(0)].error or "")
    assert by_name[community(1)].state == FAULTY
    assert "never asked" in (by_name[community(1)].error or "")
    for name in sorted(sim.printers)[2:]:
        assert by_name[name].state == ANSWERING, by_name[name].error


async def test_values_of_the_wrong_type_are_problems_never_numbers(sim: Sim) -> None:
    sim.printers[community(0)].faults = Faults(wrong_types=True)
    (outcome,) = await poll(spec(sim.port, community(0)))
    assert outcome.state == ANSWERING and outcome.reading is not None
    assert outcome.reading.serial is None  # a number where the serial's text should be
    assert any("prtGeneralSerialNumber: expected an OCTET STRING" in p for p in outcome.problems)
    assert any("level: expected an INTEGER" in p for p in outcome.problems)
    for supply in outcome.reading.supplies:
        assert (supply.level, supply.percent, supply.grams_left) == (None, None, None)


async def test_values_out_of_range_are_problems_never_numbers(sim: Sim) -> None:
    sim.printers[community(0)].faults = Faults(out_of_range=True)
    (outcome,) = await poll(spec(sim.port, community(0)))
    assert outcome.state == ANSWERING and outcome.reading is not None
    assert outcome.reading.serial is not None  # strings are left alone
    assert any("is negative and not a known special value" in p for p in outcome.problems)
    assert any("is not in the MIB's enumeration" in p for p in outcome.problems)
    for supply in outcome.reading.supplies:
        assert supply.level is not None and supply.level <= -4  # as read, and flagged
        assert (supply.percent, supply.quality, supply.grams_left) == (None, "unknown", None)
    healthy = await poll(spec(sim.port, community(1)))
    assert healthy[0].problems == ()


async def test_answers_are_counted_by_pdu_and_a_resend_once(sim: Sim) -> None:
    printer = sim.printers[community(0)]
    get = request(community(0), ber.GET, [SYS_DESCR])
    for _ in range(2):  # the same request-id twice: a re-send
        assert await exchange(sim.port, get) is not None
    assert await exchange(sim.port, request(community(0), ber.GET_NEXT, [SYS_DESCR])) is not None
    assert printer.answered == {ber.GET: 1, ber.GET_NEXT: 1}
    (outcome,) = await poll(spec(sim.port, community(0)))
    assert outcome.state == ANSWERING
    assert printer.answered[ber.GET] == 2  # one read by the agent ends with one GET


async def test_slow_printer_late_answer_still_counts(sim: Sim) -> None:
    sim.printers[community(0)].faults = Faults(delay=0.1)
    (outcome,) = await poll(spec(sim.port, community(0), timeout=0.05, retries=5))
    assert outcome.state == ANSWERING, outcome.error


async def test_close_drops_delayed_answers() -> None:
    printer = SimPrinter(make_printer(PROFILE, 0), Faults(delay=5))
    responder = Responder({"p": printer})
    port = await responder.start()
    assert await exchange(port, request("p", ber.GET, [SYS_DESCR]), timeout=0.05) is None
    responder.close()
    assert printer.served == 1


# ---------------------------------------------------------------------------- real recordings


async def test_real_recordings_served_give_the_expected_supplies() -> None:
    paths = sorted((RECORDINGS / "snmprec").glob("*.snmprec"))
    if not paths:
        pytest.skip(snmpsim.SHARED_ABSENT)
    expected = json.loads((RECORDINGS / "expected.json").read_text())
    devices = json.loads((RECORDINGS / "devices.json").read_text())
    printers = {p.stem: SimPrinter(load_snmprec(p)) for p in paths}
    async with Responder(printers) as port:
        outcomes = await poll(
            *(spec(port, devices[name]["supplies_community"]) for name in expected)
        )
    for name, outcome in zip(expected, outcomes):
        assert outcome.reading is not None, (name, outcome.error)
        got = {s.index: (s.level, s.max_capacity) for s in outcome.reading.supplies}
        want = {r["index"]: (r["level"], r["max_capacity"]) for r in expected[name]}
        assert got == want, name


def comparable(raw: bytes) -> list[ber.VarBind]:
    """An answer's varbinds with the differences RFC 3416 allows between agents taken out."""
    # snmpsim fills every row of a bulk, where we stop after a row of only endOfMibView;
    # and it says noSuchInstance for every missing object, where we tell noSuchObject apart.
    return [
        (oid, ber.NO_SUCH_INSTANCE_VALUE if value is ber.NO_SUCH_OBJECT_VALUE else value)
        for oid, value in ber.decode_message(raw).varbinds
        if value is not ber.END_OF_MIB_VIEW_VALUE
    ]


@pytest.mark.snmpsim
async def test_answers_match_snmpsim_on_the_recordings(simulator: snmpsim.Simulator) -> None:
    """snmpsim and our responder, serving the same recordings, answer the same objects."""
    paths = sorted((RECORDINGS / "snmprec").glob("*.snmprec"))
    if not paths:
        pytest.skip(snmpsim.SHARED_ABSENT)
    printers = {p.stem: SimPrinter(load_snmprec(p)) for p in paths}
    columns = [(*SUPPLIES, n) for n in PROFILE.supply_columns.values()]
    asks = [request(n, ber.GET_BULK, [SYS_DESCR[:-1], *columns], nr=1, mr=4) for n in printers] + [
        request(n, ber.GET, [SYS_DESCR, (*SUPPLIES, 9, 1, 1), (*SUPPLIES, 5, 1, 1)])
        for n in printers
    ]
    async with Responder(printers, max_bytes=65000) as port:
        for ask in asks:
            ours, theirs = await exchange(port, ask), await exchange(simulator.port, ask)
            assert ours is not None and theirs is not None
            assert comparable(ours) == comparable(theirs)


# ---------------------------------------------------------------------------- command line


def test_cli_exports_a_fleet_that_parses_back(tmp_path: Path) -> None:
    assert sim_main(["export", "--fleet", "3", "--seed", "5", "--out", str(tmp_path)]) == 0
    fleet = make_fleet(PROFILE, 3, seed=5)
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted(fleet)
    for name, entries in fleet.items():
        assert load_snmprec(tmp_path / f"{name}.snmprec") == entries


def test_cli_refuses_an_empty_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["serve", "--data-dir", str(tmp_path)]) == 2
    assert "no .snmprec files" in capsys.readouterr().err


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "lab.snmprec").write_text(format_snmprec(make_printer(PROFILE, 1)))
    code = "import sys; from sim.cli import main; sys.exit(main(sys.argv[1:]))"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "serve",
        "--data-dir",
        str(tmp_path),
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert "serving 1 printers on 127.0.0.1:" in line
        (outcome,) = await poll(spec(int(line.rsplit(":", 1)[1]), "lab"))
        assert outcome.state == ANSWERING and outcome.reading is not None
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
