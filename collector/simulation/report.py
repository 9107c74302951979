"""The simulation's report.json, from what the world went through and the orders placed.

Is: the contract's report keys (docs/simulation-format.md) and ours, counted from
the world (collector.simulation.world) and the orders log of either policy: stock-out days,
orders, shipments, spares on site, early swaps, and per device and supply its gauge kind,
rated yield, the days cartridges went in and its stock-out days as runs of dates.
Is not: what the collector knows; the runner adds the store's figures (emails, states,
forecasts) for the ASR policy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from collector.simulation.contract import Fleet
from collector.simulation.world import Slot, World

EMAILS = (
    "order_placed",
    "shipped",
    "backordered",
    "disconnected",
    "disconnected_followup",
    "registered",
    "backorder_shipped",  # beyond the contract: also counted in "shipped"
    "reconnected",
)


def tally(
    fleet: Fleet, world: World, orders_log: list[dict[str, Any]], policy: str
) -> dict[str, Any]:
    """The report's keys that the world and the orders log give, under either policy."""
    per_device: dict[str, dict[str, Any]] = {}
    by_serial = Counter(entry["serial"] for entry in orders_log)
    for device in fleet.devices:
        per_device[device.serial] = {
            "stockout_days": world.stockout_days.get(device.serial, 0),
            "first_stockout": _day_or_none(fleet, world.first_stockout.get(device.serial)),
            "max_spares": {
                spec.id: world.peak_spares.get((device.serial, spec.id), 0)
                for spec in device.supplies
            },
            "orders": by_serial.get(device.serial, 0),
            "state": None,
            "page_count": world.page_count(device.serial),
            "supplies": {
                spec.id: _supply(fleet, world.slots[device.serial, spec.id])
                for spec in device.supplies
            },
        }
    return {
        "policy": policy,
        "start": fleet.start.isoformat(),
        "days": fleet.days,
        "lead_days": fleet.lead_days,
        "devices": len(fleet.devices),
        "stockout_device_days": sum(world.stockout_days.values()),
        "orders": len(orders_log),
        "shipments": len({entry["shipment"] for entry in orders_log}),
        "cartridges_shipped": sum(entry["quantity"] for entry in orders_log),
        "spare_cartridge_days": world.spare_days,
        "max_spares_on_site": world.max_spares,
        "max_spares_at_one_site": world.max_spares_site,
        "early_swaps": [
            {"day": fleet.date_of(d).isoformat(), "serial": s, "supply": k, "left_grams": g}
            for d, s, k, g in world.early_swaps
        ],
        "per_device": per_device,
        "orders_log": orders_log,
    }


def _supply(fleet: Fleet, slot: Slot) -> dict[str, Any]:
    """A supply's gauge, rated yield, installs (dates) and stock-outs ([first, last] runs)."""
    return {
        "gauge": str(slot.spec.gauge),
        "yield_pages": slot.spec.yield_pages,
        "installs": [fleet.date_of(day).isoformat() for day in slot.installs],
        "stockouts": [
            [fleet.date_of(first).isoformat(), fleet.date_of(last).isoformat()]
            for first, last in runs(slot.out_days)
        ],
    }


def runs(days: Sequence[int]) -> list[tuple[int, int]]:
    """Increasing day indexes as runs of consecutive days, (first, last) inclusive."""
    out: list[tuple[int, int]] = []
    for day in days:
        if out and day == out[-1][1] + 1:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _day_or_none(fleet: Fleet, day: int | None) -> str | None:
    return None if day is None else fleet.date_of(day).isoformat()
