"""The level chart (R7, R13, R17): well-formed SVG, inside its box, escaped, every case drawn."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from collector.portal.chart import level_chart

NS = {"svg": "http://www.w3.org/2000/svg"}
NOW = datetime(2026, 3, 20, 12, tzinfo=timezone.utc)


def _days(
    *levels: float, start: datetime = NOW - timedelta(days=10)
) -> list[tuple[datetime, float]]:
    return [(start + timedelta(days=i), level) for i, level in enumerate(levels)]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything not well-formed
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _points(root: ET.Element, css: str) -> list[tuple[float, float]]:
    """Every coordinate of the polylines and circles of this class."""
    out = []
    for line in root.iterfind(f".//svg:polyline[@class='{css}']", NS):
        for pair in line.attrib["points"].split():
            x, y = pair.split(",")
            out.append((float(x), float(y)))
    for dot in root.iterfind(f".//svg:circle[@class='{css}']", NS):
        out.append((float(dot.attrib["cx"]), float(dot.attrib["cy"])))
    return out


def _inside(root: ET.Element, points: list[tuple[float, float]]) -> None:
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    for x, y in points:
        assert 0 <= x <= width and 0 <= y <= height, (x, y)


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iterfind(".//svg:text", NS)]


def test_r17_history_forecast_now_and_next_order_are_drawn() -> None:
    history = _days(90, 85, 80, 76, 71, 66, 60, 55, 51, 46)
    forecast = [(NOW, 46.0), (NOW + timedelta(days=10), 0.0)]
    svg = level_chart(
        history, forecast, NOW, trigger_at=NOW + timedelta(days=3), title="Black toner"
    )
    root = _parse(svg)
    assert root.attrib["role"] == "img" and root.attrib["aria-label"] == "Black toner"
    assert root.find("svg:title", NS) is not None
    assert root.find("svg:title", NS).text == "Black toner"  # type: ignore[union-attr]
    (solid,) = root.iterfind(".//svg:polyline[@class='chart-history']", NS)
    assert "stroke-dasharray" not in solid.attrib
    assert len(solid.attrib["points"].split()) == len(history)
    (dashed,) = root.iterfind(".//svg:polyline[@class='chart-forecast']", NS)
    assert dashed.attrib["stroke-dasharray"]
    assert root.find(".//svg:g[@class='chart-now']", NS) is not None
    trigger = root.find(".//svg:g[@class='chart-trigger']", NS)
    assert trigger is not None
    assert "next order 2026-03-23" in (trigger.find("svg:title", NS).text or "")  # type: ignore[union-attr]
    texts = _texts(root)
    assert {"0 %", "50 %", "100 %"} <= set(texts)
    assert "2026-03-11" in texts  # a date on the time axis
    _inside(root, _points(root, "chart-history") + _points(root, "chart-forecast"))
    desc = root.find("svg:desc", NS)
    assert desc is not None and "Last reading 46 %" in (desc.text or "")


def test_the_newest_reading_is_right_of_the_oldest_and_a_higher_level_is_higher() -> None:
    root = _parse(level_chart(_days(80, 40), [], NOW, title="t"))
    (first, last) = _points(root, "chart-history")
    assert last[0] > first[0]
    assert last[1] > first[1]  # SVG's y grows downwards: 40 % is lower than 80 %


def test_empty_history_says_so_and_draws_no_line() -> None:
    root = _parse(level_chart([], [], NOW, title="Cyan toner"))
    assert root.find(".//svg:polyline", NS) is None
    assert "no readings yet" in _texts(root)
    assert root.find(".//svg:g[@class='chart-now']", NS) is not None


def test_a_single_reading_is_a_dot_inside_the_box() -> None:
    root = _parse(level_chart([(NOW, 42.0)], [], NOW, title="t"))
    points = _points(root, "chart-history")
    assert len(points) == 1
    _inside(root, points)


def test_r13_a_refill_breaks_the_line_and_is_marked() -> None:
    history = _days(30, 20, 10, 95, 90, 85)  # a new cartridge on the fourth day
    root = _parse(level_chart(history, [], NOW, title="t"))
    lines = list(root.iterfind(".//svg:polyline[@class='chart-history']", NS))
    assert [len(line.attrib["points"].split()) for line in lines] == [3, 3]
    (refill,) = root.iterfind(".//svg:circle[@class='chart-refill']", NS)
    assert "10 % to 95 %" in (refill.find("svg:title", NS).text or "")  # type: ignore[union-attr]
    desc = root.find("svg:desc", NS)
    assert desc is not None and "1 new cartridge seen" in (desc.text or "")


def test_levels_outside_0_to_100_are_clamped_and_nan_is_dropped() -> None:
    history = _days(150, 100, float("nan"), -20)
    forecast = [(NOW, -5.0), (NOW + timedelta(days=400), -50.0)]
    root = _parse(level_chart(history, forecast, NOW, title="t"))
    points = _points(root, "chart-history") + _points(root, "chart-forecast")
    assert len(points) == 5
    _inside(root, points)
    ys = {y for _, y in points}
    top, bottom = min(ys), max(ys)
    assert _points(root, "chart-history")[0][1] == top  # 150 % drawn at 100 %
    assert _points(root, "chart-forecast")[1][1] == bottom  # -50 % drawn at 0 %


@pytest.mark.parametrize("days", [0.01, 3, 45, 800])
def test_the_time_axis_has_a_few_dates_for_any_span(days: float) -> None:
    history = [(NOW - timedelta(days=days), 50.0), (NOW, 40.0)]
    root = _parse(level_chart(history, [], NOW, width=320, height=120, title="t"))
    dates = [t.text for t in root.iterfind(".//svg:text[@class='chart-date']", NS)]
    assert 1 <= len(dates) <= 6
    _inside(root, _points(root, "chart-history"))


def test_every_text_is_escaped() -> None:
    nasty = '</title><script>alert("x")</script> & "quotes" <svg onload=alert(1)>'
    svg = level_chart(_days(50, 40), [], NOW, title=nasty)
    root = _parse(svg)
    assert root.attrib["aria-label"] == nasty
    assert root.find("svg:title", NS).text == nasty  # type: ignore[union-attr]
    assert root.find(".//svg:script", NS) is None
    assert "<script" not in svg and "<svg onload" not in svg
    assert not [el for el in root.iter() if any(a.startswith("on") for a in el.attrib)]
