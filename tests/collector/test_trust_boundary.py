"""The ingest's trust boundary on both databases (issue 13): poison readings, re-sent batch ids
and other customers' devices (R2, R3, R4).

A reading the database could not hold, or that belongs to another customer, is answered
`rejected` in a 200 and kept in the quarantine with its signed batch; the batch's good readings
are stored. Before, a NUL or a number past a column's range was a 500 on PostgreSQL, which the
agent retries for ever: one printer's odd bytes stopped every reading of its agent.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from collector.appkeys import METRICS
from collector.store import fleet
from collector.store.schema import batches, devices, quarantine, readings
from tests.collector.kit import Agent, Served, snapshot, with_reading
from wire.batch import encode_batch

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


async def _rows(served: Served, table: Any) -> list[Any]:
    async with served.db.transaction() as conn:
        return list(await conn.execute(select(table).order_by(*table.primary_key.columns)))


async def _count(served: Served, table: Any, *where: Any) -> int:
    async with served.db.transaction() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


def _poison(agent: Agent) -> bytes:
    """A batch of eight readings: the odd ones poisoned, each a different way."""
    batch = agent.batch(range(1, 9))
    batch = with_reading(batch, 0, reading=replace(batch.readings[0].reading, serial="CL\x0045"))
    batch = with_reading(batch, 2, printer="front\x00desk")
    data = json.loads(encode_batch(batch))
    data["readings"][4]["reading"]["supplies"][0]["description"] = "Black\u0000Toner"
    data["readings"][5]["reading"]["supplies"][1]["level"] = 2**31  # past Integer32
    data["readings"][6]["reading"]["serial"] = "S" * 200_000
    data["readings"][7]["reading"]["page_count"] = 2**63
    return json.dumps(data).encode()


async def test_poison_readings_are_quarantined_and_the_good_stored(
    served: Served, agent: Agent
) -> None:
    body_sent = _poison(agent)
    reply = await agent.send(body_sent)
    assert reply.status == 200, reply.body
    fates = {r["seq"]: (r["status"], r.get("error", "")) for r in reply.body["results"]}
    assert {seq for seq, (status, _) in fates.items() if status == "accepted"} == {2, 4}
    expected = {
        1: "readings[0].reading.serial: holds a NUL character",
        3: "readings[2].printer: holds a NUL character",
        5: "readings[4].reading.supplies[0].description: holds a NUL character",
        6: "readings[5].reading.supplies[1].level",
        7: "readings[6].reading.serial",
        8: "readings[7].reading.page_count",
    }
    for seq, start in expected.items():
        status, error = fates[seq]
        assert status == "rejected" and error.startswith(start), (seq, error)
    # Stored: the good ones. Quarantined: the others, each pointing to the signed body.
    assert sorted(r.seq for r in await _rows(served, readings)) == [2, 4]
    kept = await _rows(served, quarantine)
    assert [(q.seq, q.kind) for q in kept] == [(s, "invalid") for s in sorted(expected)]
    (body,) = [b.body for b in await _rows(served, batches)]
    held = {entry["seq"] for entry in json.loads(body)["readings"]}
    assert {q.seq for q in kept} <= held
    assert all(q.batch_pk == kept[0].batch_pk for q in kept)
    assert all("\x00" not in (q.serial or "") + (q.printer or "") for q in kept)
    assert len(next(q for q in kept if q.seq == 7).serial) <= 200
    metrics = served.app[METRICS]
    assert metrics.quarantined.labels("invalid")._value.get() == 6
    # Sent again (the agent missed the answer): nothing doubles, the same fates.
    again = await agent.send(body_sent)
    assert again.status == 200
    assert len(await _rows(served, quarantine)) == 6


async def test_a_lone_surrogate_refuses_its_reading_only(served: Served, agent: Agent) -> None:
    body = encode_batch(agent.batch(range(1, 4)))
    text = body.decode()
    description = json.loads(text)["readings"][1]["reading"]["supplies"][0]["description"]
    bad = text.replace(json.dumps(description)[1:-1], "Black\\ud800", 2)
    first = bad.index("Black\\ud800")
    assert first < text.index('"seq":3')  # the first of the replaced is reading 2's or before
    reply = await agent.send(bad.encode())
    assert reply.status == 200, reply.body
    rejected = [r for r in reply.body["results"] if r["status"] == "rejected"]
    assert rejected and all("lone surrogate" in r["error"] for r in rejected)
    assert any(r["status"] == "accepted" for r in reply.body["results"])


async def test_a_nul_in_the_heartbeat_refuses_the_batch(served: Served, agent: Agent) -> None:
    data = json.loads(encode_batch(agent.batch(range(1, 4))))
    data["heartbeat"]["agent_version"] = "1.0\u0000"
    before = await snapshot(served.db)
    reply = await agent.send(json.dumps(data).encode())
    assert (reply.status, reply.body["field"]) == (400, "heartbeat.agent_version")
    assert await snapshot(served.db) == before


async def test_a_batch_id_again_with_other_readings_is_refused(
    served: Served, agent: Agent
) -> None:
    first = agent.batch(range(1, 4))
    assert (await agent.send(first)).status == 200
    # The same id again, with a subset of its readings (the agent dropped one): fine.
    subset = agent.batch([2, 3], batch_id=first.batch_id)
    again = await agent.send(subset)
    assert again.status == 200
    assert {r["status"] for r in again.body["results"]} == {"duplicate"}
    before = await snapshot(served.db)
    other = agent.batch([3, 4, 5], batch_id=first.batch_id)
    reply = await agent.send(other)
    assert (reply.status, reply.body["reason"]) == (409, "batch-conflict"), reply.body
    assert "4, 5" in reply.body["error"]
    assert await snapshot(served.db) == before
    # Under a new id they are stored.
    assert (await agent.send(agent.batch([4, 5]))).status == 200
    assert await _count(served, readings) == 5


async def _registered(served: Served, customer: str, serial: str) -> None:
    await fleet.add_customer(
        served.db,
        customer,
        "self",
        NOW,
        name=customer.title(),
        language="it",
        sites_=[("milano", "Via Roma 1, 20121 Milano")],
        contacts_=[fleet.ContactSpec("anna", f"anna@{customer}.example", "Anna")],
    )
    toner = fleet.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0)
    await fleet.register(
        served.db, [fleet.DeviceSpec(serial, customer, "milano", "anna", "MFP", (toner,))], NOW
    )


async def _agent_of(served: Served, customer: str) -> Agent:
    agent = served.agent()
    assert (await agent.enroll(await served.token(customer, "milano"))).status == 201
    return agent


async def test_an_agent_writes_only_its_customers_devices(served: Served) -> None:
    await _registered(served, "bianchi", "CL45-0001")  # make_batch's serials: CL45-000{0,1,2}
    rossi = await _agent_of(served, "rossi")
    bianchi = await _agent_of(served, "bianchi")
    reply = await rossi.send(rossi.batch(range(1, 4)))
    fates = {r["seq"]: r for r in reply.body["results"]}
    assert fates[1]["status"] == "rejected" and "another customer" in fates[1]["error"]
    assert {fates[2]["status"], fates[3]["status"]} == {"accepted"}
    assert await _count(served, readings, readings.c.serial == "CL45-0001") == 0
    # Bianchi's own agent reads its device; rossi's unregistered serials stay rossi's.
    assert (await bianchi.send(bianchi.batch([7]))).status == 200  # serial CL45-0001
    assert await _count(served, readings, readings.c.serial == "CL45-0001") == 1
    took = await bianchi.send(bianchi.batch([8]))  # CL45-0002: first seen by rossi's agent
    assert took.body["results"][0]["status"] == "rejected"
    owners = {d.serial: d.last_agent_id for d in await _rows(served, devices)}
    assert owners["CL45-0002"] == rossi.agent_id and owners["CL45-0001"] == bianchi.agent_id
    conflicts = [q for q in await _rows(served, quarantine) if q.kind == "conflict"]
    assert [(q.agent_id, q.serial) for q in conflicts] == [
        (rossi.agent_id, "CL45-0001"),
        (bianchi.agent_id, "CL45-0002"),
    ]
