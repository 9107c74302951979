"""The daily run's decisions for the whole fleet: pure, from a snapshot of the store and `now`.

Is: for every registered supply, its track advanced by the new readings and by the orders not
counted yet (R13, R14), its forecast (R7); for every device, the R6 flag, whether it is
connected (R16), its lifecycle state; then the plan (R8 to R12) and the notices that are due
(R15: an order placed; R16: disconnected and the follow-up).
Is not: the reads and writes around it (collector.store.plans) or the lock and the schedule
(collector.replenish.job).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from collector.replenish.forecast import (
    GRAMS,
    PERCENT,
    Forecast,
    Install,
    Point,
    Track,
    advance,
    day_number,
    forecast,
    unseen_swaps,
    with_order,
)
from collector.replenish.lifecycle import (
    DISCONNECTED,
    NOTICE_RECONNECTED,
    DeviceFacts,
    DeviceState,
    device_state,
    notice_due,
)
from collector.replenish.pages import Yield, fleet_yield
from collector.replenish.planner import Group, Shipment, SupplyPlan, plan
from collector.replenish.settings import Rules

Key = tuple[str, str]  # (serial, supply id)


@dataclass(frozen=True)
class Supply:
    """A registered supply (R5)."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    sku: str | None  # the part number; None: a person must give it (issue 14)
    rated_yield: int | None = None  # pages per cartridge on the box, if known


@dataclass(frozen=True)
class StoredState:
    """A device's state as the previous run left it."""

    state: str
    since: datetime
    notices_sent: int
    high_usage: bool = False  # R6: flagged; stays until the helpdesk clears it
    reason: str = ""


@dataclass(frozen=True)
class Device:
    """A registered device and what the store knows of it today."""

    serial: str
    customer: str
    customer_kind: str  # mps or self
    site_id: int
    contact_id: int
    registered_at: datetime
    last_reading_at: datetime | None
    in_transit: int  # order lines not delivered
    delivered_ever: bool
    state: StoredState | None


@dataclass(frozen=True)
class Uncounted:
    """An order not in its supply's balance yet (recorded by the helpdesk, R14)."""

    order_id: int
    serial: str
    supply_id: str
    quantity: int


@dataclass
class Snapshot:
    """What a run reads: the fleet, the tracks, the new readings and orders."""

    devices: dict[str, Device]
    supplies: list[Supply]
    tracks: dict[Key, Track]
    points: dict[Key, list[Point]]
    uncounted: list[Uncounted]
    received_until: datetime
    on_the_way: dict[Key, int] = field(default_factory=dict)  # cartridges ordered, not delivered


@dataclass(frozen=True)
class NewState:
    """A device's state after the run, and the notice due (R16), if any."""

    serial: str
    state: DeviceState
    since: datetime
    notices_sent: int
    high_usage: bool
    notice: str | None
    customer: str  # where the notice goes (R16)
    customer_kind: str
    contact_id: int
    changed: bool = True  # differs from the stored state: a row to write
    stored: bool = False  # a row exists: update it, not insert


@dataclass(frozen=True)
class PlacedShipment:
    """A planned shipment and where it goes."""

    shipment: Shipment
    customer: str
    site_id: int
    contact_id: int
    customer_kind: str  # mps: the helpdesk is told


@dataclass
class Outcome:
    """What a run writes: only what changed (a track without new readings or orders stays)."""

    tracks: list[tuple[Key, Track, Forecast]]
    shipments: list[PlacedShipment]
    installs: list[tuple[Key, Install]]
    states: list[NewState]
    counted: list[int]  # order ids now in the balance
    tracked: set[Key] = field(default_factory=set)  # tracks stored before this run
    counts: dict[str, Any] = field(default_factory=dict)


def point_of(
    read_at: datetime,
    percent: float | None,
    grams_left: float | None,
    grams_used: float | None,
    quality: str,
    receptacle: bool,
    unit_hint: str | None,
    *,
    level: int | None = None,
    pages: int | None = None,
    alert: str | None = None,
    shared: bool = False,
) -> Point:
    """A stored supply reading as the forecast sees it: grams where the device gives them (R1).

    A receptacle's level is the space left in it, so its grams left and 100 - percent full
    fall as it fills, as a toner's level falls as it empties. A level of 0 with no capacity
    (a "some remaining" gauge once empty) is empty. The device's page counter goes with
    every supply; its toner alert (`empty`, `low`) only with toner and ink.
    """
    alert = None if receptacle else alert
    if grams_left is not None and grams_used is not None:
        total = grams_left + grams_used
        return Point(read_at, grams_left, total, GRAMS, quality, pages, alert)
    if percent is not None:
        left = 100.0 - percent if receptacle else percent
        return Point(read_at, left, 100.0, PERCENT, quality, pages, alert)
    empty = 0.0 if level == 0 else None
    return Point(read_at, empty, None, unit_hint or PERCENT, quality, pages, alert, shared)


def daily(snapshot: Snapshot, now: datetime, rules: Rules) -> Outcome:
    """The run's decisions at `now` (R6 to R16)."""
    today = day_number(now)
    extra: dict[Key, int] = defaultdict(int)
    for order in snapshot.uncounted:
        extra[order.serial, order.supply_id] += order.quantity
    tracks: dict[Key, Track] = {}
    forecasts: dict[Key, Forecast] = {}
    installs: list[tuple[Key, Install]] = []
    changed: set[Key] = set()  # tracks to write: new readings, new orders, or new
    fleet = _fleet_yields(snapshot)
    for supply in snapshot.supplies:
        key = (supply.serial, supply.supply_id)
        track = snapshot.tracks.get(key)
        points = snapshot.points.get(key)
        same = fleet.get(supply.sku) if supply.sku else None
        rated, slow = rated_pages(supply), _slow(supply)
        if track is None or points:
            track, seen = advance(track or Track(), points or (), rules, same, rated)
            installs.extend((key, install) for install in seen)
            changed.add(key)
        if key in extra:  # R14: counts in the balance, so the rules are not misled
            track = with_order(track, extra[key], None)
            changed.add(key)
        track, unseen = unseen_swaps(track, snapshot.on_the_way.get(key, 0), rules)
        if unseen:  # R13: put in while no reading could show it, and used up
            assert track.last_at is not None
            when = datetime.fromtimestamp(track.last_at, timezone.utc)
            installs.extend((key, Install(when, 0.0, 0.0, False)) for _ in range(unseen))
            changed.add(key)
        tracks[key] = track
        forecasts[key] = forecast(track, now, rules, same, rated, slow, supply.kind == "waste")

    by_device: dict[str, list[Supply]] = defaultdict(list)
    for supply in snapshot.supplies:
        by_device[supply.serial].append(supply)
    high = {}
    for serial, supplies in by_device.items():
        # R6: once flagged, a device stays with the helpdesk: its usage drops when it runs
        # dry, which must not hand it back to automatic orders.
        old = snapshot.devices[serial].state
        flagged = old is not None and old.high_usage
        high[serial] = flagged or any(forecasts[s.serial, s.supply_id].high_usage for s in supplies)
    eligible = {}
    for serial, supplies in by_device.items():
        fact = _facts(snapshot.devices[serial], supplies, forecasts, high[serial])
        # R6: a high-usage device is handled by hand; R16: without data ASR cannot order.
        suspected = any(forecasts[s.serial, s.supply_id].high_usage_suspected for s in supplies)
        connected = device_state(fact, now, rules).state != DISCONNECTED
        eligible[serial] = connected and not high[serial] and not suspected
    candidates = []
    for supply in snapshot.supplies:
        device = snapshot.devices[supply.serial]
        key = (supply.serial, supply.supply_id)
        candidates.append(
            SupplyPlan(
                serial=supply.serial,
                supply_id=supply.supply_id,
                kind=supply.kind,
                colour=supply.colour,
                sku=supply.sku,
                group=Group(device.customer, str(device.site_id), str(device.contact_id)),
                forecast=forecasts[key],
                last_order_day=tracks[key].last_order_day,
                eligible=eligible[supply.serial],
            )
        )
    planned = plan(candidates, today, rules)
    placed = []
    lines_for: dict[str, int] = defaultdict(int)
    boxes = {
        (s.serial, s.supply_id): (rated_pages(s), s.sku, _slow(s), s.kind == "waste")
        for s in snapshot.supplies
    }
    for shipment in planned:
        for line in shipment.lines:
            key = (line.serial, line.supply_id)
            tracks[key] = with_order(tracks[key], line.quantity, today)
            box, sku, slow, waste = boxes[key]
            same = fleet.get(sku) if sku else None
            forecasts[key] = forecast(tracks[key], now, rules, same, box, slow, waste)
            changed.add(key)
            lines_for[line.serial] += 1
        first = shipment.lines[0].serial
        device = snapshot.devices[first]
        placed.append(
            PlacedShipment(
                shipment, device.customer, device.site_id, device.contact_id, device.customer_kind
            )
        )

    states = []
    for serial, device in snapshot.devices.items():
        if serial not in by_device:
            continue
        fact = _facts(device, by_device[serial], forecasts, high[serial], lines_for[serial])
        states.append(_new_state(device, fact, now, rules))
    counts = {
        "supplies": len(snapshot.supplies),
        "points": sum(len(p) for p in snapshot.points.values()),
        "tracks_written": len(changed),
        "shipments": len(placed),
        "lines": sum(len(p.shipment.lines) for p in placed),
        "installs": len(installs),
        "high_usage": sum(high.values()),
    }
    return Outcome(
        tracks=[(key, tracks[key], forecasts[key]) for key in tracks if key in changed],
        shipments=placed,
        installs=installs,
        states=states,
        counted=[order.order_id for order in snapshot.uncounted],
        tracked=set(snapshot.tracks),
        counts=counts,
    )


def hints(supply: Supply) -> tuple[int | None, bool, bool]:
    """What a supply's forecast needs besides its track: its rated pages (black toner and
    waste only), whether a cold start takes it to last longer, whether it is a waste box."""
    return rated_pages(supply), _slow(supply), supply.kind == "waste"


def _slow(supply: Supply) -> bool:
    """A colour cartridge: a cold start takes it to last longer (a waste box fills with every
    page, like black toner empties)."""
    colour = (supply.colour or "").lower()
    return supply.kind != "waste" and bool(colour and "black" not in colour)


def rated_pages(supply: Supply) -> int | None:
    """The rated yield where it is in the device's own pages: a black (or only) toner or ink,
    or a waste container, fills with every page. A colour cartridge's is in pages with that
    colour, a share of the device's that nothing tells: it waits for its own cartridges'."""
    colour = (supply.colour or "").lower()
    if supply.kind == "waste" or not colour or "black" in colour:
        return supply.rated_yield
    return None


def _fleet_yields(snapshot: Snapshot) -> dict[str, Yield]:
    """The pages per cartridge of each part number across the fleet, from the cartridges each
    supply's track learned (issue 14: the second source, after the device's own)."""
    by_sku: dict[str, list[int]] = defaultdict(list)
    for supply in snapshot.supplies:
        track = snapshot.tracks.get((supply.serial, supply.supply_id))
        if supply.sku and track is not None and track.meter.yields:
            by_sku[supply.sku].extend(track.meter.yields)
    return {sku: y for sku, ys in by_sku.items() if (y := fleet_yield(ys)) is not None}


def _facts(
    device: Device,
    supplies: list[Supply],
    forecasts: dict[Key, Forecast],
    high_usage: bool,
    new_lines: int = 0,
) -> DeviceFacts:
    return DeviceFacts(
        serial=device.serial,
        last_reading_at=device.last_reading_at,
        registered_at=device.registered_at,
        forecasts=[(s.supply_id, s.kind, forecasts[s.serial, s.supply_id]) for s in supplies],
        in_transit=device.in_transit + new_lines,
        delivered_ever=device.delivered_ever,
        high_usage=high_usage,
    )


def _new_state(device: Device, facts: DeviceFacts, now: datetime, rules: Rules) -> NewState:
    state = device_state(facts, now, rules)
    old = device.state
    same = old is not None and old.state == state.state
    since = old.since if same and old is not None else now
    sent = old.notices_sent if same and old is not None else 0
    last_seen = device.last_reading_at or device.registered_at
    notice = notice_due(state.state, last_seen, sent, now, rules)
    if old is not None and old.state == DISCONNECTED and not same and old.notices_sent:
        notice = NOTICE_RECONNECTED  # R16: data came back, ASR resumes; told as it was told
    changed = (
        old is None
        or not same
        or notice is not None
        or old.reason != state.reason
        or old.high_usage != facts.high_usage
    )
    return NewState(
        serial=device.serial,
        state=state,
        since=since,
        notices_sent=sent + (notice is not None),
        high_usage=facts.high_usage,
        notice=notice,
        customer=device.customer,
        customer_kind=device.customer_kind,
        contact_id=device.contact_id,
        changed=changed,
        stored=old is not None,
    )
