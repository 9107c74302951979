"""The simulated printers report the way each gauge kind does (shared/contracts/simulation.md,
*Gauges and page counters*; R1): levels and units as the agent's own decoder reads them, the
noToner bit, the page counter, and the world's installs and stock-out days in the report.
These test the simulator, not the forecast engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent
from collector.simulation.contract import Fleet, SupplySpec, Usage, parse_fleet, parse_usage
from collector.simulation.gauges import Gauge
from collector.simulation.naive import naive
from collector.simulation.report import runs
from collector.simulation.runner import simulate
from collector.simulation.world import PAGES_PER_GRAM, Slot, World
from collector.store.database import Database
from collector.store.schema import asr_supplies, readings
from wire.reading import Supply


def _spec(gauge: str, kind: str = "toner", capacity: float = 300.0, **more: Any) -> SupplySpec:
    colour = None if kind == "waste" else "black"
    sku = "WT" if kind == "waste" else "TN-K"
    return SupplySpec(kind, kind, colour, sku, capacity, capacity / 2, Gauge.parse(gauge), **more)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[SimAgent]:
    """An agent that only reads (nothing is enrolled or pushed)."""
    db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    try:
        yield SimAgent(Collector(db, Settings()))
    finally:
        await db.close()


def _read(agent: SimAgent, gauge: str, left: float, kind: str = "toner") -> Supply:
    """The supply as the agent decodes it, with `left` grams left (waste: collected)."""
    slot = Slot(_spec(gauge, kind), left)
    return agent.read("S1", "MFP", [slot]).supplies[0]


# --- levels per gauge kind ---------------------------------------------------------------------


async def test_r1_grams_gauge_reports_tenths_of_grams_with_the_capacity(agent: SimAgent) -> None:
    supply = _read(agent, "grams", 123.45)
    assert (supply.unit, supply.max_capacity, supply.level) == ("tenthsOfGrams", 3000, 1234)
    assert (supply.grams_left, supply.percent, supply.quality) == (123.4, 41.1, "measured")


@pytest.mark.parametrize(
    ("left", "level"), [(300.0, 100), (299.9, 99), (87.0, 29), (89.97, 29), (0.2, 0), (0.0, 0)]
)
async def test_r1_percent_gauge_reports_whole_percent_rounded_down(
    agent: SimAgent, left: float, level: int
) -> None:
    supply = _read(agent, "percent", left)
    assert (supply.unit, supply.max_capacity, supply.level) == ("percent", 100, level)
    assert (supply.percent, supply.grams_left, supply.quality) == (float(level), None, "measured")


@pytest.mark.parametrize(
    ("gauge", "left", "level"),
    [
        ("steps:10", 300.0, 100),
        ("steps:10", 89.0, 20),  # 29.7 %
        ("steps:10", 29.0, 0),  # 9.7 %
        ("steps:25", 224.0, 50),  # 74.7 %
        ("steps:25", 74.0, 0),  # 24.7 %
        ("steps:50", 299.0, 50),  # three stages: 100, 50, 0
        ("steps:50", 150.0, 50),
        ("steps:50", 149.0, 0),
        ("steps:33", 300.0, 99),
    ],
)
async def test_r1_steps_gauge_reports_percent_down_to_a_multiple_of_n(
    agent: SimAgent, gauge: str, left: float, level: int
) -> None:
    supply = _read(agent, gauge, left)
    assert (supply.unit, supply.max_capacity, supply.level) == ("percent", 100, level)


@given(
    st.integers(min_value=1, max_value=100),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
def test_steps_are_multiples_of_n_just_under_the_truth(step: int, share: float) -> None:
    capacity = 300.0
    shown = Gauge("steps", step).shows(share * capacity, capacity)
    assert shown.level % step == 0
    assert shown.level <= 100 * share + 1e-6 < shown.level + step


@pytest.mark.parametrize(("left", "level"), [(300.0, -3), (0.1, -3), (0.0, 0)])
async def test_r1_some_remaining_gauge_says_minus_3_until_empty(
    agent: SimAgent, left: float, level: int
) -> None:
    supply = _read(agent, "some-remaining", left)
    assert (supply.max_capacity, supply.level) == (-2, level)
    if level < 0:
        assert (supply.percent, supply.quality) == (None, "some-remaining")
    else:
        assert supply.percent == 0.0  # empty is read as empty


@pytest.mark.parametrize("left", [300.0, 12.0, 0.0])
async def test_r1_unknown_gauge_never_tells_not_even_empty(agent: SimAgent, left: float) -> None:
    supply = _read(agent, "unknown", left)
    assert (supply.max_capacity, supply.level, supply.percent) == (-2, -2, None)
    assert (supply.quality, supply.grams_left) == ("unknown", None)


@pytest.mark.parametrize(
    ("gauge", "collected", "level", "full"),
    [
        ("grams", 810.0, 900, 90.0),
        ("percent", 810.0, 10, 90.0),
        ("percent", 815.0, 9, 91.0),
        ("steps:25", 700.0, 0, 100.0),  # 22 % room left shows 0
        ("some-remaining", 899.0, -3, None),
        ("some-remaining", 900.0, 0, 100.0),
        ("unknown", 900.0, -2, None),
    ],
)
async def test_r1_waste_gauges_show_the_room_left(
    agent: SimAgent, gauge: str, collected: float, level: int, full: float | None
) -> None:
    slot = Slot(_spec(gauge, "waste", capacity=900.0), collected)
    supply = agent.read("S1", "MFP", [slot]).supplies[0]
    assert (supply.receptacle, supply.level, supply.percent) == (True, level, full)


# --- status bits and page counter --------------------------------------------------------------


@pytest.mark.parametrize("gauge", ["grams", "percent", "steps:25", "some-remaining", "unknown"])
async def test_r1_no_toner_bit_while_a_toner_is_empty_whatever_the_gauge(
    agent: SimAgent, gauge: str
) -> None:
    waste = Slot(_spec(gauge, "waste", capacity=900.0), 900.0)  # full: not a toner alert
    assert agent.read("S1", "MFP", [Slot(_spec(gauge), 0.1), waste]).status.errors == ()
    empty = agent.read("S1", "MFP", [Slot(_spec(gauge), 0.0), waste])
    assert empty.status.errors == ("noToner",)  # never lowToner: not invented


async def test_page_counter_is_read_with_its_unit(agent: SimAgent) -> None:
    reading = agent.read("S1", "MFP", [Slot(_spec("grams"), 10.0)], 4321)
    assert (reading.page_count, reading.counter_unit) == (4321, "impressions")
    assert agent.read("S1", "MFP", [Slot(_spec("grams"), 10.0)]).page_count is None


FLEET: dict[str, Any] = {
    "start": "2026-01-05",
    "days": 10,
    "customers": [
        {
            "id": "acme",
            "kind": "self",
            "contacts": [{"id": "anna", "email": "anna@acme.example"}],
            "sites": [{"id": "milano", "address": "Via Roma 1"}],
        }
    ],
    "devices": [
        {
            "serial": "C1",
            "customer": "acme",
            "site": "milano",
            "contact": "anna",
            "supplies": [
                {"id": "cyan", "kind": "toner", "colour": "cyan", "sku": "TN-C",
                 "capacity_grams": 100, "start_grams": 100, "gauge": "percent"},
                {"id": "black", "kind": "toner", "colour": "black", "sku": "TN-K",
                 "capacity_grams": 100, "start_grams": 25, "gauge": "some-remaining",
                 "yield_pages": 4000},
                {"id": "waste", "kind": "waste", "sku": "WT", "capacity_grams": 50,
                 "start_grams": 0, "gauge": "unknown"},
            ],
        }
    ],
}  # fmt: skip


def _fleet(**changes: Any) -> Fleet:
    return parse_fleet(json.dumps({**FLEET, **changes}))


def _usage(fleet: Fleet, rows: list[str], header: str = "date,serial,supply,grams") -> Usage:
    return parse_usage([header, *rows], fleet)


def _days(fleet: Fleet, usage: Usage) -> list[tuple[int, bool]]:
    """(page counter, device out) after each day."""
    world = World.of(fleet)
    seen = []
    for day in range(fleet.days):
        world.live_day(day, usage)
        seen.append((world.page_count("C1"), any(s.out for s in world.devices["C1"])))
    return seen


def test_page_counter_follows_the_pages_column_and_stops_while_out() -> None:
    fleet = _fleet()
    rows = [
        "2026-01-05,C1,black,10,500",
        "2026-01-05,C1,cyan,1,999",  # the first row of the day counts
        "2026-01-06,C1,black,10,400",
        "2026-01-07,C1,black,10,600",  # 5 g left for 10 g: half the day printed, then out
        "2026-01-08,C1,black,10,700",  # out: nothing
        "2026-01-09,C1,black,0,0",
    ]
    usage = _usage(fleet, rows, "date,serial,supply,grams,pages")
    assert _days(fleet, usage)[:5] == [
        (500, False),
        (900, False),
        (1200, True),
        (1200, True),
        (1200, True),
    ]


def test_page_counter_without_pages_is_20_per_gram_of_black() -> None:
    fleet = _fleet()
    usage = _usage(
        fleet, ["2026-01-05,C1,black,6.2", "2026-01-05,C1,cyan,3", "2026-01-06,C1,black,0.35"]
    )
    assert [pages for pages, _ in _days(fleet, usage)[:2]] == [124, 131]
    assert PAGES_PER_GRAM == 20


def test_page_counter_without_black_follows_the_first_toner() -> None:
    doc = json.loads(json.dumps(FLEET))
    doc["devices"][0]["supplies"][1]["colour"] = "magenta"
    fleet = parse_fleet(json.dumps(doc))
    usage = _usage(fleet, ["2026-01-05,C1,black,10", "2026-01-05,C1,cyan,2"])
    assert _days(fleet, usage)[0][0] == 40  # cyan is listed first


def test_a_supply_that_starts_empty_is_out_from_the_first_day() -> None:
    doc = json.loads(json.dumps(FLEET))
    doc["devices"][0]["supplies"][1]["start_grams"] = 0
    fleet = parse_fleet(json.dumps(doc))
    usage = _usage(fleet, ["2026-01-05,C1,black,0,100"], "date,serial,supply,grams,pages")
    world = World.of(fleet)
    assert world.slots["C1", "black"].out
    world.live_day(0, usage)
    assert (world.stockout_days["C1"], world.page_count("C1")) == (1, 0)


def test_installs_and_stockout_days_are_kept_per_supply() -> None:
    fleet = _fleet()
    rows = [f"2026-01-{5 + d:02d},C1,black,10" for d in range(10)]
    usage = _usage(fleet, rows)
    world = World.of(fleet)
    for day in range(fleet.days):
        if day == 5:
            world.deliver(("C1", "black"), 2, day)  # out since day 2: one goes in at once
        world.live_day(day, usage)
    black = world.slots["C1", "black"]
    assert (black.installs, black.out_days, black.spares) == ([5], [2, 3, 4], 1)
    assert runs([2, 3, 4, 7, 9, 10]) == [(2, 4), (7, 7), (9, 10)]


# --- the naive policy acts on what the gauge shows ---------------------------------------------


@pytest.mark.parametrize(
    ("gauge", "left", "low"),
    [
        ("grams", 29.9, True),
        ("grams", 30.0, False),
        ("percent", 29.9, True),  # reads 9 %
        ("percent", 30.0, False),
        ("steps:25", 74.0, True),  # reads 0
        ("steps:25", 75.0, False),
        ("some-remaining", 0.1, False),
        ("some-remaining", 0.0, True),
        ("unknown", 0.0, False),
    ],
)
def test_naive_reads_the_gauge(gauge: str, left: float, low: bool) -> None:
    assert Gauge.parse(gauge).reads_under(0.10, left, 300.0) is low


def test_naive_orders_a_some_remaining_supply_only_once_it_reads_empty() -> None:
    fleet = _fleet(days=20)
    rows = [f"2026-01-{5 + d:02d},C1,black,10" for d in range(20)]
    report = naive(fleet, _usage(fleet, rows))
    black = [o for o in report["orders_log"] if o["supply"] == "black"]
    assert black[0]["day"] == "2026-01-07"  # the day it ran out, not before
    supply = report["per_device"]["C1"]["supplies"]["black"]
    assert supply["stockouts"][0] == ["2026-01-07", "2026-01-09"]  # in on the 3rd day after
    assert supply["installs"][0] == "2026-01-10"
    assert (supply["gauge"], supply["yield_pages"]) == ("some-remaining", 4000)


def test_naive_never_orders_on_an_unknown_gauge() -> None:
    fleet = _fleet(days=20)
    rows = [f"2026-01-{5 + d:02d},C1,waste,10" for d in range(20)]
    report = naive(fleet, _usage(fleet, rows))
    assert [o for o in report["orders_log"] if o["supply"] == "waste"] == []
    assert report["per_device"]["C1"]["supplies"]["waste"]["stockouts"] == [
        ["2026-01-09", "2026-01-24"]
    ]


# --- through the real ingest -------------------------------------------------------------------


def test_readings_carry_the_page_counter_and_alert_and_registration_the_yield(
    tmp_path: Path,
) -> None:
    fleet = _fleet(days=4)
    rows = [f"2026-01-{5 + d:02d},C1,black,10,{100 * (d + 1)}" for d in range(4)]
    usage = _usage(fleet, rows, "date,serial,supply,grams,pages")
    database = tmp_path / "sim.db"
    report = asyncio.run(simulate(fleet, usage, database=database))
    assert report["readings"] == 4
    assert report["per_device"]["C1"]["page_count"] == 100 + 200 + 150
    supplies = report["per_device"]["C1"]["supplies"]
    assert {k: v["gauge"] for k, v in supplies.items()} == {
        "cyan": "percent",
        "black": "some-remaining",
        "waste": "unknown",
    }

    async def stored() -> tuple[list[Any], list[Any]]:
        db = Database.open(f"sqlite+aiosqlite:///{database}")
        try:
            query = select(readings.c.page_count, readings.c.toner_alert).order_by(readings.c.id)
            counted = await db.read(lambda c: list(c.execute(query)))
            rated = select(asr_supplies.c.supply_id, asr_supplies.c.rated_yield)
            yields = await db.read(lambda c: sorted(c.execute(rated)))
            return counted, yields
        finally:
            await db.close()

    counted, yields = asyncio.run(stored())
    assert [tuple(r) for r in counted] == [
        (100, None),
        (300, None),
        (450, "empty"),  # ran out half-way through its day
        (450, "empty"),
    ]
    assert [tuple(r) for r in yields] == [("black", 4000), ("cyan", None), ("waste", None)]
