"""The contract's gauges and page counters (shared/contracts/simulation.md, *Gauges and page
counters*): `gauge` and `yield_pages` per supply in fleet.json, `pages` in usage.csv, accepted
exactly as written and refused, naming the file and the key or line, when malformed (R1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.simulation.contract import (
    ContractError,
    Fleet,
    load_usage,
    parse_fleet,
    parse_usage,
)
from collector.simulation.gauges import GRAMS, Gauge
from tests.collector.test_sim_contract import CONTRACT_FLEET, contract_doc, fleet_error, fleet_of

CONTRACT_KINDS = [
    "grams",
    "percent",
    "steps:10",
    "steps:25",
    "steps:50",
    "some-remaining",
    "unknown",
]


def _with(gauge: Any = None, yield_pages: Any = None, supply: int = 0) -> dict[str, Any]:
    """The contract's fleet with `gauge` and `yield_pages` on one supply (None: not given)."""
    doc = contract_doc()
    item = doc["devices"][0]["supplies"][supply]
    if gauge is not None:
        item["gauge"] = gauge
    if yield_pages is not None:
        item["yield_pages"] = yield_pages
    return doc


def _gauge_error(value: Any, supply: int = 0) -> ContractError:
    doc = contract_doc()
    doc["devices"][0]["supplies"][supply]["gauge"] = value
    return fleet_error(doc)


# --- fleet.json: gauge and yield_pages ---------------------------------------------------------


@pytest.mark.parametrize("kind", CONTRACT_KINDS)
def test_r1_every_gauge_kind_is_accepted_as_written_on_toner_and_waste(kind: str) -> None:
    doc = _with(kind)
    doc["devices"][0]["supplies"][1]["gauge"] = kind  # waste: the same kinds (room left)
    black, waste = fleet_of(doc).devices[0].supplies
    assert str(black.gauge) == str(waste.gauge) == kind
    assert black.gauge == Gauge.parse(kind)


def test_gauge_kinds_parse_to_their_steps() -> None:
    assert [Gauge.parse(k) for k in CONTRACT_KINDS] == [
        Gauge("grams"),
        Gauge("percent", 1),
        Gauge("steps", 10),
        Gauge("steps", 25),
        Gauge("steps", 50),
        Gauge("some-remaining"),
        Gauge("unknown"),
    ]


def test_gauge_and_yield_are_optional_grams_and_none() -> None:
    supply = parse_fleet(CONTRACT_FLEET).devices[0].supplies[0]
    assert (supply.gauge, supply.yield_pages) == (GRAMS, None)
    assert str(supply.gauge) == "grams"


def test_yield_pages_is_kept_and_the_fleet_stays_hashable() -> None:
    fleet = fleet_of(_with("some-remaining", 12000))
    assert fleet.devices[0].supplies[0].yield_pages == 12000
    assert hash(fleet) == hash(fleet_of(_with("some-remaining", 12000)))


@given(st.integers(min_value=1, max_value=100))
def test_steps_of_1_to_100_are_accepted(n: int) -> None:
    supply = fleet_of(_with(f"steps:{n}")).devices[0].supplies[0]
    assert (supply.gauge.kind, supply.gauge.step, str(supply.gauge)) == ("steps", n, f"steps:{n}")


@given(st.integers().filter(lambda n: not 1 <= n <= 100))
def test_steps_outside_1_to_100_are_refused_naming_the_key(n: int) -> None:
    err = _gauge_error(f"steps:{n}")
    assert err.where == "devices[0].supplies[0].gauge", str(err)


@pytest.mark.parametrize(
    "value",
    [
        "Percent",
        "GRAMS",
        "steps",
        "steps:",
        "steps:010",
        "steps: 5",
        "steps:5 ",
        "steps:2.5",
        "steps:x",
        "some remaining",
        "",
        None,
        5,
        True,
        ["grams"],
    ],
)
def test_malformed_gauges_are_refused_naming_the_file_and_key(value: Any) -> None:
    err = _gauge_error(value, supply=1)
    assert (err.file, err.where) == ("fleet.json", "devices[0].supplies[1].gauge"), str(err)
    assert str(err).startswith("fleet.json: devices[0].supplies[1].gauge: must be one of grams,")


@given(st.text(max_size=12).filter(lambda t: t not in CONTRACT_KINDS and not t.startswith("s")))
def test_any_other_gauge_text_is_refused(text: str) -> None:
    assert _gauge_error(text).where == "devices[0].supplies[0].gauge"


@pytest.mark.parametrize("value", [0, -1, 1.5, 12000.0, "12000", True, 2**31, None])
def test_malformed_yield_pages_is_refused_naming_the_key(value: Any) -> None:
    doc = contract_doc()
    doc["devices"][0]["supplies"][0]["yield_pages"] = value
    if value is None:  # null: the optional key not given
        assert fleet_of(doc).devices[0].supplies[0].yield_pages is None
        return
    err = fleet_error(doc)
    assert (err.file, err.where) == ("fleet.json", "devices[0].supplies[0].yield_pages"), str(err)


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_any_positive_yield_pages_is_accepted(pages: int) -> None:
    assert fleet_of(_with(yield_pages=pages)).devices[0].supplies[0].yield_pages == pages


# --- usage.csv: pages --------------------------------------------------------------------------


def _fleet() -> Fleet:
    return parse_fleet(CONTRACT_FLEET)


def _usage(text: str) -> Any:
    return parse_usage(text.splitlines(), _fleet())


def _usage_error(text: str) -> ContractError:
    with pytest.raises(ContractError) as info:
        _usage(text)
    return info.value


def test_pages_column_as_written_in_the_contract() -> None:
    usage = _usage(
        "date,serial,supply,grams,reachable,pages\n"
        "2026-01-05,XRX-0001,black,6.2,1,120\n"
        "2026-01-05,XRX-0001,waste,0.5,1,120\n"
        "2026-01-06,XRX-0001,black,0,0,0\n"
    )
    assert usage.pages is not None
    assert usage.pages["XRX-0001"][:3] == [120, 0, 0]
    assert sum(usage.pages["XRX-0001"]) == 120  # missing rows: no pages
    assert usage.grams["XRX-0001"]["black"][:2] == [6.2, 0.0]


def test_without_a_pages_column_the_usage_has_no_pages() -> None:
    assert _usage("date,serial,supply,grams\n2026-01-05,XRX-0001,black,6.2\n").pages is None


def test_the_first_row_of_a_devices_day_gives_its_pages() -> None:
    usage = _usage(
        "pages,supply,grams,serial,date\n"
        "40,waste,0.5,XRX-0001,2026-01-07\n"
        "45,black,6.2,XRX-0001,2026-01-07\n"
    )
    assert usage.pages["XRX-0001"][2] == 40


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("-1", "pages '-1' must be a whole number >= 0"),
        ("1.5", "pages '1.5' must be a whole number >= 0"),
        ("", "pages '' must be a whole number >= 0"),
        ("x", "pages 'x' must be a whole number >= 0"),
        (" 3", "pages ' 3' must be a whole number >= 0"),
        ("+3", "pages '+3' must be a whole number >= 0"),
        ("1_000", "pages '1_000' must be a whole number >= 0"),
        ("\u0661\u0662", "must be a whole number >= 0"),  # Arabic-Indic digits
        ("1000000001", "pages 1000000001 is more than 1,000,000,000 in a day"),
    ],
)
def test_malformed_pages_are_refused_naming_the_line(cell: str, fragment: str) -> None:
    text = (
        "date,serial,supply,grams,pages\n"
        "2026-01-05,XRX-0001,black,6.2,10\n"
        f"2026-01-06,XRX-0001,black,6.2,{cell}\n"
    )
    err = _usage_error(text)
    assert (err.file, err.where) == ("usage.csv", "line 3"), str(err)
    assert fragment in err.message, str(err)


def test_a_later_rows_pages_are_checked_too() -> None:
    err = _usage_error(
        "date,serial,supply,grams,pages\n"
        "2026-01-05,XRX-0001,black,6.2,10\n"
        "2026-01-05,XRX-0001,waste,0.4,ten\n"
    )
    assert err.where == "line 3"


def test_a_pages_column_twice_is_refused() -> None:
    err = _usage_error("date,serial,supply,grams,pages,pages\n")
    assert (err.where, err.message) == ("line 1", "column 'pages' appears twice")


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30))
def test_any_whole_pages_per_day_parse_back(per_day: list[int]) -> None:
    fleet = _fleet()
    lines = ["date,serial,supply,grams,pages"]
    for i, pages in enumerate(per_day):
        day = fleet.date_of(i).isoformat()
        lines += [f"{day},XRX-0001,black,1,{pages}", f"{day},XRX-0001,waste,0.1,{pages}"]
    usage = parse_usage(lines, fleet)
    assert usage.pages is not None
    assert usage.pages["XRX-0001"][: len(per_day)] == per_day


def test_load_usage_with_pages_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "u.csv"
    path.write_text("date,serial,supply,grams,pages\n2026-01-05,XRX-0001,black,1,-5\n")
    with pytest.raises(ContractError) as info:
        load_usage(path, _fleet())
    assert str(info.value).startswith(f"{path}: line 2: pages '-5'")


def test_fleet_with_every_gauge_round_trips_through_json() -> None:
    doc = contract_doc()
    supplies = doc["devices"][0]["supplies"]
    template = supplies[0]
    supplies[:] = [
        {**template, "id": f"s{i}", "gauge": kind, "yield_pages": 1000 * (i + 1)}
        for i, kind in enumerate(CONTRACT_KINDS)
    ]
    fleet = parse_fleet(json.dumps(doc))
    assert [str(s.gauge) for s in fleet.devices[0].supplies] == CONTRACT_KINDS
    assert [s.yield_pages for s in fleet.devices[0].supplies] == [
        1000,
        2000,
        3000,
        4000,
        5000,
        6000,
        7000,
    ]
