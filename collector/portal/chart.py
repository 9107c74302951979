"""A supply's level over time as a small SVG drawn on the server (R7, R13, R17).

Is: a pure function from points to a standalone, accessible SVG: the level history as a
solid line (broken where a new cartridge went in: the level jumps up, R13), the forecast as
a dashed line, a marker for now and one for the next order (R8); axes with dates and
0/50/100 %. Levels outside 0..100 are clamped; every text is escaped.
Is not: the forecast (collector.replenish.forecast): it draws the points it is given, and it
never reads the clock: `now` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape
from itertools import pairwise

Point = tuple[datetime, float]

# A rise of more than this many percentage points between two readings is a new cartridge.
REFILL_RISE = 5.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 44.0, 14.0, 14.0, 30.0
_TICK_DAYS = (1, 2, 7, 14, 30, 60, 91, 182, 365)
_MAX_TICKS = 6


def level_chart(
    history: Sequence[Point],
    forecast: Sequence[Point],
    now: datetime,
    *,
    width: int = 640,
    height: int = 220,
    trigger_at: datetime | None = None,
    title: str,
) -> str:
    """The SVG of a supply's level: history, forecast, now and the next order's date."""
    history = _finite(history)
    forecast = _finite(forecast)
    times = [t for t, _ in history] + [t for t, _ in forecast] + [now]
    if trigger_at is not None:
        times.append(trigger_at)
    start, end = min(times), max(times)
    if end - start < timedelta(days=1):  # one point, or all at one time: a day around it
        start, end = start - timedelta(hours=12), end + timedelta(hours=12)
    plot = _Plot(start, end, width, height)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_attr(title)}"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}" class="chart">',
        f"<title>{_text(title)}</title>",
        f"<desc>{_text(_describe(history, forecast, now, trigger_at))}</desc>",
    ]
    parts += _axes(plot)
    if not history and not forecast:
        parts.append(
            f'<text x="{_n((plot.left + plot.right) / 2)}" y="{_n((plot.top + plot.bottom) / 2)}"'
            ' text-anchor="middle" class="chart-empty">no readings yet</text>'
        )
    for segment in _segments(history):
        parts.append(_line(plot, segment, "chart-history", 'stroke="#0b5cad" stroke-width="2"'))
    for before, after in _refills(history):  # R13: a new cartridge went in
        x, y = plot.x(after[0]), plot.y(after[1])
        parts.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="#ffffff" stroke="#0b5cad"'
            f' stroke-width="1.5" class="chart-refill"><title>new cartridge about'
            f" {after[0]:%Y-%m-%d}: {_clamp(before[1]):.0f} % to {_clamp(after[1]):.0f} %"
            "</title></circle>"
        )
    if forecast:
        parts.append(
            _line(
                plot,
                forecast,
                "chart-forecast",
                'stroke="#0b5cad" stroke-width="2" stroke-dasharray="6 4" stroke-opacity="0.7"',
            )
        )
    parts.append(_marker(plot, now, "now", "chart-now", "#444444", f"now, {now:%Y-%m-%d}"))
    if trigger_at is not None:
        parts.append(
            _marker(
                plot,
                trigger_at,
                "order",
                "chart-trigger",
                "#b35900",
                f"next order {trigger_at:%Y-%m-%d}",
            )
        )
    parts.append("</svg>")
    return "\n".join(parts)


class _Plot:
    """Where a time and a level go inside the plot area."""

    def __init__(self, start: datetime, end: datetime, width: int, height: int) -> None:
        self.start, self.end = start, end
        self.left, self.right = _LEFT, max(_LEFT + 1.0, width - _RIGHT)
        self.top, self.bottom = _TOP, max(_TOP + 1.0, height - _BOTTOM)
        self.height = height
        self.seconds = (end - start).total_seconds()

    def x(self, at: datetime) -> float:
        share = (at - self.start).total_seconds() / self.seconds
        return self.left + min(1.0, max(0.0, share)) * (self.right - self.left)

    def y(self, percent: float) -> float:
        return self.bottom - _clamp(percent) / 100 * (self.bottom - self.top)


def _axes(plot: _Plot) -> list[str]:
    parts = ['<g class="chart-axes" font-family="sans-serif" font-size="11" fill="#555555">']
    for percent in (0, 50, 100):
        y = _n(plot.y(percent))
        parts.append(
            f'<line x1="{_n(plot.left)}" y1="{y}" x2="{_n(plot.right)}" y2="{y}"'
            f' stroke="#dddddd" stroke-width="1"/>'
            f'<text x="{_n(plot.left - 6)}" y="{y}" dy="4" text-anchor="end">{percent} %</text>'
        )
    baseline = _n(plot.bottom)
    for tick in _ticks(plot.start, plot.end):
        x = _n(plot.x(tick))
        parts.append(
            f'<line x1="{x}" y1="{baseline}" x2="{x}" y2="{_n(plot.bottom + 4)}"'
            f' stroke="#999999" stroke-width="1"/>'
            f'<text x="{x}" y="{_n(plot.bottom + 17)}" text-anchor="middle"'
            f' class="chart-date">{tick:%Y-%m-%d}</text>'
        )
    parts.append("</g>")
    return parts


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    """Midnights between start and end, every n days, at most _MAX_TICKS of them."""
    days = (end - start).total_seconds() / 86_400
    step = next((s for s in _TICK_DAYS if days / s <= _MAX_TICKS), None)
    if step is None:
        step = math.ceil(days / _MAX_TICKS)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(days=1)
    ticks = []
    tick = first
    while tick <= end:
        ticks.append(tick)
        tick += timedelta(days=step)
    return ticks


def _line(plot: _Plot, points: Sequence[Point], css: str, style: str) -> str:
    if len(points) == 1:  # a single reading: a dot, as a line of one point draws nothing
        at, percent = points[0]
        return (
            f'<circle cx="{_n(plot.x(at))}" cy="{_n(plot.y(percent))}" r="3" fill="#0b5cad"'
            f' class="{css}"/>'
        )
    coords = " ".join(f"{_n(plot.x(t))},{_n(plot.y(p))}" for t, p in points)
    return f'<polyline points="{coords}" fill="none" {style} class="{css}"/>'


def _marker(plot: _Plot, at: datetime, label: str, css: str, colour: str, tip: str) -> str:
    x = _n(plot.x(at))
    anchor = "end" if plot.x(at) > (plot.left + plot.right) / 2 else "start"
    dx = "-3" if anchor == "end" else "3"
    return (
        f'<g class="{css}"><title>{_text(tip)}</title>'
        f'<line x1="{x}" y1="{_n(plot.top)}" x2="{x}" y2="{_n(plot.bottom)}"'
        f' stroke="{colour}" stroke-width="1" stroke-dasharray="2 3"/>'
        f'<text x="{x}" y="{_n(plot.top)}" dx="{dx}" dy="9" text-anchor="{anchor}"'
        f' font-family="sans-serif" font-size="11" fill="{colour}">{_text(label)}</text></g>'
    )


def _segments(history: Sequence[Point]) -> list[list[Point]]:
    """The history cut where the level jumps up: one line per cartridge (R13)."""
    segments: list[list[Point]] = []
    for point in history:
        if segments and _clamp(point[1]) - _clamp(segments[-1][-1][1]) <= REFILL_RISE:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments


def _refills(history: Sequence[Point]) -> list[tuple[Point, Point]]:
    return [
        (before, after)
        for before, after in pairwise(history)
        if _clamp(after[1]) - _clamp(before[1]) > REFILL_RISE
    ]


def _describe(
    history: Sequence[Point], forecast: Sequence[Point], now: datetime, trigger: datetime | None
) -> str:
    """The chart in words, for screen readers."""
    words = []
    if history:
        at, percent = history[-1]
        words.append(f"Last reading {_clamp(percent):.0f} % on {at:%Y-%m-%d}.")
    else:
        words.append("No readings yet.")
    refills = len(_refills(history))
    if refills:
        words.append(f"{refills} new cartridge{'s' if refills > 1 else ''} seen.")
    if forecast:
        at, percent = forecast[-1]
        words.append(f"Forecast {_clamp(percent):.0f} % on {at:%Y-%m-%d}.")
    if trigger is not None:
        words.append(f"Next order {trigger:%Y-%m-%d}.")
    words.append(f"Now {now:%Y-%m-%d}.")
    return " ".join(words)


def _finite(points: Iterable[Point]) -> list[Point]:
    """The points in time order, without NaN or infinite levels."""
    return sorted(((t, float(p)) for t, p in points if math.isfinite(p)), key=lambda tp: tp[0])


def _clamp(percent: float) -> float:
    return min(100.0, max(0.0, percent))


def _n(value: float) -> str:
    """A coordinate with one decimal at most."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text(text: str) -> str:
    return escape(text, quote=False)


def _attr(text: str) -> str:
    return escape(text, quote=True)
