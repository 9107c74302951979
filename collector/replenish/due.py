"""When a supply is due to be ordered (R8, R12): the one answer the planner and the portal share.

Is: a pure function of a supply's forecast, the day of its last order and today: the days
until a daily run triggers it (0: the next run does), or None when no order is in sight
(its usage rate is not known, or nothing is used). The planner orders a toner or ink
supply exactly when this is 0; the portal shows it as the next order date.
Is not: R10's consolidation (a supply can come earlier, with another one of its group's
that triggers) or R11's waste containers (they come with black toner), nor R6/R16, which
leave a device out of the plan altogether.
"""

from __future__ import annotations

import math

from collector.replenish.forecast import Forecast
from collector.replenish.settings import Rules


def guarded(last_order_day: int | None, today: int, rules: Rules) -> bool:
    """R12: ordered less than `reorder_guard_days` ago."""
    return last_order_day is not None and today - last_order_day < rules.reorder_guard_days


def at_trigger(days_left_total: float, rules: Rules) -> bool:
    """R8: the installed cartridge and those on their way (R13) last `trigger_days` or fewer."""
    return days_left_total <= rules.trigger_days


def due_in(f: Forecast, last_order_day: int | None, today: int, rules: Rules) -> float | None:
    """Days until the supply is triggered (R8), 0 when today's run orders it; None: not in sight.

    R12: within the reorder guard a supply at the trigger waits for the guard to end,
    unless its usage jumped (a spike).
    """
    if f.rate is None or f.rate <= 0 or f.days_left_total is None:
        return None
    if not math.isfinite(f.days_left_total):
        return None
    wait = 0.0 if at_trigger(f.days_left_total, rules) else f.days_left_total - rules.trigger_days
    if wait == 0 and guarded(last_order_day, today, rules) and not f.spike:
        assert last_order_day is not None
        return float(rules.reorder_guard_days - (today - last_order_day))
    return wait
