"""Every number of the replenishment rules, in one frozen record with the product's defaults.

The defaults are the rules' (docs/rules.md); the collector's `[replenishment]` config section and a
simulation's `settings` object override them by field name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Rules:
    """The replenishment rules' numbers (days are calendar days)."""

    trigger_days: float = 21  # R8: order when this many days of use remain
    supply_days: float = 30  # R9: an order ships this many days of use
    consolidation_days: float = 45  # R10: others that reach the trigger within this join
    consolidate_same_device: bool = True  # R10: the device's own other supplies join too
    quantity_slack: float = 0.1  # R9: "about" 30 days: a need of 1.1 cartridges ships 1
    rate_window_days: int = 28  # R7: the average daily usage is over this many days
    min_history_days: int = 3  # R7: days with data before a usage rate is known
    history_days: int = 90  # days of daily usage kept per supply
    spike_window_days: int = 7  # R12: the recent usage compared with the average
    spike_ratio: float = 1.5  # R12: recent usage this many times the average is a jump
    reorder_guard_days: float = 7  # R12: no second order this soon unless usage jumped
    high_usage_cartridges_per_week: float = 2  # R6
    high_usage_weeks: int = 4  # R6: "every week" over this many weeks
    install_jump_share: float = 0.10  # R13: a rise of this share of capacity is an install
    early_replacement_share: float = 0.15  # R13: replaced with this share left is early
    waste_per_black: int = 1  # R11: waste containers shipped with each black toner
    disconnected_after_days: float = 7  # R16: no reading this long: disconnected
    disconnected_followup_days: float = 30  # R16: the final follow-up
    # R7 cold start: before a usage rate is known, a cartridge is taken to last this many
    # days (a conservative default: an office laser cartridge lasts 2 to 6 months).
    cold_start_cartridge_days: float = 60
    # ... and a colour cartridge this many (offices print mostly black).
    cold_start_slow_days: float = 120
    cold_start_low_share: float = 0.1  # R7 cold start: a "low" alert, this share left

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{f.name}: must be true or false, not {value!r}")
                continue
            if isinstance(value, bool):
                raise ValueError(f"{f.name}: must be a number, not {value!r}")
            if f.type == "int" and isinstance(value, float) and value.is_integer():
                object.__setattr__(self, f.name, int(value))  # 28.0 from JSON is 28 days
                value = int(value)
            elif f.type == "int" and not isinstance(value, int):
                raise ValueError(f"{f.name}: must be a whole number, not {value!r}")
            if not isinstance(value, int | float) or value < 0 or value != value:
                raise ValueError(f"{f.name}: must be a number >= 0, not {value!r}")
        positive = (
            "supply_days",
            "rate_window_days",
            "min_history_days",
            "history_days",
            "cold_start_cartridge_days",
            "cold_start_slow_days",
        )
        for name in (*positive, "spike_window_days", "spike_ratio", "high_usage_weeks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0")
        if self.history_days < max(self.rate_window_days, 7 * self.high_usage_weeks):
            raise ValueError(
                "history_days: must cover rate_window_days and high_usage_weeks * 7"
                f" ({max(self.rate_window_days, 7 * self.high_usage_weeks)})"
            )
        if self.min_history_days > self.rate_window_days:
            raise ValueError("min_history_days: must not exceed rate_window_days")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str = "settings") -> Rules:
        """Rules with `values` overriding the defaults; ValueError names an unknown or bad key."""
        known = set(cls.names())
        for key in values:
            if key not in known:
                raise ValueError(
                    f"{where}.{key}: unknown setting (known: {', '.join(sorted(known))})"
                )
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}.{err}") from err
