"""SNMP v1/v2c messages in BER: encode requests and responses, decode them strictly.

Written by hand because pysnmp decodes through pyasn1: pysnmp's hlapi costs 9.6 to 14 ms of
CPU per printer read here, mostly pyasn1 decoding, against a budget of 3 ms for the whole read;
this codec brings a read to about 0.65 ms (docs/benchmarks.md). It covers only the
community-based message (RFC 1157, RFC 3416); SNMPv3 goes through pysnmp.

Pure functions, no I/O. Any malformed input raises `BerError` naming what is wrong, in time
linear in its size: OIDs past SNMP's bounds (128 arcs, each below 2^32) and integers wider
than 64 bits are malformed. The encoder writes whatever it is given (tests craft bad
answers with it); only the decoder holds to the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

Oid = tuple[int, ...]

# Universal and SNMP application tags.
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
# Exceptions in a v2c response varbind (RFC 3416).
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

# PDU tags.
GET = 0xA0
GET_NEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
GET_BULK = 0xA5
REPORT = 0xA8
REQUEST_PDUS = (GET, GET_NEXT, GET_BULK)

V1 = 0
V2C = 1

# SNMP's bounds (RFC 2578 7.1.3): at most 128 arcs, each 0..2^32-1. Anything past them is a
# BerError, so a datagram costs time linear in its size and yields only small numbers.
MAX_OID_ARCS = 128
MAX_ARC = 2**32 - 1
_MAX_SUBID_BYTES = 5  # 35 bits: 2^32-1, and 2.(2^32-1) as the first sub-identifier
_MAX_OID_BYTES = (MAX_OID_ARCS - 1) * _MAX_SUBID_BYTES
# Counter64 needs 9 bytes (a leading zero before 2^63 and up); nothing in SNMP needs more.
MAX_INTEGER_BYTES = 9

ERROR_STATUS = {
    0: "noError",
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    7: "wrongType",
    8: "wrongLength",
    9: "wrongEncoding",
    10: "wrongValue",
    11: "noCreation",
    12: "inconsistentValue",
    13: "resourceUnavailable",
    14: "commitFailed",
    15: "undoFailed",
    16: "authorizationError",
    17: "notWritable",
    18: "inconsistentName",
}


class BerError(ValueError):
    """The bytes are not a well-formed SNMP message."""


class NoValue:
    """A varbind that carries no value: noSuchObject, noSuchInstance or endOfMibView."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_SUCH_OBJECT_VALUE = NoValue("noSuchObject")
NO_SUCH_INSTANCE_VALUE = NoValue("noSuchInstance")
END_OF_MIB_VIEW_VALUE = NoValue("endOfMibView")
_NO_VALUES = {
    NO_SUCH_OBJECT: NO_SUCH_OBJECT_VALUE,
    NO_SUCH_INSTANCE: NO_SUCH_INSTANCE_VALUE,
    END_OF_MIB_VIEW: END_OF_MIB_VIEW_VALUE,
}

# Decoded values: int (INTEGER, counters, gauges, timeticks), bytes (OCTET STRING, Opaque,
# IpAddress), Oid, None (NULL) or a NoValue.
Value = int | bytes | Oid | None | NoValue


@dataclass(frozen=True)
class Typed:
    """A value with its BER tag, for encoding (responses, and SET which we never send)."""

    tag: int
    value: int | bytes | Oid | None


VarBind = tuple[Oid, Value]


@dataclass(frozen=True)
class Message:
    """A community-based SNMP message."""

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int  # non_repeaters in a GetBulk request
    error_index: int  # max_repetitions in a GetBulk request
    varbinds: tuple[VarBind, ...]


def parse_oid(text: str) -> Oid:
    """'1.3.6.1.2.1.1.1.0' (a leading dot allowed) as a tuple of ints."""
    try:
        oid = tuple(int(part) for part in text.strip().lstrip(".").split("."))
    except ValueError as err:
        raise ValueError(f"not a numeric OID: {text!r}") from err
    if len(oid) < 2 or any(arc < 0 for arc in oid):
        raise ValueError(f"not a numeric OID: {text!r}")
    return oid


def format_oid(oid: Oid) -> str:
    """A tuple OID as dotted text without a leading dot."""
    return ".".join(map(str, oid))


# ---------------------------------------------------------------------------- encoding


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _int_body(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def _uint_body(value: int) -> bytes:
    # Unsigned application types are still two's-complement INTEGER encodings on the wire.
    return value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=False)


def _oid_body(oid: Oid) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"cannot encode OID {format_oid(oid)}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = []
        while arc:
            chunk.append((arc & 0x7F) | 0x80)
            arc >>= 7
        chunk[0] &= 0x7F
        out.extend(reversed(chunk))
    return bytes(out)


def encode_value(value: Typed) -> bytes:
    """One typed value as a TLV."""
    tag, v = value.tag, value.value
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    if tag == INTEGER and isinstance(v, int):
        return _tlv(tag, _int_body(v))
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64) and isinstance(v, int):
        return _tlv(tag, _uint_body(v))
    if tag in (OCTET_STRING, OPAQUE, IP_ADDRESS) and isinstance(v, bytes):
        return _tlv(tag, v)
    if tag == OBJECT_IDENTIFIER and isinstance(v, tuple):
        return _tlv(tag, _oid_body(v))
    raise ValueError(f"cannot encode {v!r} with tag 0x{tag:02x}")


def encode_message(msg: Message, typed: tuple[tuple[Oid, Typed], ...] | None = None) -> bytes:
    """A whole message; requests carry NULL values, responses pass `typed` varbinds."""
    if typed is None:
        vbs = b"".join(
            _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, _oid_body(oid)) + b"\x05\x00")
            for oid, _ in msg.varbinds
        )
    else:
        vbs = b"".join(
            _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, _oid_body(oid)) + encode_value(v))
            for oid, v in typed
        )
    pdu = _tlv(
        msg.pdu_type,
        _tlv(INTEGER, _int_body(msg.request_id))
        + _tlv(INTEGER, _int_body(msg.error_status))
        + _tlv(INTEGER, _int_body(msg.error_index))
        + _tlv(SEQUENCE, vbs),
    )
    return _tlv(
        SEQUENCE, _tlv(INTEGER, _int_body(msg.version)) + _tlv(OCTET_STRING, msg.community) + pdu
    )


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: list[Oid] | tuple[Oid, ...],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A GET / GETNEXT / GETBULK request."""
    return encode_message(
        Message(
            version,
            community,
            pdu_type,
            request_id,
            non_repeaters,
            max_repetitions,
            tuple((oid, None) for oid in oids),
        )
    )


# ---------------------------------------------------------------------------- decoding


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at pos, all within end."""
    if pos + 2 > end:
        raise BerError(f"truncated TLV at offset {pos}")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise BerError(f"unsupported length form at offset {pos - 1}")
        if pos + count > end:
            raise BerError(f"truncated length at offset {pos}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise BerError(f"value at offset {pos} runs {pos + length - end} bytes past its end")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    got, start, stop = _header(data, pos, end)
    if got != tag:
        raise BerError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x} at offset {pos}")
    return start, stop


def _int(data: bytes, start: int, stop: int, what: str) -> int:
    if start == stop:
        raise BerError(f"{what}: empty INTEGER")
    if stop - start > MAX_INTEGER_BYTES:
        raise BerError(f"{what}: INTEGER of {stop - start} bytes, more than 64 bits")
    return int.from_bytes(data[start:stop], "big", signed=True)


def _oid(data: bytes, start: int, stop: int) -> Oid:
    if start == stop:
        raise BerError("empty OBJECT IDENTIFIER")
    if data[stop - 1] & 0x80:
        raise BerError("truncated OBJECT IDENTIFIER")
    if stop - start > _MAX_OID_BYTES:
        raise BerError(
            f"OBJECT IDENTIFIER of {stop - start} bytes, more than SNMP's {_MAX_OID_BYTES}"
        )
    # A sub-identifier is refused at its sixth byte, so no number grows past 35 bits and the
    # work stays linear in the bytes, whatever the datagram holds.
    subids: list[int] = []
    acc = 0
    more = 0  # continuation bytes of the sub-identifier under way
    for b in data[start:stop]:
        if b & 0x80:
            acc = (acc << 7) | (b & 0x7F)
            more += 1
            if more == _MAX_SUBID_BYTES:
                raise BerError("OBJECT IDENTIFIER sub-identifier wider than 32 bits")
        else:
            subids.append((acc << 7) | b)
            acc = more = 0
    if len(subids) >= MAX_OID_ARCS:  # the first sub-identifier carries two arcs
        raise BerError(f"OBJECT IDENTIFIER of more than {MAX_OID_ARCS} arcs")
    first = subids[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    oid = (*head, *subids[1:])
    if max(oid) > MAX_ARC:
        raise BerError(f"OBJECT IDENTIFIER arc {max(oid)} above {MAX_ARC}")
    return oid


def _value(data: bytes, tag: int, start: int, stop: int) -> Value:
    if tag == INTEGER:
        return _int(data, start, stop, "value")
    if tag in (OCTET_STRING, OPAQUE, IP_ADDRESS):
        return data[start:stop]
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        if start == stop:
            raise BerError("empty unsigned value")
        if stop - start > MAX_INTEGER_BYTES:
            raise BerError(f"unsigned value of {stop - start} bytes, more than 64 bits")
        return int.from_bytes(data[start:stop], "big", signed=False)
    if tag == OBJECT_IDENTIFIER:
        return _oid(data, start, stop)
    if tag == NULL:
        return None
    if tag in _NO_VALUES:
        return _NO_VALUES[tag]
    raise BerError(f"unknown value tag 0x{tag:02x}")


def decode_message(data: bytes) -> Message:
    """Decode a community-based message; raise BerError on anything malformed."""
    end = len(data)
    start, stop = _expect(data, 0, end, SEQUENCE, "message")
    if stop != end:
        raise BerError(f"{end - stop} trailing bytes after the message")
    s, e = _expect(data, start, stop, INTEGER, "version")
    version = _int(data, s, e, "version")
    if version not in (V1, V2C):
        raise BerError(f"not a v1/v2c message (version {version})")
    s, e = _expect(data, e, stop, OCTET_STRING, "community")
    community = data[s:e]
    pdu_type, pstart, pstop = _header(data, e, stop)
    if pdu_type not in (GET, GET_NEXT, RESPONSE, SET, GET_BULK, REPORT):
        raise BerError(f"unsupported PDU type 0x{pdu_type:02x}")
    if pstop != stop:
        raise BerError("bytes after the PDU")
    s, e = _expect(data, pstart, pstop, INTEGER, "request-id")
    request_id = _int(data, s, e, "request-id")
    s, e = _expect(data, e, pstop, INTEGER, "error-status")
    error_status = _int(data, s, e, "error-status")
    s, e = _expect(data, e, pstop, INTEGER, "error-index")
    error_index = _int(data, s, e, "error-index")
    lstart, lstop = _expect(data, e, pstop, SEQUENCE, "varbind list")
    if lstop != pstop:
        raise BerError("bytes after the varbind list")
    varbinds: list[VarBind] = []
    pos = lstart
    while pos < lstop:
        vs, ve = _expect(data, pos, lstop, SEQUENCE, "varbind")
        os_, oe = _expect(data, vs, ve, OBJECT_IDENTIFIER, "varbind name")
        oid = _oid(data, os_, oe)
        tag, ts, te = _header(data, oe, ve)
        if te != ve:
            raise BerError(f"bytes after the value of {format_oid(oid)}")
        varbinds.append((oid, _value(data, tag, ts, te)))
        pos = ve
    return Message(
        version, community, pdu_type, request_id, error_status, error_index, tuple(varbinds)
    )
