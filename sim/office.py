"""The simulated office: printer models, usage profiles, devices, customers, usage rows.

Is: what a scenario (sim.registry, sim.scenarios) is built from: the models and their supplies
(SKUs, capacities, rated yields), usage profiles, devices with their levels and gauges, and the
deterministic daily usage and page counts of an office (weekdays print, weekends and closures
do not). Is not: the scenarios themselves, or a simulator.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

START = date(2026, 1, 5)  # a Monday
NOISE = 0.3  # a working day's usage is the mean times a factor in [1 - NOISE, 1 + NOISE]
WASTE_SHARE = 0.08  # share of the day's toner grams that ends up in the waste container
WASTE_LIFE = 1.15  # black cartridges one waste container lasts, for the usage it is sized for
COLOURS = ("cyan", "magenta", "yellow")
SKU_LETTER = {"black": "K", "cyan": "C", "magenta": "M", "yellow": "Y"}
CSV_HEADER = "date,serial,supply,grams,reachable\n"
RATED_PAGES_PER_GRAM = 40  # a 300 g black cartridge is rated 12,000 pages (ISO/IEC 19752, 5 %)
COVERAGE_NOISE = 0.1  # a day's pages per black gram vary by up to this around the real yield

Row = tuple[str, str, str, float, int]  # date, serial, supply, grams, reachable
Key = tuple[str, str]  # date, serial


# -- models and usage profiles --------------------------------------------------------------------


@dataclass(frozen=True)
class SupplySpec:
    """One supply slot of a model: a toner or ink cartridge, or a waste container."""

    id: str
    kind: str  # toner, ink or waste
    sku: str
    capacity: float  # grams held (cartridge) or collected when full (waste)

    @property
    def colour(self) -> str | None:
        return None if self.kind == "waste" else self.id


@dataclass(frozen=True)
class Model:
    """A printer model: its name and supply slots (the same SKUs and capacities everywhere)."""

    name: str
    supplies: tuple[SupplySpec, ...]

    @property
    def marking(self) -> tuple[SupplySpec, ...]:
        """The toner or ink supplies, black first."""
        return tuple(s for s in self.supplies if s.kind != "waste")

    @property
    def waste(self) -> SupplySpec | None:
        return next((s for s in self.supplies if s.kind == "waste"), None)

    def supply(self, supply_id: str) -> SupplySpec:
        return next(s for s in self.supplies if s.id == supply_id)


def _waste_capacity(black_capacity: float, colour_per_black: float) -> float:
    """A waste container lasting WASTE_LIFE black cartridges when the colours together use
    `colour_per_black` grams per black gram, in whole 5 g (R11: one ships with each black)."""
    grams = WASTE_LIFE * WASTE_SHARE * black_capacity * (1 + colour_per_black)
    return 5.0 * round(grams / 5)


def _model(
    name: str,
    code: str,
    *,
    colour: bool,
    kind: str = "toner",
    black: float = 300,
    other: float = 200,
    waste: bool = True,
) -> Model:
    """A model with SKUs like TN-K-C300: black, the three colours if `colour`, and waste."""
    prefix = "TN" if kind == "toner" else "INK"
    ids = ("black", *COLOURS) if colour else ("black",)
    supplies = [
        SupplySpec(i, kind, f"{prefix}-{SKU_LETTER[i]}-{code}", black if i == "black" else other)
        for i in ids
    ]
    if waste:
        # Colour profiles use 0.6 to 1.0 colour grams per black gram; sized for the middle.
        capacity = _waste_capacity(black, 0.8 if colour else 0.0)
        supplies.append(SupplySpec("waste", "waste", f"WT-{code}", capacity))
    return Model(name, tuple(supplies))


COLOUR_MFP = _model("Colour MFP C300", "C300", colour=True)
MONO_MFP = _model("Mono MFP M400", "M400", colour=False)
INKJET = _model("Inkjet Pro J40", "J40", colour=True, kind="ink", black=40, other=30, waste=False)


@dataclass(frozen=True)
class Profile:
    """Mean grams per working day: black, and each colour (0.2 to 0.33 of black, R11 sizing)."""

    name: str
    black: float
    colour: float

    def scaled(self, factor: float) -> Profile:
        return Profile(self.name, self.black * factor, self.colour * factor)


LIGHT = Profile("light", 6.0, 1.5)  # a 300 g black cartridge lasts 10 weeks
NORMAL = Profile("normal", 7.5, 2.0)  # 8 weeks
BUSY = Profile("busy", 10.0, 2.5)  # 6 weeks
INK_OFFICE = Profile("ink", 1.0, 0.3)  # a 40 g black ink cartridge lasts 8 weeks
# R6: 2.5 black cartridges a week even on the quietest week (noise 10 %, 5 working days).
HIGH_NOISE = 0.1
HIGH = Profile("high", 2.5 * MONO_MFP.supply("black").capacity / (5 * (1 - HIGH_NOISE)), 0.0)


# -- devices and customers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Boost:
    """Usage of `supply` times `factor` on days first..last-1 (day 0 is the start)."""

    supply: str
    first: int
    last: int
    factor: float


@dataclass(frozen=True)
class Device:
    """One device of a scenario: where it is, what it prints and how full it starts."""

    serial: str
    model: Model
    customer: str
    site: str
    contact: str
    means: Mapping[str, float]  # mean grams per working day, per toner or ink supply
    start_grams: Mapping[str, float]  # per supply: left (cartridge) or collected (waste)
    boosts: tuple[Boost, ...] = ()
    offline: frozenset[int] = frozenset()  # days with reachable = 0
    noise: float = NOISE
    gauge: str | None = None  # every supply's `gauge` kind, when the scenario gives one
    real_yield: float = 1.0  # pages a cartridge really gives here, as a share of the rated

    def as_json(self, yields: bool = False) -> dict[str, Any]:
        """The fleet.json device; with `yields`, each supply's rated `yield_pages`."""
        supplies: list[dict[str, Any]] = []
        for s in self.model.supplies:
            item: dict[str, Any] = {"id": s.id, "kind": s.kind}
            if s.colour is not None:
                item["colour"] = s.colour
            item.update(
                sku=s.sku,
                capacity_grams=_number(s.capacity),
                start_grams=_number(self.start_grams[s.id]),
            )
            if self.gauge is not None:
                item["gauge"] = self.gauge
            if yields:
                item["yield_pages"] = rated_yield(self.model, s)
            supplies.append(item)
        return {
            "serial": self.serial,
            "model": self.model.name,
            "customer": self.customer,
            "site": self.site,
            "contact": self.contact,
            "supplies": supplies,
        }


@dataclass(frozen=True)
class Customer:
    """A customer with its supplies contacts and sites (e-mails are made up from the ids)."""

    id: str
    kind: str  # mps or self
    language: str
    contacts: tuple[str, ...]
    sites: tuple[tuple[str, str], ...]  # (id, address)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "language": self.language,
            "contacts": [{"id": c, "email": f"{c}@{self.id}.example"} for c in self.contacts],
            "sites": [{"id": i, "address": a} for i, a in self.sites],
        }


def rated_yield(model: Model, supply: SupplySpec) -> int:
    """The pages on a cartridge's box: RATED_PAGES_PER_GRAM per gram, in hundreds; a waste
    container's, the pages of the WASTE_LIFE black cartridges it is sized for."""
    grams = (
        WASTE_LIFE * model.supply("black").capacity if supply.kind == "waste" else supply.capacity
    )
    return int(round(RATED_PAGES_PER_GRAM * grams, -2))


def _number(value: float) -> float | int:
    """Whole grams as an int, else one decimal: tidy JSON."""
    value = round(value, 1)
    return int(value) if value == int(value) else value


def _device(
    rng: random.Random,
    serial: str,
    model: Model,
    profile: Profile,
    *,
    customer: str = "acme",
    site: str = "milano",
    contact: str = "anna",
    black_left: float | None = None,
    boosts: Iterable[Boost] = (),
    offline: Iterable[int] = (),
    noise: float = NOISE,
) -> Device:
    """A device whose colours vary by +-15 % around the profile and whose cartridges start
    between 30 % and full (black: `black_left` of a cartridge if given). Its waste container
    starts with room for what the black cartridge left will send it, plus a margin."""
    means: dict[str, float] = {}
    start: dict[str, float] = {}
    for s in model.marking:
        black = s.id == "black"
        means[s.id] = profile.black if black else profile.colour * rng.uniform(0.85, 1.15)
        share = black_left if black and black_left is not None else rng.uniform(0.3, 1.0)
        start[s.id] = share * s.capacity
    waste = model.waste
    if waste is not None:
        black_spec = model.supply("black")
        per_black_gram = WASTE_SHARE * sum(means.values()) / means["black"]
        per_cartridge = per_black_gram * black_spec.capacity
        if profile.black > 0 and per_cartridge > waste.capacity:  # R11 must hold
            raise ValueError(f"{serial}: waste fills before a black cartridge runs out")
        room = 1.1 * per_black_gram * start["black"]
        start[waste.id] = rng.uniform(0.0, 1.0) * max(0.0, waste.capacity - room)
    return Device(
        serial,
        model,
        customer,
        site,
        contact,
        means,
        start,
        tuple(boosts),
        frozenset(offline),
        noise,
    )


# -- usage ----------------------------------------------------------------------------------------


def day_of(when: date) -> int:
    """The day index of a date (START is day 0)."""
    return (when - START).days


def _closed_days(*periods: tuple[date, date]) -> frozenset[int]:
    """The day indexes of the closures, first and last date included."""
    return frozenset(d for a, b in periods for d in range(day_of(a), day_of(b) + 1))


def usage_rows(
    devices: Sequence[Device], days: int, seed: int, closed: frozenset[int] = frozenset()
) -> list[Row]:
    """One row per day, device and supply, ordered by day then device. Each device draws its
    noise from its own generator (seed and serial), so it prints the same in any fleet."""
    dates = [(START + timedelta(days=d)).isoformat() for d in range(days)]
    working = [(START + timedelta(days=d)).weekday() < 5 and d not in closed for d in range(days)]
    plans = []
    for dev in devices:
        daily: list[tuple[str, float, list[float] | None]] = []
        for supply, mean in dev.means.items():
            boosts = [b for b in dev.boosts if b.supply == supply]
            factors = None
            if boosts:
                factors = [1.0] * days
                for b in boosts:
                    for d in range(max(0, b.first), min(days, b.last)):
                        factors[d] *= b.factor
            daily.append((supply, mean, factors))
        waste = dev.model.waste
        rng = random.Random(f"{seed}:{dev.serial}")
        plans.append((dev.serial, daily, waste.id if waste else None, dev, rng))
    rows: list[Row] = []
    append = rows.append
    for d in range(days):
        day, work = dates[d], working[d]
        for serial, daily, waste_id, dev, rng in plans:
            reachable = 0 if d in dev.offline else 1
            low, span = 1.0 - dev.noise, 2 * dev.noise
            total = 0.0
            for supply, mean, factors in daily:
                grams = 0.0
                if work:
                    scale = mean if factors is None else mean * factors[d]
                    grams = round(scale * (low + span * rng.random()), 2)
                    total += grams
                append((day, serial, supply, grams, reachable))
            if waste_id is not None:
                append((day, serial, waste_id, round(total * WASTE_SHARE, 2), reachable))
    return rows


def page_counts(devices: Sequence[Device], rows: Sequence[Row], seed: int) -> dict[Key, int]:
    """Pages per (date, serial): the day's black grams at the device's real yield
    (RATED_PAGES_PER_GRAM times `real_yield`) with +-COVERAGE_NOISE, each device drawing from
    its own generator."""
    rate = {d.serial: RATED_PAGES_PER_GRAM * d.real_yield for d in devices}
    rng = {d.serial: random.Random(f"{seed}:pages:{d.serial}") for d in devices}
    low, span = 1.0 - COVERAGE_NOISE, 2 * COVERAGE_NOISE
    pages: dict[Key, int] = {}
    for day, serial, supply, grams, _ in rows:
        if supply == "black":
            noise = low + span * rng[serial].random() if grams > 0 else 1.0
            pages[day, serial] = round(grams * rate[serial] * noise)
    return pages


SITE = ("milano", "Via Roma 1, 20100 Milano")
ACME_SELF = Customer("acme", "self", "it", ("anna",), (SITE,))


def serial_of(n: int, prefix: str = "ACME") -> str:
    """A device's serial: PREFIX-0001."""
    return f"{prefix}-{n:04d}"
