"""How a simulated device's gauge shows a supply: the contract's `gauge` kinds.

Is: the parser of a supply's `gauge` (docs/simulation-format.md: "grams", "percent",
"steps:N", "some-remaining", "unknown"), what each kind shows of what is left as a
Printer-MIB supply row's unit, max capacity and level (R1), and whether what it shows reads
under a share (the naive policy's only evidence). For a waste container, "what is left" is
the room left in it (a receptacle's level, RFC 3805).
Is not: the agent's decoder (agent.decode reads these rows back, as it reads a printer's)
nor the world (collector.simulation.world decides what is left).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

KINDS = ("grams", "percent", "steps:N", "some-remaining", "unknown")
MAX_STEP = 100
# Printer-MIB codes (mibs/printer.toml): supply units and the special values of a level.
TENTHS_OF_GRAMS = 13
PERCENT = 19
UNKNOWN = -2
SOME_REMAINING = -3
_STEPS = re.compile(r"steps:([0-9]{1,3})")


class Shown(NamedTuple):
    """A supply row's prtMarkerSuppliesSupplyUnit, MaxCapacity and Level."""

    unit: int
    max_capacity: int
    level: int


@dataclass(frozen=True)
class Gauge:
    """How a device reports a supply's level: `kind` is one of KINDS' words, `step` the
    percent points of one step (1 for "percent", N for "steps:N", 0 otherwise)."""

    kind: str
    step: int = 0

    def __str__(self) -> str:
        return f"steps:{self.step}" if self.kind == "steps" else self.kind

    @classmethod
    def parse(cls, text: object) -> Gauge:
        """The gauge a fleet.json's `gauge` value names; ValueError says what is allowed."""
        if text in ("grams", "some-remaining", "unknown"):
            return cls(str(text))
        if text == "percent":
            return cls("percent", 1)
        match = _STEPS.fullmatch(text) if isinstance(text, str) else None
        if match and not match[1].startswith("0") and int(match[1]) <= MAX_STEP:
            return cls("steps", int(match[1]))
        raise ValueError(
            f"must be one of {', '.join(KINDS)} (N a whole number 1 to {MAX_STEP}), not {text!r}"
        )

    def shows(self, left: float, capacity: float) -> Shown:
        """What the device reports when `left` grams (or grams of room) of `capacity` are left."""
        if self.kind == "grams":  # R1: exact, in tenths of grams
            return Shown(TENTHS_OF_GRAMS, round(capacity * 10), round(left * 10))
        if self.kind == "some-remaining":  # R1: -3 while anything is left, 0 once empty
            return Shown(PERCENT, UNKNOWN, SOME_REMAINING if left > 0 else 0)
        if self.kind == "unknown":  # never the level, not even empty
            return Shown(PERCENT, UNKNOWN, UNKNOWN)
        # whole percent rounded down; rounding first keeps 29.000000000000004 % at 29 %
        whole = min(100, max(0, math.floor(round(100 * left / capacity, 6))))
        return Shown(PERCENT, 100, whole - whole % self.step)

    def reads_under(self, share: float, left: float, capacity: float) -> bool:
        """Whether what the gauge shows says under `share` of the capacity is left: exact
        grams; the percent shown; a some-remaining gauge only once it shows 0; never for
        an unknown gauge."""
        if self.kind == "grams":
            return left < share * capacity
        if self.kind == "unknown":
            return False
        level = self.shows(left, capacity).level
        if self.kind == "some-remaining":
            return level == 0
        return level < share * 100


GRAMS = Gauge("grams")
