"""Benchmark: CPU time per printer read and printers per second, ours beside net-snmp.

    .venv/bin/python bench/snmp_read.py [--printers 200] [--concurrency 8,32,64,200]

A seeded fleet of simulated printers (sim.fleet) is served by `asr-printer-sim` in a
subprocess, so the responder's CPU is never counted. Every row reads every printer once per
round, all on 127.0.0.1:
- `native`: the agent's Poller with its own v1/v2c client, a whole read (GETBULK + GET and
  the decoding into a PrinterReading), at several concurrencies (`max_in_flight`);
- `pysnmp`: the same Poller with the pysnmp backend;
- `net-snmp`: per printer one `snmpget` (the scalars and the per-device objects the agent
  reads) and one `snmpbulkwalk -Cr10` of prtMarkerSuppliesTable, printers run concurrently
  (`concurrency` at a time); it prints values but decodes nothing.
- `pysnmp v3`, only with `--snmpsim PATH` (snmpsim-command-responder, e.g.
  .venv-sim/bin/snmpsim-command-responder as `make setup` installs it): the same fleet
  written as snmprec files and served by snmpsim with SNMPv3 authPriv (SHA/AES), one
  context per printer, read by the pysnmp backend.
CPU is this process's (time.process_time) for ours and that of the finished children
(RUSAGE_CHILDREN) for net-snmp; the responders are reaped only after the net-snmp rows, so
their CPU never counts. With --profile, one native fleet read runs under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime
import os
import platform
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent.poller import ANSWERING, Poller, PrinterSpec, SnmpClients
from agent.profile import Profile, load_profile
from agent.snmp.ber import format_oid
from agent.snmp.errors import SnmpTimeout
from agent.snmp.session import Credentials, Target
from sim.fleet import community, make_fleet
from sim.snmprec import format_snmprec

HOST = "127.0.0.1"  # only loopback is ever measured
# The SNMPv3 user the bench gives snmpsim and the agent: a throwaway, on loopback only.
V3 = Credentials(
    "3",
    user="asr-bench",
    auth_protocol="SHA",
    auth_key="bench-auth",
    priv_protocol="AES",
    priv_key="bench-priv",
)


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    method: str
    concurrency: int
    reads: int
    failed: int
    cpu_s: float
    wall_s: float  # median of the rounds: one read of the whole fleet

    def cells(self, printers: int) -> list[str]:
        """The table's cells for this row."""
        return [
            self.method,
            str(self.concurrency),
            str(self.reads),
            str(self.failed),
            f"{self.cpu_s / self.reads * 1000:.2f}",
            f"{self.wall_s:.3f}",
            f"{printers / self.wall_s:.0f}",
        ]


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _start_fleet(printers: int, seed: int) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim.cli",
        "serve",
        "--fleet",
        str(printers),
        "--seed",
        str(seed),
        "--host",
        HOST,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    if not line:
        raise SystemExit("bench: the fleet responder did not start")
    return process, int(line.rsplit(":", 1)[1])


async def _ours(
    profile: Profile, specs: list[PrinterSpec], method: str, concurrency: int, rounds: int
) -> Row:
    async with SnmpClients() as clients:
        poller = Poller(profile, clients, max_in_flight=concurrency)
        # Warm-up: sockets opened, pysnmp's engine built, code paths run once.
        await poller.poll_all(specs[:concurrency])
        cpu, walls, failed = 0.0, [], 0
        for _ in range(rounds):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            outcomes = await poller.poll_all(specs)
            walls.append(time.perf_counter() - wall0)
            cpu += time.process_time() - cpu0
            failed += sum(o.state != ANSWERING for o in outcomes)
    return Row(method, concurrency, len(specs) * rounds, failed, cpu, statistics.median(walls))


async def _net_snmp(
    profile: Profile, port: int, names: list[str], concurrency: int, rounds: int
) -> Row:
    h = 1
    get_oids = [
        *map(format_oid, profile.scalars.values()),
        *(format_oid((*oid, h)) for oid in profile.per_device.values()),
        *(format_oid((*oid, h, 1)) for oid in profile.per_marker.values()),
    ]
    table = format_oid(profile.supplies_table)
    where = f"{HOST}:{port}"
    slots = asyncio.Semaphore(concurrency)

    async def read(name: str) -> bool:
        async with slots:
            for args in (
                ["snmpget", "-v2c", "-On", "-c", name, where, *get_oids],
                ["snmpbulkwalk", "-v2c", "-On", "-Cr10", "-c", name, where, table],
            ):
                process = await asyncio.create_subprocess_exec(
                    *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                out, err = await process.communicate()
                if process.returncode or err or not out:
                    return False
            return True

    await asyncio.gather(*(read(n) for n in names[:concurrency]))  # warm-up: page cache
    cpu, walls, failed = 0.0, [], 0
    for _ in range(rounds):
        cpu0, wall0 = _cpu_children(), time.perf_counter()
        ok = await asyncio.gather(*(read(n) for n in names))
        walls.append(time.perf_counter() - wall0)
        cpu += _cpu_children() - cpu0
        failed += ok.count(False)
    return Row("net-snmp", concurrency, len(names) * rounds, failed, cpu, statistics.median(walls))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _write_fleet(work: Path, profile: Profile, printers: int, seed: int) -> tuple[Path, Path]:
    """The fleet as work/data/NAME.snmprec, and an empty work/cache; both for snmpsim."""
    data, cache = work / "data", work / "cache"
    data.mkdir()
    cache.mkdir()
    for name, entries in make_fleet(profile, printers, seed).items():
        (data / f"{name}.snmprec").write_text(format_snmprec(entries), encoding="utf-8")
    if os.geteuid() == 0:
        # snmpsim refuses to run as root: it becomes nobody, who must read the data.
        work.chmod(0o755)
        for path in (data, *data.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.chown(cache, "nobody", "nogroup")
    return data, cache


async def _start_snmpsim(
    command: str, profile: Profile, printers: int, seed: int
) -> tuple[asyncio.subprocess.Process, int, Path]:
    """snmpsim serving the same fleet, written as snmprec files; v3 contexts = communities."""
    work = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    data, cache = _write_fleet(work, profile, printers, seed)
    port = _free_port()
    args = [
        command,
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint={HOST}:{port}",
        "--logging-method=null",
        f"--v3-user={V3.user}",
        f"--v3-auth-proto={V3.auth_protocol}",
        f"--v3-auth-key={V3.auth_key}",
        f"--v3-priv-proto={V3.priv_protocol}",
        f"--v3-priv-key={V3.priv_key}",
    ]
    if os.geteuid() == 0:
        args += ["--process-user=nobody", "--process-group=nogroup"]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    probe = PrinterSpec("probe", Target(HOST, port, 0.5, 0), Credentials("2c", community(0)))
    async with SnmpClients() as clients:
        session = await clients.session(probe)
        for _ in range(60):  # snmpsim indexes every file before it answers
            try:
                await session.get([profile.scalars["sysDescr"]])
                return process, port, work
            except SnmpTimeout:
                if process.returncode is not None:
                    break
    process.terminate()
    await process.wait()
    shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(f"bench: snmpsim ({command}) did not answer on {HOST}:{port}")


def _v2c_specs(port: int, names: list[str], backend: str) -> list[PrinterSpec]:
    return [
        PrinterSpec(n, Target(HOST, port), Credentials("2c", community=n), backend) for n in names
    ]


def _v3_specs(port: int, names: list[str]) -> list[PrinterSpec]:
    return [
        PrinterSpec(n, Target(HOST, port), dataclasses.replace(V3, context=n), "pysnmp")
        for n in names
    ]


def _machine() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model
            )
    except OSError:
        pass
    net_snmp = "not installed"
    if shutil.which("snmpget"):
        probe = subprocess.run(["snmpget", "--version"], capture_output=True, text=True)
        net_snmp = (probe.stdout + probe.stderr).strip().replace("NET-SNMP version: ", "")
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {os.cpu_count()} CPUs (nproc), {model}, {platform.system()} "
        f"{platform.release()}",
        f"python: {platform.python_version()}; net-snmp: {net_snmp}",
    ]


def _table(rows: list[Row], printers: int) -> str:
    head = ["method", "concurrency", "reads", "failed", "CPU ms/read", "wall s", "printers/s"]
    lines = [head, ["---"] * len(head), *(r.cells(printers) for r in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


async def _profile(profile: Profile, specs: list[PrinterSpec], concurrency: int) -> None:
    async with SnmpClients() as clients:
        poller = Poller(profile, clients, max_in_flight=concurrency)
        await poller.poll_all(specs[:concurrency])
        profiler = cProfile.Profile()
        profiler.enable()
        await poller.poll_all(specs)
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"\n## cProfile: native, concurrency {concurrency}, {len(specs)} reads")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


async def _v3_rows(profile: Profile, args: argparse.Namespace, names: list[str]) -> list[Row]:
    snmpsim, port, work = await _start_snmpsim(args.snmpsim, profile, args.printers, args.seed)
    try:
        v3 = _v3_specs(port, names)
        return [
            await _ours(profile, v3, "pysnmp v3", concurrency, args.rounds)
            for concurrency in args.pysnmp_concurrency
        ]
    finally:
        snmpsim.terminate()
        await snmpsim.wait()
        shutil.rmtree(work, ignore_errors=True)


async def _main(args: argparse.Namespace) -> None:
    profile = load_profile()
    names = [community(n) for n in range(args.printers)]
    for line in _machine():
        print(line)
    print(f"fleet: {args.printers} printers, seed {args.seed}, {args.rounds} rounds per row\n")
    rows = []
    process, port = await _start_fleet(args.printers, args.seed)
    try:
        native, pysnmp = _v2c_specs(port, names, "native"), _v2c_specs(port, names, "pysnmp")
        for concurrency in args.concurrency:
            rows.append(await _ours(profile, native, "native", concurrency, args.rounds))
        for concurrency in args.pysnmp_concurrency:
            rows.append(await _ours(profile, pysnmp, "pysnmp", concurrency, args.rounds))
        if shutil.which("snmpget") and shutil.which("snmpbulkwalk"):
            for concurrency in args.net_snmp_concurrency:
                rows.append(await _net_snmp(profile, port, names, concurrency, args.rounds))
        else:
            print("net-snmp rows skipped: snmpget not found (apt-get install -y snmp)\n")
        # After the net-snmp rows: snmpsim, once reaped, counts among the children.
        if args.snmpsim:
            rows += await _v3_rows(profile, args, names)
        else:
            print("pysnmp v3 rows skipped: no --snmpsim PATH given\n")
        print(_table(rows, args.printers))
        if args.profile:
            await _profile(profile, native, args.concurrency[0] if args.concurrency else 32)
    finally:
        process.terminate()
        await process.wait()


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=200, help="fleet size (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="fleet reads per row")
    parser.add_argument("--concurrency", type=_ints, default=[8, 32, 64, 200])
    parser.add_argument("--pysnmp-concurrency", type=_ints, default=[32])
    parser.add_argument("--net-snmp-concurrency", type=_ints, default=[8, 32])
    parser.add_argument(
        "--snmpsim", metavar="PATH", help="snmpsim-command-responder, for the SNMPv3 row"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one native fleet read")
    args = parser.parse_args(argv)
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
