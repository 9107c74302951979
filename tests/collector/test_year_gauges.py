"""A simulated year per gauge kind (issue 14; R1, R7-R9, R12, R13): every printer supplied.

Each scenario of sim/scenarios.py runs a year through the real ingest and the real daily run
(collector.simulation). What must hold, per supply ASR manages:
- gauges with a number (grams, percent, steps of 10, 25 and 50): no stock-out at all;
- gauges without one ("some remaining", unknown): a supply may run out while ASR does not
  know its pages per cartridge, or misjudges them (a rated yield 30 % off): it then orders
  on the empty reading, so no stock-out lasts longer than the lead time and the day that
  reading takes to reach the plan, and none after its first two (its first cartridge, with
  nothing to go on, and the first one seen going in, learned when it reads empty);
- a cold start (0 g, 3 %, 15 %): supplied within the lead time, then no stock-out;
- no more cartridges shipped than the supply used (cartridges put in) + 2;
- a supply ASR cannot forecast (a colour printer whose gauges never tell and whose toner
  alerts name no toner) says why, for the helpdesk, and gets no guessed order.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from collector.simulation.contract import Fleet, load_fleet, load_usage
from collector.simulation.runner import simulate, simulate_in
from collector.store.database import Database
from sim.scenarios import SCENARIOS

NUMBERED = ("gauge-grams", "gauge-percent", "gauge-steps-10", "gauge-steps-25", "gauge-steps-50")
BLIND = ("gauge-some-remaining", "gauge-unknown", "yield-below", "yield-above")


def _load(name: str, tmp_path: Any) -> tuple[Fleet, Any]:
    fleet_path, usage_path = SCENARIOS[name]().write(tmp_path / name)
    fleet = load_fleet(fleet_path)
    return fleet, load_usage(usage_path, fleet)


def _runs(supply: dict[str, Any]) -> list[int]:
    """The lengths in days of the supply's stock-out runs."""
    return [
        (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
        for first, last in supply["stockouts"]
    ]


def _shipped(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for line in report["orders_log"]:
        out[line["serial"], line["supply"]] += line["quantity"]
    return out


def check(report: dict[str, Any], name: str, lead_days: int) -> dict[str, int]:
    """Assert the year's promises; the figures for the docs' table."""
    shipped = _shipped(report)
    listed = 0
    for serial, device in report["per_device"].items():
        # A device whose black toner cannot be forecast is the helpdesk's: its waste box too,
        # which only comes with black toner (R11).
        helpdesk = device["supplies"].get("black", {}).get("basis") == "none"
        for supply_id, supply in device["supplies"].items():
            where = f"{name}: {serial} {supply_id}"
            runs = _runs(supply)
            if supply.get("basis") == "none":
                listed += 1
                assert supply["why"], where  # the helpdesk is told why
                if supply_id != "waste":
                    assert shipped[serial, supply_id] == 0, where  # and nothing is guessed
            if helpdesk:
                continue
            if name in NUMBERED:
                assert runs == [], where
            elif name == "cold-start":
                assert all(n <= lead_days + 1 for n in runs[:1]) and runs[1:] == [], where
            else:
                assert all(n <= lead_days + 1 for n in runs) and runs[2:] == [], where
            used = len(supply["installs"])
            assert shipped[serial, supply_id] <= used + 2, (where, shipped[serial, supply_id], used)
    return {"listed": listed}


@pytest.mark.parametrize("name", [*NUMBERED, *BLIND, "cold-start"])
async def test_a_year_per_gauge_kind_every_printer_supplied(name: str, tmp_path: Any) -> None:
    fleet, usage = _load(name, tmp_path)
    report = await simulate(fleet, usage, "asr", tmp_path / "sim.db")
    figures = check(report, name, fleet.lead_days)
    if name == "gauge-unknown":
        assert figures["listed"] == 6  # the colour MFP's 4 toners, both waste boxes
        mono = report["per_device"]["ACME-0001"]["supplies"]["black"]
        assert mono["basis"] == "pages" and len(mono["installs"]) >= 5
    else:
        assert figures["listed"] == 0
    naive = await simulate(fleet, usage, "naive")
    # ASR never does worse than a policy that can act only on what the gauge shows.
    assert report["stockout_device_days"] <= naive["stockout_device_days"]


async def test_a_year_of_some_remaining_gauges_on_postgresql(
    tmp_path: Any, empty_pg_url: str
) -> None:
    """The same year on PostgreSQL: the same promises hold, with the same orders."""
    fleet, usage = _load("gauge-some-remaining", tmp_path)
    db = Database.open(empty_pg_url)
    try:
        report = await simulate_in(fleet, usage, db)
    finally:
        await db.close()
    check(report, "gauge-some-remaining", fleet.lead_days)
    sqlite = await simulate(fleet, usage, "asr", tmp_path / "sim.db")
    assert report["orders_log"] == sqlite["orders_log"]
    assert report["stockout_device_days"] == sqlite["stockout_device_days"]
