"""fleet.json parsed into a Fleet, as docs/simulation-format.md says.

Every malformed input is a ContractError naming the file and the JSON key path.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

from collector.replenish.settings import Rules
from collector.simulation import spec
from collector.simulation.gauges import GRAMS, Gauge
from collector.simulation.spec import (
    _ISO_DATE,
    DEFAULT_LEAD_DAYS,
    MAX_DAYS,
    MAX_YIELD_PAGES,
    ContractError,
    Fleet,
    read_reason,
)


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
            spec.Customer(
                id=c.id,
                kind=c.kind,
                language=c.language,
                contacts=tuple(
                    spec.Contact(id=p.id, email=p.email, name=p.name) for p in c.contacts
                ),
                sites=tuple(spec.Site(id=s.id, address=s.address) for s in c.sites),
                name=c.name,
            )
            for c in doc.customers
        ),
        devices=tuple(
            spec.DeviceSpec(
                serial=d.serial,
                model=d.model,
                customer=d.customer,
                site=d.site,
                contact=d.contact,
                supplies=tuple(
                    spec.SupplySpec(
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
            spec.ExtraOrder(date=e.date, serial=e.serial, supply=e.supply, quantity=e.quantity)
            for e in doc.extra_orders
        ),
        replacements=tuple(
            spec.Replacement(date=r.date, serial=r.serial, supply=r.supply)
            for r in doc.replacements
        ),
        backorders=tuple(
            spec.Backorder(sku=b.sku, start=b.start, end=b.end, delay_days=b.delay_days)
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
        raise ContractError(str(path), "file", f"cannot read: {read_reason(err)}") from err
    return parse_fleet(text, str(path))
