"""POST /api/v1/readings over real HTTPS, on SQLite and PostgreSQL (R2, R3).

Every refusal is checked twice: the status and reason, and that the database is exactly as it
was before the request (nothing of a refused batch stored, nothing stored before changed).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.collector.kit import Agent, Served, metrics_listener, snapshot, with_reading
from wire.batch import encode_batch
from wire.signing import SignatureHeaders, signed_message

Request = tuple[bytes, dict[str, str] | None, str]  # body, headers (None: sign), content type


async def test_r2_valid_batch_is_accepted_and_stored(served: Served, agent: Agent) -> None:
    batch = agent.batch(range(1, 11))
    reply = await agent.send(batch)
    assert reply.status == 200, reply.body
    assert reply.body == {
        "batch_id": batch.batch_id,
        "results": [{"seq": seq, "status": "accepted"} for seq in range(1, 11)],
    }
    counts = await served.db.row_counts()
    assert counts["readings"] == 10
    assert counts["supplies"] == 50
    assert counts["devices"] == 3
    assert counts["batches"] == counts["heartbeats"] == counts["nonces"] == 1


async def test_stored_rows_carry_the_reading(served: Served, agent: Agent) -> None:
    batch = agent.batch([1])
    assert (await agent.send(batch)).status == 200
    tables = await snapshot(served.db)
    (row,) = tables["readings"]
    item = batch.readings[0]
    assert row[1:8] == (
        agent.agent_id,
        1,
        row[3],
        item.reading.serial,
        item.printer,
        item.address,
        item.read_at,
    )
    assert row[9] == item.reading.to_dict()
    assert row[10:12] == (184321, "low")  # issue 14: the page counter and the lowToner bit
    black = item.reading.supplies[0]
    assert tables["supplies"][0] == (
        row[0],
        "1.1",
        "toner",
        "black",
        black.percent,
        1999,
        2400,
        black.grams_left,
        black.grams_used,
        "measured",
        False,
    )
    waste = tables["supplies"][4]
    assert waste[1:] == ("1.5", "waste", None, None, -3, 100, None, None, "some-remaining", True)
    (batch_row,) = tables["batches"]
    assert batch_row[-1] == encode_batch(batch)  # the exact signed bytes, for audit
    assert set(batch_row[-2]) == {
        "X-ASR-Key-Id",
        "X-ASR-Timestamp",
        "X-ASR-Nonce",
        "X-ASR-Signature",
    }


async def test_r2_resent_batch_is_duplicate_and_stored_once(served: Served, agent: Agent) -> None:
    batch = agent.batch(range(1, 6))
    assert (await agent.send(batch)).status == 200
    before = await snapshot(served.db)
    again = await agent.send(batch)  # same bytes, a new nonce: the agent retrying
    assert again.status == 200, again.body
    assert [r["status"] for r in again.body["results"]] == ["duplicate"] * 5
    after = await snapshot(served.db)
    assert len(after.pop("nonces")) == len(before.pop("nonces")) + 1
    assert after == before


async def test_r2_overlapping_batch_stores_only_new_readings(served: Served, agent: Agent) -> None:
    assert (await agent.send(agent.batch(range(1, 11)))).status == 200
    reply = await agent.send(agent.batch(range(6, 16)))
    assert [r["status"] for r in reply.body["results"]] == ["duplicate"] * 5 + ["accepted"] * 5
    counts = await served.db.row_counts()
    assert (counts["readings"], counts["batches"], counts["heartbeats"]) == (15, 2, 2)


async def test_r2_heartbeat_only_batch(served: Served, agent: Agent) -> None:
    reply = await agent.send(agent.batch([]))
    assert reply.status == 200
    assert reply.body["results"] == []
    counts = await served.db.row_counts()
    assert (counts["heartbeats"], counts["readings"]) == (1, 0)


async def test_r3_readings_that_cannot_be_trusted_are_rejected_one_by_one(
    served: Served, agent: Agent
) -> None:
    batch = agent.batch(range(1, 6))
    batch = with_reading(batch, 1, reading=replace(batch.readings[1].reading, serial=None))
    batch = with_reading(batch, 2, read_at=served.clock() + timedelta(seconds=301))
    doubled = batch.readings[3].reading
    batch = with_reading(
        batch, 3, reading=replace(doubled, supplies=doubled.supplies + doubled.supplies[:1])
    )
    reply = await agent.send(batch)
    assert reply.status == 200, reply.body
    results = {r["seq"]: r for r in reply.body["results"]}
    assert [results[seq]["status"] for seq in range(1, 6)] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert "R3" in results[2]["error"]
    assert "future" in results[3]["error"]
    assert "twice" in results[4]["error"]
    assert (await served.db.row_counts())["readings"] == 2


async def test_r3_devices_keep_first_and_last_seen_across_late_batches(
    served: Served, agent: Agent
) -> None:
    now = served.clock()
    recent = agent.batch(range(10, 13), serials=1)
    late = agent.batch(range(1, 4), serials=1)  # older readings, delivered after
    late = replace(
        late,
        readings=tuple(
            replace(r, read_at=now - timedelta(days=2, minutes=i))
            for i, r in enumerate(late.readings)
        ),
    )
    assert (await agent.send(recent)).status == 200
    assert (await agent.send(late)).status == 200
    (device,) = (await snapshot(served.db))["devices"]
    serial, model, first_seen, last_seen, last_agent = device
    assert serial == "CL45-0000"
    assert model == "Acme ColorLaser CL-4500dn"
    assert first_seen == now - timedelta(days=2, minutes=2)
    assert last_seen == recent.readings[-1].read_at
    assert last_agent == agent.agent_id


# --- refusals ------------------------------------------------------------------------------


async def _tampered(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    headers = agent.sign(body)
    return (
        body.replace(b'"page_count":184321', b'"page_count":184322', 1),
        headers,
        "application/json",
    )


async def _wrong_key(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    signed = SignatureHeaders.from_headers(agent.sign(body))
    other = Ed25519PrivateKey.generate()
    forged = other.sign(signed_message(agent.key_id, signed.timestamp, signed.nonce, body))
    return body, replace(signed, signature=forged).to_headers(), "application/json"


async def _unknown_key(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    return body, agent.sign(body, key=Ed25519PrivateKey.generate()), "application/json"


async def _revoked_key(served: Served, agent: Agent) -> Request:
    await served.collector.revoke_key(agent.key_id)
    return encode_batch(agent.batch(range(10, 13))), None, "application/json"


async def _replayed_nonce(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    headers = agent.sign(body)
    assert (await agent.send(body, headers=headers)).status == 200
    return body, headers, "application/json"


async def _stale(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    return body, agent.sign(body, at=served.clock() - timedelta(seconds=301)), "application/json"


async def _from_the_future(served: Served, agent: Agent) -> Request:
    body = encode_batch(agent.batch(range(10, 13)))
    return body, agent.sign(body, at=served.clock() + timedelta(seconds=301)), "application/json"


async def _oversized(served: Served, agent: Agent) -> Request:
    return b"[" + b" " * (1 << 20) + b"]", None, "application/json"


async def _garbage(served: Served, agent: Agent) -> Request:
    return b'{"schema": 1, "agent_id": ', None, "application/json"


async def _schema_2(served: Served, agent: Agent) -> Request:
    data = json.loads(encode_batch(agent.batch(range(10, 13))))
    data["schema"] = 2
    return json.dumps(data).encode(), None, "application/json"


async def _huge_spool_depth(served: Served, agent: Agent) -> Request:
    data = json.loads(encode_batch(agent.batch(range(10, 13))))
    data["heartbeat"]["spool_depth"] = 2**63  # 500 on both databases before it was bounded
    return json.dumps(data).encode(), None, "application/json"


async def _huge_seq(served: Served, agent: Agent) -> Request:
    data = json.loads(encode_batch(agent.batch(range(10, 13))))
    data["readings"][2]["seq"] = 2**63  # a reading without a usable seq: the batch is refused
    return json.dumps(data).encode(), None, "application/json"


async def _text_plain(served: Served, agent: Agent) -> Request:
    return encode_batch(agent.batch(range(10, 13))), None, "text/plain"


async def _unsigned(served: Served, agent: Agent) -> Request:
    return encode_batch(agent.batch(range(10, 13))), {}, "application/json"


async def _other_agents_batch(served: Served, agent: Agent) -> Request:
    other = served.agent()
    assert (await other.enroll(await served.token())).status == 201
    return encode_batch(other.batch(range(10, 13))), None, "application/json"


REFUSALS: dict[str, tuple[Callable[[Served, Agent], Awaitable[Request]], int, str, str | None]] = {
    "tampered body": (_tampered, 401, "bad-signature", None),
    "wrong key": (_wrong_key, 401, "bad-signature", None),
    "unknown key": (_unknown_key, 401, "unknown-key", None),
    "revoked key": (_revoked_key, 403, "revoked-key", None),
    "replayed nonce": (_replayed_nonce, 409, "replayed-nonce", None),
    "stale timestamp": (_stale, 401, "stale-timestamp", None),
    "timestamp ahead": (_from_the_future, 401, "stale-timestamp", None),
    "oversized body": (_oversized, 413, "body-too-large", None),
    "garbage JSON": (_garbage, 400, "malformed-json", None),
    "schema version 2": (_schema_2, 400, "schema-version", "schema"),
    "spool depth past 2^63": (_huge_spool_depth, 400, "invalid-message", "heartbeat.spool_depth"),
    "seq past 2^63": (_huge_seq, 400, "invalid-message", "readings[2].seq"),
    "not JSON content type": (_text_plain, 415, "content-type", None),
    "unsigned": (_unsigned, 401, "malformed-signature", None),
    "another agent's batch": (_other_agents_batch, 403, "wrong-agent", None),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_refused_request_stores_nothing(served: Served, agent: Agent, case: str) -> None:
    make, status, reason, field = REFUSALS[case]
    assert (await agent.send(agent.batch(range(1, 6)))).status == 200  # something to keep
    body, headers, content_type = await make(served, agent)
    before = await snapshot(served.db)
    reply = await agent.post("/api/v1/readings", body, headers=headers, content_type=content_type)
    assert (reply.status, reply.body.get("reason")) == (status, reason), reply.body
    assert reply.body.get("field") == field
    assert reply.body["error"]
    assert await snapshot(served.db) == before


async def test_chunked_oversized_body_is_refused_while_it_arrives(
    served: Served, agent: Agent
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    headers = {"Content-Type": "application/json", **agent.sign(b"")}
    async with served.http.post(
        served.base_url + "/api/v1/readings", data=chunks(), headers=headers
    ) as response:
        assert response.status == 413
    assert (await served.db.row_counts())["batches"] == 0


async def test_metrics_and_health(served: Served, agent: Agent) -> None:
    assert (await agent.send(agent.batch(range(1, 4)))).status == 200
    assert (await agent.send(b"{", headers={})).status == 401
    async with served.http.get(served.base_url + "/metrics") as response:
        assert response.status == 404  # not on the agents' port: a listener of its own
    async with metrics_listener(served.app) as url, served.http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    assert 'asr_ingest_readings_total{status="accepted"} 3.0' in text
    assert 'asr_ingest_batches_total{outcome="stored"} 1.0' in text
    assert 'asr_rejections_total{endpoint="readings",reason="malformed-signature"} 1.0' in text
    assert "asr_ingest_seconds_bucket" in text
    assert "asr_enrollments_total 1.0" in text
    async with served.http.get(served.base_url + "/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
