"""Order planning (R8 to R12, R14 via the balance): pure functions of the fleet's forecasts.

Is: which supplies get ordered today, how many cartridges each, and which travel together.
- R8: a toner or ink supply is triggered when its days of supply, counting the cartridges
  shipped and not installed (R13, R14), are `trigger_days` or fewer.
- R9: it gets `supply_days` of use in whole cartridges, less those shipped and not
  installed, at least one; `quantity_slack` of a cartridge is forgiven ("about" 30 days: a
  need of 1.05 cartridges ships one).
- R10: each group (same customer, site and supplies contact) with a triggered supply gets one
  shipment, joined by the group's other supplies that reach the trigger within
  `consolidation_days` (the device's own other supplies too, unless switched off), as long
  as that leaves no more cartridges waiting on site than `supply_days` of use need.
- R11: each black toner line brings up to `waste_per_black` waste containers per cartridge,
  for the same device: as many as the waste room needs to last as long as the black toner
  (containers already shipped count, R13, so they do not pile up). Waste containers are
  never ordered otherwise (extras are the helpdesk's); a waste room at the trigger brings its
  device's black toner forward, and the container comes with it (a full box stops the
  printer); when that would leave more than `supply_days` of black waiting on site, the
  container goes alone (it is not an extra one: without it the printer stops).
- R12: a supply ordered less than `reorder_guard_days` ago is not ordered again unless its
  usage jumped (`spike`); once shipped cartridges count in the days left, a need already
  covered does not trigger, and a jump that empties them sooner than planned does.
- R5, R6, R16: only toner, ink and waste are planned; a device flagged for high usage, or
  disconnected, is left out (`eligible` is False, with the reason), and so are supplies whose
  usage rate is not known yet.
Each line carries its reason and the figures behind it.
Is not: storage, the clock (`today` is a parameter), or the forecast (collector.replenish.forecast).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.replenish.due import due_in, guarded
from collector.replenish.forecast import NONE, Forecast
from collector.replenish.settings import Rules

TRIGGER = "trigger"
CONSOLIDATED = "consolidated"
WASTE_WITH_BLACK = "waste-with-black"
SPIKE = "spike"
EXTRA = "extra"
REASONS = (TRIGGER, CONSOLIDATED, WASTE_WITH_BLACK, SPIKE, EXTRA)
ASR_KINDS = ("toner", "ink", "waste")  # R5
CONSUMED_KINDS = ("toner", "ink")


@dataclass(frozen=True, order=True)
class Group:
    """R10: who ships together: one customer's site and supplies contact."""

    customer: str
    site: str
    contact: str


@dataclass(frozen=True)
class SupplyPlan:
    """One registered supply as the planner sees it."""

    serial: str
    supply_id: str
    kind: str  # toner, ink or waste (R5)
    colour: str | None
    sku: str | None  # None: part number needed (issue 14); still forecast and ordered
    group: Group
    forecast: Forecast
    last_order_day: int | None  # R12
    eligible: bool = True  # False: its device is flagged (R6) or disconnected (R16)


@dataclass(frozen=True)
class Line:
    """One order line: a supply, how many cartridges, why, and the figures behind it."""

    serial: str
    supply_id: str
    sku: str | None  # None: part number needed; the shipment waits on it
    quantity: int
    reason: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class Shipment:
    """The lines that travel together to one group (R10)."""

    group: Group
    lines: tuple[Line, ...]


def plan(supplies: Sequence[SupplyPlan], today: int, rules: Rules) -> list[Shipment]:
    """Today's shipments, one per group with a triggered supply, in group order."""
    groups: dict[Group, list[SupplyPlan]] = defaultdict(list)
    for supply in supplies:
        if supply.eligible and supply.kind in ASR_KINDS:
            groups[supply.group].append(supply)
    shipments = []
    for group in sorted(groups):
        members = groups[group]
        lines: dict[tuple[str, str], Line] = {}
        for supply in members:
            reason = trigger_reason(supply, today, rules)
            if reason is not None:
                lines[supply.serial, supply.supply_id] = _line(supply, reason, rules)
        lines.update(_waste_at_trigger(members, lines, today, rules))
        if not lines:
            continue
        triggered = {serial for serial, _ in lines}
        for supply in members:
            key = (supply.serial, supply.supply_id)
            if key in lines or not _joins(supply, triggered, today, rules):
                continue
            lines[key] = _line(supply, CONSOLIDATED, rules)
        shipments.append(Shipment(group, _with_waste(list(lines.values()), members, rules)))
    return shipments


def trigger_reason(supply: SupplyPlan, today: int, rules: Rules) -> str | None:
    """R8/R12: 'trigger' or 'spike' when the supply is to be ordered today, else None."""
    f = supply.forecast
    if supply.kind not in CONSUMED_KINDS:
        return None
    if due_in(f, supply.last_order_day, today, rules) != 0:
        return None  # not at the trigger yet, or R12: covered by the order placed days ago
    recent = _guarded(supply, today, rules)
    return SPIKE if f.spike and (recent or f.balance > 0) else TRIGGER


def _waste_at_trigger(
    members: list[SupplyPlan], lines: dict[tuple[str, str], Line], today: int, rules: Rules
) -> dict[tuple[str, str], Line]:
    """R11 with R8: what a waste room at the trigger adds to the group's lines.

    A full box stops the printer, and a container ships only with a black toner (extras are
    the helpdesk's), so its device's black toner comes forward, and the container with it
    (`_with_waste`), as long as that leaves no more cartridges waiting on site than
    `supply_days` of use need (R9, R10). When no black toner can come before the box is full
    (one already waits on site, and it is not due before the room runs out), the container
    goes alone: it is not an extra one, it is the one the printer needs to print at all.
    """
    added: dict[tuple[str, str], Line] = {}
    for container in members:
        f = container.forecast
        if (
            container.kind != "waste"
            or not _known(f)
            or (f.days_left_total or 0.0) > rules.trigger_days
            or _guarded(container, today, rules)
        ):
            continue
        blacks = [s for s in members if s.serial == container.serial and _is_black(s)]
        forward = [
            s
            for s in blacks
            if (s.serial, s.supply_id) not in lines
            and _known(s.forecast)
            and not _guarded(s, today, rules)
            and s.forecast.balance + quantity(s.forecast, rules) <= need(s.forecast, rules)
        ]
        for black in forward:
            added[black.serial, black.supply_id] = _line(black, CONSOLIDATED, rules)
        if forward or any((s.serial, s.supply_id) in lines for s in blacks):
            continue
        room = f.days_left_total or 0.0
        in_time = any(
            _known(s.forecast) and (s.forecast.days_left_total or 0.0) - rules.trigger_days < room
            for s in blacks
        )
        if not in_time:
            added[container.serial, container.supply_id] = _line(container, TRIGGER, rules)
    return added


def _is_black(supply: SupplyPlan) -> bool:
    return supply.kind == "toner" and (supply.colour or "").lower() == "black"


def quantity(forecast: Forecast, rules: Rules) -> int:
    """R9: `supply_days` of use in whole cartridges, less those shipped and not installed
    (R13), at least one."""
    return max(1, need(forecast, rules) - forecast.balance)


def _guarded(supply: SupplyPlan, today: int, rules: Rules) -> bool:
    """R12: ordered less than `reorder_guard_days` ago."""
    return guarded(supply.last_order_day, today, rules)


def _known(f: Forecast) -> bool:
    return f.rate is not None and f.rate > 0 and f.days_left_total is not None


def _joins(supply: SupplyPlan, triggered: set[str], today: int, rules: Rules) -> bool:
    """R10: whether a supply of the group joins a shipment going there anyway."""
    f = supply.forecast
    if supply.kind not in CONSUMED_KINDS or not _known(f):
        return False
    if supply.serial in triggered and not rules.consolidate_same_device:
        return False
    if _guarded(supply, today, rules):
        return False  # R12: ordered days ago; only its own jump re-orders it
    assert f.days_left_total is not None
    if f.days_left_total - rules.trigger_days > rules.consolidation_days:
        return False
    # No stockpile: joining must not leave more cartridges waiting on site than
    # `supply_days` of use need (one, for most supplies).
    return f.balance + quantity(f, rules) <= need(f, rules)


def need(forecast: Forecast, rules: Rules) -> int:
    """R9: the whole cartridges `supply_days` of use need (at least one)."""
    if not forecast.capacity or not forecast.rate:
        return 1
    cartridges = forecast.rate * rules.supply_days / forecast.capacity
    return max(1, math.ceil(cartridges - rules.quantity_slack))


def _line(supply: SupplyPlan, reason: str, rules: Rules) -> Line:
    figures = {**supply.forecast.figures(), "trigger_days": rules.trigger_days}
    return Line(
        supply.serial,
        supply.supply_id,
        supply.sku,
        quantity(supply.forecast, rules),
        reason,
        figures,
    )


def _with_waste(lines: list[Line], members: list[SupplyPlan], rules: Rules) -> tuple[Line, ...]:
    """R11: waste containers with each black toner order, for the same device."""
    if rules.waste_per_black <= 0:
        return tuple(lines)
    waste: dict[str, SupplyPlan] = {}
    black: dict[tuple[str, str], SupplyPlan] = {}
    for supply in members:
        if supply.kind == "waste":
            waste.setdefault(supply.serial, supply)
        elif supply.kind == "toner" and (supply.colour or "").lower() == "black":
            black[supply.serial, supply.supply_id] = supply
    out = list(lines)
    ordered = {(line.serial, line.supply_id) for line in lines}
    for line in lines:
        container = waste.get(line.serial)
        toner = black.get((line.serial, line.supply_id))
        if toner is None or container is None or (container.serial, container.supply_id) in ordered:
            continue
        count = _containers(toner.forecast, line.quantity, container.forecast, rules)
        if count == 0:
            continue
        figures = {**container.forecast.figures(), "with": line.supply_id}
        out.append(
            Line(
                container.serial,
                container.supply_id,
                container.sku,
                count,
                WASTE_WITH_BLACK,
                figures,
            )
        )
    return tuple(sorted(out, key=lambda line: (line.serial, line.supply_id)))


def _containers(toner: Forecast, cartridges: int, container: Forecast, rules: Rules) -> int:
    """R11: `waste_per_black` containers a black cartridge, but no more than it takes for the
    waste room on site to last as long as the black toner will once this order is in (R13's
    balance: a container often fills more slowly than a cartridge empties, so they would
    otherwise pile up). The next black order brings the next containers, before that.
    """
    most = cartridges * rules.waste_per_black
    if container.rate == 0:
        return 0  # its room is not filling: containers on site would only pile up
    if not _known(toner) or not _known(container) or not toner.capacity or not container.capacity:
        # The rates are not known: R11 as written, but not onto a container already waiting
        # on site or on its way; unless the gauge never says how full it is: then no swap
        # is ever seen either, and one container with each black toner is all there is.
        return most if container.balance == 0 or container.basis == NONE else 0
    assert toner.rate and toner.days_left_total is not None
    assert container.rate and container.days_left_total is not None
    covers = toner.days_left_total + cartridges * toner.capacity / toner.rate
    short = (covers - container.days_left_total) * container.rate / container.capacity
    return min(most, max(0, math.ceil(short - rules.quantity_slack)))
