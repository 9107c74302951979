"""The hand-written BER codec against pysnmp/pyasn1's, and against malformed bytes."""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902

from agent.snmp import ber
from agent.snmp.ber import Typed, parse_oid

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
V1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
OIDS = [
    parse_oid("1.3.6.1.2.1.1.1.0"),
    parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1"),
    parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.1.0"),
    (2, 999, 3, 2**32 - 1),
]


def _pysnmp_response(varbinds: list[tuple[tuple[int, ...], object]], request_id: int) -> bytes:
    pdu = V2C.GetResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "sec ret")
    V2C.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


@pytest.mark.parametrize("pdu_type", [ber.GET, ber.GET_NEXT, ber.GET_BULK])
def test_requests_decode_with_pyasn1(pdu_type: int) -> None:
    data = ber.encode_request(ber.V2C, b"public", pdu_type, 123456789, OIDS, 2, 25)
    msg, rest = decoder.decode(data, asn1Spec=V2C.Message())
    assert rest == b""
    assert str(V2C.apiMessage.get_community(msg)) == "public"
    pdu = V2C.apiMessage.get_pdu(msg)
    assert int(V2C.apiPDU.get_request_id(pdu)) == 123456789
    assert [tuple(o) for o, _ in V2C.apiPDU.get_varbinds(pdu)] == OIDS
    if pdu_type == ber.GET_BULK:
        assert int(V2C.apiBulkPDU.get_non_repeaters(pdu)) == 2
        assert int(V2C.apiBulkPDU.get_max_repetitions(pdu)) == 25


def test_responses_from_pysnmp_decode_to_plain_values() -> None:
    values = [
        rfc1902.Integer32(-3),
        rfc1902.OctetString(b"\x00\xffBlack"),
        rfc1902.ObjectIdentifier("1.3.6.1.4.1.11.2.3.9.1"),
        rfc1902.Counter32(2**32 - 1),
        rfc1902.Gauge32(7),
        rfc1902.TimeTicks(123456),
        rfc1902.Counter64(2**64 - 1),
        rfc1902.IpAddress("127.0.0.1"),
        rfc1902.Integer32(-(2**31)),
    ]
    oids = [(1, 3, 6, 1, 2, 1, 43, i) for i in range(len(values))]
    msg = ber.decode_message(_pysnmp_response(list(zip(oids, values)), 42))
    assert (msg.version, msg.community, msg.pdu_type, msg.request_id) == (
        ber.V2C,
        b"sec ret",
        ber.RESPONSE,
        42,
    )
    assert [v for _, v in msg.varbinds] == [
        -3,
        b"\x00\xffBlack",
        (1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 1),
        2**32 - 1,
        7,
        123456,
        2**64 - 1,
        b"\x7f\x00\x00\x01",
        -(2**31),
    ]


def test_no_value_exceptions_decode() -> None:
    pdu = V2C.GetResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_varbinds(pdu, [((1, 3, 6), V2C.Null(""))])
    V2C.apiPDU.set_end_of_mib_error(pdu, 0)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_pdu(msg, pdu)
    decoded = ber.decode_message(bytes(encoder.encode(msg)))
    assert decoded.varbinds[0][1] is ber.END_OF_MIB_VIEW_VALUE


def test_our_responses_decode_with_pyasn1() -> None:
    typed = (
        (OIDS[0], Typed(ber.OCTET_STRING, "Tóner".encode())),
        (OIDS[1], Typed(ber.INTEGER, -2)),
        (OIDS[2], Typed(ber.COUNTER32, 2**32 - 1)),
        (OIDS[3], Typed(ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 99999))),
    )
    data = ber.encode_message(ber.Message(ber.V2C, b"c", ber.RESPONSE, 7, 0, 0, ()), typed)
    msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
    got = V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(msg))
    assert bytes(got[0][1].asOctets()) == "Tóner".encode()
    assert int(got[1][1]) == -2
    assert int(got[2][1]) == 2**32 - 1
    assert tuple(got[3][1]) == (1, 3, 6, 1, 4, 1, 99999)
    assert ber.decode_message(data).varbinds[3][1] == (1, 3, 6, 1, 4, 1, 99999)


def test_v1_error_response_round_trips() -> None:
    data = ber.encode_message(
        ber.Message(ber.V1, b"public", ber.RESPONSE, 9, 2, 1, ((OIDS[0], None),))
    )
    msg = ber.decode_message(data)
    assert (msg.version, msg.error_status, msg.error_index) == (ber.V1, 2, 1)


def test_every_truncation_is_a_ber_error() -> None:
    data = _pysnmp_response(
        [(OIDS[1], rfc1902.Integer32(1570)), (OIDS[0], rfc1902.OctetString(b"Black Toner"))], 1
    )
    for cut in range(len(data)):
        with pytest.raises(ber.BerError):
            ber.decode_message(data[:cut])
    with pytest.raises(ber.BerError, match="trailing"):
        ber.decode_message(data + b"\x00")


def test_random_garbage_only_ever_raises_ber_error() -> None:
    rng = random.Random(3805)
    good = _pysnmp_response([(OIDS[1], rfc1902.Integer32(1570))], 1)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(ber.BerError):
            ber.decode_message(bytes(data))
    for _ in range(1000):
        with contextlib.suppress(ber.BerError):
            ber.decode_message(rng.randbytes(rng.randint(0, 64)))


def test_parse_oid_rejects_junk() -> None:
    assert parse_oid(".1.3.6.1") == (1, 3, 6, 1)
    for bad in ("", "1", "1.3.x", "1.-3"):
        with pytest.raises(ValueError, match="not a numeric OID"):
            parse_oid(bad)


# ---------------------------------------------------------------------------- bounds


def _response(oid: ber.Oid) -> bytes:
    """A response naming `oid`; the encoder writes any arcs, bounds or not."""
    head = ber.Message(ber.V2C, b"public", ber.RESPONSE, 1, 0, 0, ())
    return ber.encode_message(head, ((oid, Typed(ber.INTEGER, 1)),))


@pytest.mark.parametrize(
    ("oid", "named"),
    [
        ((1, 3, 6, 2**32), "arc 4294967296 above 4294967295"),
        ((2, 2**32), "arc 4294967296 above 4294967295"),
        ((1, 3, 6, 2 ** (7 * 6) - 1), "sub-identifier wider than 32 bits"),
        ((1, 3, 6, 2 ** (7 * 2048) - 1), "of 2050 bytes, more than SNMP's 635"),
        ((1, 3, *[1] * 127), "more than 128 arcs"),
    ],
    ids=["2^32", "2.2^32", "6 bytes", "2 KB", "129 arcs"],
)
def test_oids_past_snmps_bounds_are_ber_errors(oid: ber.Oid, named: str) -> None:
    with pytest.raises(ber.BerError, match=named):
        ber.decode_message(_response(oid))


def test_oids_at_snmps_bounds_decode() -> None:
    for oid in [(1, 3, 6, 2**32 - 1), (2, 2**32 - 1), (1, 3, *[1] * 126)]:
        assert ber.decode_message(_response(oid)).varbinds[0][0] == oid


def test_integers_past_64_bits_are_ber_errors() -> None:
    typed = ((OIDS[0], Typed(ber.INTEGER, 2**63 - 1)), (OIDS[1], Typed(ber.COUNTER64, 2**64 - 1)))
    head = ber.Message(ber.V2C, b"public", ber.RESPONSE, 1, 0, 0, ())
    assert [v for _, v in ber.decode_message(ber.encode_message(head, typed)).varbinds] == [
        2**63 - 1,
        2**64 - 1,
    ]
    for tag, value in [(ber.INTEGER, 2**71), (ber.COUNTER64, 2**72), (ber.INTEGER, 2**20000)]:
        data = ber.encode_message(head, ((OIDS[0], Typed(tag, value)),))
        with pytest.raises(ber.BerError, match="more than 64 bits"):
            ber.decode_message(data)


def _with_oid_body(body: bytes) -> bytes:
    """A response whose name's BER body is `body`, byte for byte (encoding a huge arc is
    slow: the encoder is built for real OIDs)."""
    placeholder = b"\x2b" + b"\x05" * (len(body) - 1)  # 1.3.5.5...: one byte per arc
    data = _response((1, 3, *[5] * (len(body) - 1)))
    assert data.count(placeholder) == 1
    return data.replace(placeholder, body)


def test_a_65_kb_arc_is_refused_at_once() -> None:
    data = _with_oid_body(b"\x2b\x06" + b"\xff" * 65_000 + b"\x7f")
    started = time.perf_counter()
    with pytest.raises(ber.BerError, match="more than SNMP's 635"):
        ber.decode_message(data)
    assert time.perf_counter() - started < 0.05  # it cost 0.4 s when the arc was summed up


# ---------------------------------------------------------------------------- fuzzing

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_arcs = st.integers(0, ber.MAX_ARC)
oids = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), _arcs),
).flatmap(
    lambda head: st.lists(_arcs, max_size=ber.MAX_OID_ARCS - 2).map(lambda rest: (*head, *rest))
)
_INT_TAGS = {
    ber.INTEGER: st.integers(-(2**63), 2**63 - 1),
    ber.COUNTER32: st.integers(0, 2**32 - 1),
    ber.GAUGE32: st.integers(0, 2**32 - 1),
    ber.TIMETICKS: st.integers(0, 2**32 - 1),
    ber.COUNTER64: st.integers(0, 2**64 - 1),
}
typed_values = st.one_of(
    *(values.map(lambda v, tag=tag: Typed(tag, v)) for tag, values in _INT_TAGS.items()),
    st.binary(max_size=64).map(lambda v: Typed(ber.OCTET_STRING, v)),
    st.binary(max_size=16).map(lambda v: Typed(ber.OPAQUE, v)),
    st.binary(min_size=4, max_size=4).map(lambda v: Typed(ber.IP_ADDRESS, v)),
    oids.map(lambda v: Typed(ber.OBJECT_IDENTIFIER, v)),
    st.sampled_from([ber.NULL, ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, ber.END_OF_MIB_VIEW]).map(
        lambda tag: Typed(tag, None)
    ),
)
_DECODED_NONE = {
    ber.NULL: None,
    ber.NO_SUCH_OBJECT: ber.NO_SUCH_OBJECT_VALUE,
    ber.NO_SUCH_INSTANCE: ber.NO_SUCH_INSTANCE_VALUE,
    ber.END_OF_MIB_VIEW: ber.END_OF_MIB_VIEW_VALUE,
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, ber.Message]:
    """A valid message's bytes, and what decoding them must give."""
    varbinds = draw(st.lists(st.tuples(oids, typed_values), max_size=6))
    head = ber.Message(
        draw(st.sampled_from([ber.V1, ber.V2C])),
        draw(st.binary(max_size=32)),
        draw(st.sampled_from([ber.GET, ber.GET_NEXT, ber.RESPONSE, ber.GET_BULK, ber.REPORT])),
        draw(st.integers(-(2**31), 2**31 - 1)),
        draw(st.integers(0, 18)),
        draw(st.integers(0, 255)),
        (),
    )
    if draw(st.booleans()):  # a request: NULL values
        data = ber.encode_request(
            head.version,
            head.community,
            head.pdu_type,
            head.request_id,
            [oid for oid, _ in varbinds],
            head.error_status,
            head.error_index,
        )
        return data, replace(head, varbinds=tuple((oid, None) for oid, _ in varbinds))
    expected = tuple((oid, _DECODED_NONE.get(t.tag, t.value)) for oid, t in varbinds)
    return ber.encode_message(head, tuple(varbinds)), replace(head, varbinds=expected)


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """`data` flipped, cut, grown or shrunk at random places, or a length made huge."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kinds = ["flip", "insert", "delete", "truncate", "length", "run", "widen"]
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, len(out)))
        if kind == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[at:]
        elif kind == "length":  # a long-form length, up to 4 GB, where a length may be
            width = draw(st.integers(1, 5))
            out[at : at + 1] = bytes((0x80 | width,)) + draw(
                st.binary(min_size=width, max_size=width)
            )
        elif kind == "run":  # continuation bytes: a huge OID arc, or nonsense elsewhere
            out[at:at] = b"\xff" * draw(st.integers(1, 3000))
        else:  # lengths kept: an OID's arcs after the first run into one wide arc
            tags = [i for i, b in enumerate(out[:-2]) if b == ber.OBJECT_IDENTIFIER]
            if tags:
                i = draw(st.sampled_from(tags))
                body = slice(i + 3, min(i + 1 + out[i + 1], len(out) - 1))
                out[body] = b"\xff" * len(out[body])
    return bytes(out)


def _decodes_or_ber_error(data: bytes) -> None:
    try:
        msg = ber.decode_message(data)
    except ber.BerError:
        return
    # What decodes keeps to SNMP's bounds, and prints (int to str stops at 4300 digits).
    for oid, value in msg.varbinds:
        for arcs in (oid, value) if isinstance(value, tuple) else (oid,):
            assert len(arcs) <= ber.MAX_OID_ARCS and max(arcs) <= ber.MAX_ARC
        if isinstance(value, int):
            assert -(2**71) <= value < 2**72
        ber.format_oid(oid)
        str(value)


@FUZZ
@given(messages())
def test_valid_messages_round_trip(case: tuple[bytes, ber.Message]) -> None:
    data, expected = case
    assert ber.decode_message(data) == expected


@FUZZ
@given(messages(), st.data())
def test_mutated_messages_decode_or_raise_ber_error(
    case: tuple[bytes, ber.Message], data: st.DataObject
) -> None:
    _decodes_or_ber_error(_mutate(case[0], data.draw))


@FUZZ
@given(oids, st.integers(ber.MAX_ARC + 1, 2**1000), st.integers(2, 130), st.data())
def test_oids_past_the_bounds_anywhere_are_ber_errors(
    oid: ber.Oid, arc: int, at: int, data: st.DataObject
) -> None:
    bad = (*oid[:at], arc, *oid[at:])  # past the first two: the encoder refuses those
    if data.draw(st.booleans()):
        bad = (*bad, *[1] * (ber.MAX_OID_ARCS - len(bad) + 1))  # too long as well
    with pytest.raises(ber.BerError):
        ber.decode_message(_response(bad))
    with pytest.raises(ber.BerError):  # as a value, too
        head = ber.Message(ber.V2C, b"c", ber.RESPONSE, 1, 0, 0, ())
        ber.decode_message(
            ber.encode_message(head, ((OIDS[0], Typed(ber.OBJECT_IDENTIFIER, bad)),))
        )
