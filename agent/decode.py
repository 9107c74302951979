"""What a raw printer read means (R1): pure functions, no I/O, no clock.

Is: the one place where raw SNMP values become percent left (consumed supplies) or percent
full (receptacles), grams, a quality flag, a kind (toner / ink / waste / drum / ...), a colour,
and the printer's status and power state.
Is not: a guesser. A special level (-1 other, -2 unknown, -3 some remaining), a missing or
non-positive capacity, or a value of the wrong type gives `percent: None` with a quality flag
and a note, never a made-up number (LibreNMS shows 50 % for -3; we do not). The notes that say
a value breaks the MIB (a wrong type, a number out of its range or enumeration) are also handed
back as `problems` when asked, so the caller can report a printer that answers garbage.
"""

from __future__ import annotations

import re

from agent.profile import Profile, Vendor, Vocabulary, fold
from agent.reader import RawRead
from agent.snmp import ber
from agent.snmp.ber import Value, format_oid
from wire.reading import PrinterReading, Status, Supply, bound_reading


class _Notes(list[str]):
    """A read's notes; `bad` ones, a value that breaks the MIB, are also kept in `problems`."""

    def __init__(self, notes: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(notes)
        self.problems: list[str] = []

    def bad(self, text: str) -> None:
        self.append(text)
        self.problems.append(text)


_HEX_PAIRS = re.compile(r"^(?:[0-9A-Fa-f]{2})(?: [0-9A-Fa-f]{2})*\s*$")
_HEX_PAIR = re.compile(rb"[0-9A-Fa-f]{2}")
_SERIAL_PLACEHOLDERS = {"", "0", "unknown", "none", "n/a", "na", "-"}
_BLANKS = b" \t\r\n\x00"


def _as_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _hex_octets(text: bytes) -> bytes | None:
    """Octets written as hex pairs, however the pairs are spaced or broken into lines."""
    pairs = text.split()
    if not pairs or not all(len(p) == 2 and _HEX_PAIR.fullmatch(p) for p in pairs):
        return None
    return bytes.fromhex(b"".join(pairs).decode("ascii"))


def _hp_joined(raw: bytes) -> bytes | None:
    """HP's "first characters, newline, the rest as hex octets" as one run of octets.

    The octets are joined as bytes, before any decoding: their first one is often a space
    ("Yellow Cartridge" + 20 38 32 37 41), and a UTF-8 character may straddle the cut.
    """
    head, sep, tail = raw.partition(b"\n")
    octets = _hex_octets(tail) if sep else None
    if octets is None:
        return None
    joined = head.removesuffix(b"\r") + octets.rstrip(_BLANKS)
    # Pairs that do not spell printable text are a second line, not HP's form.
    return joined if _as_text(joined).isprintable() else None


def decode_text(value: Value) -> str | None:
    """An OCTET STRING as text, whatever the device's encoding.

    UTF-8 first, else Windows-1252 (never fails); trailing NULs and blanks go. Two device
    habits are undone: a description sent as hex octets in text ("42 6C 61 63 6B"), and HP's
    "first characters, newline, the rest as hex octets" (the hex may span several lines).
    """
    if not isinstance(value, bytes):
        return None
    raw = value.strip(_BLANKS)
    raw = _hp_joined(raw) or raw
    text = _as_text(raw)
    if len(text.split(" ")) >= 3 and _HEX_PAIRS.match(text):
        decoded = decode_text(bytes.fromhex(text.replace(" ", "")))
        if decoded and decoded.isprintable():
            text = decoded
    return text.strip()


def _int(value: Value, what: str, notes: _Notes) -> int | None:
    if value is None or isinstance(value, ber.NoValue):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        notes.bad(f"{what}: expected an INTEGER, got {type(value).__name__} {value!r:.40}")
        return None
    return value


def _text(value: Value, what: str, notes: _Notes) -> str | None:
    if value is not None and not isinstance(value, (bytes, ber.NoValue)):
        notes.bad(f"{what}: expected an OCTET STRING, got {type(value).__name__} {value!r:.40}")
    return decode_text(value)


def _enum(profile: Profile, enum: str, value: Value, what: str, notes: _Notes) -> str | None:
    number = _int(value, what, notes)
    if number is None:
        return None
    name = profile.enums[enum].get(number)
    if name is None:
        notes.bad(f"{what}: value {number} is not in the MIB's enumeration")
    return name


def _match(vocabulary: Vocabulary, text: str | None) -> str | None:
    if not text:
        return None
    folded = fold(text)
    return next((name for name, words in vocabulary if words.search(folded)), None)


def _part_number(vendor: Vendor | None, description: str | None) -> str | None:
    """The part number a description carries (R3), when it has the vendor's shape for one.

    Only a token of that shape is taken ("CF410A" in "Black Cartridge 410A HP CF410A"), never
    free text: a supply without one has none, and the description stays the description.
    """
    if not description or vendor is None or vendor.part_numbers is None:
        return None
    found = vendor.part_numbers.search(description)
    return found.group(0) if found else None


def _kind(profile: Profile, type_name: str | None, text: str | None) -> str:
    if type_name and type_name not in ("other", "unknown"):
        return profile.kind_by_type.get(type_name, "other")
    return _match(profile.kind_by_description, text) or "other"


def _percent(
    level: int | None,
    capacity: int | None,
    unit: str | None,
    special: dict[int, str],
    coarse_max: int,
    notes: _Notes,
) -> tuple[float | None, str]:
    """Share of the supply's capacity that the level says is there (0..100), and its quality."""
    if level is None:
        notes.append("level not reported")
        return None, "unknown"
    if level < 0:
        meaning = special.get(level)
        if meaning is None:
            notes.bad(f"level {level} is negative and not a known special value")
            return None, "unknown"
        notes.append(f"level {level}: {meaning}")
        return None, "some-remaining" if meaning in ("some-remaining", "near-empty") else "unknown"
    if unit == "percent":
        if level > 100:
            notes.bad(f"level {level} is above 100 in a percent unit")
            return None, "unknown"
        return float(level), "measured"
    if capacity is None or capacity <= 0:
        meaning = special.get(capacity) if capacity is not None else None
        if capacity is not None and capacity < 0 and meaning is None:
            notes.bad(f"max capacity {capacity} is negative and not a known special value")
            return None, "unknown"
        notes.append(
            f"max capacity {meaning or capacity}: no percentage without a capacity"
            if capacity is not None
            else "max capacity not reported"
        )
        return None, "unknown"
    if level > capacity:
        notes.bad(f"level {level} is above the max capacity {capacity}")
        return None, "unknown"
    return level * 100 / capacity, "coarse" if capacity <= coarse_max else "measured"


def decode_supply(
    profile: Profile,
    vendor: Vendor | None,
    h: int,
    index: str,
    row: dict[str, Value],
    colorants: dict[str, Value],
    problems: list[str] | None = None,
) -> Supply:
    """One prtMarkerSuppliesTable row, normalised per R1; values that break the MIB are also
    added to `problems` (prefixed with the supply's index) when it is given."""
    notes = _Notes()
    description = _text(row.get("description"), "description", notes)
    text = description
    if description and vendor and vendor.part_number_separator:
        # The kind and colour are read from the words before the vendor's part number field.
        text = description.partition(vendor.part_number_separator)[0]
    part_number = _part_number(vendor, description)
    supply_class = _enum(profile, "supplyClass", row.get("class"), "class", notes)
    type_name = _enum(profile, "supplyType", row.get("type"), "type", notes)
    unit = _enum(profile, "supplyUnit", row.get("unit"), "unit", notes)
    capacity = _int(row.get("maxCapacity"), "max capacity", notes)
    level = _int(row.get("level"), "level", notes)
    marker = _int(row.get("markerIndex"), "marker index", notes)
    colorant_index = _int(row.get("colorantIndex"), "colorant index", notes)

    kind = _kind(profile, type_name, text)
    # RFC 3805: receptacles by class; when the class column is absent, by type; when both
    # are absent, by the description.
    if supply_class in ("filled", "consumed"):
        receptacle = supply_class == "filled"
    else:
        receptacle = kind in profile.receptacle_kinds

    colour = None
    if colorant_index and colorant_index > 0:
        colour = _match(profile.colours, decode_text(colorants.get(f"{h}.{colorant_index}")))
    colour = colour or _match(profile.colours, text)

    special = {**profile.special_levels, **(vendor.special_levels if vendor else {})}
    share, quality = _percent(level, capacity, unit, special, profile.coarse_max_capacity, notes)
    percent = None
    if share is not None:
        # Receptacles report their remaining *space*: percent full is what is not space.
        percent = round(100 - share if receptacle else share, 1)

    grams_left = grams_used = None
    factor = profile.mass_units.get(unit or "")
    if factor and level is not None and capacity and 0 <= level <= capacity:
        grams_left = round(level * factor, 3)
        grams_used = round((capacity - level) * factor, 3)

    supply = Supply(
        index=index,
        description=description,
        type=type_name,
        supply_class=supply_class,
        colour=colour,
        unit=unit,
        max_capacity=capacity,
        level=level,
        percent=percent,
        grams_left=grams_left,
        grams_used=grams_used,
        quality=quality,
        kind=kind,
        receptacle=receptacle,
        part_number=part_number,
        marker_index=marker,
        colorant_index=colorant_index,
        notes=tuple(notes),
    )
    if problems is not None:
        problems.extend(f"supply {index}: {p}" for p in notes.problems)
    return supply


def decode_errors(profile: Profile, value: Value) -> tuple[str, ...]:
    """hrPrinterDetectedErrorState's set bits by name (bit 0 = MSB of the first octet)."""
    if not isinstance(value, bytes):
        return ()
    names = profile.error_bits
    out = []
    for bit in range(len(value) * 8):
        if value[bit // 8] & (0x80 >> (bit % 8)):
            out.append(names[bit] if bit < len(names) else f"bit{bit}")
    return tuple(out)


def _serial(profile: Profile, raw: RawRead, notes: _Notes) -> tuple[str | None, str | None]:
    standard = _text(raw.per_device.get("prtGeneralSerialNumber"), "prtGeneralSerialNumber", notes)
    if standard and standard.lower() not in _SERIAL_PLACEHOLDERS:
        return standard, "prtGeneralSerialNumber"
    for fallback in raw.vendor.serials if raw.vendor else ():
        value = raw.vendor_values.get(fallback.oid)
        if (
            isinstance(value, bytes)
            and fallback.strip_prefix
            and value.startswith(fallback.strip_prefix)
        ):
            value = value[len(fallback.strip_prefix) :]
        text = decode_text(value)
        if text and text.lower() not in _SERIAL_PLACEHOLDERS:
            return text, f"{raw.vendor.name}:{format_oid(fallback.oid)}"  # type: ignore[union-attr]
    return None, None


def _model(raw: RawRead) -> str | None:
    # A vendor's own model object beats hrDeviceDescr, which some models fill with a
    # generic driver name (Konica: "Generic 28C-1").
    for model in raw.vendor.models if raw.vendor else ():
        text = decode_text(raw.vendor_values.get(model.oid))
        if text and model.ieee1284:
            fields = dict(part.strip().partition(":")[::2] for part in text.split(";"))
            text = fields.get("MDL") or fields.get("MODEL")
        if text:
            return text
    described = decode_text(raw.per_device.get("hrDeviceDescr"))
    if described:
        return described
    # sysDescr often appends firmware versions after a ';'.
    return (decode_text(raw.scalars.get("sysDescr")) or "").split(";")[0].strip() or None


def _power(profile: Profile, raw: RawRead, device: str | None, printer: str | None) -> str:
    vendor_power = raw.vendor.power if raw.vendor else None
    if vendor_power:
        value = raw.vendor_values.get(vendor_power.oid)
        if isinstance(value, int) and value in vendor_power.values:
            return vendor_power.values[value]
    if device and printer:
        if (device, printer) in profile.power_standby:
            return "standby"
        if (device, printer) in profile.power_ready:
            return "ready"
    return "unknown"


def decode_read(
    profile: Profile, raw: RawRead, problems: list[str] | None = None
) -> PrinterReading:
    """A whole printer read, normalised; values that break the MIB are also added to
    `problems` when it is given (the reading keeps them as null or notes, never as numbers)."""
    notes = _Notes(raw.notes)
    h = raw.hr_device_index
    device = _enum(
        profile, "hrDeviceStatus", raw.per_device.get("hrDeviceStatus"), "hrDeviceStatus", notes
    )
    printer = _enum(
        profile, "hrPrinterStatus", raw.per_device.get("hrPrinterStatus"), "hrPrinterStatus", notes
    )
    errors = decode_errors(profile, raw.per_device.get("hrPrinterDetectedErrorState"))
    status = Status(
        device=device, printer=printer, errors=errors, power=_power(profile, raw, device, printer)
    )
    supplies = tuple(
        decode_supply(profile, raw.vendor, h, index, row, raw.colorants, problems)
        for index, row in sorted(
            raw.supplies.items(), key=lambda kv: tuple(int(p) for p in kv[0].split("."))
        )
    )
    serial, serial_source = _serial(profile, raw, notes)
    if serial is None:
        notes.append("no serial number: prtGeneralSerialNumber empty and no vendor fallback")
    sys_object_id = raw.scalars.get("sysObjectID")
    uptime = _int(raw.scalars.get("sysUpTime"), "sysUpTime", notes)
    page_count = _int(raw.per_marker.get("prtMarkerLifeCount"), "prtMarkerLifeCount", notes)
    if page_count is not None and page_count < 0:
        notes.bad(f"prtMarkerLifeCount: {page_count} is negative")
        page_count = None
    reading = PrinterReading(
        serial=serial,
        serial_source=serial_source,
        model=_model(raw),
        sys_object_id=format_oid(sys_object_id) if isinstance(sys_object_id, tuple) else None,
        sys_descr=decode_text(raw.scalars.get("sysDescr")),
        vendor=raw.vendor.name if raw.vendor else None,
        uptime_seconds=uptime / 100 if uptime is not None else None,
        page_count=page_count,
        power_on_count=_int(
            raw.per_marker.get("prtMarkerPowerOnCount"), "prtMarkerPowerOnCount", notes
        ),
        counter_unit=_enum(
            profile,
            "counterUnit",
            raw.per_marker.get("prtMarkerCounterUnit"),
            "prtMarkerCounterUnit",
            notes,
        ),
        status=status,
        supplies=supplies,
        hr_device_index=h,
        notes=tuple(notes),
    )
    # What the collector would refuse (a NUL in a text, a text of 60,000 characters, a level
    # past Integer32) is cut to the wire's bounds here, and said so: docs/protocol.md, Bounds.
    reading, bounded = bound_reading(reading)
    if problems is not None:
        problems[:0] = notes.problems  # the device's own before its supplies'
        problems.extend(bounded)
    return reading
