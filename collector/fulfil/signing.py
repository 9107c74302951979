"""HMAC-SHA256 signatures of the warehouse interface's bodies, used both ways.

Is: how a body is signed and checked (docs/fulfilment.md, "Signatures"). The signer sends
three headers: `X-ASR-Timestamp` (unix seconds), `X-ASR-Nonce` (128 random bits, 32 hex
digits) and `X-ASR-Signature: v1=<64 hex digits>`, the HMAC-SHA256 under the shared key of
`v1\\n{timestamp}\\n{nonce}\\n` followed by the exact body bytes. The collector signs the
requests it sends with `warehouse.secret_file`; the warehouse signs its updates with the key
in `warehouse.inbound_secret_file`. Pure: the clock is a parameter, nothing is stored.
The header names, the formats of timestamp and nonce and the refusals are the agents'
(wire.signing); the MAC differs (HMAC-SHA256 under a shared key, not Ed25519), and a stale
timestamp answers `stale` here (docs/fulfilment.md), `stale-timestamp` to agents.
Is not: the replay check (whether a nonce was seen before); the receiver keeps that state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common.strictconfig import ConfigError
from wire.signing import (  # the agents' headers, formats and refusals; the MAC is HMAC
    NONCE_FORMAT,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_FORMAT,
    TIMESTAMP_HEADER,
    BadSignature,
    MalformedSignature,
    MissingSignature,
    StaleSignature,
    StaleWarehouseSignature,
)
from wire.signing import SignatureError as SignatureRefused

VERSION = "v1"
MIN_KEY_BYTES = 32

_SIGNATURE = re.compile(r"v1=([0-9a-f]{64})")


# One error tree for both interfaces: these names are wire.signing's classes (SignatureRefused
# is its SignatureError under the name the warehouse code has used).
__all__ = [
    "BadSignature",
    "MalformedSignature",
    "MissingSignature",
    "SignatureRefused",
    "Signed",
    "StaleSignature",
    "StaleWarehouseSignature",
    "load_key",
    "sign",
    "signature",
    "signed_message",
    "verify",
]


@dataclass(frozen=True)
class Signed:
    """What a verified signature vouches for: when it was made, and its nonce."""

    timestamp: int
    nonce: str


def load_key(path: Path) -> bytes:
    """The shared key in `path`: base64 of 32+ bytes, or 32+ bytes of text; ConfigError if not.

    Surrounding whitespace is ignored. A text that is valid base64 of at least 32 bytes is
    used decoded (`openssl rand -base64 32` makes one); any other text is used as it is.
    """
    try:
        raw = path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the HMAC key: {err.strerror}") from err
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) >= MIN_KEY_BYTES:
        return decoded
    if len(raw) >= MIN_KEY_BYTES:
        return raw
    raise ConfigError(
        f"{path}: the HMAC key is too short ({len(raw)} bytes): it must be at least"
        f" {MIN_KEY_BYTES} bytes, raw or base64 (openssl rand -base64 32)"
    )


def signed_message(timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes the HMAC covers: version, timestamp and nonce, one per line, then the body."""
    return f"{VERSION}\n{timestamp}\n{nonce}\n".encode("ascii") + body


def signature(key: bytes, timestamp: int, nonce: str, body: bytes) -> str:
    """The `X-ASR-Signature` value: `v1=` and the hex HMAC-SHA256."""
    digest = hmac.new(key, signed_message(timestamp, nonce, body), hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def sign(key: bytes, body: bytes, now: datetime, nonce: str | None = None) -> dict[str, str]:
    """The three signature headers of `body`, signed at `now` (a fresh nonce unless given)."""
    timestamp = int(now.timestamp())
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(key, timestamp, nonce, body),
    }


def verify(
    key: bytes, headers: Mapping[str, str], body: bytes, now: datetime, skew_seconds: float
) -> Signed:
    """Check the signature headers of `body` at `now`; SignatureRefused says why not.

    The HMAC is checked before the time, so a stale answer is given only to the key's holder.
    """
    values = {}
    for name in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER):
        value = headers.get(name)
        if value is None:
            raise MissingSignature(f"{name} header missing")
        values[name] = value.strip()
    if not TIMESTAMP_FORMAT.fullmatch(values[TIMESTAMP_HEADER]):
        raise MalformedSignature(f"{TIMESTAMP_HEADER} must be unix seconds")
    if not NONCE_FORMAT.fullmatch(values[NONCE_HEADER]):
        raise MalformedSignature(f"{NONCE_HEADER} must be 32 lowercase hex digits")
    if not _SIGNATURE.fullmatch(values[SIGNATURE_HEADER]):
        raise MalformedSignature(f"{SIGNATURE_HEADER} must be v1= and 64 lowercase hex digits")
    timestamp, nonce = int(values[TIMESTAMP_HEADER]), values[NONCE_HEADER]
    expected = signature(key, timestamp, nonce, body)
    if not hmac.compare_digest(expected.encode("ascii"), values[SIGNATURE_HEADER].encode()):
        raise BadSignature("the signature does not match the body with the shared key")
    offset = timestamp - now.timestamp()
    if abs(offset) > skew_seconds:
        raise StaleWarehouseSignature(
            f"signed {offset:+.0f} s from now, outside the accepted ±{skew_seconds:.0f} s"
        )
    return Signed(timestamp, nonce)
