"""The gauge, yield and cold-start scenarios of sim.scenarios (issue 14): what they write,
and that each runs to completion through `simulate` under both policies. Their stock-out
figures are the forecast engine's to assert (its own year tests), not these."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from collector.simulation.contract import Fleet, Usage, load_fleet, load_usage
from collector.simulation.runner import simulate
from sim.scenarios import SCENARIOS, Scenario

GAUGES = {
    "gauge-grams": "grams",
    "gauge-percent": "percent",
    "gauge-steps-10": "steps:10",
    "gauge-steps-25": "steps:25",
    "gauge-steps-50": "steps:50",
    "gauge-some-remaining": "some-remaining",
    "gauge-unknown": "unknown",
    "yield-below": "some-remaining",
    "yield-above": "some-remaining",
    "cold-start": "grams",
}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SMOKE_DAYS = 40  # past the first orders: cold starts, triggers and deliveries


def _load(scenario: Scenario, directory: Path) -> tuple[Fleet, Usage]:
    fleet_path, usage_path = scenario.write(directory / scenario.name)
    fleet = load_fleet(fleet_path)
    return fleet, load_usage(usage_path, fleet)


@pytest.mark.parametrize("name", sorted(GAUGES))
def test_scenario_files_carry_gauges_yields_and_pages(name: str, tmp_path: Path) -> None:
    fleet, usage = _load(SCENARIOS[name](), tmp_path)
    assert fleet.days == 365
    gauges = {str(s.gauge) for d in fleet.devices for s in d.supplies}
    assert gauges == {GAUGES[name]}
    rated = {s.id: s.yield_pages for d in fleet.devices for s in d.supplies}
    assert rated["black"] == 12000 and rated["cyan"] == 8000 and rated["waste"] == 13800
    assert usage.pages is not None
    assert all(sum(per_day) > 0 for per_day in usage.pages.values())


@pytest.mark.parametrize(
    ("name", "real"), [("gauge-grams", 40), ("yield-below", 28), ("yield-above", 48)]
)
def test_real_yield_is_the_share_of_the_rated_one(name: str, real: int, tmp_path: Path) -> None:
    """12,000 pages rated for 300 g: 40 pages a gram; 30 % below, 28; 20 % above, 48."""
    fleet, usage = _load(SCENARIOS[name](), tmp_path)
    assert usage.pages is not None
    for device in fleet.devices:
        black = usage.grams[device.serial]["black"]
        pages = usage.pages[device.serial]
        per_gram = [p / g for p, g in zip(pages, black, strict=True) if g > 0]
        assert mean(per_gram) == pytest.approx(real, rel=0.02)
        assert min(per_gram) >= 0.89 * real and max(per_gram) <= 1.11 * real


def test_cold_start_devices_start_empty_at_3_and_at_15_percent(tmp_path: Path) -> None:
    fleet, _ = _load(SCENARIOS["cold-start"](), tmp_path)
    black = [next(s for s in d.supplies if s.id == "black") for d in fleet.devices]
    assert [s.start_grams / s.capacity_grams for s in black] == [0.0, 0.03, 0.15]


@pytest.mark.parametrize("name", sorted(GAUGES))
def test_scenario_runs_through_simulate_under_both_policies(name: str, tmp_path: Path) -> None:
    fleet, usage = _load(SCENARIOS[name](days=SMOKE_DAYS), tmp_path)
    assert usage.pages is not None
    for policy in ("asr", "naive"):
        report = asyncio.run(simulate(fleet, usage, policy))
        assert report["days"] == SMOKE_DAYS
        if policy == "asr":
            assert report["readings"] == SMOKE_DAYS * len(fleet.devices)
        for device in fleet.devices:
            entry = report["per_device"][device.serial]
            assert entry["page_count"] == sum(usage.pages[device.serial]) or entry["stockout_days"]
            for spec in device.supplies:
                supply = entry["supplies"][spec.id]
                assert supply["gauge"] == GAUGES[name]
                assert supply["yield_pages"] == spec.yield_pages
                for first, last in supply["stockouts"]:
                    assert first <= last
                assert supply["installs"] == sorted(supply["installs"])


def test_cold_start_empty_device_is_out_from_the_first_day(tmp_path: Path) -> None:
    fleet, usage = _load(SCENARIOS["cold-start"](days=SMOKE_DAYS), tmp_path)
    report = asyncio.run(simulate(fleet, usage, "naive"))
    empty = report["per_device"]["ACME-0001"]
    assert empty["first_stockout"] == "2026-01-05"
    assert empty["supplies"]["black"]["stockouts"][0][0] == "2026-01-05"


def test_simulate_command_runs_a_some_remaining_scenario(tmp_path: Path) -> None:
    """`asr-collector simulate` takes the new files as written (gauge, yield_pages, pages)."""
    fleet_path, usage_path = SCENARIOS["gauge-some-remaining"](days=10).write(tmp_path / "s")
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", "simulate", str(fleet_path), str(usage_path)]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["per_device"]["ACME-0001"]["supplies"]["black"]["gauge"] == "some-remaining"


@pytest.mark.parametrize("name", sorted(GAUGES))
def test_examples_are_the_generators_bytes(name: str, tmp_path: Path) -> None:
    """examples/scenarios holds what `python -m sim.scenarios examples/scenarios` writes."""
    SCENARIOS[name]().write(tmp_path)
    for file in ("fleet.json", "usage.csv"):
        assert (EXAMPLES / name / file).read_bytes() == (tmp_path / file).read_bytes(), file
    assert f"- `{name}`:" in (EXAMPLES / "README.md").read_text()
