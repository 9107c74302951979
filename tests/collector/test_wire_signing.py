"""Request signatures: the signed bytes, the headers, what fails and how (R2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire.signing import (
    BadSignature,
    MalformedSignature,
    SignatureHeaders,
    StaleSignature,
    check_fresh,
    decode_public_key,
    encode_public_key,
    endorse,
    key_id,
    sign,
    signed_message,
    verify,
    verify_endorsement,
)

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
# The test vector of docs/protocol.md: seed 00..1f, body {"schema":1}, at NOW.
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
NONCE = "00112233445566778899aabbccddeeff"
BODY = b'{"schema":1}'
VECTOR = {
    "X-ASR-Key-Id": "56475aa75463474c",
    "X-ASR-Timestamp": "1767607200",
    "X-ASR-Nonce": NONCE,
    "X-ASR-Signature": (
        "QwDF/S31f7WWtcCVH40UC+yOUXicDIalyYFf1obHoA5pF3L7VFsBFjX+uHL99iReDJpIZJadwouLN1j2ivu2Ag=="
    ),
}


def test_signature_matches_the_documented_vector() -> None:
    assert encode_public_key(KEY.public_key()) == "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    assert sign(KEY, BODY, NOW, nonce=NONCE) == VECTOR
    assert verify(KEY.public_key(), VECTOR, BODY).timestamp == 1767607200


def test_signed_message_layout() -> None:
    assert signed_message("56475aa75463474c", 1767607200, NONCE, BODY) == (
        b"ASR-SIG-1\n56475aa75463474c\n1767607200\n" + NONCE.encode() + b"\n" + BODY
    )


def test_key_id_is_sha256_prefix_of_raw_key() -> None:
    import hashlib

    raw = decode_public_key(encode_public_key(KEY.public_key()))
    assert key_id(raw.public_bytes_raw()) == hashlib.sha256(raw.public_bytes_raw()).hexdigest()[:16]


def test_fresh_nonce_each_time() -> None:
    first, second = sign(KEY, BODY, NOW), sign(KEY, BODY, NOW)
    assert first["X-ASR-Nonce"] != second["X-ASR-Nonce"]
    assert len(first["X-ASR-Nonce"]) == 32


def test_tampered_body_fails() -> None:
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), VECTOR, BODY + b" ")


def test_other_key_fails() -> None:
    with pytest.raises(BadSignature):
        verify(NEW_KEY.public_key(), VECTOR, BODY)


@pytest.mark.parametrize("header", ["X-ASR-Timestamp", "X-ASR-Nonce"])
def test_changed_header_fails(header: str) -> None:
    changed = dict(VECTOR)
    changed[header] = "1767607201" if header == "X-ASR-Timestamp" else "f" * 32
    with pytest.raises(BadSignature):
        verify(KEY.public_key(), changed, BODY)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-ASR-Key-Id", None),
        ("X-ASR-Key-Id", "56475AA75463474C"),
        ("X-ASR-Timestamp", "-1"),
        ("X-ASR-Timestamp", "1e9"),
        ("X-ASR-Nonce", "short"),
        ("X-ASR-Signature", "!!!"),
        ("X-ASR-Signature", "AAAA"),
        ("X-ASR-Signature", None),
    ],
)
def test_malformed_headers(header: str, value: str | None) -> None:
    changed = dict(VECTOR)
    if value is None:
        del changed[header]
    else:
        changed[header] = value
    with pytest.raises(MalformedSignature, match=header):
        SignatureHeaders.from_headers(changed)


def test_freshness_window_is_inclusive_and_both_ways() -> None:
    signed = SignatureHeaders.from_headers(VECTOR)
    check_fresh(signed, NOW + timedelta(seconds=300), 300)
    check_fresh(signed, NOW - timedelta(seconds=300), 300)
    with pytest.raises(StaleSignature, match="301 s behind"):
        check_fresh(signed, NOW + timedelta(seconds=301), 300)
    with pytest.raises(StaleSignature, match="ahead of"):
        check_fresh(signed, NOW - timedelta(seconds=301), 300)


def test_endorsement_vouches_for_the_new_key_only() -> None:
    endorsement = endorse(KEY, NEW_KEY.public_key())
    verify_endorsement(KEY.public_key(), NEW_KEY.public_key(), endorsement)
    with pytest.raises(BadSignature):
        verify_endorsement(KEY.public_key(), KEY.public_key(), endorsement)
    with pytest.raises(BadSignature):
        verify_endorsement(
            NEW_KEY.public_key(), NEW_KEY.public_key(), endorse(KEY, NEW_KEY.public_key())
        )
    with pytest.raises(BadSignature):
        verify_endorsement(KEY.public_key(), NEW_KEY.public_key(), "not base64!")


def test_public_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32"):
        decode_public_key("AAAA")


def test_one_error_tree_for_both_signed_interfaces_each_keeping_its_documented_codes() -> None:
    """The warehouse's HMAC refusals are wire.signing's classes; the codes each API documents
    (docs/protocol.md, docs/fulfilment.md) stay, `stale` on the warehouse's API alone."""
    from collector.fulfil import signing as warehouse
    from wire import signing as agents

    assert warehouse.SignatureRefused is agents.SignatureError
    for name in ("BadSignature", "MalformedSignature", "MissingSignature", "StaleSignature"):
        assert getattr(warehouse, name) is getattr(agents, name)
    assert issubclass(agents.StaleWarehouseSignature, agents.StaleSignature)
    codes = {
        cls.__name__: (cls.reason, cls.permanent)
        for cls in (
            agents.MalformedSignature,
            agents.MissingSignature,
            agents.BadSignature,
            agents.StaleSignature,
            agents.StaleWarehouseSignature,
        )
    }
    assert codes == {
        "MalformedSignature": ("malformed-signature", True),
        "MissingSignature": ("missing-signature", True),
        "BadSignature": ("bad-signature", True),
        "StaleSignature": ("stale-timestamp", False),
        "StaleWarehouseSignature": ("stale", False),
    }
    key, body, at = b"k" * 32, b"{}", datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    with pytest.raises(agents.StaleSignature) as late:
        warehouse.verify(key, warehouse.sign(key, body, at), body, at + timedelta(hours=1), 300)
    assert late.value.reason == "stale"
