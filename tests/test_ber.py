"""The hand-written BER codec against pysnmp/pyasn1's, and against malformed bytes."""

from __future__ import annotations

import contextlib
import random

import pytest
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
    (2, 999, 3, 2**32 + 5),
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
