"""The demo's customers, end to end, on both databases: their devices report, are registered
through the portal's API, and their orders flow from placed to installed, with each email
received by a real SMTP server in the reader's language (R3, R4, R8, R13, R15, R16, R18).

Every boundary is real and on loopback: agents push signed readings over HTTPS; users call
the portal's API with their tokens; the requests go to the simulated warehouse over HTTPS,
signed; it reports back over HTTPS, signed; the mailer talks SMTP to aiosmtpd. The test's
clock stands for the days; the daily run is called as its schedule would call it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from collector.app import create_app
from collector.appkeys import COLLECTOR
from collector.config import CollectorConfig, WarehouseSection
from collector.customers import apply, load_customers
from collector.daily_run import run_plan
from collector.fulfil.outbound import Dispatcher
from collector.fulfil.simulated_app import SERVICE, simulated_warehouse_app
from collector.fulfilment import reference
from collector.notify.outbox import Mailer
from collector.replenish.settings import Rules
from collector.store import people
from collector.store.database import Database
from collector.store.schema import contacts, orders, shipment_events, shipments, sites
from collector.tls import server_context
from tests.collector.kit import Agent, Clock, Pki, reading
from tests.collector.test_fulfil import Keys, keys  # noqa: F401 (a fixture)
from tests.collector.test_mail import Inbox, _mail, smtp  # noqa: F401 (a fixture)
from wire.batch import Batch, BatchReading, Heartbeat, PrinterCounts
from wire.reading import Supply

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = "helpdesk@dealer.example"
PASSWORD = "a long demo password"

# The demo's devices: serial, customer, site, the contact it is registered to, and who
# registers it (R4: the helpdesk for the MPS customer, the customer's own user otherwise).
DEVICES = [
    ("RS-0001", "rossi", "milano", "anna", "anna"),
    ("DP-0001", "dupont", "lyon", "claire", "hd"),
    ("HL-0001", "harbour", "leeds", "sam", "sam"),
    ("HL-0002", "harbour", "leeds", "luca", "sam"),
]
# Where each device's emails go, and in which language: the contact's, else its customer's;
# an MPS customer's go to the helpdesk, in the helpdesk's language (R16).
READERS = {
    "RS-0001": ("anna.rossi@rossi.example", "it"),
    "DP-0001": (HELPDESK, "en"),
    "HL-0001": ("sam.taylor@harbour.example", "en"),
    "HL-0002": ("luca.ferri@harbour.example", "it"),
}
SUBJECTS = {
    "it": {
        "placed": "{} effettuato",
        "shipped": "{} spedito",
        "backordered": "{}: articoli in attesa",
        "backorder_shipped": "{}: spediti gli articoli in attesa",
    },
    "en": {
        "placed": "{} placed",
        "shipped": "{} shipped",
        "backordered": "{}: items on backorder",
        "backorder_shipped": "{}: backordered items shipped",
    },
}
USE_PER_DAY = 60  # tenths of grams of each toner: 2.5 % of a 240 g cartridge a day


def _waste(full: float) -> Supply:
    """A waste box that says how full it is (R5, R11)."""
    return Supply(
        index="1.5",
        description="Waste Toner Box",
        type="wasteToner",
        supply_class="filled",
        colour=None,
        unit="percent",
        max_capacity=100,
        level=round(full),
        percent=round(full, 1),
        grams_left=None,
        grams_used=None,
        quality="measured",
        kind="waste",
        receptacle=True,
    )


@dataclass
class Printer:
    """A simulated colour printer whose toners go down every day, and are replaced."""

    serial: str
    black: int = 1800
    waste: float = 10.0

    def use(self) -> None:
        self.black -= USE_PER_DAY
        self.waste += 0.5

    def replace_all(self) -> None:
        self.black, self.waste = 2400, 0.0

    def read(self) -> Any:
        read = reading(self.serial, level=self.black)
        return replace(read, supplies=(*read.supplies[:4], _waste(self.waste)))


METRICS_TOKEN = "metrics-token-of-the-order-flow"


@dataclass
class World:
    base_url: str
    http: aiohttp.ClientSession
    db: Database
    clock: Clock
    agents: dict[str, Agent]  # per site
    printers: dict[str, Printer]
    tokens: dict[str, str]  # per username: an API token
    dispatcher: Dispatcher
    mailer: Mailer
    warehouse: Any  # the simulated warehouse service
    inbox: Inbox
    seq: int = 0

    async def report(self) -> None:
        """Each site's agent pushes its printers' readings of the day, signed."""
        by_site: dict[str, list[BatchReading]] = defaultdict(list)
        for serial, _, site, _, _ in DEVICES:
            self.seq += 1
            by_site[site].append(
                BatchReading(
                    seq=self.seq,
                    read_at=self.clock() - timedelta(minutes=5),
                    printer=serial.lower(),
                    address=f"192.0.2.{self.seq % 250}:161",
                    reading=self.printers[serial].read(),
                )
            )
        for site, items in by_site.items():
            agent = self.agents[site]
            batch = Batch(
                agent_id=agent.agent_id,
                batch_id=str(uuid.uuid4()),
                sent_at=self.clock(),
                readings=tuple(items),
                heartbeat=Heartbeat(
                    agent_version="0.1.0",
                    uptime_seconds=3600.0,
                    printers=PrinterCounts(answering=len(items)),
                    spool_depth=0,
                    dropped_total=0,
                    last_poll_at=self.clock(),
                ),
            )
            reply = await agent.send(batch)
            assert reply.status == 200, reply.body

    async def api(self, user: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.base_url}/api/v1/portal{path}"
        async with self.http.request(method, url, json=body, headers=headers) as response:
            payload = await response.json()
            assert response.status < 300, (response.status, payload)
            return payload

    async def day(self) -> None:
        """A day: the printers print and report, the daily run, the warehouse, the mail."""
        self.clock.advance(days=1)
        for printer in self.printers.values():
            printer.use()
        await self.report()
        self.clock.advance(minutes=10)
        await run_plan(self.db, Rules(), self.clock())
        await self.exchange()

    async def exchange(self) -> None:
        sent = await self.dispatcher.send_due(self.clock())
        assert sent.error is None and not sent.failed
        pushed = await self.warehouse.push(self.clock())
        assert not pushed.refused and pushed.error is None
        mailed = await self.mailer.send_due(self.clock())
        assert mailed.error is None and not mailed.failed


async def _serve(app: web.Application, pki: Pki) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    context = server_context(pki.server_cert, pki.server_key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, f"https://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def world(
    db: Database,
    pki: Pki,
    keys: Keys,  # noqa: F811
    smtp: tuple[Inbox, int],  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[World]:
    clock = Clock()
    (tmp_path / "metrics-token").write_text(METRICS_TOKEN + "\n")
    config = CollectorConfig.model_validate(
        {
            "collector": {"state_dir": tmp_path},
            "server": {"host": "127.0.0.1", "port": 0},
            "plan": {"enabled": False},  # the test runs the day's plan itself
            "warehouse": {"inbound_secret_file": keys.inbound_file},
            # /metrics on the main port too, behind a bearer token
            "metrics": {"on_main_port": True, "token_file": tmp_path / "metrics-token"},
        }
    )
    collector_runner, base_url = await _serve(create_app(config, db, clock), pki)
    settings = WarehouseSection(
        ship_after_hours=20, deliver_after_hours=40, backorder_share=0.5, backorder_days=2, seed=5
    )
    warehouse_app = simulated_warehouse_app(
        keys.outbound,
        base_url,
        keys.inbound,
        settings,
        clock=clock,
        ssl_context=pki.client_context(),
    )
    warehouse_runner, warehouse_url = await _serve(warehouse_app, pki)
    webhook = WarehouseSection(
        mode="webhook",
        url=f"{warehouse_url}/fulfilment/requests",
        ca_file=pki.ca_cert,
        secret_file=keys.outbound_file,
    )
    inbox, port = smtp
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context()))
    dispatcher = Dispatcher(db, webhook)
    try:
        now = clock()
        await apply(db, load_customers(ROOT / "examples" / "demo" / "customers.toml"), now)
        tokens = {}
        for username, role, customer in (
            ("hd", "helpdesk", None),
            ("anna", "customer", "rossi"),
            ("sam", "customer", "harbour"),
        ):
            user_id = await people.add_user(db, username, PASSWORD, role, customer, now=now)
            tokens[username] = await people.create_api_token(db, user_id, "flow", now)
        agents = {}
        for _, customer, site, _, _ in DEVICES:
            if site not in agents:
                agent = Agent(http, base_url, clock)
                token, _ = await collector_runner.app[COLLECTOR].create_token(customer, site)
                assert (await agent.enroll(token)).status == 201
                agents[site] = agent
        yield World(
            base_url,
            http,
            db,
            clock,
            agents,
            {serial: Printer(serial) for serial, *_ in DEVICES},
            tokens,
            dispatcher,
            Mailer(db, _mail(port, helpdesk_language="en", helpdesk_address=HELPDESK)),
            warehouse_app[SERVICE],
            inbox,
        )
    finally:
        await dispatcher.close()
        await http.close()
        await warehouse_runner.cleanup()
        await collector_runner.cleanup()


async def _ids(db: Database) -> dict[tuple[str, str], int]:
    """Site and contact ids by (customer, name)."""
    found: dict[tuple[str, str], int] = {}
    for table in (sites, contacts):
        rows = await db.read(
            lambda c, t=table: c.execute(select(t.c.customer_id, t.c.name, t.c.id)).all()
        )
        found.update({(customer, name): id_ for customer, name, id_ in rows})
    return found


def _received(inbox: Inbox) -> list[tuple[str, str, str]]:
    """(to, language, subject) of every email the SMTP server took."""
    return [
        (parseaddr(str(m["To"]))[1], str(m["Content-Language"]), str(m["Subject"]))
        for m in inbox.messages
    ]


async def test_the_demo_fleet_is_registered_and_its_orders_flow_from_placed_to_installed(
    world: World,
) -> None:
    # The devices report before they are registered (R4: connected and registered).
    await world.report()
    unregistered = await world.api("sam", "GET", "/unregistered-devices")
    serials = {device["serial"] for device in unregistered["devices"]}
    assert serials == {"HL-0001", "HL-0002"}  # a customer sees its own only
    ids = await _ids(world.db)
    for serial, customer, site, contact, user in DEVICES:
        body = {"site_id": ids[(customer, site)], "contact_id": ids[(customer, contact)]}
        registered = await world.api(user, "POST", f"/devices/{serial}/registration", body)
        assert registered["serial"] == serial
    await world.exchange()
    # R4: a confirmation at once, to each device's reader, in the reader's language.
    confirmations = _received(world.inbox)
    assert sorted((to, lang) for to, lang, _ in confirmations) == sorted(READERS.values())
    world.inbox.messages.clear()

    # The toners go down until the daily run orders (R8), then the warehouse ships.
    for _ in range(40):
        await world.day()
        heads = await world.db.read(lambda c: c.execute(select(shipments)).all())
        if len(heads) >= len(DEVICES) and all(h.status == "delivered" for h in heads):
            break
    heads = await world.db.read(lambda c: c.execute(select(shipments)).all())
    assert len(heads) == len(DEVICES)  # one consolidated shipment per device and contact (R10)
    assert all(h.status == "delivered" for h in heads), [h.status for h in heads]

    # The new cartridges go in; the readings show it and the run marks them installed (R13).
    for printer in world.printers.values():
        printer.replace_all()
    await world.day()
    heads = await world.db.read(lambda c: c.execute(select(shipments)).all())
    assert [h.status for h in heads] == ["installed"] * len(DEVICES)
    events = await world.db.read(
        lambda c: c.execute(select(shipment_events).order_by(shipment_events.c.id)).all()
    )
    backordered = {e.shipment_id for e in events if e.status == "backordered"}
    assert 0 < len(backordered) < len(DEVICES)  # seed 5: some wait, some do not
    for head in heads:
        steps = [(e.status, e.source) for e in events if e.shipment_id == head.id]
        wait = [("backordered", "warehouse")] if head.id in backordered else []
        assert steps == [
            ("placed", "plan"),
            *wait,
            ("shipped", "warehouse"),
            ("delivered", "warehouse"),
            ("installed", "readings"),
        ]
        assert head.tracking and head.address  # R18: the address at order time

    # R15: placed, then shipped, or backordered then its shipping; each to its reader, in
    # the reader's language, and nothing else.
    lines = await world.db.read(
        lambda c: c.execute(select(orders.c.shipment_id, orders.c.serial)).all()
    )
    serial_of = {shipment_id: serial for shipment_id, serial in lines}
    expected = []
    for head in heads:
        ref = reference(head.id)
        to, language = READERS[serial_of[head.id]]
        steps = (
            ("placed", "backordered", "backorder_shipped")
            if head.id in backordered
            else (
                "placed",
                "shipped",
            )
        )
        expected.extend((to, language, SUBJECTS[language][step].format(ref)) for step in steps)
    received = _received(world.inbox)
    assert len(received) == len(expected)
    for to, language, marker in expected:
        assert any(
            (t, lang) == (to, language) and marker in subject for t, lang, subject in received
        ), (to, language, marker, received)

    # The collector's metrics show the outboxes as the database holds them.
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with world.http.get(world.base_url + "/metrics", headers=bearer) as response:
        assert response.status == 200
        metrics = await response.text()
    sent = f'asr_outbox_rows{{outbox="notifications",status="sent"}} {float(len(received) + 4)}'
    assert sent in metrics  # the four confirmations and every order email
    acked = f'asr_outbox_rows{{outbox="fulfilment_requests",status="acked"}} {float(len(heads))}'
    assert acked in metrics
    assert 'asr_outbox_rows{outbox="notifications",status="failed"} 0.0' in metrics
