"""Enroll the agent with a one-time token, and rotate its key (docs/protocol.md).

Is: the two conversations that change who the agent is. Enrollment sends the public key
(made on first start, agent.identity) with the operator's token; on success it binds the
spool to the new agent id, then writes identity.json. Rotation makes a successor key, has the
old key endorse it and sign the request, and once the collector has it renames it over the old
one; a rotation whose answer was lost is finished by asking again (the collector answers the
same) or, once the old key is past its grace, by adopting the successor.
Is not: the HTTP transport (agent.push), nor the key files' format (agent.identity).
"""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

from agent import __version__
from agent.identity import (
    Identity,
    IdentityError,
    load_identity,
    load_key,
    load_or_make_key,
    load_or_make_next_key,
    promote_next_key,
    save_identity,
)
from agent.push import CollectorClient, Refused
from agent.spool import Spool
from agent.state import SPOOL_FILE
from wire.enroll import EnrollRequest, KeyRotated, KeyRotation, encode_message
from wire.signing import encode_public_key, endorse, key_id, sign


async def enroll(
    state_dir: Path,
    client: CollectorClient,
    token: str,
    cap_rows: int,
    now: datetime,
    hostname: str | None = None,
) -> Identity:
    """Enroll with `token`; the identity written. IdentityError if enrolled already."""
    known = load_identity(state_dir)
    if known is not None:
        raise IdentityError(
            f"already enrolled as agent {known.agent_id} ({known.customer} / {known.site});"
            f" to enroll anew, move identity.json and agent-key.pem out of {state_dir} first"
        )
    key, _ = load_or_make_key(state_dir)
    request = EnrollRequest(
        token=token,
        public_key=encode_public_key(key.public_key()),
        agent_version=__version__,
        hostname=hostname or socket.gethostname(),
    )
    response = await client.enroll(request)
    if response.key_id != key_id(key.public_key()):
        raise IdentityError(f"the collector recorded key {response.key_id}, not ours")
    identity = Identity(
        agent_id=response.agent_id,
        customer=response.customer,
        site=response.site,
        collector_url=client.base_url,
        enrolled_at=now,
    )
    with Spool.open(state_dir / SPOOL_FILE, cap_rows) as spool:
        spool.bind(identity.agent_id)
    save_identity(state_dir, identity)
    return identity


async def rotate_key(
    state_dir: Path, client: CollectorClient, identity: Identity, now: datetime
) -> KeyRotated:
    """Replace the agent's key by a new one the old one endorses; the collector's answer."""
    old = load_key(state_dir)
    new = load_or_make_next_key(state_dir)
    rotation = KeyRotation(encode_public_key(new.public_key()), endorse(old, new.public_key()))
    body = encode_message(rotation)
    try:
        rotated = await client.rotate_key(identity.agent_id, body, sign(old, body, now))
    except Refused as err:
        if err.answer.reason != "retired-key":
            raise
        # The old key was retired by this very rotation (only we hold it) and its grace is
        # over: the collector has the new key; only its first answer was lost.
        rotated = KeyRotated(key_id(new.public_key()), key_id(old.public_key()))
    if rotated.key_id != key_id(new.public_key()):
        raise IdentityError(f"the collector recorded key {rotated.key_id}, not ours")
    promote_next_key(state_dir)
    return rotated
