"""The naive baseline of docs/replenishment.md: order one cartridge when the gauge reads low.

Is: the same world as the ASR run (collector.simulation.world), with a policy that acts only
on what each supply's gauge shows on a day its device answers: one cartridge when the read
level is under NAIVE_THRESHOLD (exact grams; the whole percent or step shown; a
some-remaining gauge only once it shows 0; an unknown gauge never), no second order while
one is on its way, one shipment per order, and the scenario's extra orders (R14).
Is not: the collector, nor a forecast: no rate, no trigger, no consolidation, no emails.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collector.simulation.contract import Fleet, Usage
from collector.simulation.report import EMAILS, tally
from collector.simulation.world import Key, World, backorder_delay

NAIVE_THRESHOLD = 0.10  # the naive policy orders under 10 % left (over 90 % full for waste)


def naive(fleet: Fleet, usage: Usage) -> dict[str, Any]:
    """The baseline's report: one cartridge when a supply reads under 10 %."""
    world = World.of(fleet)
    orders_log: list[dict[str, Any]] = []
    arriving: dict[int, list[Key]] = defaultdict(list)
    outstanding: set[Key] = set()  # ordered, not yet arrived: no second order meanwhile
    swaps = defaultdict(list)
    for swap in fleet.replacements:
        swaps[fleet.day_index(swap.date)].append((swap.serial, swap.supply))
    extras = defaultdict(list)
    for extra in fleet.extra_orders:
        extras[fleet.day_index(extra.date)].append(extra)
    number = 0
    for day in range(fleet.days):
        for key in arriving.pop(day, []):
            world.deliver(key, 1, day)
            outstanding.discard(key)
        for key in swaps.get(day, ()):
            world.swap_early(day, key)
        world.live_day(day, usage)
        wanted = [(e.serial, e.supply, e.quantity, "extra") for e in extras.get(day, ())]
        for (serial, supply_id), slot in world.slots.items():
            if not usage.reachable[serial][day] or (serial, supply_id) in outstanding:
                continue
            spec = slot.spec
            low = spec.gauge.reads_under(NAIVE_THRESHOLD, slot.remaining(), spec.capacity_grams)
            if slot.spares == 0 and low:
                wanted.append((serial, supply_id, 1, "naive"))
        for serial, supply_id, quantity, reason in wanted:
            spec = world.slots[serial, supply_id].spec
            delay = backorder_delay(fleet, {spec.sku}, fleet.date_of(day))
            number += 1
            for _ in range(quantity):
                arriving[day + delay + fleet.lead_days].append((serial, supply_id))
            if reason == "naive":
                outstanding.add((serial, supply_id))
            orders_log.append(
                {
                    "day": fleet.date_of(day).isoformat(),
                    "shipment": f"naive-{number}",
                    "serial": serial,
                    "supply": supply_id,
                    "sku": spec.sku,
                    "quantity": quantity,
                    "reason": reason,
                }
            )
        world.end_of_day()
    report = tally(fleet, world, orders_log, "naive")
    report["emails"] = dict.fromkeys(EMAILS, 0)
    return report
