"""Key rotation (the new key endorsed by the old, the old retired after a grace period) and
revocation."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.collector.kit import Agent, Reply, Served, snapshot
from wire.enroll import KeyRotation, encode_message
from wire.signing import encode_public_key, endorse, key_id


async def _rotate(
    agent: Agent,
    new: Ed25519PrivateKey,
    endorser: Ed25519PrivateKey | None = None,
    agent_id: str | None = None,
) -> Reply:
    rotation = KeyRotation(
        encode_public_key(new.public_key()), endorse(endorser or agent.key, new.public_key())
    )
    path = f"/api/v1/agents/{agent_id or agent.agent_id}/keys"
    return await agent.post(path, encode_message(rotation))


async def test_rotation_retires_the_old_key_after_its_grace(served: Served, agent: Agent) -> None:
    old, new = agent.key, Ed25519PrivateKey.generate()
    reply = await _rotate(agent, new)
    assert reply.status == 201, reply.body
    assert reply.body == {"key_id": key_id(new.public_key()), "retired_key_id": agent.key_id}
    agent.key = new
    assert (await agent.send(agent.batch([1]))).status == 200
    second = agent.batch([2])
    retired = Agent(served.http, served.base_url, served.clock, key=old, agent_id=agent.agent_id)
    assert (await retired.send(second)).status == 200  # within the grace period
    served.clock.advance(hours=24, seconds=1)
    reply = await retired.send(agent.batch([3]))
    assert (reply.status, reply.body["reason"]) == (403, "retired-key")
    assert (await agent.send(agent.batch([3]))).status == 200
    statuses = {row[0]: row[3] for row in (await snapshot(served.db))["agent_keys"]}
    assert statuses == {key_id(old.public_key()): "retired", key_id(new.public_key()): "active"}


async def test_repeated_rotation_is_answered_again(served: Served, agent: Agent) -> None:
    new = Ed25519PrivateKey.generate()
    first = await _rotate(agent, new)
    before = await snapshot(served.db)
    second = await _rotate(agent, new)  # the agent lost the first answer
    assert (second.status, second.body) == (201, first.body)
    after = await snapshot(served.db)
    after.pop("nonces"), before.pop("nonces")
    assert after == before


async def test_endorsement_by_another_key_is_refused(served: Served, agent: Agent) -> None:
    before = await snapshot(served.db)
    reply = await _rotate(
        agent, Ed25519PrivateKey.generate(), endorser=Ed25519PrivateKey.generate()
    )
    assert (reply.status, reply.body["reason"]) == (401, "bad-signature")
    assert await snapshot(served.db) == before


async def test_rotation_for_another_agent_is_refused(served: Served, agent: Agent) -> None:
    other = served.agent()
    assert (await other.enroll(await served.token())).status == 201
    before = await snapshot(served.db)
    reply = await _rotate(agent, Ed25519PrivateKey.generate(), agent_id=other.agent_id)
    assert (reply.status, reply.body["reason"]) == (403, "wrong-agent")
    assert await snapshot(served.db) == before


async def test_rotation_to_a_key_in_use_is_refused(served: Served, agent: Agent) -> None:
    other = served.agent()
    assert (await other.enroll(await served.token())).status == 201
    before = await snapshot(served.db)
    reply = await _rotate(agent, other.key)
    assert (reply.status, reply.body["reason"]) == (409, "key-in-use")
    assert await snapshot(served.db) == before


async def test_revoked_key_can_neither_send_nor_rotate(served: Served, agent: Agent) -> None:
    revoked = await served.collector.revoke_key(agent.key_id)
    assert revoked.status == "revoked"
    reply = await agent.send(agent.batch([1]))
    assert (reply.status, reply.body["reason"]) == (403, "revoked-key")
    reply = await _rotate(agent, Ed25519PrivateKey.generate())
    assert (reply.status, reply.body["reason"]) == (403, "revoked-key")
