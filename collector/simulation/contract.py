"""The simulation's input files (fleet.json, usage.csv) parsed into records, as the contract says.

This is the parser of the two input files of the simulation contract (docs/simulation-format.md),
which it accepts exactly as written there (a supply's `gauge` is parsed by
collector.simulation.gauges), plus our optional extensions of fleet.json (`extra_orders`,
`replacements`, `backorders`) and, in usage.csv, an empty `reachable` cell meaning its
default 1. Every malformed input is a `ContractError` naming the file and the JSON key path or
the CSV line. It is not the simulator: nothing here consumes toner, places orders, runs the
collector's jobs or writes the report.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

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


def _iso_date(value: object) -> datetime.date:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"must be an ISO date (YYYY-MM-DD), not {value!r}")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be an ISO date (YYYY-MM-DD), not {value!r}") from None


IsoDate = Annotated[datetime.date, PlainValidator(_iso_date)]
Text = Annotated[str, Field(strict=True, min_length=1)]
Grams = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ContactIn(_In):
    id: Text
    email: Text
    name: Text | None = None


class _SiteIn(_In):
    id: Text
    address: Text


class _CustomerIn(_In):
    id: Text
    kind: Literal["mps", "self"]
    name: Text | None = None
    language: Text | None = None
    contacts: list[_ContactIn]
    sites: list[_SiteIn]


class _SupplyIn(_In):
    id: Text
    kind: Literal["toner", "ink", "waste"]
    colour: Text | None = None
    sku: Text
    capacity_grams: Annotated[Grams, Field(gt=0)]
    start_grams: Annotated[Grams, Field(ge=0)]
    gauge: Annotated[Gauge, PlainValidator(Gauge.parse)] = GRAMS
    yield_pages: Annotated[int, Field(strict=True, ge=1, le=MAX_YIELD_PAGES)] | None = None


class _DeviceIn(_In):
    serial: Text
    model: Text | None = None
    customer: Text
    site: Text
    contact: Text
    supplies: list[_SupplyIn]


class _ExtraOrderIn(_In):
    date: IsoDate
    serial: Text
    supply: Text
    quantity: Annotated[int, Field(strict=True, ge=1)]


class _ReplacementIn(_In):
    date: IsoDate
    serial: Text
    supply: Text


class _BackorderIn(_In):
    sku: Text
    start: IsoDate = Field(alias="from")
    end: IsoDate = Field(alias="until")
    delay_days: Annotated[int, Field(strict=True, ge=1)]


class _FleetIn(_In):
    start: IsoDate
    days: Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS)]
    lead_days: Annotated[int, Field(strict=True, ge=0)] = DEFAULT_LEAD_DAYS
    settings: dict[str, Any] = Field(default_factory=dict)
    customers: list[_CustomerIn]
    devices: list[_DeviceIn]
    extra_orders: list[_ExtraOrderIn] = Field(default_factory=list)
    replacements: list[_ReplacementIn] = Field(default_factory=list)
    backorders: list[_BackorderIn] = Field(default_factory=list)


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _shape_error(file: str, err: ValidationError) -> ContractError:
    errors = err.errors(include_url=False)
    # a misspelt key is also a missing one: name the misspelling, the cause
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    kind = first["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "missing key"
    elif kind == "model_type":
        message = "must be an object"
    elif kind == "string_too_short":
        message = "must not be empty"
    else:
        message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return ContractError(file, _key_path(first["loc"]), message)


# --- fleet.json: the meaning, checked here -----------------------------------------------------


def _check_setting_types(settings: dict[str, Any]) -> None:
    """ValueError 'settings.KEY: ...' for a known setting whose JSON type is wrong."""
    types = {f.name: f.type for f in fields(Rules)}
    for key, value in settings.items():
        kind = types[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"settings.{key}: must be true or false, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"settings.{key}: must be a number, not {value!r}")
        elif not math.isfinite(value):
            raise ValueError(f"settings.{key}: must be a finite number, not {value!r}")
        elif kind == "int" and not isinstance(value, int):
            raise ValueError(f"settings.{key}: must be a whole number, not {value!r}")


def _rules(file: str, settings: dict[str, Any]) -> Rules:
    try:
        if all(key in Rules.names() for key in settings):
            _check_setting_types(settings)
        return Rules.from_mapping(settings, "settings")  # names an unknown key
    except ValueError as err:
        where, sep, message = str(err).partition(": ")
        if not sep:
            where, message = "settings", str(err)
        raise ContractError(file, where, message) from err


class _Checker:
    """The fleet's cross-references and uniqueness, each error naming its key path."""

    def __init__(self, file: str, doc: _FleetIn) -> None:
        self.file = file
        self.doc = doc
        self.first = doc.start
        self.last = doc.start + datetime.timedelta(days=doc.days - 1)

    def fail(self, where: str, message: str) -> ContractError:
        return ContractError(self.file, where, message)

    def unique(self, ids: Iterable[str], path: str, key: str, what: str) -> None:
        seen: set[str] = set()
        for i, value in enumerate(ids):
            if value in seen:
                raise self.fail(f"{path}[{i}].{key}", f"{what} {value!r} appears twice")
            seen.add(value)

    def date(self, day: datetime.date, where: str) -> None:
        if not self.first <= day <= self.last:
            raise self.fail(
                where, f"{day} is outside the run ({self.first} to {self.last} inclusive)"
            )

    def customers(self) -> dict[str, _CustomerIn]:
        self.unique((c.id for c in self.doc.customers), "customers", "id", "customer id")
        for i, customer in enumerate(self.doc.customers):
            path = f"customers[{i}]"
            self.unique((c.id for c in customer.contacts), f"{path}.contacts", "id", "contact id")
            self.unique((s.id for s in customer.sites), f"{path}.sites", "id", "site id")
            for j, contact in enumerate(customer.contacts):
                if "@" not in contact.email:
                    raise self.fail(
                        f"{path}.contacts[{j}].email", f"{contact.email!r} is not an email address"
                    )
        return {c.id: c for c in self.doc.customers}

    def devices(self, customers: dict[str, _CustomerIn]) -> dict[str, _DeviceIn]:
        self.unique((d.serial for d in self.doc.devices), "devices", "serial", "serial")
        for i, device in enumerate(self.doc.devices):
            path = f"devices[{i}]"
            customer = customers.get(device.customer)
            if customer is None:
                raise self.fail(f"{path}.customer", f"no customer {device.customer!r}")
            if device.site not in {s.id for s in customer.sites}:
                raise self.fail(
                    f"{path}.site", f"customer {customer.id!r} has no site {device.site!r}"
                )
            if device.contact not in {c.id for c in customer.contacts}:
                raise self.fail(
                    f"{path}.contact", f"customer {customer.id!r} has no contact {device.contact!r}"
                )
            self.unique((s.id for s in device.supplies), f"{path}.supplies", "id", "supply id")
            for j, supply in enumerate(device.supplies):
                where = f"{path}.supplies[{j}]"
                if supply.kind != "waste" and supply.colour is None:
                    raise self.fail(f"{where}.colour", "a toner or ink supply needs a colour")
                if supply.start_grams > supply.capacity_grams:
                    raise self.fail(
                        f"{where}.start_grams",
                        f"{supply.start_grams:g} is more than capacity_grams"
                        f" ({supply.capacity_grams:g})",
                    )
        return {d.serial: d for d in self.doc.devices}

    def supply(self, devices: dict[str, _DeviceIn], serial: str, supply: str, path: str) -> None:
        device = devices.get(serial)
        if device is None:
            raise self.fail(f"{path}.serial", f"no device {serial!r}")
        if supply not in {s.id for s in device.supplies}:
            raise self.fail(f"{path}.supply", f"device {serial!r} has no supply {supply!r}")

    def events(self, devices: dict[str, _DeviceIn]) -> None:
        for i, extra in enumerate(self.doc.extra_orders):
            self.date(extra.date, f"extra_orders[{i}].date")
            self.supply(devices, extra.serial, extra.supply, f"extra_orders[{i}]")
        for i, swap in enumerate(self.doc.replacements):
            self.date(swap.date, f"replacements[{i}].date")
            self.supply(devices, swap.serial, swap.supply, f"replacements[{i}]")
        skus = {s.sku for d in self.doc.devices for s in d.supplies}
        for i, back in enumerate(self.doc.backorders):
            path = f"backorders[{i}]"
            if back.sku not in skus:
                raise self.fail(f"{path}.sku", f"no supply of the fleet has sku {back.sku!r}")
            self.date(back.start, f"{path}.from")
            self.date(back.end, f"{path}.until")
            if back.end < back.start:
                raise self.fail(f"{path}.until", f"{back.end} is before from ({back.start})")


def _fleet(doc: _FleetIn, rules: Rules) -> Fleet:
    return Fleet(
        start=doc.start,
        days=doc.days,
        lead_days=doc.lead_days,
        rules=rules,
        settings=dict(doc.settings),
        customers=tuple(
            Customer(
                id=c.id,
                kind=c.kind,
                language=c.language,
                contacts=tuple(Contact(id=p.id, email=p.email, name=p.name) for p in c.contacts),
                sites=tuple(Site(id=s.id, address=s.address) for s in c.sites),
                name=c.name,
            )
            for c in doc.customers
        ),
        devices=tuple(
            DeviceSpec(
                serial=d.serial,
                model=d.model,
                customer=d.customer,
                site=d.site,
                contact=d.contact,
                supplies=tuple(
                    SupplySpec(
                        id=s.id,
                        kind=s.kind,
                        colour=s.colour,
                        sku=s.sku,
                        capacity_grams=float(s.capacity_grams),
                        start_grams=float(s.start_grams),
                        gauge=s.gauge,
                        yield_pages=s.yield_pages,
                    )
                    for s in d.supplies
                ),
            )
            for d in doc.devices
        ),
        extra_orders=tuple(
            ExtraOrder(date=e.date, serial=e.serial, supply=e.supply, quantity=e.quantity)
            for e in doc.extra_orders
        ),
        replacements=tuple(
            Replacement(date=r.date, serial=r.serial, supply=r.supply) for r in doc.replacements
        ),
        backorders=tuple(
            Backorder(sku=b.sku, start=b.start, end=b.end, delay_days=b.delay_days)
            for b in doc.backorders
        ),
    )


def parse_fleet(text: str, file: str = "fleet.json") -> Fleet:
    """The Fleet of a fleet.json's text; ContractError names the file and the key path."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ContractError(
            file, f"line {err.lineno}, column {err.colno}", f"not valid JSON: {err.msg}"
        ) from err
    if not isinstance(data, dict):
        raise ContractError(file, "(top level)", "must be a JSON object")
    try:
        doc = _FleetIn.model_validate(data)
    except ValidationError as err:
        raise _shape_error(file, err) from err
    rules = _rules(file, doc.settings)
    check = _Checker(file, doc)
    devices = check.devices(check.customers())
    check.events(devices)
    return _fleet(doc, rules)


def load_fleet(path: Path) -> Fleet:
    """The Fleet of a fleet.json file; ContractError (where 'file') if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ContractError(str(path), "file", f"cannot read: {_reason(err)}") from err
    return parse_fleet(text, str(path))


def _reason(err: OSError | UnicodeDecodeError) -> str:
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return f"not UTF-8 ({err.reason} at byte {err.start})"


# --- usage.csv ---------------------------------------------------------------------------------


def _columns(header: list[str], file: str) -> dict[str, int]:
    names = [name.strip() for name in header]
    if names:
        names[0] = names[0].removeprefix("\ufeff").strip()
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name not in USAGE_COLUMNS:
            raise ContractError(
                file, "line 1", f"unknown column {name!r} (known: {', '.join(USAGE_COLUMNS)})"
            )
        if name in index:
            raise ContractError(file, "line 1", f"column {name!r} appears twice")
        index[name] = i
    for name in _REQUIRED_COLUMNS:
        if name not in index:
            raise ContractError(
                file, "line 1", f"no {name!r} column (the header needs date,serial,supply,grams)"
            )
    return index


def parse_usage(lines: Iterable[str], fleet: Fleet, file: str = "usage.csv") -> Usage:
    """The Usage of a usage.csv's lines; ContractError names the file and the line."""
    days = fleet.days
    reader = csv.reader(iter(lines))

    def fail(message: str, line: int | None = None) -> ContractError:
        return ContractError(file, f"line {reader.line_num if line is None else line}", message)

    try:
        header = next(reader, None)
        if header is None or not "".join(header).strip():
            raise fail("no header row (date,serial,supply,grams[,reachable][,pages])", 1)
        column = _columns(header, file)
        width = len(header)
        i_date, i_serial = column["date"], column["serial"]
        i_supply, i_grams = column["supply"], column["grams"]
        has_reachable, has_pages = "reachable" in column, "pages" in column
        # a row's date, serial, supply, grams, reachable and pages (grams again for a column
        # that is not there)
        pick = itemgetter(
            i_date,
            i_serial,
            i_supply,
            i_grams,
            column.get("reachable", i_grams),
            column.get("pages", i_grams),
        )

        grams: dict[str, dict[str, list[float]]] = {}
        reachable: dict[str, bytearray] = {}
        pages: dict[str, list[int]] = {}
        # serial -> supply id -> (grams per day, 1 where a row was seen, the device's
        # reachable, its pages per day, 1 where its day's pages are known)
        slots: dict[str, dict[str, tuple[list[float], bytearray, bytearray, list[int], bytearray]]]
        slots = {}
        for device in fleet.devices:
            per_supply = grams[device.serial] = {s.id: [0.0] * days for s in device.supplies}
            answered = reachable[device.serial] = bytearray(b"\x01") * days
            printed = pages[device.serial] = [0] * days
            counted = bytearray(days)
            slots[device.serial] = {
                sid: (per_day, bytearray(days), answered, printed, counted)
                for sid, per_day in per_supply.items()
            }
        day_of: dict[str, int] = {}  # a date's text -> its day index
        blank_line = 0  # the first blank line: fine if only blank lines follow it
        inf = math.inf

        for row in reader:
            if len(row) != width:
                if not "".join(row).strip():
                    blank_line = blank_line or reader.line_num
                    continue
                raise fail(f"{len(row)} fields, the header has {width}")
            if blank_line:
                raise fail("blank line in the middle of the rows", blank_line)
            text, serial, sid, value, flag, sheets = pick(row)
            day = day_of.get(text)
            if day is None:
                day = _day_index(text, fleet, fail)
                day_of[text] = day
            supplies = slots.get(serial)
            if supplies is None:
                raise fail(f"unknown serial {serial!r} (not a device of the fleet)")
            slot = supplies.get(sid)
            if slot is None:
                raise fail(f"device {serial!r} has no supply {sid!r}")
            per_day, seen, answered, printed, counted = slot
            if seen[day]:
                raise fail(f"a second row for {text}, {serial}, {sid}")
            seen[day] = 1
            try:
                amount = float(value)
            except ValueError:
                raise fail(f"grams {value!r} is not a number") from None
            if not 0.0 <= amount < inf:
                raise fail(f"grams {value!r} must be a finite number >= 0")
            per_day[day] = amount
            if has_reachable and flag != "1":
                if flag == "0":
                    answered[day] = 0
                elif flag != "":
                    raise fail(f"reachable {flag!r} must be 0 or 1")
            if has_pages:
                if not (sheets.isascii() and sheets.isdigit()):
                    raise fail(f"pages {sheets!r} must be a whole number >= 0")
                if len(sheets) > 9 and int(sheets) > MAX_PAGES_PER_DAY:
                    raise fail(f"pages {sheets} is more than {MAX_PAGES_PER_DAY:,} in a day")
                if not counted[day]:  # the contract: the first row of the device's day counts
                    counted[day] = 1
                    printed[day] = int(sheets)
    except csv.Error as err:
        raise fail(f"not valid CSV: {err}") from err
    return Usage(days=days, grams=grams, reachable=reachable, pages=pages if has_pages else None)


def _day_index(text: str, fleet: Fleet, fail: Callable[[str], ContractError]) -> int:
    """The day index of a CSV date; `fail(message)` makes the error of the current line."""
    if not _ISO_DATE.fullmatch(text):
        raise fail(f"date {text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise fail(f"date {text!r} is not an ISO date (YYYY-MM-DD)") from None
    index = fleet.day_index(day)
    if not 0 <= index < fleet.days:
        raise fail(
            f"date {text} is outside the run ({fleet.start} to {fleet.date_of(fleet.days - 1)})"
        )
    return index


def load_usage(path: Path, fleet: Fleet) -> Usage:
    """The Usage of a usage.csv file; ContractError (where 'file') if it cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return parse_usage(lines, fleet, str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise ContractError(str(path), "file", f"cannot read: {_reason(err)}") from err


__all__ = [
    "Backorder",
    "Contact",
    "ContractError",
    "Customer",
    "DeviceSpec",
    "ExtraOrder",
    "Fleet",
    "Replacement",
    "Site",
    "SupplySpec",
    "Usage",
    "load_fleet",
    "load_usage",
    "parse_fleet",
    "parse_usage",
]
