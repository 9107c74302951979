"""The classic scenarios: each a small fleet whose usage makes one rule show (R4, R6-R16)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date

from collector.replenish.settings import Rules
from sim.office import (
    BUSY,
    COLOUR_MFP,
    HIGH,
    HIGH_NOISE,
    INK_OFFICE,
    INKJET,
    LIGHT,
    MONO_MFP,
    NORMAL,
    SITE,
    Boost,
    Customer,
    Device,
    _closed_days,
    _device,
    day_of,
    serial_of,
    usage_rows,
)
from sim.registry import (
    Plan,
    Run,
    scenario,
)


def _office_pair(rng: random.Random) -> list[Device]:
    """Two colour MFPs at a normal office, one at half a black cartridge, one at a quarter."""
    return [
        _device(rng, serial_of(1), COLOUR_MFP, NORMAL, black_left=0.5),
        _device(rng, serial_of(2), COLOUR_MFP, NORMAL, black_left=0.25),
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
            _device(rng, serial_of(i + 1), model, profile, contact=contact, black_left=black)
        )
    return devices


@scenario(
    "steady-office",
    "Baseline: 2 colour MFPs, steady weekday printing, one contact"
    " (R7 rate, R8 trigger, R9 quantity, R11 waste with black)",
)
def steady_office(run: Run) -> Plan:
    return Plan(_office_pair(run.rng))


@scenario(
    "holiday-closure",
    "Steady office closed 2026-08-03..23 and 2026-12-24..2027-01-01, devices still reachable"
    " (R7 rate robust to zero-usage weeks, no needless orders)",
)
def holiday_closure(run: Run) -> Plan:
    august = (date(2026, 8, 3), date(2026, 8, 23))
    christmas = (date(2026, 12, 24), date(2027, 1, 1))
    return Plan(_office_pair(run.rng), closed=_closed_days(august, christmas))


@scenario(
    "sudden-spike",
    "Black usage triples from 2026-05-04 (day 119, a new team) to the end"
    " (R12 re-forecast and re-order despite the duplicate guard)",
)
def sudden_spike(run: Run) -> Plan:
    spike = Boost("black", day_of(date(2026, 5, 4)), run.days, 3.0)
    return Plan(
        [_device(run.rng, serial_of(1), COLOUR_MFP, NORMAL, black_left=0.6, boosts=[spike])]
    )


@scenario(
    "high-usage",
    "ACME-0001 uses over 2.5 black cartridges every week: not eligible, flagged, never"
    " auto-ordered (R6); ACME-0002 at the same site is a normal office",
)
def high_usage(run: Run) -> Plan:
    return Plan(
        [
            _device(run.rng, serial_of(1), MONO_MFP, HIGH, black_left=0.8, noise=HIGH_NOISE),
            _device(run.rng, serial_of(2), COLOUR_MFP, NORMAL, black_left=0.4),
        ]
    )


@scenario(
    "one-contact-site",
    "5 devices at one site with one contact, varied usage and levels: orders travel together"
    " (R10 consolidation within 45 days)",
)
def one_contact_site(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 5))


@scenario(
    "two-contact-site",
    "6 devices at one site, ACME-0001..3 for contact anna and ACME-0004..6 for marco:"
    " consolidation groups by site and contact, never across contacts (R10)",
)
def two_contact_site(run: Run) -> Plan:
    customer = Customer("acme", "self", "it", ("anna", "marco"), (SITE,))
    return Plan(_mixed_site(run.rng, 6, customer.contacts), [customer])


@scenario(
    "sleepy-printer",
    "ACME-0001 prints every weekday but answers on ~1 day in 4: its rate comes from sparse"
    " readings (R2, R7 with gaps); ACME-0002 is normal",
)
def sleepy_printer(run: Run) -> Plan:
    asleep = [d for d in range(run.days) if run.rng.random() >= 0.25]
    return Plan(
        [
            _device(run.rng, serial_of(1), COLOUR_MFP, NORMAL, black_left=0.5, offline=asleep),
            _device(run.rng, serial_of(2), COLOUR_MFP, NORMAL, black_left=0.3),
        ]
    )


@scenario(
    "dark-device",
    "ACME-0002 unreachable 2026-04-15..05-26 (6 weeks from day 100) while still printing:"
    " disconnected email and follow-up, no data so no orders, then reconnected (R16)",
)
def dark_device(run: Run) -> Plan:
    dark = range(100, 100 + 6 * 7)
    return Plan(
        [
            _device(run.rng, serial_of(1), COLOUR_MFP, NORMAL, black_left=0.45),
            _device(run.rng, serial_of(2), COLOUR_MFP, NORMAL, black_left=0.7, offline=dark),
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


@scenario(
    "early-replacement",
    "The customer swaps the black cartridge twice with 30-40 % left, a few days after the"
    " ordered spare arrived: detected, reported, balance corrected (R13)",
)
def early_replacement(run: Run) -> Plan:
    device = _device(run.rng, serial_of(1), COLOUR_MFP, BUSY, black_left=0.7)
    usage = usage_rows([device], run.days, run.seed)
    black = [g for _, _, supply, g, _ in usage if supply == "black"]
    capacity = device.model.supply("black").capacity
    start = device.start_grams["black"]
    swaps = _early_swap_days(black, capacity, start, run.lead_days, (40, 200))
    replacements = [
        {"date": run.date(d), "serial": device.serial, "supply": "black"} for d in swaps
    ]
    return Plan([device], extra={"replacements": replacements}, usage=usage)


@scenario(
    "extra-order",
    "Helpdesk records 2 extra black cartridges on 2026-05-22 for a 2-week big job (4x black"
    " from 2026-06-01): counted in the balance, no duplicate orders (R14, R12)",
)
def extra_order(run: Run) -> Plan:
    job = day_of(date(2026, 6, 1))  # a Monday
    boost = Boost("black", job, job + 14, 4.0)
    device = _device(run.rng, serial_of(1), COLOUR_MFP, NORMAL, black_left=0.5, boosts=[boost])
    order = {"date": run.date(job - 10), "serial": device.serial, "supply": "black", "quantity": 2}
    return Plan([device], extra={"extra_orders": [order]})


@scenario(
    "backorder",
    "Steady office whose black toner orders placed 2026-03-16..05-15 ship 10 days late:"
    " delivery delay (R15's backorder emails later)",
)
def backorder(run: Run) -> Plan:
    sku = COLOUR_MFP.supply("black").sku
    late = {"sku": sku, "from": "2026-03-16", "until": "2026-05-15", "delay_days": 10}
    return Plan(_office_pair(run.rng), extra={"backorders": [late]})


@scenario(
    "mps-customer",
    "3 devices at one site of a managed-print customer: the helpdesk is told instead of the"
    " customer (R4, R15, R16); consolidation as usual (R10)",
)
def mps_customer(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 3), [Customer("acme", "mps", "it", ("anna",), (SITE,))])


@scenario(
    "long-lead",
    "5 devices at one site, one contact, deliveries {lead_days} days after the order: does"
    " the 21-day trigger still avoid stock-outs (R8, R9, R10)",
    lead_days=10,
)
def long_lead(run: Run) -> Plan:
    return Plan(_mixed_site(run.rng, 5))


@scenario(
    "inkjet",
    "An inkjet with 40 g black and 30 g colour ink cartridges and no waste container: ink is"
    " replenished like toner, no waste ships with black (R5, R11)",
)
def inkjet(run: Run) -> Plan:
    return Plan([_device(run.rng, serial_of(1), INKJET, INK_OFFICE, black_left=0.4)])
