"""collector.replenish.series: the compact daily series and its windows' running sums."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from collector.replenish.series import Days, Usage

values = st.one_of(st.none(), st.integers(0, 50_000_000).map(lambda k: round(k / 1e6, 6)))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), values, st.integers(1, 5)),
        st.tuples(st.just("set"), values, st.integers(0, 200)),
        st.tuples(st.just("drop"), st.none(), st.integers(0, 10)),
    ),
    max_size=60,
)


def _window(reference: list[float | None], days: int) -> tuple[float | None, int]:
    known = [v for v in reference[-days:] if v is not None]
    return (math.fsum(known) if known else None), len(known)


@given(st.lists(values, max_size=40), ops)
def test_running_sums_match_a_scan_after_any_edits(
    start: list[float | None], edits: list[tuple[str, float | None, int]]
) -> None:
    """R7, R12: the windows' sums kept as days are appended, changed and dropped are those a
    scan gives (exact: the float nearest the true sum), and the series is the reference's."""
    reference = list(start)
    days = Days(Usage(start), (28, 7))
    for op, value, n in edits:
        if op == "append":
            days.append(value, n)
            reference.extend([value] * n)
        elif op == "set" and reference:
            days.set(n % len(reference), value)
            reference[n % len(reference)] = value
        elif op == "drop":
            days.drop(n)
            del reference[:n]
        for w in (28, 7):
            total, count = _window(reference, w)
            assert days.average(w) == (None if total is None else total / count)
    usage = days.freeze()
    assert usage == tuple(reference)
    stored = Usage.unpack(usage.pack(), usage.kept())  # the store keeps the running sums
    assert stored._sums == usage._sums and len(usage.kept()) == 2
    for w in (28, 7, 3, 90):
        assert usage.window(w) == _window(reference, w)
        assert Usage(reference).window(w) == _window(reference, w)  # scanned, not kept
        assert usage.known(w) == [v for v in reference[-w:] if v is not None]


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), max_size=100))
def test_the_packed_form_gives_back_the_very_floats(series: list[float | None]) -> None:
    """Issue 16: packed (base64 of float64) and back is exact; unknown days stay unknown; the
    JSON list stored before loads the same."""
    usage = Usage(series)
    back = Usage.unpack(usage.pack())
    assert back == usage == tuple(series)
    assert [None if v is None else v.hex() for v in back] == [
        None if v is None else v.hex() for v in series
    ]
    assert Usage.unpack(series) == usage
    assert Usage.unpack(None) == Usage() == ()


def test_a_usage_reads_as_a_tuple() -> None:
    usage = Usage([1.0, None, 2.5])
    assert (len(usage), usage[1], usage[-1], usage[1:]) == (3, None, 2.5, (None, 2.5))
    assert usage.count(None) == 1 and None in usage and list(usage) == [1.0, None, 2.5]
    assert hash(usage) == hash((1.0, None, 2.5))
    assert usage.average(2) == 2.5 and usage.window(1) == (2.5, 1)
    assert Usage([None]).window(7) == (None, 0)


def test_the_running_sums_kept_are_those_the_rules_ask_for() -> None:
    """A window the rules no longer name (rate_window_days changed) is no longer kept."""
    usage = Days(Usage([1.0, None, 2.0]), (28, 7)).freeze()
    assert [k[0] for k in usage.kept()] == [28, 7]
    assert [k[0] for k in Days(usage).freeze().kept()] == [28, 7]  # None: those kept
    assert Days(usage, ()).freeze().kept() == []  # none: scanned when asked
    assert {k[0] for k in Days(usage, (30, 7)).freeze().kept()} == {30, 7}
    assert usage.average(28) == 1.5
