"""Micro-benchmark of a supply's track (issue 16): old (tuple, JSON list, window scans) vs new.

    .venv/bin/python bench/tracks.py --old 6f63c77 --tracks 5000 --memory 100000

Builds 90-day tracks (grams a day rounded to 6 decimals as advance makes them, `--unknown` of
the days unknown, `--meters` of them with a page counter's 90 days too), stored as a daily
run leaves them (the old form loaded, a reading applied, written), and times per track (CPU,
best of `--rounds`, each version in turn): encode (Track.to_json and pydantic-core's JSON, as
the store writes it), decode (the JSON text to a Track), forecast, one reading's advance, and
a day's cycle (decode, advance, forecast, encode), for the code of commit `--old` (its
collector.replenish track modules read out of git into a scratch package), the working tree,
and the working tree with advance keeping no running sums (every window scanned). Then the
stored bytes per track, the peak memory (tracemalloc) of `--memory` decoded tracks, and
whether the forecasts are the same: field by field, exact, and the largest relative
difference where not.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from benchinfo import code_version
from pydantic_core import from_json, to_json

from collector.replenish.settings import Rules

MODULES = ("series", "pages", "track", "advance", "forecast")  # in import order
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=timezone.utc)
RULES = Rules()


def copied(into: Path, package: str, read: Callable[[str], str | None]) -> dict[str, ModuleType]:
    """The track modules as `read` gives them (None: not there), as the package `package`."""
    pkg = into / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        text = read(name)
        if text is None:
            continue
        for other in MODULES:
            text = text.replace(f"collector.replenish.{other}", f"{package}.{other}")
            text = text.replace(
                f"from collector.replenish import {other}", f"from {package} import {other}"
            )
        (pkg / f"{name}.py").write_text(text)
    if str(into) not in sys.path:
        sys.path.insert(0, str(into))
    return {
        name: importlib.import_module(f"{package}.{name}")
        for name in MODULES
        if (pkg / f"{name}.py").exists()
    }


def old_package(commit: str, into: Path) -> dict[str, ModuleType]:
    """collector.replenish's track modules at `commit`."""

    def read(name: str) -> str | None:
        shown = subprocess.run(
            ["git", "show", f"{commit}:collector/replenish/{name}.py"],
            capture_output=True,
            text=True,
        )
        return shown.stdout if shown.returncode == 0 else None

    return copied(into, "old_replenish", read)


KEPT = "windows = (rules.rate_window_days, rules.spike_window_days)"


def scans_package(into: Path) -> dict[str, ModuleType]:
    """The working tree's, but advance keeps no running sums: every window is scanned (in C,
    math.fsum), to show what keeping them costs and saves."""
    here = Path(__file__).resolve().parents[1] / "collector" / "replenish"

    def read(name: str) -> str:
        text = (here / f"{name}.py").read_text()
        if name == "advance":
            if KEPT not in text:
                raise SystemExit("bench/tracks.py: advance no longer names its windows as KEPT")
            text = text.replace(KEPT, "windows: tuple[int, ...] = ()")
        return text

    return copied(into, "scan_replenish", read)


def new_package() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"collector.replenish.{name}") for name in MODULES}


def stored_tracks(
    count: int, seed: int, unknown: float = 0.1, meters: float = 0.5
) -> list[dict[str, Any]]:
    """`count` tracks as the old code stored them (JSON lists: both versions load these)."""
    rng = random.Random(seed)
    last = NOW - timedelta(hours=18)
    first = last.date().toordinal() - 89
    out = []
    for i in range(count):
        mean = rng.uniform(1.0, 12.0)
        usage = [
            None if rng.random() < unknown else round(mean * rng.uniform(0.2, 1.8), 6)
            for _ in range(90)
        ]
        meter = None
        if rng.random() < meters:
            pages = [None if u is None else round(u * 40.0, 6) for u in usage]
            meter = {"start": first, "usage": pages, "last": 50_000 + i, "last_at": None}
            meter["last_at"] = last.timestamp()
        out.append(
            {
                "unit": "g",
                "capacity": 700.0,
                "start": first,
                "usage": usage,
                "last_at": last.timestamp(),
                "last_value": round(rng.uniform(0.0, 700.0), 1),
                "coarse": False,
                "balance": rng.choice((0, 0, 1)),
                "last_order_day": None,
                "installs": rng.randint(0, 3),
                "meter": meter,
            }
        )
    return out


def after_a_day(mods: dict[str, ModuleType], stored: list[dict[str, Any]]) -> list[Any]:
    """The tracks as a daily run leaves them (a day's reading applied): the new code's carry
    their running sums from then on."""
    Track, Point = mods["track"].Track, mods["track"].Point
    at = NOW - timedelta(hours=5)
    out = []
    for s in stored:
        track = Track.from_json(s)
        point = Point(at, max(0.0, track.last_value - 4.0), 700.0, "g", "exact")
        out.append(mods["advance"].advance(track, [point], RULES)[0])
    return out


def timed(fn: Callable[[Any], Any], items: list[Any]) -> tuple[float, list[Any]]:
    """Microseconds of CPU per item (the process's: others share the cores), and the results;
    the garbage collector off while timed, as timeit does."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        out = [fn(x) for x in items]
        took = time.process_time() - t0
    finally:
        gc.enable()
    return took / len(items) * 1e6, out


def cases(mods: dict[str, ModuleType], texts: list[bytes]) -> dict[str, Callable[[], Any]]:
    """Each figure's run over all tracks, for one version of the code (fresh inputs each)."""
    track_mod, forecast_mod, advance_mod = mods["track"], mods["forecast"], mods["advance"]
    Track, Point = track_mod.Track, track_mod.Point
    at = NOW + timedelta(hours=4)

    def decoded() -> list[Any]:
        return [Track.from_json(from_json(b)) for b in texts]

    def point(t: Any) -> Any:
        return Point(at, max(0.0, t.last_value - 3.0), 700.0, "g", "exact", pages=None)

    def day(b: bytes) -> bytes:
        t = Track.from_json(from_json(b))
        t, _ = advance_mod.advance(t, [point(t)], RULES)
        forecast_mod.forecast(t, at, RULES)
        return to_json(t.to_json())

    def again() -> tuple[float, list[Any]]:
        tracks = decoded()
        for t in tracks:
            forecast_mod.forecast(t, NOW, RULES)
        return timed(lambda t: forecast_mod.forecast(t, NOW, RULES), tracks)

    return {
        "encode": lambda: timed(lambda t: to_json(t.to_json()), decoded()),
        "decode": lambda: timed(lambda b: Track.from_json(from_json(b)), texts),
        "forecast": lambda: timed(lambda t: forecast_mod.forecast(t, NOW, RULES), decoded()),
        "again": again,
        "advance": lambda: timed(lambda t: advance_mod.advance(t, [point(t)], RULES), decoded()),
        "day": lambda: timed(day, texts),
    }


def peak_memory(mods: dict[str, ModuleType], texts: list[bytes]) -> float:
    """MB held at the peak while decoding `texts` into tracks and keeping them."""
    Track = mods["track"].Track
    gc.collect()
    tracemalloc.start()
    tracks = [Track.from_json(from_json(b)) for b in texts]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del tracks
    return peak / 1e6


def compare(old: list[Any], new: list[Any]) -> tuple[int, int, float]:
    """Forecasts exactly equal, field by field; the largest relative difference otherwise."""
    same, worst, fields = 0, 0.0, 0
    for a, b in zip(old, new, strict=True):
        fa, fb = vars(a), vars(b)
        fields += len(fa)
        for k, va in fa.items():
            vb = fb[k]
            if va == vb or (va != va and vb != vb):
                same += 1
            elif isinstance(va, float) and isinstance(vb, float):
                worst = max(worst, abs(va - vb) / max(abs(va), abs(vb)))
            else:
                worst = float("inf")
    return same, fields, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="6f63c77", help="the commit to compare with")
    parser.add_argument("--tracks", type=int, default=5_000, help="tracks timed")
    parser.add_argument("--memory", type=int, default=100_000, help="tracks held for memory")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--unknown", type=float, default=0.1, help="share of unknown days")
    parser.add_argument("--meters", type=float, default=0.5, help="share with a page counter")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each, old and new in turn")
    args = parser.parse_args()
    print(code_version(), f"| old: {args.old} | python {sys.version.split()[0]}")
    stored = stored_tracks(args.tracks, args.seed, args.unknown, args.meters)
    with tempfile.TemporaryDirectory() as scratch:
        versions = {
            "old": old_package(args.old, Path(scratch)),
            "new": new_package(),
            "scans": scans_package(Path(scratch)),
        }
        got: dict[str, dict[str, Any]] = {name: {} for name in versions}
        runs = {}
        for name, mods in versions.items():
            texts = [to_json(t.to_json()) for t in after_a_day(mods, stored)]
            got[name]["bytes"] = sum(len(t) for t in texts) / len(texts)
            runs[name] = cases(mods, texts)
        for key in runs["old"]:
            for _ in range(args.rounds):  # each version in turn, the best of each
                for name in versions:
                    took, out = runs[name][key]()
                    got[name][key] = min(took, got[name].get(key, float("inf")))
                    if key == "forecast":
                        got[name]["results"] = out
        many = stored_tracks(args.memory, args.seed + 1, args.unknown, args.meters)
        for name, mods in versions.items():
            texts = [to_json(t.to_json()) for t in after_a_day(mods, many)]
            got[name]["memory"] = peak_memory(mods, texts)
            del texts
        print("| per track | old | new | new / old | new, no running sums | that / old |")
        print("|---|---|---|---|---|---|")
        for key, label in (
            ("encode", "encode (to_json, JSON text) µs"),
            ("decode", "decode (JSON text to Track) µs"),
            ("forecast", "forecast, decoded track µs"),
            ("again", "forecast again, same track µs"),
            ("advance", "advance one reading µs"),
            ("day", "a day: decode, advance, forecast, encode µs"),
            ("bytes", "stored JSON bytes"),
            ("memory", f"{args.memory:,} tracks decoded, peak MB"),
        ):
            o, n, c = got["old"][key], got["new"][key], got["scans"][key]
            print(f"| {label} | {o:,.1f} | {n:,.1f} | {n / o:.2f} | {c:,.1f} | {c / o:.2f} |")
        for name in ("new", "scans"):
            same, fields, worst = compare(got["old"]["results"], got[name]["results"])
            print(
                f"forecasts, {name} against old: {same:,} of {fields:,} fields exactly equal;"
                f" largest relative difference {worst:.1e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
