"""Scenarios as builders: a plan of devices turned into fleet.json and usage.csv rows.

Is: `Scenario` (the two files' contents, and how to write them), `Run` and `Plan` (a builder's
arguments and decisions), and SCENARIOS, the registry each scenario module adds itself to with
`scenario(name, description)`. Is not: the scenarios (sim.office_scenarios, sim.gauge_scenarios).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sim.office import (
    ACME_SELF,
    CSV_HEADER,
    START,
    Customer,
    Device,
    Key,
    Row,
    page_counts,
    usage_rows,
)

# -- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A fleet.json object and its usage.csv rows (and pages per date and serial, if any)."""

    name: str
    description: str  # one line, names the rules it exercises
    fleet: dict[str, Any]
    usage: list[Row] = field(repr=False)
    pages: Mapping[Key, int] | None = field(default=None, repr=False)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write DIRECTORY/fleet.json and DIRECTORY/usage.csv; both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        fleet_path, usage_path = directory / "fleet.json", directory / "usage.csv"
        fleet_path.write_text(json.dumps(self.fleet, indent=1) + "\n", encoding="utf-8")
        pages = self.pages
        with usage_path.open("w", encoding="utf-8", newline="") as out:
            rows = self.usage
            if pages is None:
                out.write(CSV_HEADER)
                for i in range(0, len(rows), 50_000):
                    chunk = rows[i : i + 50_000]
                    out.write("".join([f"{a},{b},{c},{g:.2f},{r}\n" for a, b, c, g, r in chunk]))
            else:
                out.write(CSV_HEADER.replace("\n", ",pages\n"))
                out.write(
                    "".join([f"{a},{b},{c},{g:.2f},{r},{pages[a, b]}\n" for a, b, c, g, r in rows])
                )
        return fleet_path, usage_path


@dataclass(frozen=True)
class Run:
    """A builder's arguments, and its own generator for levels, colours and gaps."""

    days: int
    lead_days: int
    seed: int
    rng: random.Random

    def date(self, day: int) -> str:
        return (START + timedelta(days=day)).isoformat()


@dataclass(frozen=True)
class Plan:
    """What a builder decides; usage is derived from the devices unless given."""

    devices: Sequence[Device]
    customers: Sequence[Customer] = ()
    closed: frozenset[int] = frozenset()
    extra: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    usage: list[Row] | None = None
    pages: bool = False  # rated yields in fleet.json and a pages column in usage.csv


def assemble(name: str, description: str, plan: Plan, run: Run) -> Scenario:
    """The scenario of a plan; entries of its extra lists dated past the run are dropped."""
    fleet: dict[str, Any] = {
        "start": START.isoformat(),
        "days": run.days,
        "lead_days": run.lead_days,
        "customers": [c.as_json() for c in plan.customers or [ACME_SELF]],
        "devices": [d.as_json(plan.pages) for d in plan.devices],
    }
    end = run.date(run.days)
    for key, entries in plan.extra.items():
        kept = [e for e in entries if e.get("date", e.get("from", "")) < end]
        if kept:
            fleet[key] = kept
    usage = plan.usage
    if usage is None:
        usage = usage_rows(plan.devices, run.days, run.seed, plan.closed)
    pages = page_counts(plan.devices, usage, run.seed) if plan.pages else None
    return Scenario(name, description, fleet, usage, pages)


SCENARIOS: dict[str, Callable[..., Scenario]] = {}


def scenario(
    name: str, description: str, lead_days: int = 3
) -> Callable[[Callable[[Run], Plan]], Callable[..., Scenario]]:
    """Register a plan as the builder SCENARIOS[name](*, days, lead_days, seed); the
    description may name {lead_days}."""

    def register(plan: Callable[[Run], Plan]) -> Callable[..., Scenario]:
        default_lead = lead_days

        def build(*, days: int = 365, lead_days: int = default_lead, seed: int = 1) -> Scenario:
            run = Run(days, lead_days, seed, random.Random(seed))
            return assemble(name, description.format(lead_days=lead_days), plan(run), run)

        build.__name__ = build.__qualname__ = plan.__name__
        build.__doc__ = f"Scenario {name}: {description}"
        SCENARIOS[name] = build
        return build

    return register
