"""Fleet simulation scenarios: fleet.json and usage.csv files for `asr-collector simulate`.

Is: a deterministic generator (the same arguments give the same bytes) of the input files of
the simulation contract (docs/simulation-format.md), plus its optional lists
`extra_orders` (R14), `replacements` (R13) and `backorders`. Each named scenario in SCENARIOS
is a small fleet (1 to 6 devices) whose usage makes one replenishment rule show clearly;
`fleet_of()` is a big mixed fleet for benchmarks. Usage is an office's: weekdays print,
weekends and closures do not, each working day varies by up to NOISE around the device's
mean, black is used more than colours, and the waste container collects WASTE_SHARE of the
toner used that day and is sized to last about as long as one black cartridge (R11).
The gauge scenarios (issue 14) also give every supply a `gauge` kind and its box's rated
`yield_pages` (RATED_PAGES_PER_GRAM), and usage.csv a `pages` column: the pages of a day
follow its black grams at the office's real yield (a share of the rated one) with +-10 %
coverage noise.
Is not: a simulator. It writes what the devices *would* use; running out, orders and
deliveries are the collector's simulator's business. Dates in a scenario past `days` are
dropped, and the early replacement dates are chosen by a rough shadow of the default rules.

    python -m sim.scenarios OUTDIR [--only NAME] [--devices N] [--days D] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

# The scenario modules register themselves in SCENARIOS on import.
import sim.gauge_scenarios
import sim.office_scenarios  # noqa: F401
from sim.office import (
    BUSY,
    COLOUR_MFP,
    LIGHT,
    MONO_MFP,
    NORMAL,
    Customer,
    Device,
    _device,
    serial_of,
)
from sim.office import WASTE_SHARE as WASTE_SHARE  # for bench/plan.py
from sim.office import Model as Model  # for bench/plan.py
from sim.registry import SCENARIOS as SCENARIOS  # every named scenario, by name
from sim.registry import Plan, Run, assemble
from sim.registry import Scenario as Scenario

# -- a big fleet ----------------------------------------------------------------------------------

CITIES = (
    ("20100 Milano", "Via Roma"),
    ("10121 Torino", "Corso Francia"),
    ("69001 Lyon", "Rue de la République"),
    ("75001 Paris", "Rue de Rivoli"),
    ("80331 München", "Marienplatz"),
)
LANGUAGES = ("it", "it", "fr", "fr", "de", "en")
FLEET_PROFILES = (LIGHT, NORMAL, NORMAL, NORMAL, BUSY)


@dataclass(frozen=True)
class _Site:
    """A site of the big fleet while it is laid out."""

    id: str
    contacts: tuple[str, ...]
    serials: tuple[int, ...]  # the devices' numbers


def _fleet_layout(devices: int, rng: random.Random) -> list[tuple[Customer, list[_Site]]]:
    """Customers, each with 1 to 6 sites of 3 to 7 devices (about 5), each site with 1 or 2
    contacts. The same seed gives the same first customers whatever the fleet's size."""
    layout: list[tuple[Customer, list[_Site]]] = []
    placed = 0
    while placed < devices:
        c = len(layout) + 1
        cid = f"cust-{c:03d}"
        sites: list[_Site] = []
        addresses: list[tuple[str, str]] = []
        for s in range(1, rng.randint(1, 6) + 1):
            if placed >= devices:
                break
            postcode, street = rng.choice(CITIES)
            addresses.append((f"site-{c:03d}-{s}", f"{street} {rng.randint(1, 200)}, {postcode}"))
            contacts = tuple(f"c{c:03d}-{s}{k}" for k in "ab"[: rng.randint(1, 2)])
            size = min(rng.randint(3, 7), devices - placed)
            sites.append(
                _Site(addresses[-1][0], contacts, tuple(range(placed + 1, placed + size + 1)))
            )
            placed += size
        kind = "mps" if rng.random() < 0.5 else "self"
        everyone = tuple(c for site in sites for c in site.contacts)
        customer = Customer(cid, kind, rng.choice(LANGUAGES), everyone, tuple(addresses))
        layout.append((customer, sites))
    return layout


def fleet_of(devices: int, days: int = 365, seed: int = 1, lead_days: int = 3) -> Scenario:
    """A big mixed fleet for benchmarks: about 5 devices per site, 1 or 2 contacts per site,
    ~70 % colour MFPs and ~30 % mono, light to busy offices, random start levels. Each device
    draws from its own generator, so device n is the same in any fleet of n or more."""
    if devices < 1:
        raise ValueError("devices: need at least 1")
    rng = random.Random(seed)
    fleet: list[Device] = []
    layout = _fleet_layout(devices, rng)
    for customer, sites in layout:
        for site in sites:
            for n in site.serials:
                serial = serial_of(n, "SIM")
                own = random.Random(f"{seed}/{serial}")
                model = COLOUR_MFP if own.random() < 0.7 else MONO_MFP
                profile = own.choice(FLEET_PROFILES).scaled(own.uniform(0.7, 1.4))
                device = _device(
                    own,
                    serial,
                    model,
                    profile,
                    customer=customer.id,
                    site=site.id,
                    contact=own.choice(site.contacts),
                    black_left=own.uniform(0.2, 1.0),
                )
                fleet.append(device)
    run = Run(days, lead_days, seed, rng)
    customers = [customer for customer, _ in layout]
    description = f"{devices} mixed devices over {len(customers)} customers, for benchmarks"
    return assemble(f"fleet-{devices}", description, Plan(fleet, customers), run)


# -- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Write every scenario (or --only one) into OUTDIR/<name>/, or a fleet_of() with
    --devices into OUTDIR/fleet-<N>/; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.scenarios", description="Write fleet simulation scenarios."
    )
    parser.add_argument("outdir", type=Path, help="folder for one sub-folder per scenario")
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="just this scenario")
    parser.add_argument("--devices", type=int, metavar="N", help="a mixed fleet of N devices")
    parser.add_argument("--days", type=int, default=365, help="days to simulate (default 365)")
    parser.add_argument("--seed", type=int, default=1, help="the seed (default 1)")
    args = parser.parse_args(argv)
    if args.days < 1 or (args.devices is not None and args.devices < 1):
        parser.error("--days and --devices need at least 1")
    if args.devices is not None:
        scenarios = [fleet_of(args.devices, days=args.days, seed=args.seed)]
    else:
        names = [args.only] if args.only else list(SCENARIOS)
        scenarios = [SCENARIOS[n](days=args.days, seed=args.seed) for n in names]
    for scenario in scenarios:
        fleet_path, _ = scenario.write(args.outdir / scenario.name)
        print(
            f"{scenario.name}: {len(scenario.fleet['devices'])} devices,"
            f" {len(scenario.usage)} rows -> {fleet_path.parent}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
