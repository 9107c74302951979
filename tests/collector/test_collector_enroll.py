"""Enrollment: a one-time, expiring token and a public key make an agent (R2: signed data)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.collector.kit import Agent, Served, snapshot
from wire.enroll import EnrollRequest, encode_message
from wire.signing import encode_public_key, key_id


async def test_token_enrolls_once(served: Served) -> None:
    token = await served.token("acme", "milano")
    first = served.agent()
    reply = await first.enroll(token)
    assert reply.status == 201, reply.body
    assert reply.body == {
        "agent_id": reply.body["agent_id"],
        "key_id": key_id(first.key.public_key()),
        "customer": "acme",
        "site": "milano",
    }
    uuid.UUID(reply.body["agent_id"])
    before = await snapshot(served.db)
    again = await served.agent().enroll(token)
    assert (again.status, again.body["reason"]) == (401, "token-used")
    assert await snapshot(served.db) == before


async def test_token_is_stored_hashed(served: Served) -> None:
    token = await served.token()
    assert token not in repr(await snapshot(served.db))


async def test_expired_token_is_refused(served: Served) -> None:
    token, _ = await served.collector.create_token("acme", "milano", ttl=timedelta(hours=1))
    served.clock.advance(hours=1, seconds=1)
    before = await snapshot(served.db)
    reply = await served.agent().enroll(token)
    assert (reply.status, reply.body["reason"]) == (401, "token-expired")
    assert await snapshot(served.db) == before


async def test_unknown_token_is_refused(served: Served) -> None:
    reply = await served.agent().enroll("asr1_not-a-token")
    assert (reply.status, reply.body["reason"]) == (401, "token-unknown")
    assert (await served.db.row_counts())["agents"] == 0


async def test_key_enrolled_twice_is_refused_and_token_kept(served: Served, agent: Agent) -> None:
    token = await served.token()
    twin = Agent(served.http, served.base_url, served.clock, key=agent.key)
    reply = await twin.enroll(token)
    assert (reply.status, reply.body["reason"]) == (409, "key-in-use")
    assert (await served.agent().enroll(token)).status == 201  # the token was not used up


async def test_bad_requests_name_the_field(served: Served) -> None:
    token = await served.token()
    agent = served.agent()
    bad_key = encode_message(EnrollRequest(token, "A" * 44, "0.1.0", "edge-1"))
    reply = await agent.post("/api/v1/enroll", bad_key, signed=False)
    assert (reply.status, reply.body["field"]) == (400, "public_key")
    key = encode_public_key(agent.key.public_key())
    missing = f'{{"token": "{token}", "public_key": "{key}", "agent_version": "1"}}'.encode()
    reply = await agent.post("/api/v1/enroll", missing, signed=False)
    assert (reply.status, reply.body["field"]) == (400, "hostname")
    reply = await agent.post("/api/v1/enroll", b"{", signed=False)
    assert (reply.status, reply.body["reason"]) == (400, "malformed-json")
    assert (await agent.enroll(token)).status == 201
