"""The daily run's decisions for the fleet, or a chunk of it: pure, from a snapshot and `now`.

Is: for every registered supply, its track advanced by the new readings and by the orders not
counted yet (R13, R14), its forecast (R7); for every device, the R6 flag, whether it is
connected (R16), its lifecycle state; then the plan (R8 to R12) and the notices that are due
(R15: an order placed; R16: disconnected and the follow-up). A chunk's snapshot holds whole
contacts (collector.store.plan_chunks) and the fleet's yields by part number (`fleet_yields`,
computed once per run), so it decides as the whole fleet's would for those devices.
Is not: the reads and writes around it (collector.store.plans) or the lock and the schedule
(collector.daily_run).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from collector.replenish.forecast import (
    Forecast,
    Hints,
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
from collector.replenish.track import point_of as point_of  # its home before track.py

Key = tuple[str, str]  # (serial, supply id)
_hints = functools.cache(Hints.of)  # pure, and few kinds, colours and rated yields


@dataclass(frozen=True)
class Supply:
    """A registered supply (R5)."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    sku: str | None  # the part number; None: a person must give it (issue 14)
    rated_yield: int | None = None  # pages per cartridge on the box, if known

    @property
    def hints(self) -> Hints:
        """What its forecast needs besides its track (rated pages, slow, waste)."""
        return _hints(self.kind, self.colour, self.rated_yield)


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
    # The fleet's pages per cartridge by part number (issue 14), when the snapshot is a chunk
    # of the fleet: computed once for the whole run (`fleet_yields`). None: from these tracks.
    fleet: dict[str, Yield] | None = None


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


@dataclass
class _Run:
    """The run's working state: each supply's track and forecast, and what changed."""

    tracks: dict[Key, Track] = field(default_factory=dict)
    forecasts: dict[Key, Forecast] = field(default_factory=dict)
    installs: list[tuple[Key, Install]] = field(default_factory=list)
    changed: set[Key] = field(default_factory=set)  # tracks to write
    fleet: dict[str, Yield] = field(default_factory=dict)  # pages per cartridge, by part number

    def forecast(self, supply: Supply, now: datetime, rules: Rules) -> None:
        """The supply's forecast from its track as it stands."""
        key = (supply.serial, supply.supply_id)
        same = self.fleet.get(supply.sku) if supply.sku else None
        self.forecasts[key] = forecast(self.tracks[key], now, rules, same, supply.hints)


def daily(snapshot: Snapshot, now: datetime, rules: Rules) -> Outcome:
    """The run's decisions at `now` (R6 to R16)."""
    today = day_number(now)
    run = _advanced(snapshot, now, rules)
    by_device: dict[str, list[Supply]] = defaultdict(list)
    for supply in snapshot.supplies:
        by_device[supply.serial].append(supply)
    high, eligible, before = _flags(snapshot, run, by_device, now, rules)
    planned = plan(_candidates(snapshot, run, eligible), today, rules)
    placed = []
    lines_for: dict[str, int] = defaultdict(int)
    registered = {(s.serial, s.supply_id): s for s in snapshot.supplies}
    for shipment in planned:
        for line in shipment.lines:
            key = (line.serial, line.supply_id)
            run.tracks[key] = with_order(run.tracks[key], line.quantity, today)
            run.forecast(registered[key], now, rules)
            run.changed.add(key)
            lines_for[line.serial] += 1
        device = snapshot.devices[shipment.lines[0].serial]
        placed.append(
            PlacedShipment(
                shipment, device.customer, device.site_id, device.contact_id, device.customer_kind
            )
        )
    states = [
        _new_state(
            device,
            _facts(device, by_device[serial], run.forecasts, high[serial], lines_for[serial]),
            now,
            rules,
        )
        if lines_for.get(serial)
        # no line placed: its forecasts and facts are those `_flags` saw, so is its state
        else _new_state(device, before[serial], now, rules)
        for serial, device in snapshot.devices.items()
        if serial in by_device
    ]
    counts = {
        "supplies": len(snapshot.supplies),
        "points": sum(len(p) for p in snapshot.points.values()),
        "tracks_written": len(run.changed),
        "shipments": len(placed),
        "lines": sum(len(p.shipment.lines) for p in placed),
        "installs": len(run.installs),
        "high_usage": sum(high.values()),
    }
    return Outcome(
        tracks=[
            (key, run.tracks[key], run.forecasts[key]) for key in run.tracks if key in run.changed
        ],
        shipments=placed,
        installs=run.installs,
        states=states,
        counted=[order.order_id for order in snapshot.uncounted],
        tracked=set(snapshot.tracks),
        counts=counts,
    )


def _advanced(snapshot: Snapshot, now: datetime, rules: Rules) -> _Run:
    """Every supply's track moved on by its new readings, the orders not counted yet (R14)
    and the swaps no reading showed (R13), and its forecast (R7)."""
    extra: dict[Key, int] = defaultdict(int)
    for order in snapshot.uncounted:
        extra[order.serial, order.supply_id] += order.quantity
    fleet = snapshot.fleet
    if fleet is None:
        fleet = fleet_yields(
            (supply.sku, track.meter.yields)
            for supply in snapshot.supplies
            if (track := snapshot.tracks.get((supply.serial, supply.supply_id))) is not None
        )
    run = _Run(fleet=fleet)
    for supply in snapshot.supplies:
        key = (supply.serial, supply.supply_id)
        track = snapshot.tracks.get(key)
        points = snapshot.points.get(key)
        if track is None or points:
            same = run.fleet.get(supply.sku) if supply.sku else None
            track, seen = advance(track or Track(), points or (), rules, same, supply.hints.rated)
            run.installs.extend((key, install) for install in seen)
            run.changed.add(key)
        if key in extra:  # R14: counts in the balance, so the rules are not misled
            track = with_order(track, extra[key], None)
            run.changed.add(key)
        track, unseen = unseen_swaps(track, snapshot.on_the_way.get(key, 0), rules)
        if unseen:  # R13: put in while no reading could show it, and used up
            assert track.last_at is not None
            when = datetime.fromtimestamp(track.last_at, timezone.utc)
            run.installs.extend((key, Install(when, 0.0, 0.0, False)) for _ in range(unseen))
            run.changed.add(key)
        run.tracks[key] = track
        run.forecast(supply, now, rules)
    return run


def _flags(
    snapshot: Snapshot,
    run: _Run,
    by_device: dict[str, list[Supply]],
    now: datetime,
    rules: Rules,
) -> tuple[dict[str, bool], dict[str, bool], dict[str, tuple[DeviceFacts, DeviceState]]]:
    """Per device: the R6 flag, whether ASR may order for it (not flagged or suspected,
    R6; connected, R16), and its facts and state before today's orders."""
    high, eligible, before = {}, {}, {}
    for serial, supplies in by_device.items():
        # R6: once flagged, a device stays with the helpdesk: its usage drops when it runs
        # dry, which must not hand it back to automatic orders.
        old = snapshot.devices[serial].state
        flagged = old is not None and old.high_usage
        mine = [run.forecasts[s.serial, s.supply_id] for s in supplies]
        high[serial] = flagged or any(f.high_usage for f in mine)
        fact = _facts(snapshot.devices[serial], supplies, run.forecasts, high[serial])
        suspected = any(f.high_usage_suspected for f in mine)
        state = device_state(fact, now, rules)
        before[serial] = (fact, state)
        eligible[serial] = state.state != DISCONNECTED and not high[serial] and not suspected
    return high, eligible, before


def _candidates(snapshot: Snapshot, run: _Run, eligible: dict[str, bool]) -> list[SupplyPlan]:
    """What the planner decides from: each supply with its group, forecast and last order."""
    out = []
    groups: dict[str, Group] = {}  # one per device, shared by its supplies
    for supply in snapshot.supplies:
        group = groups.get(supply.serial)
        if group is None:
            device = snapshot.devices[supply.serial]
            group = Group(device.customer, str(device.site_id), str(device.contact_id))
            groups[supply.serial] = group
        key = (supply.serial, supply.supply_id)
        out.append(
            SupplyPlan(
                serial=supply.serial,
                supply_id=supply.supply_id,
                kind=supply.kind,
                colour=supply.colour,
                sku=supply.sku,
                group=group,
                forecast=run.forecasts[key],
                last_order_day=run.tracks[key].last_order_day,
                eligible=eligible[supply.serial],
            )
        )
    return out


def fleet_yields(learned: Iterable[tuple[str | None, Sequence[int]]]) -> dict[str, Yield]:
    """The pages per cartridge of each part number across the fleet, from the cartridges each
    supply's track learned, given as (part number, its track's learned yields) (issue 14: the
    second source, after the device's own)."""
    by_sku: dict[str, list[int]] = defaultdict(list)
    for sku, yields in learned:
        if sku and yields:
            by_sku[sku].extend(yields)
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


def _new_state(
    device: Device,
    facts: DeviceFacts | tuple[DeviceFacts, DeviceState],
    now: datetime,
    rules: Rules,
) -> NewState:
    """The device's state after the run (from its facts, or its facts and their state)."""
    if isinstance(facts, tuple):
        facts, state = facts
    else:
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
