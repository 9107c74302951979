"""usage.csv parsed into a Usage, as docs/simulation-format.md says.

Every malformed input is a ContractError naming the file and the line.
"""

from __future__ import annotations

import csv
import datetime
import math
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path

from collector.simulation.spec import (
    _ISO_DATE,
    _REQUIRED_COLUMNS,
    MAX_PAGES_PER_DAY,
    USAGE_COLUMNS,
    ContractError,
    Fleet,
    Usage,
    read_reason,
)


def _columns(header: list[str], file: str) -> dict[str, int]:
    names = [name.strip() for name in header]
    if names:
        names[0] = names[0].removeprefix("\ufeff").strip()
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name not in USAGE_COLUMNS:
            raise ContractError(
                file, "line 1", f"unknown column {name!r} (known: {', '.join(USAGE_COLUMNS)})"
            )
        if name in index:
            raise ContractError(file, "line 1", f"column {name!r} appears twice")
        index[name] = i
    for name in _REQUIRED_COLUMNS:
        if name not in index:
            raise ContractError(
                file, "line 1", f"no {name!r} column (the header needs date,serial,supply,grams)"
            )
    return index


def parse_usage(lines: Iterable[str], fleet: Fleet, file: str = "usage.csv") -> Usage:
    """The Usage of a usage.csv's lines; ContractError names the file and the line."""
    days = fleet.days
    reader = csv.reader(iter(lines))

    def fail(message: str, line: int | None = None) -> ContractError:
        return ContractError(file, f"line {reader.line_num if line is None else line}", message)

    try:
        header = next(reader, None)
        if header is None or not "".join(header).strip():
            raise fail("no header row (date,serial,supply,grams[,reachable][,pages])", 1)
        column = _columns(header, file)
        width = len(header)
        i_date, i_serial = column["date"], column["serial"]
        i_supply, i_grams = column["supply"], column["grams"]
        has_reachable, has_pages = "reachable" in column, "pages" in column
        # a row's date, serial, supply, grams, reachable and pages (grams again for a column
        # that is not there)
        pick = itemgetter(
            i_date,
            i_serial,
            i_supply,
            i_grams,
            column.get("reachable", i_grams),
            column.get("pages", i_grams),
        )

        grams: dict[str, dict[str, list[float]]] = {}
        reachable: dict[str, bytearray] = {}
        pages: dict[str, list[int]] = {}
        # serial -> supply id -> (grams per day, 1 where a row was seen, the device's
        # reachable, its pages per day, 1 where its day's pages are known)
        slots: dict[str, dict[str, tuple[list[float], bytearray, bytearray, list[int], bytearray]]]
        slots = {}
        for device in fleet.devices:
            per_supply = grams[device.serial] = {s.id: [0.0] * days for s in device.supplies}
            answered = reachable[device.serial] = bytearray(b"\x01") * days
            printed = pages[device.serial] = [0] * days
            counted = bytearray(days)
            slots[device.serial] = {
                sid: (per_day, bytearray(days), answered, printed, counted)
                for sid, per_day in per_supply.items()
            }
        day_of: dict[str, int] = {}  # a date's text -> its day index
        blank_line = 0  # the first blank line: fine if only blank lines follow it
        inf = math.inf

        for row in reader:
            if len(row) != width:
                if not "".join(row).strip():
                    blank_line = blank_line or reader.line_num
                    continue
                raise fail(f"{len(row)} fields, the header has {width}")
            if blank_line:
                raise fail("blank line in the middle of the rows", blank_line)
            text, serial, sid, value, flag, sheets = pick(row)
            day = day_of.get(text)
            if day is None:
                day = _day_index(text, fleet, fail)
                day_of[text] = day
            supplies = slots.get(serial)
            if supplies is None:
                raise fail(f"unknown serial {serial!r} (not a device of the fleet)")
            slot = supplies.get(sid)
            if slot is None:
                raise fail(f"device {serial!r} has no supply {sid!r}")
            per_day, seen, answered, printed, counted = slot
            if seen[day]:
                raise fail(f"a second row for {text}, {serial}, {sid}")
            seen[day] = 1
            try:
                amount = float(value)
            except ValueError:
                raise fail(f"grams {value!r} is not a number") from None
            if not 0.0 <= amount < inf:
                raise fail(f"grams {value!r} must be a finite number >= 0")
            per_day[day] = amount
            if has_reachable and flag != "1":
                if flag == "0":
                    answered[day] = 0
                elif flag != "":
                    raise fail(f"reachable {flag!r} must be 0 or 1")
            if has_pages:
                if not (sheets.isascii() and sheets.isdigit()):
                    raise fail(f"pages {sheets!r} must be a whole number >= 0")
                if len(sheets) > 9 and int(sheets) > MAX_PAGES_PER_DAY:
                    raise fail(f"pages {sheets} is more than {MAX_PAGES_PER_DAY:,} in a day")
                if not counted[day]:  # the contract: the first row of the device's day counts
                    counted[day] = 1
                    printed[day] = int(sheets)
    except csv.Error as err:
        raise fail(f"not valid CSV: {err}") from err
    return Usage(days=days, grams=grams, reachable=reachable, pages=pages if has_pages else None)


def _day_index(text: str, fleet: Fleet, fail: Callable[[str], ContractError]) -> int:
    """The day index of a CSV date; `fail(message)` makes the error of the current line."""
    if not _ISO_DATE.fullmatch(text):
        raise fail(f"date {text!r} is not an ISO date (YYYY-MM-DD)")
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise fail(f"date {text!r} is not an ISO date (YYYY-MM-DD)") from None
    index = fleet.day_index(day)
    if not 0 <= index < fleet.days:
        raise fail(
            f"date {text} is outside the run ({fleet.start} to {fleet.date_of(fleet.days - 1)})"
        )
    return index


def load_usage(path: Path, fleet: Fleet) -> Usage:
    """The Usage of a usage.csv file; ContractError (where 'file') if it cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return parse_usage(lines, fleet, str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise ContractError(str(path), "file", f"cannot read: {read_reason(err)}") from err
