"""Request signatures between agent and collector: Ed25519 over the exact body bytes (R2).

Is: how a request is signed and checked (docs/protocol.md, "Signature"): the signed message,
the four X-ASR-* headers, key ids, the endorsement of a new key by the old one for key
rotation, and which public keys are taken at all (canonical, on the curve, not of small
order). Pure: the clock is a parameter, nothing is stored.
Is not: which keys are valid, retired or revoked, nor whether a nonce was seen before; the
collector keeps that state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_DOMAIN = b"ASR-SIG-1"
ROTATION_DOMAIN = b"ASR-ROTATE-1"
DEFAULT_CLOCK_SKEW_SECONDS = 300

KEY_ID_HEADER = "X-ASR-Key-Id"
TIMESTAMP_HEADER = "X-ASR-Timestamp"
NONCE_HEADER = "X-ASR-Nonce"
SIGNATURE_HEADER = "X-ASR-Signature"

_KEY_ID = re.compile(r"[0-9a-f]{16}")
NONCE_FORMAT = re.compile(r"[0-9a-f]{32}")  # 128 random bits
TIMESTAMP_FORMAT = re.compile(r"[0-9]{1,12}")  # unix seconds

_P = 2**255 - 19  # the field of edwards25519
_D = -121665 * pow(121666, _P - 2, _P) % _P
# The y of the eight points of order 1, 2, 4 and 8 (libsodium's blocklist):
# 0, 1, p - 1 and the two y of order 8. A key among them verifies signatures made with no
# private key: with the identity as the key, R = identity and S = 0 sign every message.
_SMALL_ORDER_Y = frozenset(
    {
        0,
        1,
        _P - 1,
        2707385501144840649318225287225658788936804267575313519463743609750303402022,
        55188659117513257062467267217118295137698188065244968500265048394206261417927,
    }
)


# The refusals of a signature, for both signed interfaces: the agents' requests (Ed25519,
# docs/protocol.md) and the warehouse's bodies (HMAC, collector.fulfil.signing,
# docs/fulfilment.md). `reason` is the code each API answers with.


class SignatureError(Exception):
    """A request whose signature does not hold; `reason` is a short machine-readable code."""

    reason = "bad-signature"
    permanent = True  # sending the same bytes again fails the same way


class MalformedSignature(SignatureError):
    """A signature header is missing or not in its format (the agents' API says both so)."""

    reason = "malformed-signature"


class MissingSignature(MalformedSignature):
    """A signature header is absent (the warehouse's API tells this from a malformed one)."""

    reason = "missing-signature"


class BadSignature(SignatureError):
    """The signature does not verify with the key named by the key id, or the shared key."""

    reason = "bad-signature"


class StaleSignature(SignatureError):
    """The signed timestamp is outside the accepted clock skew; fix the clock, sign again."""

    reason = "stale-timestamp"
    permanent = False


class StaleWarehouseSignature(StaleSignature):
    """StaleSignature on the warehouse's API, which documents the shorter code `stale`."""

    reason = "stale"


@dataclass(frozen=True)
class SignatureHeaders:
    """The four signature headers, parsed."""

    key_id: str
    timestamp: int
    nonce: str
    signature: bytes

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SignatureHeaders:
        """Parse the headers of a request; MalformedSignature names the wrong one."""
        values = {}
        for name, pattern in (
            (KEY_ID_HEADER, _KEY_ID),
            (TIMESTAMP_HEADER, TIMESTAMP_FORMAT),
            (NONCE_HEADER, NONCE_FORMAT),
        ):
            value = headers.get(name)
            if value is None:
                raise MalformedSignature(f"{name} header missing")
            if not pattern.fullmatch(value):
                raise MalformedSignature(f"{name} header is not {pattern.pattern}")
            values[name] = value
        encoded = headers.get(SIGNATURE_HEADER)
        if encoded is None:
            raise MalformedSignature(f"{SIGNATURE_HEADER} header missing")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedSignature(f"{SIGNATURE_HEADER} header is not base64") from None
        if len(signature) != 64:
            raise MalformedSignature(f"{SIGNATURE_HEADER} is not an Ed25519 signature")
        return cls(
            key_id=values[KEY_ID_HEADER],
            timestamp=int(values[TIMESTAMP_HEADER]),
            nonce=values[NONCE_HEADER],
            signature=signature,
        )

    def to_headers(self) -> dict[str, str]:
        """The HTTP headers that carry this signature."""
        return {
            KEY_ID_HEADER: self.key_id,
            TIMESTAMP_HEADER: str(self.timestamp),
            NONCE_HEADER: self.nonce,
            SIGNATURE_HEADER: base64.b64encode(self.signature).decode("ascii"),
        }


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    """The key's id: the first 16 hex digits of SHA-256 over its raw bytes."""
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_public_key(key: Ed25519PublicKey) -> str:
    """A public key as base64 of its raw bytes, as enrollment and rotation send it."""
    return base64.b64encode(raw_public_key(key)).decode("ascii")


def decode_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes; ValueError if it is not a safe one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    return load_public_key(raw)


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """A public key from its 32 raw bytes; ValueError unless it is a canonical encoding of a
    point on the curve that is not of small order."""
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes, an Ed25519 public key has 32")
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise ValueError("non-canonical encoding (y >= 2^255-19)")
    # Either sign of x: y alone names the point up to its sign, and both are of small order.
    if y in _SMALL_ORDER_Y:
        raise ValueError("a point of small order, with which forged signatures verify")
    if not _on_curve(y):
        raise ValueError("not a point on the curve")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as err:
        raise ValueError(f"refused by cryptography: {err}") from None


def _on_curve(y: int) -> bool:
    # x² = (y² - 1) / (d·y² + 1) must have a root: Euler's criterion (0 or 1), mod p.
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    return pow(u * pow(v, _P - 2, _P), (_P - 1) // 2, _P) in (0, 1)


def signed_message(key_id: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes a signature covers: domain, key id, timestamp, nonce, then the body."""
    head = b"\n".join(
        (SIGNATURE_DOMAIN, key_id.encode("ascii"), str(timestamp).encode(), nonce.encode())
    )
    return head + b"\n" + body


def sign(
    private_key: Ed25519PrivateKey, body: bytes, now: datetime, nonce: str | None = None
) -> dict[str, str]:
    """The signature headers for sending `body` at `now` (a fresh random nonce by default)."""
    kid = key_id(private_key.public_key())
    timestamp = int(now.timestamp())
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    signature = private_key.sign(signed_message(kid, timestamp, nonce, body))
    return SignatureHeaders(kid, timestamp, nonce, signature).to_headers()


def verify(
    public_key: Ed25519PublicKey, headers: Mapping[str, str] | SignatureHeaders, body: bytes
) -> SignatureHeaders:
    """Check that `body` was signed by `public_key`; the parsed headers, or SignatureError."""
    parsed = (
        headers if isinstance(headers, SignatureHeaders) else SignatureHeaders.from_headers(headers)
    )
    if parsed.key_id != key_id(public_key):
        raise BadSignature(f"key id {parsed.key_id} is not the id of the key given")
    message = signed_message(parsed.key_id, parsed.timestamp, parsed.nonce, body)
    try:
        public_key.verify(parsed.signature, message)
    except InvalidSignature:
        raise BadSignature("signature does not verify: body, headers or key differ") from None
    return parsed


def check_fresh(
    signed: SignatureHeaders, now: datetime, skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS
) -> None:
    """StaleSignature unless the signed timestamp is within ±skew of `now`."""
    offset = signed.timestamp - now.timestamp()
    if abs(offset) > skew_seconds:
        side = "ahead of" if offset > 0 else "behind"
        raise StaleSignature(
            f"timestamp is {abs(offset):.0f} s {side} the collector's clock"
            f" (allowed: ±{skew_seconds:g} s); check the agent's clock"
        )


def endorsement_message(new_public_key: Ed25519PublicKey) -> bytes:
    """What the old key signs to vouch for its successor."""
    return ROTATION_DOMAIN + b"\n" + raw_public_key(new_public_key)


def endorse(old_key: Ed25519PrivateKey, new_public_key: Ed25519PublicKey) -> str:
    """The base64 endorsement of `new_public_key` by the old key, for key rotation."""
    signature = old_key.sign(endorsement_message(new_public_key))
    return base64.b64encode(signature).decode("ascii")


def verify_endorsement(
    old_public_key: Ed25519PublicKey, new_public_key: Ed25519PublicKey, endorsement: str
) -> None:
    """BadSignature unless `endorsement` is the old key's signature over the new key."""
    try:
        signature = base64.b64decode(endorsement, validate=True)
        old_public_key.verify(signature, endorsement_message(new_public_key))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BadSignature("endorsement is not the old key's signature of the new key") from None
