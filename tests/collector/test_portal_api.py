"""The portal's JSON API served over real TLS, on SQLite and PostgreSQL (R4, R14, R17, R18).

Two customers: `mpsco` (MPS: the helpdesk changes things) and `selfco` (self-service: its
own users do). Their devices report through the real ingest (signed batches from enrolled
agents) and the daily run computes their tracks, so levels, balances and states are real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from yarl import URL

from collector.app import create_app
from collector.appkeys import COLLECTOR
from collector.config import CollectorConfig
from collector.daily_run import run_plan
from collector.portal import api
from collector.portal.auth import (
    MAX_AGE,
    check_csrf,
    csrf_token,
    load_session_key,
    login_required,
    safe_next,
)
from collector.replenish.settings import Rules
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import SupplySpec as SimSupply
from collector.simulation.world import Slot
from collector.store import fleet, people
from collector.store.database import Database
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    audit_log,
    contacts,
    notifications,
    orders,
    shipments,
    sites,
)
from collector.tls import server_context
from common.strictconfig import ConfigError
from tests.collector.kit import Clock, Pki, snapshot

BLACK = SimSupply("black", "toner", "black", "TN-K", 300.0, 300.0)
WASTE = SimSupply("waste", "waste", None, "WT-1", 40.0, 0.0)
PASSWORD = "portal password 1"
P = api.PREFIX


@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any


@dataclass
class Client:
    """One browser or script: its own cookie jar, CSRF token and optional bearer token."""

    http: aiohttp.ClientSession
    base: str
    csrf: str = ""
    token: str = ""

    async def login(self, username: str, password: str = PASSWORD) -> Reply:
        reply = await self.call(
            "POST", "/session", {"username": username, "password": password}, csrf=False
        )
        if reply.status == 200:
            self.csrf = reply.body["csrf_token"]
        return reply

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if csrf and self.csrf:
            sent["X-CSRF-Token"] = self.csrf
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        url = self.base + P + path
        async with self.http.request(method, url, data=data, headers=sent) as response:
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            return Reply(response.status, parsed, text, response.headers)


@dataclass
class Portal:
    """The served app, its store and clock, the world's ids, and a client per user."""

    base: str
    app: web.Application
    db: Database
    clock: Clock
    pki: Pki
    ids: dict[str, int] = field(default_factory=dict)
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def client(self, username: str | None = None) -> Client:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.pki.client_context()), cookie_jar=jar
        )
        self.sessions.append(http)
        client = Client(http, self.base)
        if username is not None:
            reply = await client.login(username)
            assert reply.status == 200, reply.text
        return client


def portal_config(pki: Pki, state_dir: Path) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "collector": {"state_dir": state_dir},
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "tls_cert": pki.server_cert,
                "tls_key": pki.server_key,
            },
            "plan": {"enabled": False},
            "portal": {"max_form_bytes": 2048},
        }
    )


def portal_app(config: CollectorConfig, db: Database, clock: Clock) -> web.Application:
    """The collector's app, with its portal, as `serve` makes it."""
    app = create_app(config, database=db, clock=clock)
    assert MAX_AGE in app and any(
        r.resource and r.resource.canonical.startswith(P) for r in app.router.routes()
    )
    return app


async def _world(portal: Portal) -> None:
    """Two customers, their sites, contacts, agents, devices, readings and a daily run."""
    db, clock = portal.db, portal.clock
    collector = portal.app[COLLECTOR]
    now = clock.now
    await fleet.add_customer(
        db,
        "mpsco",
        "mps",
        now,
        name="MPS Co",
        sites_=[("hq", "Via Roma 1, 20100 Milano")],
        contacts_=[fleet.ContactSpec("anna", "anna@mpsco.example")],
    )
    await fleet.add_customer(
        db,
        "selfco",
        "self",
        now,
        name="Self Co",
        language="fr",
        sites_=[("lyon", "1 rue de la Paix, Lyon"), ("paris", "2 avenue Foch, Paris")],
        contacts_=[
            fleet.ContactSpec("bob", "bob@selfco.example", "Bob", "fr"),
            fleet.ContactSpec("carla", "carla@selfco.example"),
        ],
    )
    specs = tuple(
        fleet.SupplySpec(s.id, supply_index(i), s.kind, s.colour, s.sku, s.capacity_grams)
        for i, s in enumerate((BLACK, WASTE))
    )
    await fleet.register(
        db,
        [
            fleet.DeviceSpec("M1", "mpsco", "hq", "anna", "MFP", specs),
            fleet.DeviceSpec("S1", "selfco", "lyon", "bob", "MFP", specs),
        ],
        now,
    )
    readers: dict[str, tuple[SimAgent, list[str]]] = {}
    for customer, site, serials in (
        ("mpsco", "hq", ["M1", "M2"]),
        ("selfco", "lyon", ["S1", "S2"]),
    ):
        agent = SimAgent(collector)
        token, _ = await collector.create_token(customer, site)
        await agent.enroll(token)
        readers[customer] = (agent, serials)
    slots = {s: [Slot(BLACK, 300.0), Slot(WASTE, 0.0)] for s in ("M1", "M2", "S1", "S2")}
    for _ in range(8):
        clock.advance(days=1)
        for agent, serials in readers.values():
            for serial in serials:
                slots[serial][0].use(10.0)
                slots[serial][1].use(1.0)
            await agent.push([agent.read(s, "MFP", slots[s]) for s in serials], clock.now)
    await run_plan(db, Rules(), clock.now + timedelta(minutes=1))
    clock.advance(minutes=2)
    for role, username, customer in (
        ("helpdesk", "hd", None),
        ("customer", "mona", "mpsco"),
        ("customer", "sam", "selfco"),
    ):
        await people.add_user(db, username, PASSWORD, role, customer, now=clock.now)
    site_rows = await db.read(lambda c: c.execute(select(sites.c.name, sites.c.id)).all())
    contact_rows = await db.read(lambda c: c.execute(select(contacts.c.name, contacts.c.id)).all())
    portal.ids.update({name: id_ for name, id_ in site_rows})
    portal.ids.update({name: id_ for name, id_ in contact_rows})


@pytest.fixture
async def portal(db: Database, pki: Pki, tmp_path: Path) -> AsyncIterator[Portal]:
    clock = Clock()
    app = portal_app(portal_config(pki, tmp_path), db, clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=server_context(pki.server_cert, pki.server_key)
    )
    await site.start()
    served = Portal(f"https://127.0.0.1:{runner.addresses[0][1]}", app, db, clock, pki)
    await _world(served)
    yield served
    for http in served.sessions:
        await http.close()
    await runner.cleanup()


async def _audit(db: Database) -> list[Any]:
    return await db.read(lambda c: c.execute(select(audit_log).order_by(audit_log.c.id)).all())


def _no_trace(reply: Reply, *secrets: str) -> None:
    """Nothing of another customer's object in the answer."""
    assert reply.status == 404, reply.text
    assert reply.body == {"error": "not-found", "message": reply.body["message"]}
    for secret in secrets:
        assert secret not in reply.text


# --- who sees what (R17) -------------------------------------------------------------------


async def test_r17_a_customer_sees_only_its_own_devices(portal: Portal) -> None:
    sam = await portal.client("sam")
    listed = await sam.call("GET", "/devices")
    assert listed.status == 200
    assert [d["serial"] for d in listed.body["devices"]] == ["S1"]
    row = listed.body["devices"][0]
    assert row["customer_id"] == "selfco" and row["site_name"] == "lyon"
    assert row["contact_email"] == "bob@selfco.example" and row["state"]
    assert 50 < row["lowest_percent"] < 80 and row["days_left_min"] > 0
    # Another customer's device, by URL and by API: not found, and nothing of it told.
    _no_trace(await sam.call("GET", "/devices/M1"), "mpsco", "MPS Co", "hq", "anna")
    _no_trace(await sam.call("GET", "/devices/NOPE"))
    orders_reply = await sam.call("GET", "/orders")
    assert orders_reply.status == 200
    assert all(o["customer_id"] == "selfco" for o in orders_reply.body["orders"])
    sites_reply = await sam.call("GET", "/sites")
    assert [s["name"] for s in sites_reply.body["sites"]] == ["lyon", "paris"]
    assert "mpsco" not in sites_reply.text
    waiting = await sam.call("GET", "/unregistered-devices")
    assert [d["serial"] for d in waiting.body["devices"]] == ["S2"]
    seen = await sam.call("GET", "/devices/S2")  # read by its agent: shown, not registered
    assert seen.status == 200 and seen.body["registered"] is False


async def test_r17_a_device_shows_levels_balance_and_next_order(portal: Portal) -> None:
    sam = await portal.client("sam")
    reply = await sam.call("GET", "/devices/S1")
    assert reply.status == 200, reply.text
    view = reply.body
    assert view["registered"] and view["site"]["address"] == "1 rue de la Paix, Lyon"
    assert view["contact"]["email"] == "bob@selfco.example"
    black = next(s for s in view["supplies"] if s["supply_id"] == "black")
    assert black["kind"] == "toner" and black["sku"] == "TN-K"
    assert black["level_percent"] == pytest.approx(100 * 220 / 300, abs=3)
    assert black["rate_per_day"] == pytest.approx(10.0, rel=0.05)  # R7: grams a day
    assert black["days_left"] == pytest.approx(22, abs=1.5)
    assert black["balance"] == 0  # R13
    assert black["next_order_at"] is not None
    assert black["next_order_reason"] == "when 21 days of supply remain"  # words, no rule id
    assert len(black["history"]) >= 7  # a point a day
    assert black["forecast_line"][-1][1] == 0.0
    waste = next(s for s in view["supplies"] if s["supply_id"] == "waste")
    assert waste["next_order_at"] is None and "black toner" in waste["next_order_reason"]
    assert "(R" not in waste["next_order_reason"]
    helpdesk = (await (await portal.client("hd")).call("GET", "/devices/S1")).body
    reasons = {s["supply_id"]: s["next_order_reason"] for s in helpdesk["supplies"]}
    assert reasons["black"].endswith("(R8)") and reasons["waste"].endswith("(R11)")  # ids: ours


async def test_the_helpdesk_sees_every_customer(portal: Portal) -> None:
    hd = await portal.client("hd")
    listed = await hd.call("GET", "/devices")
    assert [d["serial"] for d in listed.body["devices"]] == ["M1", "S1"]
    assert (await hd.call("GET", "/devices/M1")).status == 200
    assert (await hd.call("GET", "/devices/S1")).status == 200
    waiting = await hd.call("GET", "/unregistered-devices")
    assert [d["serial"] for d in waiting.body["devices"]] == ["M2", "S2"]
    mona = await portal.client("mona")
    listed = await mona.call("GET", "/devices")
    assert [d["serial"] for d in listed.body["devices"]] == ["M1"]
    me = await mona.call("GET", "/me")
    assert me.body["customer_kind"] == "mps" and me.body["csrf_token"] == mona.csrf


async def test_fleet_filters(portal: Portal) -> None:
    hd = await portal.client("hd")
    for name in ("disconnected", "low", "high-usage", "open-orders"):
        reply = await hd.call("GET", f"/devices?filter={name}")
        assert reply.status == 200
        assert all(name in d["flags"] for d in reply.body["devices"])
    bad = await hd.call("GET", "/devices?filter=everything")
    assert bad.status == 400 and bad.body["field"] == "filter"
    portal.clock.advance(days=10)  # no readings for 10 days: levels fall at the rate (R7)
    hd = await portal.client("hd")
    low = await hd.call("GET", "/devices?filter=low")
    assert [d["serial"] for d in low.body["devices"]] == ["M1", "S1"]


# --- authentication ------------------------------------------------------------------------


async def test_unauthenticated_calls_get_401(portal: Portal) -> None:
    anonymous = await portal.client()
    for method, path in (("GET", "/me"), ("GET", "/devices"), ("PATCH", "/sites/1")):
        reply = await anonymous.call(method, path, {} if method == "PATCH" else None)
        assert reply.status == 401 and reply.body["error"] == "unauthenticated"
    anonymous.token = "asrp_not-a-real-token"
    assert (await anonymous.call("GET", "/me")).status == 401
    wrong = await anonymous.login("sam", "not the password")
    assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
    assert (await anonymous.login("nobody")).status == 401


async def test_session_cookie_flags(portal: Portal) -> None:
    client = await portal.client()
    reply = await client.login("sam")
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("asr_session=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Lax" in cookie
    assert "sam" not in cookie.split(";")[0]  # encrypted, not readable


async def test_a_tampered_cookie_is_not_logged_in(portal: Portal) -> None:
    client = await portal.client("sam")
    assert (await client.call("GET", "/me")).status == 200
    value = next(c.value for c in client.http.cookie_jar if c.key == "asr_session")
    flipped = value[:-6] + ("A" if value[-6] != "A" else "B") + value[-5:]
    forged = await portal.client()
    forged.http.cookie_jar.update_cookies({"asr_session": flipped})
    assert (await forged.call("GET", "/me")).status == 401


async def test_logout_and_disabled_users(portal: Portal) -> None:
    sam = await portal.client("sam")
    assert (await sam.call("DELETE", "/session", csrf=False)).status == 403  # CSRF
    assert (await sam.call("DELETE", "/session")).status == 204
    assert (await sam.call("GET", "/me")).status == 401
    mona = await portal.client("mona")
    await people.disable_user(portal.db, "mona", portal.clock.now)
    assert (await mona.call("GET", "/devices")).status == 401  # re-checked on each request
    assert (await mona.login("mona")).status == 401


async def test_a_copy_of_the_cookie_kept_from_before_a_logout_is_refused(portal: Portal) -> None:
    sam = await portal.client("sam")
    value = next(c.value for c in sam.http.cookie_jar if c.key == "asr_session")
    copy = await portal.client()
    copy.http.cookie_jar.update_cookies({"asr_session": value})
    assert (await copy.call("GET", "/me")).status == 200
    assert (await sam.call("DELETE", "/session")).status == 204
    assert (await copy.call("GET", "/me")).status == 401  # ended on the server, not just here
    again = await portal.client("sam")  # a new login is a new session
    assert (await again.call("GET", "/me")).status == 200


async def test_a_session_lasts_max_age_hours(portal: Portal) -> None:
    sam = await portal.client("sam")
    portal.clock.advance(hours=13)  # portal.session_max_age_hours: 12
    assert (await sam.call("GET", "/me")).status == 401


async def test_api_tokens_for_scripts(portal: Portal) -> None:
    sam = await portal.client("sam")
    made = await sam.call("POST", "/tokens", {"name": "inventory"})
    assert made.status == 201 and made.body["token"].startswith("asrp_")
    script = await portal.client()
    script.token = made.body["token"]
    me = await script.call("GET", "/me")
    assert me.status == 200 and me.body["username"] == "sam" and "csrf_token" not in me.body
    # Bearer calls carry no cookie: no CSRF header needed for a change (R18).
    changed = await script.call("PATCH", f"/sites/{portal.ids['paris']}", {"address": "3 rue Y"})
    assert changed.status == 200, changed.text
    listed = await sam.call("GET", "/tokens")
    assert [t["name"] for t in listed.body["tokens"]] == ["inventory"]
    assert made.body["token"] not in listed.text
    assert (await sam.call("DELETE", "/tokens/inventory")).status == 204
    assert (await sam.call("DELETE", "/tokens/inventory")).status == 404
    assert (await script.call("GET", "/me")).status == 401  # revoked


# --- R18: address, contact, assignment -----------------------------------------------------


async def test_r18_self_service_customer_changes_its_address_audited(portal: Portal) -> None:
    sam = await portal.client("sam")
    lyon = portal.ids["lyon"]
    reply = await sam.call("PATCH", f"/sites/{lyon}", {"address": "5 quai Saint-Antoine, Lyon"})
    assert reply.status == 200, reply.text
    assert reply.body["address"] == "5 quai Saint-Antoine, Lyon"
    stored = await portal.db.read(
        lambda c: c.execute(select(sites.c.address).where(sites.c.id == lyon)).scalar_one()
    )
    assert stored == "5 quai Saint-Antoine, Lyon"
    entry = (await _audit(portal.db))[-1]
    assert (entry.actor, entry.role, entry.customer_id) == ("sam", "customer", "selfco")
    assert (entry.entity, entry.entity_key, entry.action) == ("site", str(lyon), "address-changed")
    assert entry.before["address"] == "1 rue de la Paix, Lyon"
    assert entry.after["address"] == "5 quai Saint-Antoine, Lyon"
    assert entry.at == portal.clock.now
    trail = await sam.call("GET", "/audit")
    assert trail.body["entries"][0]["action"] == "address-changed"


async def test_r18_wrong_role_is_refused_and_nothing_changes(portal: Portal) -> None:
    mona, hd, sam = [await portal.client(u) for u in ("mona", "hd", "sam")]
    before = await snapshot(portal.db)
    hq, lyon = portal.ids["hq"], portal.ids["lyon"]
    refused = await mona.call("PATCH", f"/sites/{hq}", {"address": "Elsewhere 1"})
    assert refused.status == 403 and "helpdesk" in refused.body["message"]  # MPS
    refused = await hd.call("PATCH", f"/sites/{lyon}", {"address": "Elsewhere 1"})
    assert refused.status == 403 and "self-service" in refused.body["message"]
    refused = await mona.call("PATCH", f"/contacts/{portal.ids['anna']}", {"email": "x@y.example"})
    assert refused.status == 403
    _no_trace(await sam.call("PATCH", f"/sites/{hq}", {"address": "Elsewhere 1"}), "Via Roma")
    _no_trace(await sam.call("PATCH", f"/contacts/{portal.ids['anna']}", {"email": "a@b.example"}))
    _no_trace(
        await sam.call(
            "PUT", "/devices/M1/assignment", {"site_id": hq, "contact_id": portal.ids["anna"]}
        )
    )
    assert await snapshot(portal.db) == before
    done = await hd.call("PATCH", f"/sites/{hq}", {"address": "Via Dante 2, Milano"})  # MPS
    assert done.status == 200
    assert (await _audit(portal.db))[-1].actor == "hd"


async def test_csrf_missing_on_a_cookie_patch_is_refused(portal: Portal) -> None:
    sam = await portal.client("sam")
    before = await snapshot(portal.db)
    path = f"/sites/{portal.ids['lyon']}"
    reply = await sam.call("PATCH", path, {"address": "Elsewhere 1"}, csrf=False)
    assert reply.status == 403 and reply.body["error"] == "csrf"
    wrong = await sam.call(
        "PATCH", path, {"address": "Elsewhere 1"}, csrf=False, headers={"X-CSRF-Token": "x"}
    )
    assert wrong.status == 403
    assert await snapshot(portal.db) == before


async def test_r18_contact_and_assignment(portal: Portal) -> None:
    sam = await portal.client("sam")
    bob = portal.ids["bob"]
    for body, field_ in (
        ({"email": "bob at selfco"}, "email"),
        ({"email": "bob @selfco.example"}, "email"),
        ({"language": "de"}, "language"),
        ({"colour": "red"}, "colour"),
    ):
        bad = await sam.call("PATCH", f"/contacts/{bob}", body)
        assert bad.status == 400 and bad.body["field"] == field_, bad.text
        assert bad.body["error"] == "invalid-request" and bad.body["message"]
    bad = await sam.call("PATCH", f"/sites/{portal.ids['lyon']}", {"address": "  "})
    assert bad.status == 400 and bad.body["field"] == "address"
    bad = await sam.call("PATCH", f"/sites/{portal.ids['lyon']}", {"address": "x" * 501})
    assert bad.status == 400 and bad.body["field"] == "address"
    ok = await sam.call("PATCH", f"/contacts/{bob}", {"email": "robert@selfco.example"})
    assert ok.status == 200 and ok.body["email"] == "robert@selfco.example"
    assert ok.body["display_name"] == "Bob" and ok.body["language"] == "fr"  # kept
    paris, carla = portal.ids["paris"], portal.ids["carla"]
    moved = await sam.call("PUT", "/devices/S1/assignment", {"site_id": paris, "contact_id": carla})
    assert moved.status == 200 and moved.body["site"]["name"] == "paris"
    assert moved.body["contact"]["name"] == "carla"
    row = await portal.db.read(
        lambda c: c.execute(
            select(asr_devices.c.site_id, asr_devices.c.contact_id).where(
                asr_devices.c.serial == "S1"
            )
        ).one()
    )
    assert tuple(row) == (paris, carla)
    other = await sam.call(
        "PUT", "/devices/S1/assignment", {"site_id": portal.ids["hq"], "contact_id": carla}
    )
    assert other.status == 400 and other.body["field"] == "site_id"
    actions = [(e.entity, e.action, e.before, e.after) for e in await _audit(portal.db)][-2:]
    assert actions[0][:2] == ("contact", "contact-changed")
    assert actions[0][2]["email"] == "bob@selfco.example"
    assert actions[1] == (
        "device",
        "assigned",
        {"site_id": portal.ids["lyon"], "contact_id": bob},
        {"site_id": paris, "contact_id": carla},
    )


async def test_bodies_are_checked(portal: Portal) -> None:
    sam = await portal.client("sam")
    path = f"/sites/{portal.ids['lyon']}"
    big = await sam.call("PATCH", path, {"address": "x" * 4000})
    assert big.status == 413  # portal.max_form_bytes: 2048
    text = await sam.call("PATCH", path, data=b"address=x", headers={"Content-Type": "text/plain"})
    assert text.status == 415
    broken = await sam.call("PATCH", path, data=b"{not json")
    assert broken.status == 400
    listed = await sam.call("PATCH", path, [1, 2])
    assert listed.status == 400
    missing = await sam.call("PATCH", path, {})
    assert missing.status == 400 and missing.body["field"] == "address"


# --- R14: extra orders ---------------------------------------------------------------------


async def test_r14_extra_orders_go_through_the_helpdesk(portal: Portal) -> None:
    sam, hd = await portal.client("sam"), await portal.client("hd")
    before = await snapshot(portal.db)
    extra = {"supply_id": "black", "quantity": 2, "note": "big print job next week"}
    refused = await sam.call("POST", "/devices/S1/extra-orders", extra)
    assert refused.status == 403 and "helpdesk" in refused.body["message"]  # R14
    assert await snapshot(portal.db) == before
    _no_trace(await sam.call("POST", "/devices/M1/extra-orders", extra))
    placed = await hd.call("POST", "/devices/S1/extra-orders", extra)
    assert placed.status == 201, placed.text
    assert placed.body["status"] == "placed" and placed.body["reference"].startswith("ASR-")
    assert placed.body["placed_by"] == "helpdesk"
    assert ("S1", "black", 2, "extra") in [
        (line["serial"], line["supply_id"], line["quantity"], line["reason"])
        for line in placed.body["lines"]
    ]
    shipment_id = placed.body["id"]
    status = await portal.db.read(
        lambda c: c.execute(
            select(shipments.c.status).where(shipments.c.id == shipment_id)
        ).scalar_one()
    )
    assert status == "placed"
    notices = await portal.db.read(
        lambda c: c.execute(
            select(notifications.c.kind, notifications.c.payload).where(
                notifications.c.kind == "order_placed"
            )
        ).all()
    )
    assert [n.payload["shipment"] for n in notices] == [shipment_id]  # R15
    entry = (await _audit(portal.db))[-1]
    assert (entry.actor, entry.entity, entry.action) == ("hd", "order", "extra-order")
    assert entry.after["quantity"] == 2
    # R13: the extra counts in the balance at once, for the customer to see.
    view = await sam.call("GET", "/devices/S1")
    black = next(s for s in view.body["supplies"] if s["supply_id"] == "black")
    assert black["balance"] == 2
    assert view.body["open_orders"][0]["id"] == shipment_id
    mine = await sam.call("GET", "/orders?status=placed")
    assert shipment_id in [o["id"] for o in mine.body["orders"]]
    bad = await hd.call("POST", "/devices/S1/extra-orders", {**extra, "quantity": 0})
    assert bad.status == 400 and bad.body["field"] == "quantity"
    bad = await hd.call("POST", "/devices/S1/extra-orders", {**extra, "supply_id": "drum"})
    assert bad.status == 400 and bad.body["field"] == "supply_id"


# --- R4: registration ----------------------------------------------------------------------


async def test_r4_registration_confirms_at_once(portal: Portal) -> None:
    sam, mona, hd = [await portal.client(u) for u in ("sam", "mona", "hd")]
    target = {"site_id": portal.ids["lyon"], "contact_id": portal.ids["bob"]}
    _no_trace(await mona.call("POST", "/devices/S2/registration", target), "selfco")
    refused = await hd.call("POST", "/devices/S2/registration", target)  # self-service
    assert refused.status == 403
    wrong = await sam.call(
        "POST", "/devices/S2/registration", {**target, "contact_id": portal.ids["anna"]}
    )
    assert wrong.status == 400 and wrong.body["field"] == "contact_id"
    done = await sam.call("POST", "/devices/S2/registration", target)
    assert done.status == 201, done.text
    assert done.body["registered"] and done.body["contact"]["name"] == "bob"
    supplies = await portal.db.read(
        lambda c: c.execute(
            select(asr_supplies.c.supply_id, asr_supplies.c.kind, asr_supplies.c.supply_index)
            .where(asr_supplies.c.serial == "S2")
            .order_by(asr_supplies.c.supply_index)
        ).all()
    )
    assert [tuple(s) for s in supplies] == [("black", "toner", "1.1"), ("waste", "waste", "1.2")]
    notices = await portal.db.read(
        lambda c: c.execute(
            select(notifications.c.recipient, notifications.c.payload, notifications.c.sent_at)
            .where(notifications.c.kind == "registered")
            .order_by(notifications.c.id)
        ).all()
    )
    assert (notices[-1].recipient, notices[-1].payload["serials"]) == ("contact", ["S2"])
    assert notices[-1].sent_at is None  # R4: in the outbox at once
    entry = (await _audit(portal.db))[-1]
    assert (entry.actor, entry.entity, entry.entity_key, entry.action) == (
        "sam",
        "device",
        "S2",
        "registered",
    )
    again = await sam.call("POST", "/devices/S2/registration", target)
    assert again.status == 400 and again.body["field"] == "serial"
    # MPS: the helpdesk registers, the customer's user may not.
    mps_target = {"site_id": portal.ids["hq"], "contact_id": portal.ids["anna"]}
    refused = await mona.call("POST", "/devices/M2/registration", mps_target)
    assert refused.status == 403 and "helpdesk" in refused.body["message"]
    done = await hd.call("POST", "/devices/M2/registration", mps_target)
    assert done.status == 201, done.text
    recipient = await portal.db.read(
        lambda c: c.execute(
            select(notifications.c.recipient)
            .where(notifications.c.kind == "registered")
            .order_by(notifications.c.id.desc())
        ).first()
    )
    assert recipient is not None and recipient[0] == "helpdesk"  # MPS: told to the helpdesk
    waiting = await hd.call("GET", "/unregistered-devices")
    assert waiting.body["devices"] == []


async def test_orders_are_listed_with_their_lines(portal: Portal) -> None:
    hd = await portal.client("hd")
    await hd.call("POST", "/devices/M1/extra-orders", {"supply_id": "black", "quantity": 1})
    listed = await hd.call("GET", "/orders?status=open")
    assert listed.status == 200 and listed.body["orders"]
    first = listed.body["orders"][0]
    assert first["address"] in (None, "Via Roma 1, 20100 Milano")
    lines = await portal.db.read(lambda c: c.execute(select(orders.c.serial)).all())
    assert {line["serial"] for o in listed.body["orders"] for line in o["lines"]} <= {
        s for (s,) in lines
    }
    bad = await hd.call("GET", "/orders?status=lost")
    assert bad.status == 400 and bad.body["field"] == "status"


# --- the description -----------------------------------------------------------------------


def _documented() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(api.openapi_text())
    return spec


def test_openapi_describes_every_route_and_no_other() -> None:
    spec = _documented()
    assert spec["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {
        (route.method, route.path)
        for route in api.ROUTES
        if isinstance(route, web.RouteDef) and route.method != "HEAD"
    }
    assert documented == served
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "asr_session"
    refs = json.dumps(spec).count('"$ref"')
    assert refs > 10
    for ref in _refs(spec):  # every $ref resolves
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, ref
            target = target[part]


def _refs(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                found.add(item)
            else:
                found |= _refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= _refs(item)
    return found


async def test_openapi_is_served(portal: Portal) -> None:
    anonymous = await portal.client()
    reply = await anonymous.call("GET", "/openapi.yaml")
    assert reply.status == 200 and yaml.safe_load(reply.text)["info"]["title"]


# --- the session key and the pages' guard --------------------------------------------------


def test_the_session_key_is_made_once_and_private(pki: Pki, tmp_path: Path) -> None:
    config = portal_config(pki, tmp_path)
    key = load_session_key(config)
    path = tmp_path / "portal-session.key"
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_session_key(config) == key  # kept: sessions survive a restart
    given = tmp_path / "given.key"
    given.write_text("too short\n")
    other = config.model_copy(
        update={"portal": config.portal.model_copy(update={"session_key_file": given})}
    )
    with pytest.raises(ConfigError, match="32 bytes"):
        load_session_key(other)


async def test_pages_send_anonymous_visitors_to_the_login(
    db: Database, pki: Pki, tmp_path: Path
) -> None:
    @login_required
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="inside")

    async def form(request: web.Request) -> web.Response:
        return web.Response(text=await csrf_token(request))

    async def post(request: web.Request) -> web.Response:
        await check_csrf(request, await request.post())
        return web.Response(text="saved")

    config = portal_config(pki, tmp_path)  # plain HTTP here: a Secure cookie would not return
    plain = config.model_copy(
        update={"portal": config.portal.model_copy(update={"cookie_secure": False})}
    )
    app = portal_app(plain, db, Clock())
    app.router.add_get("/fleet", page)
    app.router.add_get("/form", form)
    app.router.add_post("/form", post)
    async with TestServer(app) as server, TestClient(server) as client:
        token = await (await client.get("/form")).text()
        assert (await client.post("/form", data={"csrf_token": "forged"})).status == 403
        assert (await client.post("/form", data={})).status == 403
        saved = await client.post("/form", data={"csrf_token": token})
        assert saved.status == 200 and await saved.text() == "saved"
        response = await client.get("/fleet?filter=low", allow_redirects=False)
        assert response.status == 303
        target = URL(response.headers["Location"])
        assert target.path == "/login" and target.query["next"] == "/fleet?filter=low"
    assert safe_next("/fleet?filter=low") == "/fleet?filter=low"
    for outside in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert safe_next(outside) == "/"
