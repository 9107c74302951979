"""ASR's policy against the naive one on every example scenario: the table of docs/replenishment.md.

    .venv/bin/python bench/policies.py [--only NAME ...] [--lead-days 3 7 10]

Each scenario of sim.scenarios runs through `simulate` twice on the same world and usage:
with ASR (the collector's real ingest and daily run) and with the naive policy (one cartridge
when a supply reads under 10 %, one shipment per order, seen only on the days it is read).
Extra lead times rerun the multi-device site with longer deliveries. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from collector.simulation.contract import load_fleet, load_usage
from collector.simulation.runner import simulate
from sim.scenarios import SCENARIOS


def _row(name: str, lead: int, asr: dict[str, Any], naive: dict[str, Any]) -> str:
    ratio = asr["shipments"] / naive["shipments"] if naive["shipments"] else 0.0
    cells = [
        name,
        str(asr["devices"]),
        str(lead),
        f"{asr['stockout_device_days']} / {naive['stockout_device_days']}",
        f"{asr['shipments']} / {naive['shipments']} ({ratio:.0%})",
        f"{asr['cartridges_shipped']} / {naive['cartridges_shipped']}",
        f"{asr['spare_cartridge_days']} / {naive['spare_cartridge_days']}",
        f"{asr['max_spares_on_site']} / {naive['max_spares_on_site']}",
        f"{_max_toner_spares(asr)} / {_max_toner_spares(naive)}",
    ]
    return "| " + " | ".join(cells) + " |"


def _max_toner_spares(report: dict[str, Any]) -> int:
    """The most spares of one toner or ink supply on site on any day (waste excluded)."""
    return max(
        (
            n
            for d in report["per_device"].values()
            for s, n in d["max_spares"].items()
            if s != "waste"
        ),
        default=0,
    )


async def _both(
    directory: Path, name: str, lead: int | None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    build = SCENARIOS[name]
    scenario = build(lead_days=lead) if lead is not None else build()
    fleet_path, usage_path = scenario.write(directory / f"{name}-{lead}")
    fleet = load_fleet(fleet_path)
    usage = load_usage(usage_path, fleet)
    asr = await simulate(fleet, usage, "asr")
    naive = await simulate(fleet, usage, "naive")
    return fleet.lead_days, asr, naive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--lead-days", nargs="*", type=int, default=[7, 10])
    parser.add_argument("--lead-scenario", default="one-contact-site")
    args = parser.parse_args(argv)
    print(
        "| scenario | devices | lead days | stock-out device-days ASR / naive"
        " | shipments ASR / naive | cartridges | spare-cartridge-days"
        " | most spares of one supply | ... of one toner/ink |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    runs: list[tuple[str, int | None]] = [(name, None) for name in args.only]
    runs += [(args.lead_scenario, lead) for lead in args.lead_days]
    with tempfile.TemporaryDirectory(prefix="asr-policies-") as tmp:
        for name, lead in runs:
            used, asr, naive = asyncio.run(_both(Path(tmp), name, lead))
            print(_row(name, used, asr, naive), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
