"""A device's ASR state (the FAQ's lifecycle diagram) and its disconnection notices (R16).

Is: exactly one state per registered device, with the reason, from facts the daily job
gathers; and which R16 notice (if any) is due. Pure: `now` is a parameter.
The states, in the order the diagram walks them:
- `disconnected`: registered, but no reading for `disconnected_after_days` (R16);
- `no-usage-rate`: communicating, no usage rate yet for a supply (R7);
- `no-toner-pending`: usage rate known, no ASR toner pending;
- `activation`: a supply reached the 21-day trigger (R8) and no order went out (flagged for
  high usage, R6, or not planned yet);
- `toner-ordered`: an ASR (or extra, R14) order is on its way;
- `toner-delivered`: delivered cartridges wait on site to be installed (R13's balance);
- `toner-replaced`: the last shipped cartridge was installed; no order is pending.
Is not: storage, or the sending of notices (the notifications outbox is read by the mailer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.replenish.forecast import COLD_START, NONE, WATCH, Forecast
from collector.replenish.settings import Rules

DISCONNECTED = "disconnected"
NO_USAGE_RATE = "no-usage-rate"
NO_TONER_PENDING = "no-toner-pending"
ACTIVATION = "activation"
TONER_ORDERED = "toner-ordered"
TONER_DELIVERED = "toner-delivered"
TONER_REPLACED = "toner-replaced"
STATES = (
    DISCONNECTED,
    NO_USAGE_RATE,
    NO_TONER_PENDING,
    ACTIVATION,
    TONER_ORDERED,
    TONER_DELIVERED,
    TONER_REPLACED,
)
NOTICE_DISCONNECTED = "disconnected"
NOTICE_FOLLOWUP = "disconnected_followup"
NOTICE_RECONNECTED = "reconnected"


@dataclass(frozen=True)
class DeviceFacts:
    """What the state of one device is decided from."""

    serial: str
    last_reading_at: datetime | None
    registered_at: datetime
    forecasts: Sequence[tuple[str, str, Forecast]]  # (supply id, kind, forecast)
    in_transit: int  # order lines placed and not delivered
    delivered_ever: bool  # an order for it has been delivered
    high_usage: bool  # R6


@dataclass(frozen=True)
class DeviceState:
    """One device's state and why."""

    state: str
    reason: str


def disconnected(facts: DeviceFacts, now: datetime, rules: Rules) -> bool:
    """R16: no reading for `disconnected_after_days` (counted from registration if never)."""
    seen = facts.last_reading_at or facts.registered_at
    return now - seen >= timedelta(days=rules.disconnected_after_days)


def device_state(facts: DeviceFacts, now: datetime, rules: Rules) -> DeviceState:
    """The one lifecycle state of a device at `now`, with the reason."""
    if disconnected(facts, now, rules):
        seen = facts.last_reading_at
        since = f"since {seen.date().isoformat()}" if seen else "ever"
        return DeviceState(DISCONNECTED, f"no reading {since}: ASR cannot order without data")
    consumed = [(s, f) for s, kind, f in facts.forecasts if kind in ("toner", "ink")]
    # R6; customers read the reason, so the rule id stays in this comment.
    flag = " (high usage: handled by hand)" if facts.high_usage else ""
    if facts.in_transit:
        return DeviceState(TONER_ORDERED, f"{facts.in_transit} order line(s) on their way")
    waiting = [(s, f.balance) for s, f in consumed if f.balance > 0]
    if waiting:
        parts = ", ".join(f"{s} {n}" for s, n in waiting)
        return DeviceState(TONER_DELIVERED, f"delivered, not installed yet: {parts}")
    due = [
        s
        for s, f in consumed
        if f.days_left_total is not None and f.days_left_total <= rules.trigger_days
    ]
    if due:
        what = f"{', '.join(due)} at the {rules.trigger_days:g}-day trigger{flag}"
        return DeviceState(ACTIVATION, what)
    # A cold start orders at a default rate; a gauge watched or not forecast has none.
    unknown = [
        f"{s} ({f.why})" if f.why else s
        for s, f in consumed
        if f.rate is None or f.basis in (COLD_START, WATCH, NONE)
    ]
    if unknown:
        return DeviceState(NO_USAGE_RATE, f"no usage rate yet for {', '.join(unknown)}{flag}")
    if facts.delivered_ever:
        return DeviceState(TONER_REPLACED, f"shipped cartridges installed{flag}")
    return DeviceState(NO_TONER_PENDING, f"usage rate known, no ASR toner pending{flag}")


def notice_due(
    state: str, last_seen: datetime, notices_sent: int, now: datetime, rules: Rules
) -> str | None:
    """R16: the disconnection notice due now for a device in `state`, if any.

    The first once the device is disconnected (after `disconnected_after_days` without data,
    inside the 1 to 2 weeks the rule gives), the follow-up `disconnected_followup_days` after
    its last reading (`last_seen`); `notices_sent` counts those already sent for this
    disconnection.
    """
    if state != DISCONNECTED:
        return None
    if notices_sent == 0:
        return NOTICE_DISCONNECTED
    silent = now - last_seen >= timedelta(days=rules.disconnected_followup_days)
    if notices_sent == 1 and silent:
        return NOTICE_FOLLOWUP
    return None
