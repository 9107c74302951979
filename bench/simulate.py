"""`asr-collector simulate` for a big fleet: the wall time of a year of 1,000 devices.

    .venv/bin/python bench/simulate.py [--devices 1000] [--days 365] [--seed 1]
                                       [--limit 240] [--profile] [--phases]

The scenario is `sim.scenarios.fleet_of(devices, days)` (about 5 devices per site, ~70 %
colour MFPs), written as fleet.json and usage.csv into a temporary folder. Each policy then
runs as the real command line, a child process of its own:

    asr-collector simulate fleet.json usage.csv --out report.json [--policy naive]

`wall s` is this process's clock around the child (start-up and report writing included);
`report s` is the `wall_seconds` the command writes into report.json (the simulation alone);
`CPU s` is the child's user + system time and `peak RSS` its maximum resident size (from
`getrusage(RUSAGE_CHILDREN)`). The figures of the run (readings pushed through ingest, order
lines, shipments, stock-out device-days) come from report.json. Target (issue 16): 60 s
for 1,000 devices over 365 days, 10 minutes for 10,000.

A child still running after `--limit` seconds is stopped, and the simulation is profiled
instead: cProfile over `collector.simulation.runner.simulate` in this process for
`--profile-devices` devices (100 by default) over the same days, top entries printed.
`--profile` profiles after the timed runs whatever their time. `--phases` runs the ASR
simulation of `--profile-devices` devices once more in this process, without a profiler, and
prints the wall seconds of its phases: the agent's reads, its pushes through the ingest, the
daily run (run_plan), and the rest (the world, shipping, registration).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchinfo import code_version

from collector.simulation import runner
from collector.simulation.agent import SimAgent
from collector.simulation.contract import load_fleet, load_usage
from collector.simulation.runner import simulate
from sim.scenarios import fleet_of

WAITS = (  # a thread's idle time, not work
    "'get' of '_queue.SimpleQueue'",
    "'acquire' of '_thread.lock'",
    "'poll' of 'select.epoll'",
)


@dataclass
class Result:
    """One policy's run of the command."""

    policy: str
    wall: float
    cpu: float
    peak_rss_mb: float
    report: dict[str, Any] | None  # None: stopped at the limit


def _console_script() -> str:
    beside = Path(sys.executable).parent / "asr-collector"
    if beside.exists():
        return str(beside)
    found = shutil.which("asr-collector")
    if found is None:
        raise SystemExit("asr-collector: not found beside the interpreter nor on PATH")
    return found


def write_scenario(devices: int, days: int, seed: int, folder: Path) -> tuple[Path, Path, int]:
    """fleet.json and usage.csv of fleet_of(devices, days) in `folder`; and the usage rows."""
    scenario = fleet_of(devices, days=days, seed=seed)
    fleet_path, usage_path = scenario.write(folder)
    return fleet_path, usage_path, len(scenario.usage)


def run_command(
    fleet: Path, usage: Path, out: Path, policy: str, limit: float
) -> tuple[Result, list[str]]:
    """Run `asr-collector simulate` as a child; its figures and the command line."""
    command = [_console_script(), "simulate", str(fleet), str(usage), "--out", str(out)]
    if policy != "asr":
        command += ["--policy", policy]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()  # this process's own child, by its handle
        child.communicate()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return Result(policy, wall, cpu, after.ru_maxrss / 1024, None), command
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)}: exit {child.returncode}\n{err.decode()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    report = json.loads(out.read_text())
    # ru_maxrss of children is the largest child so far: the policies run largest-first.
    return Result(policy, wall, cpu, after.ru_maxrss / 1024, report), command


def _all_threads(
    work: Callable[[], None], stream: io.StringIO
) -> tuple[pstats.Stats, float, list[float]]:
    """Run `work` under cProfile in this thread and in every thread it starts (the SQLite
    reader and writer, aiosqlite's, the executor's that runs the plan's decisions); the merged
    stats, the wall time, and each thread's profiled seconds."""
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()

    def first_call(_frame: Any, _event: str, _arg: Any) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile()
        with lock:
            profilers.append(profiler)
        profiler.enable()

    main = cProfile.Profile()
    threading.setprofile(first_call)
    started = time.perf_counter()
    main.enable()
    try:
        work()
    finally:
        main.disable()
        threading.setprofile(None)
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(main, stream=stream)
    seconds = [stats.get_stats_profile().total_tt]
    for profiler in profilers:
        profiler.disable()
        part = pstats.Stats(profiler)
        seconds.append(part.get_stats_profile().total_tt)
        stats.add(part)
    return stats, elapsed, seconds


def profile(devices: int, days: int, seed: int, folder: Path, top: int) -> str:
    """cProfile of the ASR simulation of a smaller fleet, in this process: the top entries."""
    fleet_path, usage_path, _ = write_scenario(devices, days, seed, folder)
    fleet = load_fleet(fleet_path)
    usage = load_usage(usage_path, fleet)

    def work() -> None:
        asyncio.run(simulate(fleet, usage, "asr"))

    text = io.StringIO()
    stats, elapsed, seconds = _all_threads(work, text)
    text.write(
        f"cProfile: simulate, {devices} devices x {days} days, {elapsed:.1f} s wall under the"
        f" profiler; profiled seconds by thread (main first, including its waits):"
        f" {', '.join(f'{s:.1f}' for s in seconds)}\n"
    )
    for key in [k for k in stats.stats if any(w in k[2] for w in WAITS)]:  # type: ignore[attr-defined]
        del stats.stats[key]  # type: ignore[attr-defined]
    text.write("idle waits left out: " + ", ".join(WAITS) + "\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"collector/|agent/|wire/", top)
    return text.getvalue()


def _timing(spent: dict[str, float], name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    """`call`, adding its wall seconds (an awaited coroutine's included) to spent[name]."""

    async def awaited(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args)
        finally:
            spent[name] += time.perf_counter() - started

    def called(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            spent[name] += time.perf_counter() - started

    return awaited if asyncio.iscoroutinefunction(call) else called


def phases(devices: int, days: int, seed: int, folder: Path) -> str:
    """The wall seconds of the ASR simulation's phases, each call timed where the runner
    makes it (SimAgent.read and push, runner.run_plan); the rest is the world and shipping."""
    fleet_path, usage_path, _ = write_scenario(devices, days, seed, folder)
    fleet = load_fleet(fleet_path)
    usage = load_usage(usage_path, fleet)
    timed: list[tuple[object, str, str]] = [
        (SimAgent, "read", "read"),
        (SimAgent, "push", "push"),
        (runner, "run_plan", "daily run"),
    ]
    spent = {name: 0.0 for _, _, name in timed}
    originals = [getattr(owner, attribute) for owner, attribute, _ in timed]
    for (owner, attribute, name), call in zip(timed, originals):
        setattr(owner, attribute, _timing(spent, name, call))
    try:
        started = time.perf_counter()
        asyncio.run(simulate(fleet, usage, "asr"))
        total = time.perf_counter() - started
    finally:
        for (owner, attribute, _), call in zip(timed, originals):
            setattr(owner, attribute, call)
    rest = total - sum(spent.values())
    parts = ", ".join(f"{name} {s:.1f} s ({s / total:.0%})" for name, s in spent.items())
    return (
        f"phases: simulate, {devices} devices x {days} days, {total:.1f} s wall: {parts},"
        f" the rest {rest:.1f} s ({rest / total:.0%})"
    )


def _row(result: Result, devices: int, days: int) -> str:
    report = result.report
    if report is None:
        return (
            f"| {result.policy} | {devices} | {days} | > {result.wall:.1f} (stopped) |"
            f" - | {result.cpu:.1f} | {result.peak_rss_mb:.0f} | - | - | - | - |"
        )
    return (
        f"| {result.policy} | {report['devices']} | {report['days']} | {result.wall:.1f} |"
        f" {report['wall_seconds']:.1f} | {result.cpu:.1f} | {result.peak_rss_mb:.0f} |"
        f" {report.get('readings', 0):,} | {report['orders']:,} | {report['shipments']:,} |"
        f" {report['stockout_device_days']:,} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policies", default="asr,naive", help="comma-separated, asr first")
    parser.add_argument("--limit", type=float, default=240.0, help="seconds before profiling")
    parser.add_argument("--profile", action="store_true", help="profile after the timed runs")
    parser.add_argument("--phases", action="store_true", help="time the phases, in process")
    parser.add_argument("--profile-devices", type=int, default=100)
    parser.add_argument("--top", type=int, default=25, help="profile entries to print")
    args = parser.parse_args()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(code_version())
    print(
        f"machine: nproc {os.cpu_count()}, {platform.machine()}, Linux {platform.release()},"
        f" Python {platform.python_version()}, load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="asr-bench-sim-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        fleet_path, usage_path, rows = write_scenario(
            args.devices, args.days, args.seed, work / "scenario"
        )
        print(
            f"scenario: fleet_of({args.devices}, {args.days}, seed={args.seed}): {rows:,} usage"
            f" rows, {usage_path.stat().st_size / 1e6:.1f} MB usage.csv,"
            f" written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        for policy in args.policies.split(","):
            out = work / f"report-{policy}.json"
            result, command = run_command(fleet_path, usage_path, out, policy, args.limit)
            print(f"ran: {shlex.join(command)}", flush=True)
            results.append(result)
        print(
            "\n| policy | devices | days | wall s | report s | CPU s | peak RSS MB | readings"
            " | order lines | shipments | stock-out device-days |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|"
        )
        for result in results:
            print(_row(result, args.devices, args.days))
        stopped = any(r.report is None for r in results)
        if stopped:
            print(f"\nstopped after {args.limit:.0f} s: profiling a smaller fleet instead")
        if stopped or args.profile:
            print()
            print(profile(args.profile_devices, args.days, args.seed, work / "small", args.top))
        if args.phases:
            print(phases(args.profile_devices, args.days, args.seed, work / "phases"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
