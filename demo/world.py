"""The demo's world: who owns which printer, who logs in, when things happen, and its clock.

Is: the fleet's layout over customers, sites and contacts; the portal's users and who
registers for each customer (R4); the helpdesk's part numbers for the model no catalogue
knows; the day's schedule (polls, the daily run); what `python -m demo` was asked for
(Options); the clock every part sees (DemoClock); the state directory a run starts in.
Is not: anything that runs (demo.pipeline starts the parts, demo.days drives each day).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, time, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = ROOT / "examples" / "demo" / "customers.toml"
HELPDESK = "helpdesk@dealer.example"
SEED = 7
# Where the printers are: (customer, site, supplies contact, how many), in printer order.
LAYOUT = (
    ("rossi", "milano", "anna", 4),
    ("rossi", "milano", "marco", 2),
    ("dupont", "lyon", "claire", 5),
    ("dupont", "paris", "claire", 4),
    ("harbour", "leeds", "sam", 5),
    ("harbour", "leeds", "luca", 4),
)
# Portal users: name, role, customer. Who registers a device (R4): the customer's own user
# for self-service customers, the helpdesk for MPS ones.
USERS = (
    ("helpdesk", "helpdesk", None),
    ("anna", "customer", "rossi"),
    ("claire", "customer", "dupont"),
    ("sam", "customer", "harbour"),
)
REGISTERS = {"rossi": "anna", "dupont": "helpdesk", "harbour": "sam"}
# What the demo's helpdesk answers for the SimLaser M460dn, a model no catalogue knows.
PART_NUMBERS = {"black": "SL-TN-K-M460", "waste": "SL-WT-M460"}
INSTALL_AT_PERCENT = 5.0  # the customer puts a delivered cartridge in when this low
POLLS = (time(6, 30), time(17, 0))  # before office hours (power-save asleep), and after
PLAN_AT = time(23, 0)
MARKER = ".asr-demo"  # marks a state directory as the demo's, which a new run may wipe


@dataclass(frozen=True)
class Options:
    """What `python -m demo` was asked for."""

    state_dir: Path
    days: int = 60
    printers: int = 24
    port: int = 8443
    serve: bool = False
    dark_from: int = 3  # the day one printer is switched off ...
    dark_until: int = 22  # ... and back on (R16: disconnected after 7 days, then reconnected)


class DemoClock:
    """The time every part sees: set by the demo while it runs, the real one after."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self.live = False

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) if self.live else self._now

    def set(self, when: datetime) -> None:
        self._now = max(self._now, when)


def at(date: datetime, when: time) -> datetime:
    """The moment `when` of `date`'s day, in UTC."""
    return datetime.combine(date.date(), when, tzinfo=timezone.utc)


def places(count: int) -> list[tuple[str, str, str]]:
    """Each printer's (customer, site, contact): LAYOUT's shares scaled to `count` printers."""
    total = sum(share for *_, share in LAYOUT)
    out: list[tuple[str, str, str]] = []
    for customer, site, contact, share in LAYOUT:
        out += [(customer, site, contact)] * max(1, round(share * count / total))
    while len(out) < count:
        out.append(out[-1])
    return out[:count]


def fresh_state_dir(path: Path) -> Path:
    """An empty state directory for this run: the last run's is wiped (a run starts clean)."""
    if path.exists():
        if not (path / MARKER).exists() and any(path.iterdir()):
            raise SystemExit(
                f"{path} exists and is not a demo state directory (no {MARKER} in it):"
                " not wiping it; choose another --state-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by `python -m demo`; wiped by its next run\n")
    return path
