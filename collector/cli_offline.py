"""`asr-collector simulate` and `catalogue check`: commands without the collector's config.

Is: a fleet's life replayed through the real ingest and daily run (docs/simulation-format.md),
its report written as JSON, with the days done shown at a terminal; and supplies catalogue
files checked (docs/catalogue.md), each problem named.
Is not: the simulation (collector.simulation) or the catalogue's rules (collector.catalogue).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from collector import catalogue
from collector.cli_common import EXIT_CONFIG
from collector.simulation.contract import ContractError, load_fleet, load_usage
from collector.simulation.progress import simulate_shown


def cmd_simulate(args: argparse.Namespace) -> int:
    """Replay a fleet's life through the real ingest and daily run; write the report (JSON)."""
    try:
        fleet = load_fleet(args.fleet)
        usage = load_usage(args.usage, fleet)
    except ContractError as err:
        print(f"asr-collector simulate: {err}", file=sys.stderr)
        return EXIT_CONFIG
    started = time.perf_counter()
    what = f"simulate: {fleet.days} days of {len(fleet.devices)} devices ({args.policy})"
    report = asyncio.run(simulate_shown(fleet, usage, args.policy, args.database, what))
    report["wall_seconds"] = round(time.perf_counter() - started, 2)
    text = json.dumps(report, indent=1)
    if args.out == Path("-"):
        print(text)
    else:
        args.out.write_text(text + "\n")
    print(
        f"simulated {report['devices']} devices over {report['days']} days ({args.policy}):"
        f" {report['stockout_device_days']} stock-out device-days, {report['orders']} order"
        f" lines in {report['shipments']} shipments, in {report['wall_seconds']} s",
        file=sys.stderr,
    )
    return 0


def cmd_catalogue_check(args: argparse.Namespace) -> int:
    """Check supplies catalogue files (docs/catalogue.md): 0 if they load, else each problem."""
    paths = args.files or sorted(catalogue.DIRECTORY.glob("*.toml"))
    try:
        loaded = catalogue.load(paths)
    except catalogue.CatalogueError as err:
        for problem in err.problems:
            print(f"asr-collector catalogue check: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{len(loaded.models)} models in {len(paths)} files: valid")
    return 0


def add_offline_commands(commands: Any) -> None:
    """`simulate` and `catalogue check` on the parser's commands (they take no --config)."""
    sim = commands.add_parser(
        "simulate",
        help="replay a fleet's life day by day and report (docs/simulation-format.md)",
    )
    sim.add_argument("fleet", type=Path, help="fleet.json")
    sim.add_argument("usage", type=Path, help="usage.csv")
    sim.add_argument("--out", type=Path, required=True, help="report.json ('-': stdout)")
    sim.add_argument(
        "--policy", choices=("asr", "naive"), default="asr", help="naive: the baseline policy"
    )
    sim.add_argument(
        "--database", type=Path, help="keep the simulation's SQLite store in this file"
    )
    sim.set_defaults(run=cmd_simulate, config=None)
    books = commands.add_parser("catalogue", help="the supplies catalogue (docs/catalogue.md)")
    book_commands = books.add_subparsers(dest="catalogue_command", required=True)
    book_check = book_commands.add_parser(
        "check",
        help="check catalogue files (default: the shipped mibs/catalogue/)",
        description="check catalogue files: exit 0 when valid, 2 with each problem named",
    )
    book_check.add_argument("files", type=Path, nargs="*", metavar="FILE")
    book_check.set_defaults(run=cmd_catalogue_check, config=None)
