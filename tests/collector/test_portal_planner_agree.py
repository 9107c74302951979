"""The portal and the planner agree on a simulated year (issue 15; R8, R10, R11, R12, R17).

The next order date the portal shows and the orders the daily run places come from one pure
function, collector.replenish.due. Here a year of the steady-office scenario (two colour
MFPs at one site, one contact: triggers, R10 consolidation, R11 waste with black) runs
through the real ingest and daily run; after each day's run the portal's own read
(collector.portal.queries.device, what the device page and the API show) is set against
what that run ordered:
- with the same data, at the run's time: no supply the run left unordered is "due at the
  next daily run", and each supply it ordered shows as ordered (its open order, with the
  reason, counted in its balance) and is not due again;
- a triggered order (R8, R12's spike) was dated by the portal after the previous run, at
  this run or within one more day: the next run also counts the day's readings, which the
  portal's forecast (the last run's track, carried to now at its rate) cannot know yet;
- the fleet list's "low" flag is on for a device exactly when a toner or ink of its device
  page is at the trigger, counting the cartridges on their way;
- a supply brought forward (R10, `consolidated`) was dated within `consolidation_days` of
  this run (one more day for the readings), or its device's waste container was at its
  trigger (R11 brings the black toner forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from collector.portal import queries
from collector.portal.models import DeviceView
from collector.records import SYSTEM
from collector.replenish.settings import Rules
from collector.simulation.contract import Fleet, load_fleet, load_usage
from collector.simulation.runner import simulate
from collector.store.database import Database
from sim.scenarios import SCENARIOS

READINGS_DAYS = 1.0  # what one day's readings may move a forecast by, in days of supply
TRIGGERED = ("trigger", "spike")
ROUNDING = 0.05  # the device page's days left are to one decimal

Key = tuple[str, str]


@dataclass
class Watch:
    """The portal's view after each run, set against the run's orders; what disagreed."""

    fleet: Fleet
    rules: Rules
    before: dict[Key, datetime | None] = field(default_factory=dict)  # next order, last run
    waste_due: set[str] = field(default_factory=set)  # devices whose waste box was at trigger
    disagreements: list[str] = field(default_factory=list)
    orders: int = 0
    lows: int = 0  # device-days "low"

    async def on_day(self, day: int, db: Database, now: datetime) -> None:
        """The runner's DayHook: read every device as the portal does, check, remember."""
        views = [
            await queries.device(db, SYSTEM, d.serial, now=now, rules=self.rules)
            for d in self.fleet.devices
        ]
        ordered = _placed(views, now)
        self.orders += len(ordered)
        # A day on, as a customer looking the next morning sees it: both views carry the
        # forecast to then (right after a run the run has ordered whatever was at the trigger).
        await self._fleet_says_low(day, db, now + timedelta(days=1))
        for view in views:
            assert view is not None
            self._same_data(day, view, ordered, now)
        if day > 0:  # before the first run the portal has no track: nothing to compare
            for key, reason in ordered.items():
                self._was_dated(day, key, reason, now)
        self.before = {
            (v.serial, s.supply_id): s.next_order_at for v in views if v for s in v.supplies
        }
        self.waste_due = {
            v.serial
            for v in views
            if v
            for s in v.supplies
            if s.kind == "waste"
            and s.days_left_total is not None
            and s.days_left_total <= self.rules.trigger_days
        }

    async def _fleet_says_low(self, day: int, db: Database, now: datetime) -> None:
        """The fleet list's "low" is the same trigger (R8, counting orders on the way, R13):
        a device is low when a toner or ink of its device page is at the trigger."""
        rows = {r.serial: r for r in await queries.fleet(db, SYSTEM, now=now, rules=self.rules)}
        for d in self.fleet.devices:
            view = await queries.device(db, SYSTEM, d.serial, now=now, rules=self.rules)
            assert view is not None
            days = [
                s.days_left_total
                for s in view.supplies
                if s.kind in ("toner", "ink") and s.days_left_total is not None
            ]
            at = [d for d in days if d <= self.rules.trigger_days]
            if any(abs(d - self.rules.trigger_days) <= ROUNDING for d in days):
                continue  # the page shows days to one decimal: 21.0 may be 21.04
            self.lows += bool(at)
            if ("low" in rows[view.serial].flags) != bool(at):
                self._say(day, (view.serial, "*"), f"fleet flags {rows[view.serial].flags}, {at=}")

    def _same_data(
        self, day: int, view: DeviceView, ordered: dict[Key, str], now: datetime
    ) -> None:
        for s in view.supplies:
            key = (view.serial, s.supply_id)
            due = s.next_order_at is not None and s.next_order_at <= now
            if key not in ordered:
                if due:
                    self._say(day, key, f"due at the next run, not ordered: {s.next_order_reason}")
                continue
            on_order = any(
                line.serial == view.serial and line.supply_id == s.supply_id
                for shipment in view.open_orders
                for line in shipment.lines
            )
            if not on_order or s.balance < 1 or due:
                self._say(day, key, f"ordered ({ordered[key]}) but shown as {s}")

    def _was_dated(self, day: int, key: Key, reason: str, now: datetime) -> None:
        said = self.before.get(key)
        if reason in TRIGGERED:
            limit = now + timedelta(days=READINGS_DAYS)
        elif reason == "consolidated":
            if key[0] in self.waste_due:
                return  # R11: its waste container was at its trigger
            limit = now + timedelta(days=self.rules.consolidation_days + READINGS_DAYS)
        else:
            return  # R11: waste containers come with the black toner, as the portal says
        if said is None or said > limit:
            self._say(day, key, f"ordered ({reason}), the portal had said {said}")

    def _say(self, day: int, key: Key, what: str) -> None:
        self.disagreements.append(f"{self.fleet.date_of(day)} {key[0]} {key[1]}: {what}")


def _placed(views: list[DeviceView | None], now: datetime) -> dict[Key, str]:
    """The supplies today's run ordered, with the reason, from the portal's open orders."""
    return {
        (line.serial, line.supply_id): line.reason
        for view in views
        if view is not None
        for shipment in view.open_orders
        if shipment.placed_at == now and shipment.placed_by == "plan"
        for line in shipment.lines
    }


async def test_the_portal_and_the_planner_agree_on_a_simulated_year(tmp_path: Path) -> None:
    fleet_path, usage_path = SCENARIOS["steady-office"]().write(tmp_path / "steady-office")
    fleet = load_fleet(fleet_path)
    usage = load_usage(usage_path, fleet)
    watch = Watch(fleet, fleet.rules)
    report = await simulate(fleet, usage, "asr", tmp_path / "sim.db", on_day=watch.on_day)
    assert watch.disagreements == []
    assert watch.orders == report["orders"] > 0
    assert watch.lows > 0  # the "low" flag was checked while it was on, not only off
    reasons = {line["reason"] for line in report["orders_log"]}
    assert {"trigger", "consolidated", "waste-with-black"} <= reasons  # R8, R10, R11 all seen
