"""The quarantine in the portal, on SQLite and PostgreSQL: the helpdesk sees what the ingest
set aside (API and page), a customer's user does not.

The readings get there through the real ingest: an enrolled agent sends a signed batch with a
reading the database cannot hold (a NUL in the printer's name) and one of another customer's
registered device (a conflict), besides a good one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

from collector.portal.api import PREFIX
from collector.store import fleet, people
from tests.collector.kit import Agent, Pki, Served, with_reading

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
PASSWORD = "quarantine password 1"


@dataclass
class Answer:
    status: int
    text: str
    headers: Any

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Browser:
    """A logged-in user with its own cookie jar."""

    http: aiohttp.ClientSession
    base: str

    async def get(self, path: str) -> Answer:
        async with self.http.get(self.base + path, allow_redirects=False) as response:
            return Answer(response.status, await response.text(), response.headers)


@dataclass
class World:
    served: Served
    batch_id: str
    login: Any


@pytest.fixture
async def world(served: Served, agent: Agent, pki: Pki) -> AsyncIterator[World]:
    """acme's agent sent a batch: seq 1 another customer's serial, seq 2 good, seq 3 a NUL."""
    await fleet.add_customer(
        served.db,
        "bianchi",
        "self",
        NOW,
        name="Bianchi",
        sites_=[("torino", "Via Po 1, 10100 Torino")],
        contacts_=[fleet.ContactSpec("ugo", "ugo@bianchi.example", "Ugo")],
    )
    toner = fleet.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0)
    device = fleet.DeviceSpec("CL45-0001", "bianchi", "torino", "ugo", "MFP", (toner,))
    await fleet.register(served.db, [device], NOW)
    batch = with_reading(agent.batch(range(1, 4)), 2, printer="front\x00desk")
    reply = await agent.send(batch)
    assert reply.status == 200, reply.body
    assert [r["status"] for r in reply.body["results"]] == ["rejected", "accepted", "rejected"]
    now = served.clock()
    await people.add_user(served.db, "hd", PASSWORD, "helpdesk", now=now)
    await people.add_user(served.db, "anna", PASSWORD, "customer", "acme", now=now)
    sessions: list[aiohttp.ClientSession] = []

    async def login(username: str | None) -> Browser:
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=pki.client_context()),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
        )
        sessions.append(http)
        if username is not None:
            body = {"username": username, "password": PASSWORD}
            async with http.post(f"{served.base_url}{PREFIX}/session", json=body) as response:
                assert response.status == 200, await response.text()
        return Browser(http, served.base_url)

    yield World(served, batch.batch_id, login)
    for http in sessions:
        await http.close()


async def test_the_helpdesk_sees_the_quarantine_in_the_api(world: World) -> None:
    hd = await world.login("hd")
    reply = await hd.get(f"{PREFIX}/quarantine")
    assert reply.status == 200, reply.text
    rows = reply.json()["readings"]
    assert [(r["seq"], r["kind"]) for r in rows] == [(3, "invalid"), (1, "conflict")]
    invalid, conflict = rows
    assert invalid["field"] == "readings[2].printer"
    assert "NUL" in invalid["reason"] and invalid["serial"] == "CL45-0000"
    assert "\x00" not in (invalid["printer"] or "")
    assert conflict["serial"] == "CL45-0001" and conflict["owner_customer_id"] == "bianchi"
    assert "another customer" in conflict["reason"]
    assert invalid["owner_customer_id"] is None
    for row in rows:
        assert (row["customer_id"], row["site_name"]) == ("acme", "milano")
        assert row["batch_id"] == world.batch_id
    # Filters: by kind, by the sending agent's customer, and how many.
    only = (await hd.get(f"{PREFIX}/quarantine?kind=conflict")).json()["readings"]
    assert [r["seq"] for r in only] == [1]
    assert (await hd.get(f"{PREFIX}/quarantine?customer_id=bianchi")).json()["readings"] == []
    assert len((await hd.get(f"{PREFIX}/quarantine?customer_id=acme")).json()["readings"]) == 2
    assert len((await hd.get(f"{PREFIX}/quarantine?limit=1")).json()["readings"]) == 1
    for bad, field in (("kind=poison", "kind"), ("limit=0", "limit"), ("limit=1001", "limit")):
        refused = await hd.get(f"{PREFIX}/quarantine?{bad}")
        assert refused.status == 400 and refused.json()["field"] == field, refused.text


async def test_the_helpdesk_sees_the_quarantine_page(world: World) -> None:
    hd = await world.login("hd")
    fleet_page = await hd.get("/fleet")
    assert 'data-testid="nav-quarantine"' in fleet_page.text
    page = await hd.get("/quarantine")
    assert page.status == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.text.count('data-testid="quarantine-row"') == 2
    assert 'data-kind="conflict"' in page.text and 'data-kind="invalid"' in page.text
    assert "readings[2].printer" in page.text and "CL45-0001" in page.text
    assert "Belongs to bianchi" in page.text and "Unreadable data" in page.text
    assert world.batch_id in page.text
    filtered = await hd.get("/quarantine?kind=invalid")
    assert filtered.text.count('data-testid="quarantine-row"') == 1
    assert (await hd.get("/quarantine?kind=poison")).status == 400


async def test_a_customer_cannot_see_the_quarantine(world: World) -> None:
    anna = await world.login("anna")
    reply = await anna.get(f"{PREFIX}/quarantine")
    assert reply.status == 403 and reply.json()["error"] == "forbidden"
    page = await anna.get("/quarantine")
    assert page.status == 403
    assert 'data-testid="nav-quarantine"' not in (await anna.get("/fleet")).text
    for answer in (reply, page):
        assert "CL45-0001" not in answer.text and "bianchi" not in answer.text
    nobody = await world.login(None)
    assert (await nobody.get(f"{PREFIX}/quarantine")).status == 401
    anonymous = await nobody.get("/quarantine")
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/login")
