"""`make demo`: the agent reads a small simulated fleet on 127.0.0.1 and shows what it read.

The printers are our own SNMP responder (sim/) on a free loopback port: colour and mono,
percent and mass units, one in power-save, one that drops the first packets while it wakes,
and one switched off. Later issues grow this into the whole pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone

from agent.poller import Poller, PrinterSpec, SnmpClients
from agent.profile import load_profile
from agent.render import render_table
from agent.snmp.session import Credentials, Target
from sim.fleet import community, make_fleet
from sim.responder import Faults, Responder, SimPrinter

FLEET = 6


async def run(show_json: bool) -> int:
    """Serve the fleet, poll it twice, print each printer and a summary."""
    profile = load_profile()
    fleet = make_fleet(profile, FLEET, seed=7)
    printers = {name: SimPrinter(entries) for name, entries in fleet.items()}
    printers[community(4)].faults = Faults(drop_first=2)  # waking from power-save
    printers[community(5)].faults = Faults(asleep=True)  # switched off
    async with Responder(printers) as port, SnmpClients() as clients:
        print(f"Simulated fleet: {FLEET} printers on 127.0.0.1:{port} (SNMP v2c)\n")
        specs = [
            PrinterSpec(name, Target("127.0.0.1", port, timeout=0.2, retries=3),
                        Credentials(community=name))
            for name in printers
        ]  # fmt: skip
        poller = Poller(profile, clients)
        # The switched-off printer answered yesterday: it is asleep, not yet unreachable.
        poller.remember(community(5), datetime.now(timezone.utc) - timedelta(hours=20))
        outcomes = await poller.poll_all(specs)
        for outcome in outcomes:
            print(f"== {outcome.printer.name}: {outcome.state}")
            if outcome.reading is None:
                print(f"   {outcome.error}\n")
                continue
            if show_json:
                print(json.dumps(outcome.reading.to_dict(), ensure_ascii=False, indent=2))
            else:
                print(render_table(outcome.reading) + "\n")
        states: dict[str, int] = {}
        for outcome in outcomes:
            states[outcome.state] = states.get(outcome.state, 0) + 1
        supplies = sum(len(o.reading.supplies) for o in outcomes if o.reading)
        print("Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
              + f"; {supplies} supplies read")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print readings as poll JSON")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.json))


if __name__ == "__main__":
    sys.exit(main())
