"""A supply's daily series (R7, R12): compact, and its windows' sums kept as it moves.

Is: `Usage`, the values of consecutive calendar days (grams, percent or pages a day) held as
an `array('d')`, NaN for an unknown day, and read as a tuple of `float | None`; its packed
form for the store (base64 of the little-endian float64s: exact, so a stored track gives
back the very floats it had), with the running sums it keeps; and `Days`, a copy being
edited by a track's advance, which keeps the sum and count of the known days in its
last-N-day windows as days are appended, changed and dropped, so a window's rate costs O(1)
a day instead of a scan.
A kept sum is exact (an integer in units of 2**-96, see `_fixed`) and rounded to a float
once when read: the float nearest the true sum, which is what `math.fsum` of the window
gives too, so a sum kept running and one scanned agree to the bit. (The scans this replaces
added left to right, which may differ from it in the last bit.)
Is not: what the days mean (collector.replenish.track, .pages) or the rates (.forecast).
"""

from __future__ import annotations

import binascii
import math
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

_NAN = math.nan
_SCALE = float(2**96)
_ONE = 2**96
_BIG_ENDIAN = sys.byteorder == "big"

# Per window: (days, the exact sum in 2**-96 when kept running, else None and the scan's float
# sum (None: no day known), known days)
Sum = tuple[int, int | None, float | None, int]
Sums = tuple[Sum, ...]


def _fixed(value: float) -> int:
    """A day's value as an integer in units of 2**-96: exact for values of 2**-44 or more
    (a usage rounded to 6 decimals is 0 or 1e-6 or more), and multiplying by a power of two
    is exact in floating point."""
    return int(value * _SCALE)


def _scan(values: array[float], days: int) -> Sum:
    """A window's sum by a scan: math.fsum is exact then rounded, as a kept sum."""
    window = values[-days:]
    total = math.fsum(window)  # NaN if a day is unknown
    if total == total:
        return days, None, (total if window else None), len(window)
    known = [v for v in window if v == v]
    return days, None, (math.fsum(known) if known else None), len(known)


def _exact(values: array[float], days: int) -> Sum:
    """A window's sum to keep running: exact (the scan once, then each day O(1))."""
    fixed = [int(v * _SCALE) for v in values[-days:] if v == v]  # _fixed, inlined
    return days, sum(fixed), None, len(fixed)


def _found(sums: Sums, days: int) -> Sum | None:
    for kept in sums:
        if kept[0] == days:
            return kept
    return None


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
        """The sum of the known days among the last `days` (None: none known), and how many:
        kept running (O(1)), else scanned once and remembered."""
        kept = _found(self._sums, days)
        if kept is None:
            kept = _scan(self._values, days)
            self._sums = (*self._sums, kept)
        _, fixed, total, count = kept
        if fixed is not None:
            return (fixed / _ONE if count else None), count
        return total, count

    def _running(self, days: int) -> Sum:
        kept = _found(self._sums, days)
        if kept is None or kept[1] is None:
            kept = _exact(self._values, days)
            self._sums = (*(s for s in self._sums if s[0] != days), kept)
        return kept

    def average(self, days: int) -> float | None:
        """Mean of the known days among the last `days`; None if none is known."""
        total, count = self.window(days)
        return None if total is None else total / count

    def known(self, days: int) -> list[float]:
        """The known values among the last `days`, oldest first."""
        window = self._values[-days:]
        if self.window(days)[1] == len(window):
            return window.tolist()
        return [v for v in window if v == v]

    def tail(self, days: int) -> list[float]:
        """The last `days` values, NaN for an unknown day."""
        return self._values[-days:].tolist()

    def without(self, count: int) -> Usage:
        """The series without its oldest `count` days."""
        if any(f is not None for _, f, _, _ in self._sums):
            days = Days(self)
            days.drop(count)
            return days.freeze()
        return Usage._of(self._values[count:])

    def pack(self) -> str:
        """The packed form the store keeps: base64 of the little-endian float64s."""
        values = self._values
        if _BIG_ENDIAN:
            values = array("d", values)
            values.byteswap()
        return binascii.b2a_base64(values.tobytes(), newline=False).decode("ascii")

    def kept(self) -> list[list[int | str]]:
        """The running sums, for the store beside the packed form: [days, hex, known days]."""
        return [[d, format(f, "x"), c] for d, f, _, c in self._sums if f is not None]

    @classmethod
    def unpack(
        cls, data: str | Sequence[float | None] | None, kept: Sequence[Sequence[Any]] = ()
    ) -> Usage:
        """From the packed form and its running sums (`kept`), or the JSON list of numbers
        and nulls stored before it."""
        if not isinstance(data, str):
            return cls() if data is None else cls(data)
        values = array("d")
        values.frombytes(binascii.a2b_base64(data))
        if _BIG_ENDIAN:
            values.byteswap()
        usage = cls.__new__(cls)
        usage._values = values
        usage._sums = tuple((d, int(h, 16), None, c) for d, h, c in kept) if kept else ()
        return usage


class Days:
    """A Usage being edited, keeping the running sums of its last-N-day windows (`windows`;
    None: those the Usage kept) as days are appended, changed and dropped."""

    __slots__ = ("_counts", "_days", "_totals", "_values")

    def __init__(self, usage: Usage | None = None, windows: Iterable[int] | None = None) -> None:
        usage = usage if usage is not None else Usage()
        self._values = array("d", usage._values)
        windows = tuple(windows) if windows is not None else None
        for days in windows or ():
            usage._running(days)  # summed once in the series' life, kept from now on
        self._days: list[int] = []
        self._totals: list[int] = []
        self._counts: list[int] = []
        for d, f, _, c in usage._sums:
            if f is not None and (windows is None or d in windows):  # one no longer asked: gone
                self._days.append(d)
                self._totals.append(f)
                self._counts.append(c)

    def __len__(self) -> int:
        return len(self._values)

    def add(self, index: int, amount: float) -> None:
        """Add `amount` to a day (an unknown day becomes `amount`), rounded to 6 decimals
        (R7: once, where each day's value is made)."""
        old = self._values[index]
        self.set(index, round(amount if old != old else old + amount, 6))

    def set(self, index: int, value: float | None) -> None:
        """Set a day (index from 0, the oldest) to `value`; None: unknown."""
        values = self._values
        old = values[index]
        values[index] = _NAN if value is None else value
        if not self._days:
            return
        gone, more = (_fixed(old), 1) if old == old else (0, 0)
        new, known = (_fixed(value), 1) if value is not None else (0, 0)
        n = len(values)
        for w, days in enumerate(self._days):
            if index >= n - days:
                self._totals[w] += new - gone
                self._counts[w] += known - more

    def append(self, value: float | None, times: int = 1) -> None:
        """Append `times` days of `value` (None: unknown)."""
        values = self._values
        if not self._days:
            values.extend([_NAN if value is None else value] * times)
            return
        new, known = (_fixed(value), 1) if value is not None else (0, 0)
        for _ in range(times):
            n = len(values)
            values.append(_NAN if value is None else value)
            for w, days in enumerate(self._days):
                self._totals[w] += new
                self._counts[w] += known
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
        if days not in self._days:
            _, _, total, count = _scan(self._values, days)
            return None if total is None else total / count
        w = self._days.index(days)
        count = self._counts[w]
        return self._totals[w] / _ONE / count if count else None

    def freeze(self) -> Usage:
        """The series as it stands, with its windows' sums: the edit ends here (the Usage
        takes the values over, without a copy)."""
        values, self._values = self._values, array("d")
        if not self._days:
            return Usage._of(values)
        sums = zip(self._days, self._totals, [None] * len(self._days), self._counts, strict=True)
        return Usage._of(values, tuple(sums))
