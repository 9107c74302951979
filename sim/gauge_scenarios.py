"""Scenarios of issue 14: each gauge kind, yields off the rated ones, cold starts (R1, R7-R9)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from sim.office import (
    COLOUR_MFP,
    MONO_MFP,
    NORMAL,
    Device,
    _device,
    serial_of,
)
from sim.office_scenarios import (
    _office_pair,
)
from sim.registry import (
    Plan,
    Run,
    scenario,
)

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
    scenario(name, description)(plan)


@scenario(
    "gauge-unknown",
    'A mono MFP and a colour MFP whose gauges are all "unknown" (-2 always, not even empty),'
    " rated yield_pages, pages column: the mono one is supplied from noToner and its page"
    " counter; the colour one's noToner names no toner, so it goes to the helpdesk (R1, R7)",
)
def gauge_unknown(run: Run) -> Plan:
    devices = [
        _device(run.rng, serial_of(1), MONO_MFP, NORMAL, black_left=0.5),
        _device(run.rng, serial_of(2), COLOUR_MFP, NORMAL, black_left=0.25),
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


@scenario(
    "yield-below",
    "The steady office on some-remaining gauges whose cartridges give 30 % fewer pages than"
    " the rated yield_pages (heavy coverage): pages per cartridge learned, not believed (R7)",
)
def yield_below(run: Run) -> Plan:
    return Plan(_gauged(_office_pair(run.rng), "some-remaining", 0.7), pages=True)


@scenario(
    "yield-above",
    "The steady office on some-remaining gauges whose cartridges give 20 % more pages than"
    " the rated yield_pages (light coverage): no stockpile from a pessimistic rating (R7, R9)",
)
def yield_above(run: Run) -> Plan:
    return Plan(_gauged(_office_pair(run.rng), "some-remaining", 1.2), pages=True)


@scenario(
    "cold-start",
    "3 colour MFPs registered with black at 0 g (out from day one), 3 % and 15 % of the"
    " cartridge, pages column: supplied within the lead time with no usage rate yet (R7-R9)",
)
def cold_start(run: Run) -> Plan:
    devices = [
        _device(run.rng, serial_of(n), COLOUR_MFP, NORMAL, black_left=left)
        for n, left in ((1, 0.0), (2, 0.03), (3, 0.15))
    ]
    return Plan(devices, pages=True)
