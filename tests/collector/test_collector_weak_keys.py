"""Weak Ed25519 public keys (small order, non-canonical) are refused at enrollment and rotation.

With such a key, a signature made without any private key verifies: the identity point as
R and 0 as S hold for every message when the key is the identity. The points of small order
are computed here from the curve, not copied from the code under test.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from collector.service import token_hash
from collector.store import registry
from tests.collector.kit import Agent, Served, snapshot
from wire.batch import encode_batch
from wire.enroll import EnrollRequest, KeyRotation, encode_message
from wire.signing import SignatureHeaders, decode_public_key, encode_public_key, endorse, key_id

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
L = 2**252 + 27742317777372353535851937790883648493  # the prime group order
Point = tuple[int, int]


def _add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x, y


def _x_of(y: int, sign: int) -> int | None:
    """The x of the curve point with this y and sign of x (RFC 8032, 5.1.3), None if none."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    return P - x if x & 1 != sign else x


def _encode(x: int, y: int) -> bytes:
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _times(n: int, point: Point) -> Point:
    result: Point = (0, 1)
    for bit in bin(n)[2:]:
        result = _add(result, result)
        if bit == "1":
            result = _add(result, point)
    return result


def _small_order_points() -> list[Point]:
    """The eight points of order 1, 2, 4 or 8: the multiples of one point of order 8."""
    # L times any point is in the torsion subgroup; take the first that has order 8.
    for y in range(2, 200):
        x = _x_of(y, 0)
        if x is not None and _times(4, generator := _times(L, (x, y))) != (0, 1):
            break
    points = [(0, 1)]
    while len(points) < 8:
        points.append(_add(points[-1], generator))
    assert _add(points[-1], generator) == (0, 1)
    return points


SMALL_ORDER = _small_order_points()


def _weak_encodings() -> list[tuple[str, bytes]]:
    """Every small-order point's encodings, canonical or not, and other y >= p; Tn is n
    times the order-8 point (T0 the identity, T4 of order 2, T2 and T6 of order 4)."""
    found = []
    for n, (x, y) in enumerate(SMALL_ORDER):
        found.append((f"T{n}", _encode(x, y)))
        if x == 0:  # "negative zero": the sign bit set on x = 0
            found.append((f"T{n}-negative-zero", (y | 1 << 255).to_bytes(32, "little")))
        if y + P < 2**255:  # y + p: the same point, not reduced
            found.append((f"T{n}-y+p", _encode(x, y + P)))
    found += [("y=p+5", (P + 5).to_bytes(32, "little")), ("all-ones", b"\xff" * 32)]
    return found


WEAK = _weak_encodings()


def test_the_small_order_points_are_eight_distinct_points() -> None:
    assert len(set(SMALL_ORDER)) == 8
    # libsodium's blocklist, by y: 0, 1, p - 1 and the order-8 pair y8, p - y8.
    y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
    assert {y for _, y in SMALL_ORDER} == {0, 1, P - 1, y8, P - y8}
    # 8 canonical, 2 "negative zeros", 3 with y + p (two points have y = 0), 2 other y >= p
    assert len(WEAK) == 8 + 2 + 3 + 2


def test_the_identity_key_verifies_a_signature_made_without_a_private_key() -> None:
    # Why this matters: cryptography itself takes the key, and the forgery holds.
    identity = Ed25519PublicKey.from_public_bytes(_encode(0, 1))
    identity.verify(_encode(0, 1) + bytes(32), b"any batch at all")


@pytest.mark.parametrize(("name", "raw"), WEAK, ids=[name for name, _ in WEAK])
def test_weak_keys_are_refused(name: str, raw: bytes) -> None:
    with pytest.raises(ValueError, match="small order|non-canonical"):
        decode_public_key(base64.b64encode(raw).decode("ascii"))


def test_a_point_off_the_curve_is_refused() -> None:
    y = next(y for y in range(2, 100) if _x_of(y, 0) is None)
    with pytest.raises(ValueError, match="not a point"):
        decode_public_key(base64.b64encode(y.to_bytes(32, "little")).decode("ascii"))


def test_real_keys_are_taken() -> None:
    for seed in range(64):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
        assert decode_public_key(encode_public_key(key)) == key


# Through the real collector, on SQLite and PostgreSQL: refused, named, nothing stored.
THROUGH = [pair for pair in WEAK if pair[0] in ("T0", "T4", "T0-negative-zero", "all-ones")]


def _weak(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(("name", "raw"), THROUGH, ids=[name for name, _ in THROUGH])
async def test_enrollment_refuses_a_weak_key(served: Served, name: str, raw: bytes) -> None:
    token = await served.token()
    agent = served.agent()
    before = await snapshot(served.db)
    body = encode_message(EnrollRequest(token, _weak(raw), "0.1.0", "edge-1"))
    reply = await agent.post("/api/v1/enroll", body, signed=False)
    assert (reply.status, reply.body["reason"], reply.body["field"]) == (
        400,
        "invalid-request",
        "public_key",
    )
    assert "public_key" in reply.body["error"]
    assert await snapshot(served.db) == before
    assert (await agent.enroll(token)).status == 201  # the token was not used up


@pytest.mark.parametrize(("name", "raw"), THROUGH, ids=[name for name, _ in THROUGH])
async def test_rotation_refuses_a_weak_key(
    served: Served, agent: Agent, name: str, raw: bytes
) -> None:
    before = await snapshot(served.db)
    # The old key endorses the weak key's bytes: a valid endorsement, a key still refused.
    signature = agent.key.sign(b"ASR-ROTATE-1\n" + raw)
    rotation = KeyRotation(_weak(raw), base64.b64encode(signature).decode("ascii"))
    reply = await agent.post(f"/api/v1/agents/{agent.agent_id}/keys", encode_message(rotation))
    assert (reply.status, reply.body["reason"], reply.body["field"]) == (
        400,
        "invalid-request",
        "public_key",
    )
    assert "public_key" in reply.body["error"]
    after = await snapshot(served.db)
    after.pop("nonces"), before.pop("nonces")
    assert after == before
    new = Ed25519PrivateKey.generate()
    good = KeyRotation(encode_public_key(new.public_key()), endorse(agent.key, new.public_key()))
    reply = await agent.post(f"/api/v1/agents/{agent.agent_id}/keys", encode_message(good))
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(("name", "raw"), THROUGH[:2], ids=[name for name, _ in THROUGH[:2]])
async def test_a_weak_key_stored_before_the_check_signs_nothing(
    served: Served, name: str, raw: bytes
) -> None:
    # As if enrolled by an older collector: stored without going through the check.
    enrolled = await registry.enroll(
        served.db,
        token_hash=token_hash(await served.token()),
        agent_id=str(uuid.uuid4()),
        public_key=raw,
        key_id=key_id(raw),
        hostname="edge-1",
        agent_version="0.1.0",
        now=served.clock(),
    )
    forger = Agent(served.http, served.base_url, served.clock, agent_id=enrolled.agent_id)
    body = encode_batch(forger.batch([1]))
    no_private_key = _encode(0, 1) + bytes(32)  # R the identity, S = 0
    headers = SignatureHeaders(
        key_id(raw), int(served.clock().timestamp()), "ab" * 16, no_private_key
    ).to_headers()
    before = await snapshot(served.db)
    reply = await forger.send(body, headers=headers)
    assert (reply.status, reply.body["reason"]) == (401, "bad-signature")
    assert enrolled.key_id in reply.body["error"]
    assert await snapshot(served.db) == before
