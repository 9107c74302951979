"""MIB knowledge loaded from the TOML files under mibs/: the only place OIDs come from."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from agent.snmp.ber import Oid, parse_oid

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ProfileError(ValueError):
    """A MIB data file is malformed; the message names the file and key."""


# Names and the pattern that finds any of their words in folded text, first match wins.
Vocabulary = tuple[tuple[str, "re.Pattern[str]"], ...]

# Scripts written without spaces between words: their words match anywhere in a text.
_UNSPACED = re.compile(
    "[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_LETTER = r"[^\W\d_]"


def fold(text: str) -> str:
    """Text as words are compared: NFKC-normalised (half-width kana, full-width Latin) and
    case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _word_pattern(word: str, whole_words: bool) -> str:
    folded = fold(word)
    body = r"\s+".join(re.escape(part) for part in folded.split())
    if not whole_words or _UNSPACED.search(folded):
        return body
    # A word of a spaced script is a whole word: no letter touches it on either side.
    return f"(?<!{_LETTER}){body}(?!{_LETTER})"


@dataclass(frozen=True)
class VendorSerial:
    """A vendor object that holds the serial number when prtGeneralSerialNumber is empty."""

    oid: Oid
    strip_prefix: bytes = b""


@dataclass(frozen=True)
class VendorModel:
    """A vendor object naming the model; `ieee1284` when it is a 1284 device id (MDL:...)."""

    oid: Oid
    ieee1284: bool = False


@dataclass(frozen=True)
class VendorPower:
    """A vendor object that tells the power state directly."""

    oid: Oid
    values: dict[int, str]


@dataclass(frozen=True)
class Vendor:
    """What one vendor's printers need beyond the standard MIBs."""

    name: str
    enterprise: Oid
    serials: tuple[VendorSerial, ...] = ()
    models: tuple[VendorModel, ...] = ()
    power: VendorPower | None = None
    special_levels: dict[int, str] = field(default_factory=dict)
    part_number_separator: str | None = None
    part_numbers: re.Pattern[str] | None = None

    def oids(self) -> list[Oid]:
        """The extra objects to GET from this vendor's printers."""
        out = [s.oid for s in self.serials] + [m.oid for m in self.models]
        if self.power:
            out.append(self.power.oid)
        return out


@dataclass(frozen=True)
class Profile:
    """The standard objects, their enumerations and the vendor files, ready to use."""

    scalars: dict[str, Oid]
    per_device: dict[str, Oid]
    per_marker: dict[str, Oid]
    supplies_table: Oid
    supply_columns: dict[str, int]
    colorant_value: Oid
    enums: dict[str, dict[int, str]]
    error_bits: tuple[str, ...]
    special_levels: dict[int, str]
    mass_units: dict[str, float]
    coarse_max_capacity: int
    power_standby: frozenset[tuple[str, str]]
    power_ready: frozenset[tuple[str, str]]
    kind_by_type: dict[str, str]
    kind_by_description: Vocabulary
    colours: Vocabulary
    asr_managed: frozenset[str]
    receptacle_kinds: frozenset[str]
    vendors: tuple[Vendor, ...]

    def vendor_for(self, sys_object_id: Oid | None) -> Vendor | None:
        """The vendor whose enterprise subtree holds this sysObjectID, if we know it."""
        if not sys_object_id:
            return None
        for vendor in self.vendors:
            if sys_object_id[: len(vendor.enterprise)] == vendor.enterprise:
                return vendor
        return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ProfileError(f"{path}: {err}") from err


def _oids(path: Path, table: dict[str, Any], key: str) -> dict[str, Oid]:
    try:
        return {name: parse_oid(text) for name, text in table[key].items()}
    except (KeyError, ValueError, AttributeError) as err:
        raise ProfileError(f"{path}: [{key}]: {err}") from err


def _int_keys(path: Path, table: dict[str, Any], what: str) -> dict[int, str]:
    try:
        return {int(k): str(v) for k, v in table.items()}
    except ValueError as err:
        raise ProfileError(f"{path}: {what}: keys must be integers ({err})") from err


def _vocabulary(path: Path, rows: list[dict[str, Any]], name: str, whole_words: bool) -> Vocabulary:
    """Each entry's words as one pattern; `whole_words` for words of spaced scripts."""
    out = []
    try:
        for row in rows:
            unknown = set(row) - {name, "words"}
            if unknown:
                raise ProfileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
            words = [_word_pattern(str(w), whole_words) for w in row["words"]]
            out.append((str(row[name]), re.compile("|".join(words))))
    except (KeyError, TypeError, AttributeError) as err:
        raise ProfileError(f"{path}: each entry needs '{name}' and 'words' ({err})") from err
    return tuple(out)


def load_colours(path: Path) -> Vocabulary:
    """The colour vocabulary (colours.toml): whole words, or anywhere for unspaced scripts."""
    data = _read(path)
    unknown = set(data) - {"colours"}
    if unknown:
        raise ProfileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return _vocabulary(path, data.get("colours", []), "colour", whole_words=True)


def _part_numbers(path: Path, table: dict[str, Any]) -> re.Pattern[str] | None:
    """The vendor's part number shapes as one pattern that finds a whole token only."""
    unknown = set(table) - {"patterns"}
    if unknown:
        raise ProfileError(f"{path}: [part_numbers]: unknown key(s) {', '.join(sorted(unknown))}")
    patterns = table.get("patterns", [])
    if not patterns:
        return None
    try:
        shapes = "|".join(f"(?:{p})" for p in patterns)
        # A part number is a token of its own: no letter or digit touches it ("CF410AB" is
        # not CF410A).
        return re.compile(f"(?<![A-Za-z0-9])(?:{shapes})(?![A-Za-z0-9])")
    except (re.error, TypeError) as err:
        raise ProfileError(f"{path}: [part_numbers] patterns: {err}") from err


def load_vendor(path: Path) -> Vendor:
    """One vendor file."""
    data = _read(path)
    known = {
        "vendor",
        "enterprise",
        "serial",
        "model",
        "power",
        "special_levels",
        "quirks",
        "part_numbers",
    }
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        serials = tuple(
            VendorSerial(parse_oid(s["oid"]), bytes.fromhex(s.get("strip_prefix_hex", "")))
            for s in data.get("serial", [])
        )
        power = None
        if "power" in data:
            power = VendorPower(
                parse_oid(data["power"]["oid"]),
                _int_keys(path, data["power"]["values"], "power.values"),
            )
        quirks = data.get("quirks", {})
        return Vendor(
            name=data["vendor"],
            enterprise=parse_oid(data["enterprise"]),
            serials=serials,
            models=tuple(
                VendorModel(parse_oid(m["oid"]), bool(m.get("ieee1284", False)))
                for m in data.get("model", [])
            ),
            power=power,
            special_levels=_int_keys(path, data.get("special_levels", {}), "special_levels"),
            part_number_separator=quirks.get("description_part_number_separator"),
            part_numbers=_part_numbers(path, data.get("part_numbers", {})),
        )
    except (KeyError, ValueError, TypeError) as err:
        raise ProfileError(f"{path}: {err}") from err


def default_mib_dir() -> Path:
    """The mibs/ folder shipped with the package."""
    return Path(str(resources.files("mibs")))


def load_profile(mib_dir: Path | None = None, extra_vendor_dirs: tuple[Path, ...] = ()) -> Profile:
    """Load printer.toml, colours.toml and every vendors/*.toml (plus extra vendor folders,
    e.g. a site's)."""
    mib_dir = mib_dir or default_mib_dir()
    path = mib_dir / "printer.toml"
    d = _read(path)
    try:
        supplies = d["supplies"]
        vendor_files = sorted((mib_dir / "vendors").glob("*.toml"))
        for extra in extra_vendor_dirs:
            vendor_files += sorted(extra.glob("*.toml"))
        return Profile(
            scalars=_oids(path, d, "scalars"),
            per_device=_oids(path, d, "per_device"),
            per_marker=_oids(path, d, "per_marker"),
            supplies_table=parse_oid(supplies["table"]),
            supply_columns={k: int(v) for k, v in supplies["columns"].items()},
            colorant_value=parse_oid(d["colorants"]["value"]),
            enums={
                name: _int_keys(path, values, f"enums.{name}")
                for name, values in d["enums"].items()
            },
            error_bits=tuple(d["bits"]["hrPrinterDetectedErrorState"]),
            special_levels=_int_keys(path, d["levels"], "levels"),
            mass_units={k: float(v) for k, v in d["mass_units"].items()},
            coarse_max_capacity=int(d["quality"]["coarse_max_capacity"]),
            power_standby=frozenset((a, b) for a, b in d["power"]["standby"]),
            power_ready=frozenset((a, b) for a, b in d["power"]["ready"]),
            kind_by_type=dict(d["kinds"]["by_type"]),
            # Kind words match anywhere ("toner" in "Tonerkartusche"), colours as words.
            kind_by_description=_vocabulary(
                path, d["kinds"]["by_description"], "kind", whole_words=False
            ),
            colours=load_colours(mib_dir / "colours.toml"),
            asr_managed=frozenset(d["kinds"]["asr_managed"]),
            receptacle_kinds=frozenset(d["kinds"]["receptacle"]),
            vendors=tuple(load_vendor(p) for p in vendor_files),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ProfileError):
            raise
        raise ProfileError(f"{path}: missing or malformed {err}") from err
