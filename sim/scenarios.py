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
import json
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from collector.replenish.settings import Rules

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


def _assemble(name: str, description: str, plan: Plan, run: Run) -> Scenario:
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


def _scenario(
    name: str, description: str, lead_days: int = 3
) -> Callable[[Callable[[Run], Plan]], Callable[..., Scenario]]:
    """Register a plan as the builder SCENARIOS[name](*, days, lead_days, seed); the
    description may name {lead_days}."""

    def register(plan: Callable[[Run], Plan]) -> Callable[..., Scenario]:
        default_lead = lead_days

        def build(*, days: int = 365, lead_days: int = default_lead, seed: int = 1) -> Scenario:
            run = Run(days, lead_days, seed, random.Random(seed))
            return _assemble(name, description.format(lead_days=lead_days), plan(run), run)

        build.__name__ = build.__qualname__ = plan.__name__
        build.__doc__ = f"Scenario {name}: {description}"
        SCENARIOS[name] = build
        return build

    return register


SITE = ("milano", "Via Roma 1, 20100 Milano")
ACME_SELF = Customer("acme", "self", "it", ("anna",), (SITE,))


def _serial(n: int, prefix: str = "ACME") -> str:
    return f"{prefix}-{n:04d}"


def _office_pair(rng: random.Random) -> list[Device]:
    """Two colour MFPs at a normal office, one at half a black cartridge, one at a quarter."""
    return [
        _device(rng, _serial(1), COLOUR_MFP, NORMAL, black_left=0.5),
        _device(rng, _serial(2), COLOUR_MFP, NORMAL, black_left=0.25),
    ]


def _mixed_site(
    rng: random.Random, count: int, contacts: Sequence[str] = ("anna",)
) -> list[Device]:
    """`count` devices at one site, the contacts in equal blocks, every third one mono, normal,
    busy and light offices in turn, black levels spread (the first at a quarter), so their
    triggers fall at different times."""
    profiles = (NORMAL, BUSY, LIGHT)
    per_contact = -(-count // len(contacts))
    devices = []
    for i in range(count):
        model = MONO_MFP if i % 3 == 2 else COLOUR_MFP
        black = 0.25 if i == 0 else rng.uniform(0.3, 0.95)
        profile = profiles[i % 3].scaled(rng.uniform(0.85, 1.15))
        contact = contacts[i // per_contact]
        devices.append(
            _device(rng, _serial(i + 1), model, profile, contact=contact, black_left=black)
        )
    return devices


@_scenario(
    "steady-office",
    "Baseline: 2 colour MFPs, steady weekday printing, one contact"
    " (R7 rate, R8 trigger, R9 quantity, R11 waste with black)",
)
def steady_office(run: Run) -> Plan:
    return Plan(_office_pair(run.rng))


@_scenario(
    "holiday-closure",
    "Steady office closed 2026-08-03..23 and 2026-12-24..2027-01-01, devices still reachable"
    " (R7 rate robust to zero-usage weeks, no needless orders)",
)
def holiday_closure(run: Run) -> Plan:
    august = (date(2026, 8, 3), date(2026, 8, 23))
    christmas = (date(2026, 12, 24), date(2027, 1, 1))
    return Plan(_office_pair(run.rng), closed=_closed_days(august, christmas))


@_scenario(
    "sudden-spike",
    "Black usage triples from 2026-05-04 (day 119, a new team) to the end"
    " (R12 re-forecast and re-order despite the duplicate guard)",
)
def sudden_spike(run: Run) -> Plan:
    spike = Boost("black", day_of(date(2026, 5, 4)), run.days, 3.0)
    return Plan([_device(run.rng, _serial(1), COLOUR_MFP, NORMAL, black_left=0.6, boosts=[spike])])


@_scenario(
    "high-usage",
    "ACME-0001 uses over 2.5 black cartridges every week: not eligible, flagged, never"
    " auto-ordered (R6); ACME-0002 at the same site is a normal office",
)
def high_usage(run: Run) -> Plan:
    return Plan(
        [
            _device(run.rng, _serial(1), MONO_MFP, HIGH, black_left=0.8, noise=HIGH_NOISE),
            _device(run.rng, _serial(2), COLOUR_MFP, NORMAL, black_left=0.4),
        ]
    )


@_scenario(
    "one-contact-site",
    "5 devices at one site with one contact, varied usage and levels: orders travel together"
    " (R10 consolidation within 45 days)",
)
def one_contact_site(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 5))


@_scenario(
    "two-contact-site",
    "6 devices at one site, ACME-0001..3 for contact anna and ACME-0004..6 for marco:"
    " consolidation groups by site and contact, never across contacts (R10)",
)
def two_contact_site(run: Run) -> Plan:
    customer = Customer("acme", "self", "it", ("anna", "marco"), (SITE,))
    return Plan(_mixed_site(run.rng, 6, customer.contacts), [customer])


@_scenario(
    "sleepy-printer",
    "ACME-0001 prints every weekday but answers on ~1 day in 4: its rate comes from sparse"
    " readings (R2, R7 with gaps); ACME-0002 is normal",
)
def sleepy_printer(run: Run) -> Plan:
    asleep = [d for d in range(run.days) if run.rng.random() >= 0.25]
    return Plan(
        [
            _device(run.rng, _serial(1), COLOUR_MFP, NORMAL, black_left=0.5, offline=asleep),
            _device(run.rng, _serial(2), COLOUR_MFP, NORMAL, black_left=0.3),
        ]
    )


@_scenario(
    "dark-device",
    "ACME-0002 unreachable 2026-04-15..05-26 (6 weeks from day 100) while still printing:"
    " disconnected email and follow-up, no data so no orders, then reconnected (R16)",
)
def dark_device(run: Run) -> Plan:
    dark = range(100, 100 + 6 * 7)
    return Plan(
        [
            _device(run.rng, _serial(1), COLOUR_MFP, NORMAL, black_left=0.45),
            _device(run.rng, _serial(2), COLOUR_MFP, NORMAL, black_left=0.7, offline=dark),
        ]
    )


def _early_swap_days(
    grams: Sequence[float], capacity: float, start: float, lead_days: int, after: Sequence[int]
) -> list[int]:
    """Working days, one on or after each of `after`, to swap a black cartridge with 30 to
    40 % left while an ordered spare is on site: a shadow of the default rules (R7 rate over
    rate_window_days, R8 trigger at trigger_days, delivery lead_days later, 2 days' margin),
    assuming every order arrives in time. Rough by design: the collector decides."""
    rules = Rules()
    level, ordered = start, -1
    swaps: list[int] = []
    history: list[float] = []
    targets = list(after)
    for d, used in enumerate(grams):
        level -= used
        if level <= 0:  # the spare goes in
            level, ordered = level + capacity, -1
        history.append(used)
        recent = history[-rules.rate_window_days :]
        rate = sum(recent) / len(recent)
        known = len(history) >= rules.min_history_days and rate > 0
        if ordered < 0 and known and level / rate <= rules.trigger_days:
            ordered = d
        spare_on_site = ordered >= 0 and d >= ordered + lead_days + 2
        early = 0.30 <= level / capacity <= 0.40
        if targets and d >= targets[0] and spare_on_site and early and used > 0:
            swaps.append(d)
            targets.pop(0)
            level, ordered = capacity, -1
    return swaps


@_scenario(
    "early-replacement",
    "The customer swaps the black cartridge twice with 30-40 % left, a few days after the"
    " ordered spare arrived: detected, reported, balance corrected (R13)",
)
def early_replacement(run: Run) -> Plan:
    device = _device(run.rng, _serial(1), COLOUR_MFP, BUSY, black_left=0.7)
    usage = usage_rows([device], run.days, run.seed)
    black = [g for _, _, supply, g, _ in usage if supply == "black"]
    capacity = device.model.supply("black").capacity
    start = device.start_grams["black"]
    swaps = _early_swap_days(black, capacity, start, run.lead_days, (40, 200))
    replacements = [
        {"date": run.date(d), "serial": device.serial, "supply": "black"} for d in swaps
    ]
    return Plan([device], extra={"replacements": replacements}, usage=usage)


@_scenario(
    "extra-order",
    "Helpdesk records 2 extra black cartridges on 2026-05-22 for a 2-week big job (4x black"
    " from 2026-06-01): counted in the balance, no duplicate orders (R14, R12)",
)
def extra_order(run: Run) -> Plan:
    job = day_of(date(2026, 6, 1))  # a Monday
    boost = Boost("black", job, job + 14, 4.0)
    device = _device(run.rng, _serial(1), COLOUR_MFP, NORMAL, black_left=0.5, boosts=[boost])
    order = {"date": run.date(job - 10), "serial": device.serial, "supply": "black", "quantity": 2}
    return Plan([device], extra={"extra_orders": [order]})


@_scenario(
    "backorder",
    "Steady office whose black toner orders placed 2026-03-16..05-15 ship 10 days late:"
    " delivery delay (R15's backorder emails later)",
)
def backorder(run: Run) -> Plan:
    sku = COLOUR_MFP.supply("black").sku
    late = {"sku": sku, "from": "2026-03-16", "until": "2026-05-15", "delay_days": 10}
    return Plan(_office_pair(run.rng), extra={"backorders": [late]})


@_scenario(
    "mps-customer",
    "3 devices at one site of a managed-print customer: the helpdesk is told instead of the"
    " customer (R4, R15, R16); consolidation as usual (R10)",
)
def mps_customer(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 3), [Customer("acme", "mps", "it", ("anna",), (SITE,))])


@_scenario(
    "long-lead",
    "5 devices at one site, one contact, deliveries {lead_days} days after the order: does"
    " the 21-day trigger still avoid stock-outs (R8, R9, R10)",
    lead_days=10,
)
def long_lead(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 5))


@_scenario(
    "inkjet",
    "An inkjet with 40 g black and 30 g colour ink cartridges and no waste container: ink is"
    " replenished like toner, no waste ships with black (R5, R11)",
)
def inkjet(run: Run) -> Plan:
    return Plan([_device(run.rng, _serial(1), INKJET, INK_OFFICE, black_left=0.4)])


# -- gauges, yields and cold starts (issue 14) ----------------------------------------------------


def _gauged(devices: Iterable[Device], gauge: str, real_yield: float = 1.0) -> list[Device]:
    """The devices with every supply on `gauge`, their cartridges giving `real_yield` times
    the rated pages."""
    return [replace(d, gauge=gauge, real_yield=real_yield) for d in devices]


def _gauge_scenario(name: str, gauge: str, what: str) -> None:
    """Register `name`: the steady office's 2 colour MFPs with every supply on `gauge`."""

    def plan(run: Run) -> Plan:
        return Plan(_gauged(_office_pair(run.rng), gauge), pages=True)

    plan.__name__ = plan.__qualname__ = name.replace("-", "_")
    description = (
        f"The steady office's 2 colour MFPs, every supply's gauge {what}, rated yield_pages"
        " and a pages column: supplied from what the gauge and the page counter say (R1, R7, R8)"
    )
    _scenario(name, description)(plan)


@_scenario(
    "gauge-unknown",
    'A mono MFP and a colour MFP whose gauges are all "unknown" (-2 always, not even empty),'
    " rated yield_pages, pages column: the mono one is supplied from noToner and its page"
    " counter; the colour one's noToner names no toner, so it goes to the helpdesk (R1, R7)",
)
def gauge_unknown(run: Run) -> Plan:
    devices = [
        _device(run.rng, _serial(1), MONO_MFP, NORMAL, black_left=0.5),
        _device(run.rng, _serial(2), COLOUR_MFP, NORMAL, black_left=0.25),
    ]
    return Plan(_gauged(devices, "unknown"), pages=True)


_gauge_scenario("gauge-grams", "grams", '"grams" (exact tenths of grams: the reference)')
_gauge_scenario("gauge-percent", "percent", '"percent" (whole percent, rounded down)')
_gauge_scenario("gauge-steps-10", "steps:10", '"steps:10" (percent in steps of 10)')
_gauge_scenario("gauge-steps-25", "steps:25", '"steps:25" (percent in steps of 25)')
_gauge_scenario("gauge-steps-50", "steps:50", '"steps:50" (three stages: 100, 50, 0 %)')
_gauge_scenario(
    "gauge-some-remaining", "some-remaining", '"some-remaining" (-3 until empty, then 0)'
)


@_scenario(
    "yield-below",
    "The steady office on some-remaining gauges whose cartridges give 30 % fewer pages than"
    " the rated yield_pages (heavy coverage): pages per cartridge learned, not believed (R7)",
)
def yield_below(run: Run) -> Plan:
    return Plan(_gauged(_office_pair(run.rng), "some-remaining", 0.7), pages=True)


@_scenario(
    "yield-above",
    "The steady office on some-remaining gauges whose cartridges give 20 % more pages than"
    " the rated yield_pages (light coverage): no stockpile from a pessimistic rating (R7, R9)",
)
def yield_above(run: Run) -> Plan:
    return Plan(_gauged(_office_pair(run.rng), "some-remaining", 1.2), pages=True)


@_scenario(
    "cold-start",
    "3 colour MFPs registered with black at 0 g (out from day one), 3 % and 15 % of the"
    " cartridge, pages column: supplied within the lead time with no usage rate yet (R7-R9)",
)
def cold_start(run: Run) -> Plan:
    devices = [
        _device(run.rng, _serial(n), COLOUR_MFP, NORMAL, black_left=left)
        for n, left in ((1, 0.0), (2, 0.03), (3, 0.15))
    ]
    return Plan(devices, pages=True)


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
                serial = _serial(n, "SIM")
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
    return _assemble(f"fleet-{devices}", description, Plan(fleet, customers), run)


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
