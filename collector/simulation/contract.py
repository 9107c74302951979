"""The simulation contract's input files: their records, their parsers, their one error.

The records and ContractError live in collector.simulation.spec, fleet.json's parser in
.fleet_file, usage.csv's in .usage_file (docs/simulation-format.md); this module gathers them
for the callers.
"""

from __future__ import annotations

from collector.simulation.fleet_file import load_fleet, parse_fleet
from collector.simulation.spec import (
    DEFAULT_LEAD_DAYS,
    MAX_DAYS,
    MAX_PAGES_PER_DAY,
    MAX_YIELD_PAGES,
    USAGE_COLUMNS,
    Backorder,
    Contact,
    ContractError,
    Customer,
    DeviceSpec,
    ExtraOrder,
    Fleet,
    Replacement,
    Site,
    SupplySpec,
    Usage,
)
from collector.simulation.usage_file import load_usage, parse_usage

__all__ = [
    "DEFAULT_LEAD_DAYS",
    "MAX_DAYS",
    "MAX_PAGES_PER_DAY",
    "MAX_YIELD_PAGES",
    "USAGE_COLUMNS",
    "Backorder",
    "Contact",
    "ContractError",
    "Customer",
    "DeviceSpec",
    "ExtraOrder",
    "Fleet",
    "Replacement",
    "Site",
    "SupplySpec",
    "Usage",
    "load_fleet",
    "load_usage",
    "parse_fleet",
    "parse_usage",
]
