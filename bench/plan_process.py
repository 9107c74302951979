"""`asr-collector plan --now` as a process: its wall time and peak RSS on a built fleet.

    .venv/bin/python bench/plan_process.py [--devices 30000 100000] [--keep DIR ...]
                                           [--rounds 2] [--chunk DEVICES] [--real-clock]

Issue 16's target: peak RSS <= 300 MB at 30,000 and at 100,000 devices (the fleets
`bench/plan.py` builds; the SQLite ones, a collector's embedded database).

For each fleet size: the fleet `bench/plan.py` builds (its `built`: reused from the first
`--keep` folder that holds it, else built into the first one, or into a temporary folder),
then each round on a fresh copy of the database file:
- a config TOML naming the copy (`[database] url = "sqlite:///COPY"`, `state_dir` beside it);
- the real command, `asr-collector plan --now --config FILE` (plus `--chunk` if given), in
  a fresh interpreter, `collector.cli.main` as the console script calls it, with one change:
  the command's clock (`collector.cli_jobs.utcnow`) reads the fleet's evening (bench/plan.py's
  NOW, 2026-06-10 23:00 UTC), so it does the day's work the fleet was built for. (libfaketime
  was tried first: under it the run's SQLite writes took 25.9 s instead of 0.7 s at 10,000
  devices, its clock calls intercepted everywhere.) `--real-clock` runs the console script
  itself at today's date instead: every track months old, every device dark, a different run;
- `wall s`: from the spawn to the exit, interpreter start, imports, the migration check and
  the run included; `peak RSS MB`: the child's ru_maxrss from wait4 (the largest resident
  size the process, or any process it waited for, ever had: the whole interpreter);
- the run's own read / decide / write seconds and its counts, from the JSON it prints.
The database file is in the OS page cache (it was just copied), as on a collector that runs
every day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchinfo import code_version
from plan import FORMAT, NOW, Built, Counts, _machine, _marker, built

from collector.replenish.settings import Rules

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # the venv's: run this script with .venv/bin/python
COLLECTOR = PYTHON.parent / "asr-collector"
# the console script's own call, its clock at the time given first
AT_NOW = """
import sys
from datetime import datetime
import collector.cli_jobs
from collector.cli import main
collector.cli_jobs.utcnow = lambda: datetime.fromisoformat(sys.argv[1])
sys.exit(main(sys.argv[2:]))
"""
HEADER = (
    "| devices | supplies | round | wall s | peak RSS MB | run read s | decide s | write s"
    " | chunks | shipments | lines |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


@dataclass
class Round:
    devices: int
    supplies: int
    n: int
    wall: float
    peak_mb: float
    printed: dict[str, Any]

    def row(self) -> str:
        seconds = self.printed.get("seconds", {})
        return (
            f"| {self.devices:,} | {self.supplies:,} | {self.n} | {self.wall:.1f}"
            f" | {self.peak_mb:.0f} | {seconds.get('read', 0):.1f}"
            f" | {seconds.get('decide', 0):.1f} | {seconds.get('write', 0):.1f}"
            f" | {self.printed.get('chunks_planned_here', '?')}"
            f" | {self.printed.get('shipments', 0):,} | {self.printed.get('lines', 0):,} |"
        )


def fleet(devices: int, seed: int, keeps: list[Path], work: Path) -> Built:
    """The built SQLite fleet of this size: from a --keep folder that has it, else built."""
    rules = Rules()
    for keep in keeps:
        marker = _marker(keep, "sqlite", devices, seed)
        if marker.exists() and json.loads(marker.read_text()).get("format") == FORMAT:
            source, reused = asyncio.run(built("sqlite", devices, seed, rules, work, keep, ""))
            if reused:
                return source
    into = keeps[0] if keeps else None
    print(f"  building the {devices:,}-device fleet into {into or work}", flush=True)
    source, _ = asyncio.run(built("sqlite", devices, seed, rules, work, into, ""))
    return source


def config_for(database: Path, state: Path) -> Path:
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / "collector.toml"
    path.write_text(
        f'[collector]\nstate_dir = "{state}"\nlog_level = "warning"\n\n'
        f'[database]\nurl = "sqlite:///{database}"\n'
    )
    return path


def measure(config: Path, chunk: int | None, real_clock: bool) -> tuple[float, float, str, str]:
    """Run the command once: wall seconds, peak RSS MB, stdout, stderr."""
    arguments = ["plan", "--now", "--config", str(config)]
    if chunk:
        arguments += ["--chunk", str(chunk)]
    command = (
        [str(COLLECTOR), *arguments]
        if real_clock
        else [str(PYTHON), "-c", AT_NOW, NOW.isoformat(), *arguments]
    )
    # this checkout's code, also when the script runs from another worktree than the venv's
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}:\n{stderr}")
    return wall, usage.ru_maxrss / 1024, stdout, stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument(
        "--keep",
        type=Path,
        action="append",
        default=[],
        help="a folder bench/plan.py --keep built into (repeat for several); the first one"
        " takes a fleet that is built",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs, each on a fresh copy")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, help="passed to plan --chunk (default: its own)")
    parser.add_argument(
        "--real-clock", action="store_true", help="run at today's date, not the fleet's evening"
    )
    args = parser.parse_args()
    print(code_version())
    print(_machine())
    print(f"run at {'the real clock' if args.real_clock else NOW.isoformat()}", flush=True)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="asr-bench-planproc-") as tmp:
        work = Path(tmp)
        for devices in args.devices:
            source = fleet(devices, args.seed, args.keep, work)
            counts = Counts(**source.counts)
            print(f"{devices:,} devices: {source.where}: {counts.line()}", flush=True)
            for n in range(1, args.rounds + 1):
                copy = work / f"round-{devices}-{n}.db"
                shutil.copyfile(source.where, copy)
                copy.chmod(0o600)  # as the collector keeps it (else it says so on stderr)
                try:
                    config = config_for(copy, work / f"state-{devices}-{n}")
                    wall, peak, stdout, stderr = measure(config, args.chunk, args.real_clock)
                finally:
                    for leftover in work.glob(f"round-{devices}-{n}.db*"):
                        leftover.unlink()
                lines = [line for line in stdout.splitlines() if line.startswith("{")]
                printed = json.loads(lines[-1]) if lines else {}
                result = Round(devices, counts.supplies, n, wall, peak, printed)
                rounds.append(result)
                print(f"  round {n}: {result.row()}", flush=True)
                if stderr.strip():
                    print(f"  stderr: {stderr.strip()[-500:]}", flush=True)
    print(f"\n{HEADER}")
    for result in rounds:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
