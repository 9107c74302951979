"""The supplies catalogue: printer model -> supply -> part numbers and rated page yield (R3, R9,
R11, R15).

Is: the TOML files of `mibs/catalogue/` (docs/catalogue.md) read into frozen records, strictly:
an unknown key, a missing one, a part number that is not a short token, a yield that is not a
whole number of pages, two supplies of the same kind and colour are errors naming the file,
the entry and the key. A model is found from the text a device gives for itself (hrDeviceDescr
or sysDescr, as `devices.model` holds it) by its `match` phrases, token by token, so "HP Color
LaserJet Pro M252dw" and "HP LaserJet Pro M252dw" find the same model; the longest phrase wins
and a tie between two models finds none (a wrong part number is worse than none).
Is not: the order of trust between the device's own part number, the catalogue and "part
number needed" (`resolve` writes that order down; the portal's registration calls it), nor
the forecast's use of the yield (collector.replenish).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

import mibs

KINDS = ("toner", "ink", "waste")  # R5
STANDARDS = ("ISO/IEC 19752", "ISO/IEC 19798", "ISO/IEC 24711")  # mono toner, colour toner, ink
PART_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9./-]{0,38}[A-Za-z0-9]")  # and a digit
PART_NUMBER_RULE = "a part number: 2 to 40 letters and digits (at least one), '-', '/' or '.'"
MAX_YIELD = 1_000_000
DIRECTORY = Path(mibs.__file__).parent / "catalogue"
_COLOUR = re.compile(r"[a-z][a-z -]{0,30}")
_TOKEN = re.compile(r"[A-Za-z0-9+*?][A-Za-z0-9+*?./-]*")


class CatalogueError(ValueError):
    """A catalogue file that does not load: each problem names the file, the entry and the key."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Part:
    """A part number that fits, and the pages its cartridge is rated for (None: not published)."""

    number: str
    yield_pages: int | None


@dataclass(frozen=True)
class Supply:
    """One supply of a model; the first part is the one that ships, the others fit too."""

    kind: str
    colour: str | None
    parts: tuple[Part, ...]
    standard: str | None  # the ISO/IEC standard the yields are measured by; None: the maker's

    @property
    def part_number(self) -> str:
        return self.parts[0].number

    @property
    def rated_yield(self) -> int | None:
        return self.parts[0].yield_pages


@dataclass(frozen=True)
class Model:
    """A printer model: how its name appears in readings, and its supplies."""

    vendor: str
    name: str
    match: tuple[tuple[str, ...], ...]  # phrases of token patterns (fnmatch, upper case)
    supplies: tuple[Supply, ...]
    source: str  # the file it came from

    def supply(self, kind: str, colour: str | None) -> Supply | None:
        """The supply of `kind` and `colour`; R11: a model has one waste container, any colour."""
        same = [s for s in self.supplies if s.kind == kind]
        if kind == "waste" or (colour is None and len(same) == 1):
            return same[0] if len(same) == 1 else None
        wanted = (colour or "").strip().lower()
        return next((s for s in same if s.colour == wanted), None)


@dataclass(frozen=True)
class Catalogue:
    """Every model of every catalogue file, and the vendors' names."""

    models: tuple[Model, ...]
    vendor_names: Mapping[str, tuple[str, ...]]  # vendor -> its names as tokens

    def model(self, text: str | None) -> Model | None:
        """The model a device's own description names; None when none or two match equally."""
        tokens = tokens_of(text or "")
        if not tokens:
            return None
        named = {v for v, names in self.vendor_names.items() if set(names) & set(tokens)}
        best: list[tuple[int, Model]] = []
        for model in self.models:
            if named and model.vendor in self.vendor_names and model.vendor not in named:
                continue  # the text names another vendor: "Develop ineo" is not a bizhub
            score = max((_score(p) for p in model.match if _contains(tokens, p)), default=0)
            if score:
                best.append((score, model))
        if not best:
            return None
        top = max(score for score, _ in best)
        winners = {m.name for score, m in best if score == top}
        return next(m for score, m in best if score == top) if len(winners) == 1 else None

    def supply(self, model_text: str | None, kind: str, colour: str | None) -> Supply | None:
        """The catalogue's supply for a device's model, kind and colour, if it has one."""
        model = self.model(model_text)
        return model.supply(kind, colour) if model is not None else None


@dataclass(frozen=True)
class Resolved:
    """A supply's part number, where it came from, and its rated yield."""

    part_number: str | None  # None: part number needed (the helpdesk gives it)
    source: str  # "device", "catalogue" or "none"
    rated_yield: int | None


def resolve(
    catalogue: Catalogue,
    model_text: str | None,
    kind: str,
    colour: str | None,
    reported: str | None,
) -> Resolved:
    """A supply's part number: the device's own, else the catalogue's, else none (R3, R15).

    A description is never a part number: only a `reported` value shaped like one is taken.
    The rated yield comes from the catalogue's part of that number when it lists it.
    """
    listed = catalogue.supply(model_text, kind, colour)
    if reported is not None and is_part_number(reported.strip()):
        number = reported.strip()
        pages = (
            next((p.yield_pages for p in listed.parts if p.number.upper() == number.upper()), None)
            if listed is not None
            else None
        )
        return Resolved(number, "device", pages)
    if listed is not None:
        return Resolved(listed.part_number, "catalogue", listed.rated_yield)
    return Resolved(None, "none", None)


def is_part_number(text: str) -> bool:
    """A short token of letters, digits, '-', '/', '.' with a digit: never a description."""
    return bool(PART_NUMBER.fullmatch(text)) and any(ch.isdigit() for ch in text)


def tokens_of(text: str) -> tuple[str, ...]:
    """A model text as comparable tokens: upper case, hyphens dropped ("HL-5370DW" = "HL5370DW")."""
    return tuple(t.replace("-", "").upper() for t in _TOKEN.findall(text) if t.strip("-"))


def _contains(tokens: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(
        all(fnmatch.fnmatchcase(tokens[i + j], phrase[j]) for j in range(n))
        for i in range(len(tokens) - n + 1)
    )


def _score(phrase: tuple[str, ...]) -> int:
    """How specific a phrase is: its characters that are not wildcards."""
    return sum(len(p.replace("*", "").replace("?", "")) for p in phrase)


# --- loading -------------------------------------------------------------------------------

_FILE_KEYS = {"vendor", "names", "model"}
_MODEL_KEYS = {"name", "match", "supply"}
_SUPPLY_KEYS = {"kind", "colour", "parts", "standard"}
_PART_KEYS = {"number", "yield"}


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    def add(self, where: str, key: str, what: str) -> None:
        self.found.append(f"{self.source}: {where}: {key}: {what}")

    def keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.add(where, key, f"unknown key (known: {', '.join(sorted(allowed))})")


def _text(table: Mapping[str, Any], key: str, where: str, problems: _Problems) -> str | None:
    value = table.get(key)
    if value is None:
        problems.add(where, key, "required")
    elif not isinstance(value, str) or not value.strip():
        problems.add(where, key, "a non-empty string")
    else:
        return value.strip()
    return None


def _list(table: Mapping[str, Any], key: str, where: str, problems: _Problems) -> list[Any]:
    value = table.get(key)
    if value is None:
        problems.add(where, key, "required")
        return []
    if not isinstance(value, list) or not value:
        problems.add(where, key, "a non-empty list")
        return []
    return value


def _part(raw: Any, where: str, problems: _Problems) -> Part | None:
    if not isinstance(raw, dict):
        problems.add(where, "parts", 'each a table like { number = "CF400A", yield = 1500 }')
        return None
    problems.keys(raw, _PART_KEYS, where)
    number = raw.get("number")
    if not isinstance(number, str) or not is_part_number(number):
        problems.add(where, "number", PART_NUMBER_RULE)
        return None
    pages = raw.get("yield")
    if pages is not None and (
        isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= MAX_YIELD
    ):
        problems.add(where, "yield", f"pages: a whole number from 1 to {MAX_YIELD}")
        return None
    return Part(number, pages)


def _supply(raw: Any, where: str, problems: _Problems) -> Supply | None:
    if not isinstance(raw, dict):
        problems.add(where, "supply", "a table")
        return None
    problems.keys(raw, _SUPPLY_KEYS, where)
    before = len(problems.found)
    kind = _text(raw, "kind", where, problems)
    if kind is not None and kind not in KINDS:
        problems.add(where, "kind", f"one of {', '.join(KINDS)} (R5)")
    colour = raw.get("colour")
    if kind in ("toner", "ink") and colour is None:
        problems.add(where, "colour", "required for toner and ink")
    elif colour is not None and (not isinstance(colour, str) or not _COLOUR.fullmatch(colour)):
        problems.add(where, "colour", "a lower-case colour name like black or cyan")
    standard = raw.get("standard")
    if standard is not None and standard not in STANDARDS:
        problems.add(where, "standard", f"one of {', '.join(STANDARDS)}, or left out")
    parts = [
        _part(p, f"{where} part {i}", problems)
        for i, p in enumerate(_list(raw, "parts", where, problems), 1)
    ]
    if len(problems.found) > before or kind is None:
        return None
    numbers = [p.number.upper() for p in parts if p is not None]
    if len(set(numbers)) != len(numbers):
        problems.add(where, "parts", "a part number listed twice")
    return Supply(kind, colour, tuple(p for p in parts if p is not None), standard)


def _model(raw: Any, vendor: str, where: str, problems: _Problems) -> Model | None:
    if not isinstance(raw, dict):
        problems.add(where, "model", "a table ([[model]])")
        return None
    name = _text(raw, "name", where, problems)
    where = f"model {name!r}" if name else where
    problems.keys(raw, _MODEL_KEYS, where)
    phrases: list[tuple[str, ...]] = []
    for phrase in _list(raw, "match", where, problems):
        pattern = tokens_of(phrase) if isinstance(phrase, str) else ()
        if not pattern or not _score(pattern):
            problems.add(where, "match", f"{phrase!r}: words of the model's name, not only * or ?")
        else:
            phrases.append(pattern)
    supplies = [
        _supply(s, f"{where} supply {i}", problems)
        for i, s in enumerate(_list(raw, "supply", where, problems), 1)
    ]
    seen: set[tuple[str, str | None]] = set()
    for s in supplies:
        if s is None:
            continue
        key = (s.kind, None if s.kind == "waste" else s.colour)
        if key in seen:
            problems.add(where, "supply", f"two {s.kind} supplies for {s.colour or 'the model'}")
        seen.add(key)
    if name is None or any(s is None for s in supplies):
        return None
    return Model(vendor, name, tuple(phrases), tuple(s for s in supplies if s), problems.source)


def parse(data: Mapping[str, Any], source: str) -> tuple[str, tuple[str, ...], list[Model]]:
    """A catalogue file's parsed TOML: its vendor, the vendor's names, its models."""
    problems = _Problems(source)
    problems.keys(data, _FILE_KEYS, "file")
    vendor = _text(data, "vendor", "file", problems) or ""
    names_raw = data.get("names", [])
    if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
        problems.add("file", "names", "a list of the vendor's names as devices write them")
        names_raw = []
    names = tuple(t for n in names_raw for t in tokens_of(n))
    models = [
        _model(m, vendor, f"model {i}", problems)
        for i, m in enumerate(_list(data, "model", "file", problems), 1)
    ]
    if problems.found:
        raise CatalogueError(problems.found)
    return vendor, names, [m for m in models if m is not None]


def load_file(path: Path) -> tuple[str, tuple[str, ...], list[Model]]:
    """One catalogue file; CatalogueError naming the file, the entry and the key."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CatalogueError([f"{path}: cannot read it: {err}"]) from err
    except tomllib.TOMLDecodeError as err:
        raise CatalogueError([f"{path}: not TOML: {err}"]) from err
    return parse(data, str(path))


def load(paths: Iterable[Path]) -> Catalogue:
    """A catalogue of these files; every file's problems together, and a model named twice."""
    problems: list[str] = []
    models: list[Model] = []
    names: dict[str, tuple[str, ...]] = {}
    for path in sorted(paths):
        try:
            vendor, vendor_names, found = load_file(path)
        except CatalogueError as err:
            problems.extend(err.problems)
            continue
        if vendor_names:
            names[vendor] = tuple(dict.fromkeys(names.get(vendor, ()) + vendor_names))
        models.extend(found)
    first: dict[str, str] = {}
    for model in models:
        if model.name in first:
            problems.append(
                f"{model.source}: model {model.name!r}: name: also in {first[model.name]}"
            )
        first.setdefault(model.name, model.source)
    if problems:
        raise CatalogueError(problems)
    return Catalogue(tuple(models), names)


@lru_cache(maxsize=1)
def default() -> Catalogue:
    """The catalogue shipped in mibs/catalogue/ (a dealer adds a model by adding a file)."""
    return load(DIRECTORY.glob("*.toml"))
