"""A supply's daily series (R7, R12): compact, and its windows' sums kept as it moves.

Is: `Usage`, the values of consecutive calendar days (grams, percent or pages a day) held as
an `array('d')`, NaN for an unknown day, and read as a tuple of `float | None`; its packed
form for the store (base64 of the little-endian float64s: exact, so a stored track gives
back the very floats it had); and `Days`, a copy being edited by a track's advance, which
keeps the sum and count of the known days in its last-N-day windows as days are appended,
changed and dropped, so a rate over a window is O(1) instead of a scan.
A window's sum is exact (an integer in units of 2**-96, see `_fixed`) and rounded to a float
once when read: the float nearest the true sum, as `math.fsum` gives, whatever order the
days came in, so a sum kept running and one scanned agree to the bit. (The scans this
replaces added left to right, which may differ from it in the last bit.)
Is not: what the days mean (collector.replenish.track, .pages) or the rates (.forecast).
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

_NAN = math.nan
_SCALE = float(2**96)
_ONE = 2**96
_BIG_ENDIAN = sys.byteorder == "big"

Sums = tuple[tuple[int, int, int], ...]  # (days, exact sum in 2**-96, count of known days)


def _fixed(value: float) -> int:
    """A day's value as an integer in units of 2**-96: exact for values of 2**-44 or more
    (a usage rounded to 6 decimals is 0 or 1e-6 or more), and multiplying by a power of two
    is exact in floating point."""
    return int(value * _SCALE)


def _scan(values: array[float], days: int) -> tuple[int, int, int]:
    known = [v for v in values[len(values) - days if days < len(values) else 0 :] if v == v]
    return days, sum(map(_fixed, known)), len(known)


class Usage(Sequence[float | None]):
    """A daily series, immutable: reads as a tuple of `float | None` (None: unknown)."""

    __slots__ = ("_sums", "_values")

    def __init__(self, values: Iterable[float | None] = ()) -> None:
        self._values = array("d", (_NAN if v is None else v for v in values))
        self._sums: Sums = ()

    @classmethod
    def _of(cls, values: array[float], sums: Sums = ()) -> Usage:
        usage = cls.__new__(cls)
        usage._values, usage._sums = values, sums
        return usage

    @classmethod
    def of(cls, values: Usage | Iterable[float | None]) -> Usage:
        """`values` as a Usage (itself if it is one)."""
        return values if isinstance(values, Usage) else cls(values)

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> float | None: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[float | None, ...]: ...
    def __getitem__(self, index: int | slice) -> float | tuple[float | None, ...] | None:
        if isinstance(index, slice):
            return tuple(None if v != v else v for v in self._values[index])
        v = self._values[index]
        return None if v != v else v

    def __iter__(self) -> Iterator[float | None]:
        return (None if v != v else v for v in self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Usage):
            a, b = self._values, other._values
            return a.tobytes() == b.tobytes() or tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Usage({list(self)!r})"

    def window(self, days: int) -> tuple[float | None, int]:
        """The sum of the known days among the last `days` (None: none known), and how many."""
        kept = next((s for s in self._sums if s[0] == days), None)
        if kept is None:
            kept = _scan(self._values, days)
            self._sums = (*self._sums, kept)
        _, total, count = kept
        return (total / _ONE if count else None), count

    def average(self, days: int) -> float | None:
        """Mean of the known days among the last `days`; None if none is known."""
        total, count = self.window(days)
        return None if total is None else total / count

    def known(self, days: int) -> list[float]:
        """The known values among the last `days`, oldest first."""
        values = self._values
        return [v for v in values[len(values) - days if days < len(values) else 0 :] if v == v]

    def pack(self) -> str:
        """The packed form the store keeps: base64 of the little-endian float64s."""
        values = self._values
        if _BIG_ENDIAN:
            values = array("d", values)
            values.byteswap()
        return base64.b64encode(values.tobytes()).decode("ascii")

    @classmethod
    def unpack(cls, data: str | Sequence[float | None] | None) -> Usage:
        """From the packed form, or the JSON list of numbers and nulls stored before it."""
        if data is None:
            return cls()
        if not isinstance(data, str):
            return cls(data)
        values = array("d", base64.b64decode(data))
        if _BIG_ENDIAN:
            values.byteswap()
        return cls._of(values)


class Days:
    """A Usage being edited, keeping the sums of its last-N-day windows (`windows`, and those
    the Usage had already summed) as days are appended, changed and dropped."""

    __slots__ = ("_counts", "_days", "_totals", "_values")

    def __init__(self, usage: Usage | None = None, windows: Iterable[int] = ()) -> None:
        usage = usage if usage is not None else Usage()
        self._values = array("d", usage._values)
        for days in windows:
            usage.window(days)  # summed once here, kept from now on
        sums = usage._sums
        self._days = [d for d, _, _ in sums]
        self._totals = [t for _, t, _ in sums]
        self._counts = [c for _, _, c in sums]

    def __len__(self) -> int:
        return len(self._values)

    def get(self, index: int) -> float | None:
        """A day's value; None: unknown."""
        v = self._values[index]
        return None if v != v else v

    def set(self, index: int, value: float | None) -> None:
        """Set a day (index from 0, the oldest) to `value`; None: unknown."""
        values = self._values
        old = values[index]
        values[index] = _NAN if value is None else value
        n = len(values)
        for w, days in enumerate(self._days):
            if index >= n - days:
                if old == old:
                    self._totals[w] -= _fixed(old)
                    self._counts[w] -= 1
                if value is not None:
                    self._totals[w] += _fixed(value)
                    self._counts[w] += 1

    def append(self, value: float | None, times: int = 1) -> None:
        """Append `times` days of `value` (None: unknown)."""
        values = self._values
        for _ in range(times):
            n = len(values)
            values.append(_NAN if value is None else value)
            for w, days in enumerate(self._days):
                if value is not None:
                    self._totals[w] += _fixed(value)
                    self._counts[w] += 1
                if n - days >= 0:  # the day that left the window
                    gone = values[n - days]
                    if gone == gone:
                        self._totals[w] -= _fixed(gone)
                        self._counts[w] -= 1

    def drop(self, count: int) -> None:
        """Drop the oldest `count` days."""
        values = self._values
        n = len(values)
        for w, days in enumerate(self._days):
            for gone in values[max(0, n - days) : count]:  # those inside the window
                if gone == gone:
                    self._totals[w] -= _fixed(gone)
                    self._counts[w] -= 1
        del values[:count]

    def average(self, days: int) -> float | None:
        """Mean of the known days among the last `days`; None if none is known."""
        try:
            w = self._days.index(days)
        except ValueError:
            return self.freeze().average(days)
        count = self._counts[w]
        return self._totals[w] / _ONE / count if count else None

    def freeze(self) -> Usage:
        """The series as it stands (a copy), with its windows' sums."""
        sums = tuple(zip(self._days, self._totals, self._counts, strict=True))
        return Usage._of(array("d", self._values), sums)
