"""Pure unit tests of collector.replenish.planner (R5, R6, R8-R12, R16).

The forecasts are built by hand (`stand`), or once through forecast() from readings, so every
quantity and reason below is determined by the rules' default numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from collector.replenish.forecast import GRAMS, PERCENT, Forecast, Point, Track, advance, forecast
from collector.replenish.planner import (
    CONSOLIDATED,
    REASONS,
    SPIKE,
    TRIGGER,
    WASTE_WITH_BLACK,
    Group,
    Line,
    Shipment,
    SupplyPlan,
    need,
    plan,
    quantity,
    trigger_reason,
)
from collector.replenish.settings import Rules

RULES = Rules()
TODAY = 739_000  # a day number (date.toordinal())
SITE = Group("acme", "site-1", "contact-1")
OTHER_CONTACT = Group("acme", "site-1", "contact-2")
OTHER_SITE = Group("acme", "site-2", "contact-1")


def stand(
    rate: float | None = 10.0,
    days: float = 60.0,
    *,
    capacity: float = 300.0,
    balance: int = 0,
    spike: bool = False,
    unit: str = GRAMS,
) -> Forecast:
    """A forecast with `days` of supply in all (the installed cartridge plus `balance` more)."""
    if rate is None:
        remaining, days_left, total = capacity / 2, None, None
    elif rate == 0:
        remaining, days_left, total = capacity / 2, math.inf, math.inf
    else:
        remaining = max(0.0, days * rate - balance * capacity)
        days_left, total = remaining / rate, days
    return Forecast(
        unit=unit,
        rate=rate,
        rate_average=rate,
        rate_recent=rate,
        remaining=remaining,
        capacity=capacity,
        days_left=days_left,
        days_left_total=total,
        balance=balance,
        confidence=0.0 if rate is None else 1.0,
        days_with_data=2 if rate is None else 28,
        spike=spike,
        high_usage=False,
        high_usage_suspected=False,
    )


def waste_room(days: float | None, rate: float = 1.0) -> Forecast:
    """A waste container (percent of room left) that is full in `days` (None: rate unknown)."""
    if days is None:
        return stand(None, capacity=100.0, unit=PERCENT)
    return stand(rate, days, capacity=100.0, unit=PERCENT)


def supply(
    serial: str = "A",
    supply_id: str = "black",
    f: Forecast | None = None,
    *,
    kind: str = "toner",
    colour: str | None = None,
    group: Group = SITE,
    last_order_day: int | None = None,
    eligible: bool = True,
) -> SupplyPlan:
    """A registered supply; the colour defaults to the supply id for toner."""
    if colour is None and kind == "toner":
        colour = supply_id
    return SupplyPlan(
        serial=serial,
        supply_id=supply_id,
        kind=kind,
        colour=colour,
        sku=f"SKU-{serial}-{supply_id}",
        group=group,
        forecast=f if f is not None else stand(),
        last_order_day=last_order_day,
        eligible=eligible,
    )


def lines(shipments: Sequence[Shipment]) -> dict[tuple[str, str], Line]:
    """Every line of the shipments, by (serial, supply id)."""
    return {(line.serial, line.supply_id): line for s in shipments for line in s.lines}


def ordered(shipments: Sequence[Shipment]) -> dict[tuple[str, str], tuple[int, str]]:
    """(quantity, reason) of every line, by (serial, supply id)."""
    return {key: (line.quantity, line.reason) for key, line in lines(shipments).items()}


# --- R8 trigger ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "reason"),
    [(5.0, TRIGGER), (21.0, TRIGGER), (21.01, None), (60.0, None)],
)
def test_r8_trigger_at_trigger_days_or_fewer(days: float, reason: str | None) -> None:
    """R8: a supply with `trigger_days` (21) of supply or fewer is ordered; more is not."""
    s = supply(f=stand(10.0, days))
    assert trigger_reason(s, TODAY, RULES) == reason
    expected = {} if reason is None else {("A", "black"): (1, TRIGGER)}
    assert ordered(plan([s], TODAY, RULES)) == expected


def test_r8_trigger_days_is_a_setting() -> None:
    """R8: the threshold is `trigger_days`, not a literal 21."""
    s = supply(f=stand(10.0, 25.0))
    assert trigger_reason(s, TODAY, RULES) is None
    assert trigger_reason(s, TODAY, Rules(trigger_days=30)) == TRIGGER


@pytest.mark.parametrize("rate", [None, 0.0])
def test_r8_unknown_or_zero_rate_never_triggers(rate: float | None) -> None:
    """R7/R8: without a usage rate (or with none used) there is no days-left to trigger on."""
    s = supply(f=stand(rate, 1.0))
    assert trigger_reason(s, TODAY, RULES) is None
    assert plan([s], TODAY, RULES) == []


def test_r8_trigger_from_readings_through_forecast() -> None:
    """R7/R8/R9: 10 g a day with 200 g of a 300 g cartridge left is 20 days: 1 cartridge."""
    t0 = datetime(2024, 3, 4, 12, tzinfo=timezone.utc)
    points = [
        Point(t0 + timedelta(days=i), 300.0 - 10 * i, 300.0, GRAMS, "measured") for i in range(11)
    ]
    track, _ = advance(Track(), points, RULES)
    f = forecast(track, t0 + timedelta(days=10), RULES)
    assert f.rate == pytest.approx(10.0)
    assert f.days_left_total == pytest.approx(20.0)
    assert ordered(plan([supply(f=f)], TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}


# --- R9 quantity -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "balance", "expected"),
    [
        (5.0, 0, 1),  # a cartridge lasts 60 days: 0.5 of one for 30 days, at least one
        (25.0, 0, 3),  # lasts 12 days: 2.5 cartridges, whole ones: 3
        (10.5, 0, 1),  # 1.05 cartridges: the slack (0.1) forgives the 0.05
        (11.0, 0, 1),  # 1.1 cartridges: still within the slack
        (12.0, 0, 2),  # 1.2 cartridges: beyond it
        (25.0, 1, 2),  # 3 needed, 1 shipped and not installed (R13)
        (25.0, 5, 1),  # more than enough on its way: still at least one
    ],
)
def test_r9_quantity(rate: float, balance: int, expected: int) -> None:
    """R9: max(1, ceil(rate * supply_days / capacity - quantity_slack) - balance)."""
    f = stand(rate, 10.0, balance=balance)
    assert quantity(f, RULES) == expected
    assert need(f, RULES) == max(1, math.ceil(rate * 30 / 300 - 0.1))


def test_r9_quantity_in_the_order_line() -> None:
    """R9: the plan's line carries the quantity (a 12-day cartridge: 3 for 30 days)."""
    shipments = plan([supply(f=stand(25.0, 10.0))], TODAY, RULES)
    assert ordered(shipments) == {("A", "black"): (3, TRIGGER)}


def test_r9_supply_days_and_slack_are_settings() -> None:
    """R9: `supply_days` and `quantity_slack` change the count (1.05 cartridges, no slack: 2)."""
    f = stand(10.5, 10.0)
    assert quantity(f, Rules(quantity_slack=0)) == 2
    assert quantity(stand(10.0, 10.0), Rules(supply_days=60)) == 2


# --- R10 consolidation -----------------------------------------------------------------------


def test_r10_same_group_joins_within_consolidation_window() -> None:
    """R10: a device of the same group within trigger_days + consolidation_days (66) joins."""
    shipments = plan(
        [supply("A", f=stand(10.0, 20.0)), supply("B", f=stand(10.0, 66.0))], TODAY, RULES
    )
    assert len(shipments) == 1
    assert shipments[0].group == SITE
    assert ordered(shipments) == {("A", "black"): (1, TRIGGER), ("B", "black"): (1, CONSOLIDATED)}


def test_r10_same_group_beyond_window_does_not_join() -> None:
    """R10: a supply more than consolidation_days past the trigger waits for its own order."""
    shipments = plan(
        [supply("A", f=stand(10.0, 20.0)), supply("B", f=stand(10.0, 66.5))], TODAY, RULES
    )
    assert ordered(shipments) == {("A", "black"): (1, TRIGGER)}


def test_r10_other_contact_same_site_not_consolidated() -> None:
    """R10/R18: another supplies contact at the same site is another group: it does not join."""
    shipments = plan(
        [supply("A", f=stand(10.0, 20.0)), supply("C", f=stand(10.0, 30.0), group=OTHER_CONTACT)],
        TODAY,
        RULES,
    )
    assert [s.group for s in shipments] == [SITE]
    assert ordered(shipments) == {("A", "black"): (1, TRIGGER)}


def test_r10_other_contact_gets_its_own_shipment_when_triggered() -> None:
    """R10: a device of another contact that triggers itself gets a shipment of its own."""
    shipments = plan(
        [supply("A", f=stand(10.0, 20.0)), supply("C", f=stand(10.0, 15.0), group=OTHER_CONTACT)],
        TODAY,
        RULES,
    )
    assert [(s.group, [line.serial for line in s.lines]) for s in shipments] == [
        (SITE, ["A"]),
        (OTHER_CONTACT, ["C"]),
    ]


def test_r10_same_device_other_colours_join() -> None:
    """R10: the triggered device's own other colours join (consolidate_same_device)."""
    members = [
        supply("A", "black", stand(10.0, 20.0)),
        supply("A", "cyan", stand(5.0, 50.0)),
        supply("A", "magenta", stand(5.0, 100.0)),  # 79 days past the trigger: too far
    ]
    assert ordered(plan(members, TODAY, RULES)) == {
        ("A", "black"): (1, TRIGGER),
        ("A", "cyan"): (1, CONSOLIDATED),
    }


def test_r10_same_device_not_joined_when_switched_off() -> None:
    """R10: consolidate_same_device=False keeps the device's other colours out, not others'."""
    members = [
        supply("A", "black", stand(10.0, 20.0)),
        supply("A", "cyan", stand(5.0, 50.0)),
        supply("B", "cyan", stand(5.0, 50.0)),
    ]
    assert ordered(plan(members, TODAY, Rules(consolidate_same_device=False))) == {
        ("A", "black"): (1, TRIGGER),
        ("B", "cyan"): (1, CONSOLIDATED),
    }


def test_r10_spare_already_waiting_does_not_join() -> None:
    """R10/R13: a supply with a spare on site (balance >= need) does not join: no stockpile."""
    members = [
        supply("A", f=stand(10.0, 20.0)),
        supply("B", f=stand(10.0, 40.0, balance=1)),  # need 1, balance 1
        supply("D", f=stand(25.0, 40.0, balance=1)),  # need 3, balance 1: 2 more join
    ]
    assert ordered(plan(members, TODAY, RULES)) == {
        ("A", "black"): (1, TRIGGER),
        ("D", "black"): (2, CONSOLIDATED),
    }


def test_r10_untriggered_group_gets_nothing() -> None:
    """R10: consolidation only rides along an order; a group with no trigger gets no shipment."""
    members = [supply("A", f=stand(10.0, 30.0)), supply("B", f=stand(10.0, 25.0))]
    assert plan(members, TODAY, RULES) == []


# --- R11 waste toner -------------------------------------------------------------------------


def test_r11_black_toner_brings_waste_container() -> None:
    """R11: a black toner line brings waste_per_black containers per cartridge, same device."""
    members = [
        supply("A", "black", stand(25.0, 10.0)),  # 3 cartridges
        supply("A", "waste", waste_room(None), kind="waste"),  # room unknown: R11 as written
        supply("B", "waste", waste_room(None), kind="waste"),
    ]
    shipments = plan(members, TODAY, RULES)
    assert ordered(shipments) == {
        ("A", "black"): (3, TRIGGER),
        ("A", "waste"): (3, WASTE_WITH_BLACK),
    }
    assert lines(shipments)["A", "waste"].figures["with"] == "black"
    assert ordered(plan(members, TODAY, Rules(waste_per_black=2)))["A", "waste"] == (
        6,
        WASTE_WITH_BLACK,
    )


def test_r11_no_waste_with_colour_lines() -> None:
    """R11: only black toner brings waste containers; a cyan line does not."""
    members = [
        supply("A", "cyan", stand(10.0, 10.0)),
        supply("A", "waste", waste_room(None), kind="waste"),
    ]
    assert ordered(plan(members, TODAY, RULES)) == {("A", "cyan"): (1, TRIGGER)}


def test_r11_no_waste_when_waste_per_black_is_zero() -> None:
    """R11: waste_per_black = 0 ships no waste containers."""
    members = [
        supply("A", "black", stand(10.0, 10.0)),
        supply("A", "waste", waste_room(None), kind="waste"),
    ]
    assert ordered(plan(members, TODAY, Rules(waste_per_black=0))) == {("A", "black"): (1, TRIGGER)}


def test_r11_waste_never_ordered_alone() -> None:
    """R11: a nearly full waste container is not ordered by itself (extras are the helpdesk's):
    it brings its device's black toner forward and comes with it (a full box stops the
    printer); with a black cartridge waiting on site already (R9: no stockpile) it goes
    alone, as the one container the printer needs to print at all."""
    members = [
        supply("A", "black", stand(10.0, 100.0)),
        supply("A", "waste", waste_room(2.0), kind="waste"),
    ]
    assert ordered(plan(members, TODAY, RULES)) == {
        ("A", "black"): (1, CONSOLIDATED),
        ("A", "waste"): (1, WASTE_WITH_BLACK),
    }
    stocked = [
        supply("A", "black", replace(stand(10.0, 100.0), balance=1)),
        supply("A", "waste", waste_room(2.0), kind="waste"),
    ]
    assert ordered(plan(stocked, TODAY, RULES)) == {("A", "waste"): (1, TRIGGER)}


@pytest.mark.parametrize(
    ("room_days", "containers"),
    [
        (10.0, 1),  # black stock lasts 10 + 36 days: 0.36 of a container short -> 1, not 3
        (45.0, 0),  # 0.01 short: within the slack
        (90.0, 0),  # plenty of room: none
    ],
)
def test_r11_waste_capped_by_room_left(room_days: float, containers: int) -> None:
    """R11: the containers are capped so the waste room lasts as long as the black stock."""
    members = [
        supply("A", "black", stand(25.0, 10.0)),  # 3 cartridges, 12 days each
        supply("A", "waste", waste_room(room_days), kind="waste"),  # 1 % of room a day
    ]
    expected = {("A", "black"): (3, TRIGGER)}
    if containers:
        expected["A", "waste"] = (containers, WASTE_WITH_BLACK)
    assert ordered(plan(members, TODAY, RULES)) == expected


def test_r11_waste_not_filling_gets_no_more_containers() -> None:
    """R11/R13: a waste container whose room does not shrink (rate 0 over the window, so its
    room lasts forever) with 2 containers already waiting gets no more with a black order."""
    waiting = replace(waste_room(60.0, rate=0.0), balance=2)
    assert (waiting.rate, waiting.days_left_total) == (0.0, math.inf)
    members = [
        supply("A", "black", stand(10.0, 10.0)),
        supply("A", "waste", waiting, kind="waste"),
    ]
    assert ordered(plan(members, TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}


def test_r11_waste_is_for_the_same_device() -> None:
    """R3/R11: device A's black order brings A's container, not the other device's."""
    members = [
        supply("A", "black", stand(10.0, 10.0)),
        supply("B", "black", stand(10.0, 200.0)),
        supply("B", "waste", waste_room(None), kind="waste"),
    ]
    assert ordered(plan(members, TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}


# --- R12 no duplicates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordered_days_ago", "spike", "reason"),
    [
        (3, False, None),  # within the guard: the need is covered
        (6, False, None),
        (3, True, SPIKE),  # usage jumped: re-forecast, order again
        (7, False, TRIGGER),  # the guard is over
    ],
)
def test_r12_reorder_guard(ordered_days_ago: int, spike: bool, reason: str | None) -> None:
    """R12: no second order within reorder_guard_days (7) unless the usage jumped (spike)."""
    s = supply(f=stand(10.0, 15.0, spike=spike), last_order_day=TODAY - ordered_days_ago)
    assert trigger_reason(s, TODAY, RULES) == reason
    expected = {} if reason is None else {("A", "black"): (1, reason)}
    assert ordered(plan([s], TODAY, RULES)) == expected


def test_r12_spike_with_stock_on_its_way_is_a_spike_order() -> None:
    """R12: a jump that empties the shipped stock sooner than planned orders again ('spike')."""
    s = supply(f=stand(30.0, 15.0, balance=1, spike=True), last_order_day=TODAY - 20)
    assert trigger_reason(s, TODAY, RULES) == SPIKE
    assert ordered(plan([s], TODAY, RULES)) == {("A", "black"): (2, SPIKE)}  # need 3, balance 1


def test_r12_spike_without_trigger_orders_nothing() -> None:
    """R12: a spike alone is no order: the stock must still fall to the trigger."""
    s = supply(f=stand(30.0, 40.0, spike=True), last_order_day=TODAY - 2)
    assert trigger_reason(s, TODAY, RULES) is None


@pytest.mark.parametrize("serial", ["A", "B"])
def test_r12_guard_also_holds_for_consolidation(serial: str) -> None:
    """R12/R10: a supply ordered 2 days ago (guard 7 days, no spike; its need rose from 1.1 to
    1.14 cartridges since) is not ordered again, neither by itself nor by riding along with
    a triggered supply of the same device (A) or group (B)."""
    guarded = supply(serial, "cyan", stand(11.4, 15.0, balance=1), last_order_day=TODAY - 2)
    assert trigger_reason(guarded, TODAY, RULES) is None
    members = [supply("A", "black", stand(10.0, 20.0)), guarded]
    assert ordered(plan(members, TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}


# --- R5, R6, R16 scope and eligibility -------------------------------------------------------


@pytest.mark.parametrize("kind", ["drum", "fuser", "imaging-kit"])
def test_r5_maintenance_kinds_never_planned(kind: str) -> None:
    """R5: drums, fusers and other maintenance items are ordered by hand, never planned."""
    members = [
        supply("A", "black", stand(10.0, 20.0)),
        supply("A", kind, stand(10.0, 1.0), kind=kind),
    ]
    assert trigger_reason(members[1], TODAY, RULES) is None
    assert ordered(plan(members, TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}
    assert plan(members[1:], TODAY, RULES) == []


def test_r6_r16_ineligible_device_never_planned() -> None:
    """R6/R16: a flagged or disconnected device (eligible=False) is not ordered for."""
    members = [supply("A", f=stand(10.0, 1.0), eligible=False)]
    assert plan(members, TODAY, RULES) == []


def test_r6_r16_ineligible_device_never_consolidated() -> None:
    """R6/R16: an ineligible device does not join another device's shipment, nor its waste."""
    members = [
        supply("A", f=stand(10.0, 20.0)),
        supply("B", f=stand(10.0, 25.0), eligible=False),
        supply("B", "waste", waste_room(None), kind="waste", eligible=False),
    ]
    assert ordered(plan(members, TODAY, RULES)) == {("A", "black"): (1, TRIGGER)}


# --- every line ------------------------------------------------------------------------------


def rounded(value: float | None) -> float | None:
    """A figure as an order line shows it (3 decimals)."""
    return None if value is None else round(value, 3)


def _fleet() -> list[SupplyPlan]:
    """Two groups with triggers, consolidation, a spike and a waste container."""
    return [
        supply("B", "black", stand(10.0, 18.0)),
        supply("B", "cyan", stand(5.0, 40.0)),
        supply("B", "waste", waste_room(None), kind="waste"),
        supply("A", "black", stand(30.0, 12.0, balance=1, spike=True), last_order_day=TODAY - 2),
        supply("A", "yellow", stand(4.0, 60.0)),
        supply("D", "cyan", stand(6.0, 9.0), group=OTHER_SITE),
        supply("E", "black", stand(6.0, 50.0), group=OTHER_SITE),
        supply("F", "black", stand(10.0, 5.0), group=OTHER_CONTACT, eligible=False),
    ]


def test_r8_r12_every_line_has_reason_and_figures() -> None:
    """R8-R12: every line has a known reason and the figures (rate, days left, balance)."""
    fleet = _fleet()
    shipments = plan(fleet, TODAY, RULES)
    by_key = {(s.serial, s.supply_id): s for s in fleet}
    assert lines(shipments)
    for key, line in lines(shipments).items():
        assert line.reason in REASONS
        f = by_key[key].forecast
        assert {k: line.figures[k] for k in ("rate_per_day", "days_left_total", "balance")} == {
            "rate_per_day": rounded(f.rate),
            "days_left_total": rounded(f.days_left_total),
            "balance": f.balance,
        }
        assert line.sku == by_key[key].sku
    assert ordered(shipments) == {
        ("A", "black"): (2, SPIKE),
        ("A", "yellow"): (1, CONSOLIDATED),
        ("B", "black"): (1, TRIGGER),
        ("B", "cyan"): (1, CONSOLIDATED),
        ("B", "waste"): (1, WASTE_WITH_BLACK),
        ("D", "cyan"): (1, TRIGGER),
        ("E", "black"): (1, CONSOLIDATED),
    }


def test_r10_plan_is_deterministic_one_shipment_per_group() -> None:
    """R10: the same fleet gives the same plan (in any order), one shipment per group, sorted."""
    fleet = _fleet()
    first = plan(fleet, TODAY, RULES)
    assert plan(fleet, TODAY, RULES) == first
    assert plan(list(reversed(fleet)), TODAY, RULES) == first
    groups = [s.group for s in first]
    assert groups == sorted(set(groups)) == [SITE, OTHER_SITE]
    for shipment in first:
        keys = [(line.serial, line.supply_id) for line in shipment.lines]
        assert keys == sorted(keys)
