"""The simulation's input files (fleet.json, usage.csv) as records, and their one error.

This is the parser of the two input files of the simulation contract (docs/simulation-format.md),
which it accepts exactly as written there (a supply's `gauge` is parsed by
collector.simulation.gauges), plus our optional extensions of fleet.json (`extra_orders`,
`replacements`, `backorders`) and, in usage.csv, an empty `reachable` cell meaning its
default 1. Every malformed input is a `ContractError` naming the file and the JSON key path or
the CSV line. The parsers live in collector.simulation.fleet_file and .usage_file;
collector.simulation.contract gathers all three. It is not the simulator: nothing here
consumes toner, places orders, runs the collector's jobs or writes the report.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from collector.replenish.settings import Rules
from collector.simulation.gauges import GRAMS, Gauge

MAX_DAYS = 3660  # ten years: a longer run is surely a typo
DEFAULT_LEAD_DAYS = 3
MAX_YIELD_PAGES = 2**31 - 1  # an Integer32, as the store keeps it
MAX_PAGES_PER_DAY = 10**9  # a billion pages in a day is surely a typo
USAGE_COLUMNS = ("date", "serial", "supply", "grams", "reachable", "pages")
_REQUIRED_COLUMNS = ("date", "serial", "supply", "grams")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ContractError(ValueError):
    """An input file breaks the contract; `where` is a key path (JSON) or 'line N' (CSV)."""

    def __init__(self, file: str, where: str, message: str) -> None:
        super().__init__(f"{file}: {where}: {message}")
        self.file = file
        self.where = where
        self.message = message


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """A person of a customer who is told about orders and problems."""

    id: str
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Site:
    """A customer's address where devices stand and cartridges are delivered."""

    id: str
    address: str


@dataclass(frozen=True)
class Customer:
    """A customer: `kind` is 'mps' (the helpdesk is told) or 'self' (the customer is told)."""

    id: str
    kind: str
    language: str | None
    contacts: tuple[Contact, ...]
    sites: tuple[Site, ...]
    name: str | None = None


@dataclass(frozen=True)
class SupplySpec:
    """A device's supply: grams left (toner, ink) or collected (waste) at the start, how its
    device reports the level, and the page yield rated on its box."""

    id: str
    kind: str
    colour: str | None
    sku: str
    capacity_grams: float
    start_grams: float
    gauge: Gauge = GRAMS
    yield_pages: int | None = None


@dataclass(frozen=True)
class DeviceSpec:
    """A printer of the fleet, where it stands, whom to tell and its supplies."""

    serial: str
    model: str | None
    customer: str
    site: str
    contact: str
    supplies: tuple[SupplySpec, ...]


@dataclass(frozen=True)
class ExtraOrder:
    """R14: an order the helpdesk records by hand on `date`."""

    date: datetime.date
    serial: str
    supply: str
    quantity: int


@dataclass(frozen=True)
class Replacement:
    """R13: the customer swaps the cartridge early on `date`."""

    date: datetime.date
    serial: str
    supply: str


@dataclass(frozen=True)
class Backorder:
    """Orders of `sku` placed in [start, end] ship `delay_days` late."""

    sku: str
    start: datetime.date
    end: datetime.date
    delay_days: int


@dataclass(frozen=True)
class Fleet:
    """A fleet.json: the run's dates, the rules, customers, devices and scenario events."""

    start: datetime.date
    days: int
    lead_days: int
    rules: Rules
    settings: dict[str, Any] = field(hash=False)  # the raw overrides as given
    customers: tuple[Customer, ...]
    devices: tuple[DeviceSpec, ...]
    extra_orders: tuple[ExtraOrder, ...] = ()
    replacements: tuple[Replacement, ...] = ()
    backorders: tuple[Backorder, ...] = ()

    def day_index(self, day: datetime.date) -> int:
        """The index of `day` in the run (0 for start; outside [0, days) when outside the run)."""
        return (day - self.start).days

    def date_of(self, index: int) -> datetime.date:
        """The date of day `index` of the run."""
        return self.start + datetime.timedelta(days=index)


@dataclass
class Usage:
    """A usage.csv: per device and supply, the grams of each day, the reachable days, and
    the pages of each day when the file has a `pages` column."""

    days: int
    grams: dict[str, dict[str, list[float]]]  # serial -> supply id -> grams per day index
    reachable: dict[str, bytearray]  # serial -> per day 1 (answered SNMP) or 0
    pages: dict[str, list[int]] | None = None  # serial -> pages per day index (0 if no row)


# --- fleet.json: the shape, checked by pydantic ------------------------------------------------


def read_reason(err: OSError | UnicodeDecodeError) -> str:
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return f"not UTF-8 ({err.reason} at byte {err.start})"
