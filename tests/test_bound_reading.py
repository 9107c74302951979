"""The agent bounds every reading to what the wire takes (wire.reading.bound_reading): whatever
a printer sends, the reading it makes is one the collector's schema accepts (issue 13)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.batch import decode_reading
from wire.reading import MAX_TEXT, PrinterReading, Status, Supply, bound_reading

# Any text a printer could send once decoded: NULs, lone surrogates, very long.
_TEXT = st.one_of(
    st.none(),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["\x00", "\ud800", "x", "é"]), st.integers(0, 3000)
    ),
)
_INT = st.one_of(st.none(), st.integers(-(2**70), 2**70))


def _supply(index: int) -> st.SearchStrategy[Supply]:
    return st.builds(
        Supply,
        index=st.just(f"1.{index}"),
        description=_TEXT,
        type=_TEXT,
        supply_class=_TEXT,
        colour=_TEXT,
        unit=_TEXT,
        max_capacity=_INT,
        level=_INT,
        percent=st.none(),
        grams_left=st.none(),
        grams_used=st.none(),
        quality=st.just("unknown"),
        kind=st.just("toner"),
        receptacle=st.booleans(),
        part_number=_TEXT,
        notes=st.lists(st.text(max_size=5) | st.just("a\x00b"), max_size=3).map(tuple),
    )


_READING = st.builds(
    PrinterReading,
    serial=_TEXT,
    serial_source=_TEXT,
    model=_TEXT,
    sys_object_id=st.none(),
    sys_descr=_TEXT,
    vendor=_TEXT,
    uptime_seconds=st.none(),
    page_count=_INT,
    power_on_count=_INT,
    counter_unit=_TEXT,
    status=st.builds(
        Status,
        device=_TEXT,
        printer=_TEXT,
        errors=st.lists(st.text(max_size=5), max_size=3).map(tuple),
        power=st.just("ready"),
    ),
    supplies=st.lists(st.integers(1, 9), max_size=3, unique=True).flatmap(
        lambda ns: st.tuples(*[_supply(n) for n in ns])
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_READING)
def test_any_reading_bounded_is_one_the_wire_takes(reading: PrinterReading) -> None:
    bounded, notes = bound_reading(reading)
    body = json.dumps(bounded.to_dict(), ensure_ascii=False).encode("utf-8")
    assert decode_reading(body) == bounded
    if bounded != reading:
        assert notes and set(notes) <= set(bounded.notes)


def test_a_nul_in_a_description_is_removed_and_said() -> None:
    supply = Supply(
        "1.1",
        "Black\x00Toner",
        None,
        None,
        "black",
        None,
        100,
        50,
        50.0,
        None,
        None,
        "measured",
        "toner",
        False,
    )
    reading = PrinterReading(
        "SN\x00",
        None,
        "M" * (MAX_TEXT + 5),
        None,
        None,
        None,
        None,
        2**64,
        None,
        None,
        Status(None, None, (), "ready"),
        (supply,),
    )
    bounded, notes = bound_reading(reading)
    assert bounded.supplies[0].description == "BlackToner"
    assert (bounded.serial, len(bounded.model or ""), bounded.page_count) == ("SN", MAX_TEXT, None)
    assert notes == [
        "supplies[0].description: NUL characters removed",
        "serial: NUL characters removed",
        f"model: cut to {MAX_TEXT} characters",
        f"page_count: {2**64} is out of range, dropped",
    ]
