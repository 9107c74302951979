"""The snmprec format (`OID|TAG|VALUE`, as snmpsim reads it): parse it, and write it back.

Is: a strict reader of recordings and a writer whose output both snmpsim and this reader
serve identically. Is not: snmpsim's full grammar; variation modules and other tags are
refused with the file and line named.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from agent.snmp import ber
from agent.snmp.ber import Oid, Typed, format_oid, parse_oid

Entry = tuple[Oid, Typed]

_INTEGER_TAGS = {
    "2": (ber.INTEGER, -(2**31), 2**31 - 1),
    "65": (ber.COUNTER32, 0, 2**32 - 1),
    "66": (ber.GAUGE32, 0, 2**32 - 1),
    "67": (ber.TIMETICKS, 0, 2**32 - 1),
    "70": (ber.COUNTER64, 0, 2**64 - 1),
}
_TAG_NAMES = {tag: name for name, (tag, _, _) in _INTEGER_TAGS.items()}


def _by_oid(entry: Entry) -> Oid:
    return entry[0]


def _value(tag: str, text: str) -> Typed:
    """One VALUE under its TAG; ValueError saying what is wrong."""
    if tag in _INTEGER_TAGS:
        ber_tag, low, high = _INTEGER_TAGS[tag]
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for tag {tag}")
        return Typed(ber_tag, number)
    if tag == "4":
        return Typed(ber.OCTET_STRING, text.encode("utf-8"))
    if tag == "4x":
        return Typed(ber.OCTET_STRING, bytes.fromhex(text))
    if tag == "5":
        return Typed(ber.NULL, None)
    if tag == "6":
        return Typed(ber.OBJECT_IDENTIFIER, parse_oid(text))
    if tag == "64":
        return Typed(ber.IP_ADDRESS, ipaddress.IPv4Address(text).packed)
    if tag == "64x":
        packed = bytes.fromhex(text)
        if len(packed) != 4:
            raise ValueError(f"an IpAddress has 4 octets, not {len(packed)}")
        return Typed(ber.IP_ADDRESS, packed)
    raise ValueError(f"unsupported tag {tag!r}")


def parse_snmprec(text: str, source: str = "<snmprec>") -> list[Entry]:
    """The entries of an snmprec text, sorted by OID; ValueError naming source and line."""
    entries: dict[Oid, Typed] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        # snmpsim strips every line, so trailing blanks of a text value are never served.
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            oid_text, tag, value = line.split("|", 2)
            oid = parse_oid(oid_text)
            typed = _value(tag, value)
        except ValueError as err:
            reason = "expected OID|TAG|VALUE" if line.count("|") < 2 else str(err)
            raise ValueError(f"{source}:{number}: {reason}: {line[:80]!r}") from err
        # A repeated OID keeps its last value: real recordings repeat lines (canonprinter_lbp).
        entries[oid] = typed
    return sorted(entries.items(), key=_by_oid)


def load_snmprec(path: Path) -> list[Entry]:
    """One .snmprec file, parsed."""
    return parse_snmprec(path.read_text(encoding="utf-8"), str(path))


def _is_plain_text(value: bytes) -> bool:
    # Anything a stripped text line would not give back byte for byte goes as hex.
    return all(0x20 <= b < 0x7F for b in value) and value == value.strip()


def format_entry(oid: Oid, value: Typed) -> str:
    """One snmprec line (without the newline)."""
    tag, v = value.tag, value.value
    if tag in _TAG_NAMES and isinstance(v, int):
        body = f"{_TAG_NAMES[tag]}|{v}"
    elif tag == ber.OCTET_STRING and isinstance(v, bytes):
        body = f"4|{v.decode('ascii')}" if _is_plain_text(v) else f"4x|{v.hex()}"
    elif tag == ber.NULL:
        body = "5|"
    elif tag == ber.OBJECT_IDENTIFIER and isinstance(v, tuple):
        body = f"6|{format_oid(v)}"
    elif tag == ber.IP_ADDRESS and isinstance(v, bytes) and len(v) == 4:
        body = f"64|{ipaddress.IPv4Address(v)}"
    else:
        raise ValueError(f"{format_oid(oid)}: cannot write {v!r} with tag 0x{tag:02x}")
    return f"{format_oid(oid)}|{body}"


def format_snmprec(entries: Iterable[Entry]) -> str:
    """An snmprec text holding these entries, sorted by OID as snmpsim requires."""
    return "".join(format_entry(oid, value) + "\n" for oid, value in sorted(entries, key=_by_oid))
