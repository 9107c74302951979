"""The whole pipeline on loopback, on an accelerated clock: `make demo`.

Is: every part of the system, really started, in one process and one event loop, each behind
its real boundary on 127.0.0.1:
- printers: our SNMP responder (sim/) serving a fleet whose toner goes down as it prints
  (demo.printers); power-save printers asleep at night and slow to wake; one switched off for
  a while (it goes dark, is disconnected, R16, and comes back);
- the collector: the aiohttp app on SQLite in the state directory, with a self-signed TLS
  certificate, the portal and the APIs (collector.app.create_app);
- one agent per site, enrolled with a one-time token over HTTPS, pinning the collector's
  certificate; it polls over SNMP into its spool and pushes signed batches (agent.work);
- the simulated warehouse over HTTPS (signed requests in, signed updates back), shipping,
  backordering and delivering; the customer puts the delivered cartridges in when the
  printer runs low, and the readings show it (R13);
- the mailer, sending the outbox to an SMTP sink (demo.mailbox) that lists every email.
The clock is the demo's: it jumps from one moment of a simulated day to the next (polls at
06:30 and 17:00, the push, the daily run at 23:00), so weeks pass in a minute or two. The
simulated days end yesterday: after them the clock is the real one, so the portal (served on
with `--serve`) shows the fleet as of now.
Is not: a load test (bench/), nor a second implementation of anything: each step calls the
code the services run, at the moment their schedules would.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import shutil
import ssl
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from agent.config import CollectorSection as AgentCollectorSection
from agent.config import SpoolSection
from agent.delivery import Deliverer
from agent.enrollment import enroll
from agent.identity import KeyFiles
from agent.poller import Poller, PrinterSpec, SnmpClients
from agent.profile import load_profile
from agent.push import open_client
from agent.snmp.session import Credentials, Target
from agent.spool import Spool
from agent.state import SPOOL_FILE, STATE_FILE, load_state, make_state_dir
from agent.work import AgentWork
from collector.app import create_app
from collector.appkeys import COLLECTOR
from collector.config import CollectorConfig, MailSection, WarehouseSection
from collector.customers import apply, load_customers
from collector.daily_run import run_plan
from collector.fulfil import signing
from collector.fulfil.outbound import Dispatcher
from collector.fulfil.simulated_app import SERVICE, simulated_warehouse_app
from collector.notify.outbox import Mailer
from collector.replenish.settings import Rules
from collector.store import people
from collector.store.database import Database
from collector.store.schema import (
    asr_supplies,
    device_states,
    notifications,
    orders,
    readings,
    shipment_events,
    shipments,
    supply_tracks,
)
from collector.tls import fingerprint, self_signed, server_context
from demo.mailbox import SmtpSink
from demo.printers import DemoPrinter
from sim.fleet import community
from sim.responder import Responder

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = ROOT / "examples" / "demo" / "customers.toml"
HELPDESK = "helpdesk@dealer.example"
SEED = 7
# Where the printers are: (customer, site, supplies contact, how many), in printer order.
LAYOUT = (
    ("rossi", "milano", "anna", 4),
    ("rossi", "milano", "marco", 2),
    ("dupont", "lyon", "claire", 5),
    ("dupont", "paris", "claire", 4),
    ("harbour", "leeds", "sam", 5),
    ("harbour", "leeds", "luca", 4),
)
# Portal users: name, role, customer. Who registers a device (R4): the customer's own user
# for self-service customers, the helpdesk for MPS ones.
USERS = (
    ("helpdesk", "helpdesk", None),
    ("anna", "customer", "rossi"),
    ("claire", "customer", "dupont"),
    ("sam", "customer", "harbour"),
)
REGISTERS = {"rossi": "anna", "dupont": "helpdesk", "harbour": "sam"}
# What the demo's helpdesk answers for the SimLaser M460dn, a model no catalogue knows.
PART_NUMBERS = {"black": "SL-TN-K-M460", "waste": "SL-WT-M460"}
INSTALL_AT_PERCENT = 5.0  # the customer puts a delivered cartridge in when this low
POLLS = (time(6, 30), time(17, 0))  # before office hours (power-save asleep), and after
PLAN_AT = time(23, 0)


@dataclass(frozen=True)
class Options:
    """What `python -m demo` was asked for."""

    state_dir: Path
    days: int = 60
    printers: int = 24
    port: int = 8443
    serve: bool = False
    dark_from: int = 3  # the day one printer is switched off ...
    dark_until: int = 22  # ... and back on (R16: disconnected after 7 days, then reconnected)


class DemoClock:
    """The time every part sees: set by the demo while it runs, the real one after."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self.live = False

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) if self.live else self._now

    def set(self, when: datetime) -> None:
        self._now = max(self._now, when)


@dataclass
class SiteAgent:
    """One enrolled agent and its spool, reading its site's printers."""

    site: str
    work: AgentWork
    spool: Spool


@dataclass
class Demo:
    """The running pipeline: what each simulated day drives."""

    options: Options
    clock: DemoClock
    rules: Rules
    db: Database
    http: aiohttp.ClientSession  # the portal API's client, trusting the collector's pin
    base_url: str
    printers: list[DemoPrinter]
    places: list[tuple[str, str, str]]
    agents: list[SiteAgent]
    dispatcher: Dispatcher
    warehouse: Any  # collector.fulfil.simulated_app.WarehouseService
    mailer: Mailer
    sink: SmtpSink
    tokens: dict[str, str]  # API token per portal user
    say: Callable[[str], None]
    installs: int = 0
    used: Counter[int] = field(default_factory=Counter)  # cartridges put in, by order line
    waiting: set[tuple[str, str]] = field(default_factory=set)  # lines waiting for a part number
    answered: int = 0  # part numbers the helpdesk gave
    needed: int = 0  # supplies in the queue for a part number, at the last look

    @property
    def dark(self) -> DemoPrinter:
        """The printer that is switched off for a while: the first of Sam's in Leeds."""
        return self.printers[self.places.index(("harbour", "leeds", "sam"))]

    @property
    def unregistered(self) -> DemoPrinter:
        """The printer nobody registers: it reports, and waits in the portal's list (R4)."""
        return self.printers[-1]

    async def day(self, number: int, date: datetime) -> None:
        """One simulated day, each part at the moment its schedule would run it."""
        dark = self.options.dark_from <= number < self.options.dark_until
        if dark != self.dark.dark:
            self.dark.dark = dark
            self.say(f"   {self.dark.serial} is switched {'off' if dark else 'on again'}")
        read = await self._poll(date, POLLS[0])
        self.clock.set(_at(date, time(7, 0)))
        mails = await self.exchange()
        await self._helpdesk()
        installed = await self._install()
        pages = sum(p.print_day(date.weekday() < 5) for p in self.printers)
        read += await self._poll(date, POLLS[1])
        self.clock.set(_at(date, time(17, 5)))
        for agent in self.agents:
            await agent.work.push()
        if number == 0:
            await self.register()
        self.clock.set(_at(date, PLAN_AT))
        result = await run_plan(self.db, self.rules, self.clock())
        placed = int(result.counts.get("shipments", 0)) if result.ran else 0
        self.clock.set(_at(date, time(23, 5)))
        mails += await self.exchange()
        states = Counter(
            memory.state or "new"
            for agent in self.agents
            for memory in agent.work.state.printers.values()
        )
        self.say(
            f"day {number + 1:>2} {date:%a %d %b}: {pages:>5} pages printed;"
            f" {read:>2} readings from {len(POLLS)} polls of {len(self.printers)} printers"
            f" (at the last: {_counts(states, PRINTER_WORDS)});"
            f" {placed} shipment(s) placed, {installed} cartridge(s) put in, {mails} email(s)"
        )

    async def _poll(self, date: datetime, at: time) -> int:
        self.clock.set(_at(date, at))
        for printer in self.printers:
            printer.set_hour(at.hour)
        before = sum(agent.spool.stats().last_seq for agent in self.agents)
        await asyncio.gather(*(agent.work.poll() for agent in self.agents))
        return sum(agent.spool.stats().last_seq for agent in self.agents) - before

    async def exchange(self) -> int:
        """The outboxes: new shipments to the warehouse, its updates back, the mail; emails."""
        now = self.clock()
        await self.dispatcher.send_due(now)
        await self.warehouse.push(now)
        before = len(self.sink.mailbox.mails)
        await self.mailer.send_due(now)
        for mail in self.sink.mailbox.mails[before:]:
            self.say(f"   mail to {mail.to} [{mail.language}]: {mail.subject}")
        return len(self.sink.mailbox.mails) - before

    async def register(self) -> None:
        """The customers (the helpdesk for the MPS one) register the devices that report (R4)."""
        sites = await self._api("helpdesk", "GET", "/sites")
        site_ids = {(s["customer_id"], s["name"]): s["id"] for s in sites["sites"]}
        contact_ids = {
            (s["customer_id"], c["name"]): c["id"] for s in sites["sites"] for c in s["contacts"]
        }
        for printer, (customer, site, contact) in zip(self.printers, self.places):
            if printer is self.unregistered:
                continue
            body = {
                "site_id": site_ids[customer, site],
                "contact_id": contact_ids[customer, contact],
            }
            user = REGISTERS[customer]
            await self._api(user, "POST", f"/devices/{printer.serial}/registration", body)
        self.say(
            f"   {len(self.printers) - 1} devices registered through the portal's API;"
            f" {self.unregistered.serial} is left for you to register"
        )

    async def _api(self, user: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.base_url}/api/v1/portal{path}"
        async with self.http.request(method, url, json=body, headers=headers) as response:
            payload = await response.json()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} as {user}: {response.status} {payload}")
            return payload

    async def _helpdesk(self) -> None:
        """The helpdesk's queue, each morning: an order line that waited since yesterday for
        a part number (a model no catalogue knows) gets one, and its shipment goes out.
        Supplies without an order wait on in the queue, for you to see in the portal."""
        queue = await self._api("helpdesk", "GET", "/helpdesk/queue")
        waiting = {
            (row["serial"], row["supply_id"])
            for row in queue["part_numbers_needed"]
            if row["waiting_lines"]
        }
        for serial, supply_id in sorted(waiting & self.waiting):
            number = PART_NUMBERS.get(supply_id, f"SL-{supply_id.upper()}-M460")
            path = f"/devices/{serial}/supplies/{supply_id}/part-number"
            answer = await self._api("helpdesk", "PUT", path, {"part_number": number})
            released = ", ".join(answer["released"]) or "none yet"
            self.say(f"   helpdesk: {serial} {supply_id} is {number}; released {released}")
            self.answered += 1
        self.waiting = waiting - self.waiting
        self.needed = len(queue["part_numbers_needed"])

    async def _install(self) -> int:
        """The customer puts delivered cartridges in the printers that run low (R13)."""
        lines = await self.db.read(
            lambda c: c.execute(
                select(orders.c.id, orders.c.serial, asr_supplies.c.supply_index, orders.c.quantity)
                .join(shipments, shipments.c.id == orders.c.shipment_id)
                .join(
                    asr_supplies,
                    (asr_supplies.c.serial == orders.c.serial)
                    & (asr_supplies.c.supply_id == orders.c.supply_id),
                )
                .where(shipments.c.status == "delivered")
                .order_by(orders.c.id)
            ).all()
        )
        by_serial = {p.serial: p for p in self.printers}
        done = 0
        for line_id, serial, supply_index, quantity in lines:
            printer = by_serial.get(serial)
            if self.used[line_id] >= quantity or printer is None:
                continue
            index = int(str(supply_index).rsplit(".", 1)[-1])
            if printer.low(index, INSTALL_AT_PERCENT) and printer.install(index):
                self.used[line_id] += 1
                done += 1
        self.installs += done
        return done

    async def summary(self) -> list[str]:
        """The closing figures: devices, readings, orders, shipments, emails."""

        def read(c: Any) -> dict[str, Any]:
            return {
                "readings": c.execute(select(func.count()).select_from(readings)).scalar_one(),
                "states": dict(
                    c.execute(
                        select(device_states.c.state, func.count()).group_by(device_states.c.state)
                    ).all()
                ),
                "lines": c.execute(select(func.count()).select_from(orders)).scalar_one(),
                "cartridges": c.execute(select(func.sum(orders.c.quantity))).scalar_one() or 0,
                "shipments": dict(
                    c.execute(
                        select(shipments.c.status, func.count()).group_by(shipments.c.status)
                    ).all()
                ),
                "backordered": c.execute(
                    select(func.count(func.distinct(shipment_events.c.shipment_id))).where(
                        shipment_events.c.status == "backordered"
                    )
                ).scalar_one(),
                "notices": dict(
                    c.execute(
                        select(notifications.c.kind, func.count()).group_by(notifications.c.kind)
                    ).all()
                ),
            }

        figures = await self.db.read(read)
        gauges = await self._gauges()
        mails = self.sink.mailbox.mails
        languages = Counter(m.language for m in mails)
        registered = [p for p in self.printers if p is not self.unregistered]
        dry = sum(p.stock_out_days for p in registered)
        return [
            f"devices    {len(self.printers)} printers, {len(registered)} registered:"
            f" {_counts(Counter(figures['states']), DEVICE_WORDS)}",
            f"readings   {figures['readings']} stored by the collector",
            f"orders     {figures['lines']} order lines, {figures['cartridges']} cartridges;"
            f" {self.installs} put in by the customers",
            f"toner      registered printers out of toner: {dry} printer-day(s);"
            f" {self.unregistered.serial}, not registered, ran dry for"
            f" {self.unregistered.stock_out_days} working day(s)",
            f"shipments  {sum(figures['shipments'].values())}:"
            f" {_counts(Counter(figures['shipments']))}; {figures['backordered']} were backordered",
            f"emails     {len(mails)} received by the SMTP sink ({_counts(languages)}):"
            f" {_counts(Counter(figures['notices']), EMAIL_WORDS)}",
            *gauges,
            f"helpdesk   {self.answered} part number(s) given for the SimLaser M460dn, a model no"
            f" catalogue knows (its shipments waited for them); {self.needed} supply(ies) in"
            " the queue for one",
        ]

    async def _gauges(self) -> list[str]:
        """A line per printer whose gauge is not exact: what ASR made of it (issue 14)."""
        odd = [p for p in self.printers if p.gauge != "exact" and p is not self.unregistered]

        def read(c: Any) -> dict[str, tuple[int, Any]]:
            out = {}
            for p in odd:
                ordered = c.execute(
                    select(func.coalesce(func.sum(orders.c.quantity), 0)).where(
                        orders.c.serial == p.serial
                    )
                ).scalar_one()
                why = c.execute(
                    select(supply_tracks.c.forecast)
                    .where(supply_tracks.c.serial == p.serial)
                    .order_by(supply_tracks.c.supply_id)
                ).first()
                out[p.serial] = (ordered, why[0].get("why") if why else None)
            return out

        found = await self.db.read(read)
        names = {"some-remaining": '"some remaining"', "steps:25": "steps of 25 %"}
        return [
            f"gauge      {p.serial} ({names.get(p.gauge, p.gauge)}):"
            f" {found[p.serial][0]} cartridge(s) ordered, {p.stock_out_days} day(s) out;"
            f" black: {found[p.serial][1] or 'no forecast yet'}"
            for p in odd
        ]


def _at(date: datetime, at: time) -> datetime:
    return datetime.combine(date.date(), at, tzinfo=timezone.utc)


# What the summary says for a registered device's state (collector/replenish/lifecycle.py),
# in a customer's words.
DEVICE_WORDS = {
    "disconnected": "not heard from (disconnected)",
    "no-usage-rate": "still learning their usage",
    "no-toner-pending": "no toner due",
    "activation": "toner due, not ordered yet",
    "toner-ordered": "toner on its way",
    "toner-delivered": "toner delivered, not put in yet",
    "toner-replaced": "new toner put in",
}
# And for each kind of email (collector/notify/compose.py, KINDS), what it tells the reader.
EMAIL_WORDS = {
    "registered": "device registered",
    "order_placed": "order placed",
    "shipped": "order shipped",
    "backordered": "order delayed (backordered)",
    "backorder_shipped": "delayed order shipped",
    "disconnected": "printer not heard from",
    "disconnected_followup": "printer still not heard from",
    "reconnected": "printer heard from again",
}
# And for a printer as its agent saw it at the day's last poll (agent/poller.py).
PRINTER_WORDS = {
    "answering": "answering",
    "asleep": "asleep (power-save)",
    "unreachable": "not answering",
    "refused": "refusing the credentials",
    "not-a-printer": "not a printer",
    "faulty": "answering garbled",
    "new": "not polled yet",
}


def _counts(counter: Counter[str], words: dict[str, str] | None = None) -> str:
    named = Counter[str]()
    for name, n in counter.items():
        named[(words or {}).get(name, name)] += n
    return ", ".join(f"{n} {name}" for name, n in sorted(named.items())) or "none"


def _places(count: int) -> list[tuple[str, str, str]]:
    """Each printer's (customer, site, contact): LAYOUT's shares scaled to `count` printers."""
    total = sum(share for *_, share in LAYOUT)
    out: list[tuple[str, str, str]] = []
    for customer, site, contact, share in LAYOUT:
        out += [(customer, site, contact)] * max(1, round(share * count / total))
    while len(out) < count:
        out.append(out[-1])
    return out[:count]


MARKER = ".asr-demo"  # marks a state directory as the demo's, which a new run may wipe


def fresh_state_dir(path: Path) -> Path:
    """An empty state directory for this run: the last run's is wiped (a run starts clean)."""
    if path.exists():
        if not (path / MARKER).exists() and any(path.iterdir()):
            raise SystemExit(
                f"{path} exists and is not a demo state directory (no {MARKER} in it):"
                " not wiping it; choose another --state-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by `python -m demo`; wiped by its next run\n")
    return path


async def _serve(
    stack: AsyncExitStack, app: web.Application, context: ssl.SSLContext, port: int
) -> str:
    """Serve `app` over TLS on 127.0.0.1:`port` (a free one if taken); its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    except OSError:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    return f"https://127.0.0.1:{runner.addresses[0][1]}"


def _keys(directory: Path) -> tuple[Path, Path]:
    """The two warehouse keys: ours to sign requests, the warehouse's to sign updates."""
    outbound, inbound = directory / "warehouse-outbound.key", directory / "warehouse-inbound.key"
    for path in (outbound, inbound):
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        path.chmod(0o600)
    return outbound, inbound


async def run(options: Options, say: Callable[[str], None]) -> Demo:
    """Start everything, run the days, print the summary; serve on if asked."""
    state = fresh_state_dir(options.state_dir)
    logging.basicConfig(
        filename=state / "demo.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=options.days)
    clock = DemoClock(start)
    async with AsyncExitStack() as stack:
        profile = load_profile()
        places = _places(options.printers)
        printers = [
            DemoPrinter.make(profile, n, SEED, community(n)) for n in range(options.printers)
        ]
        responder = Responder({p.community: p.sim for p in printers})
        snmp_port = await stack.enter_async_context(responder)
        sink = await stack.enter_async_context(SmtpSink(state / "mail"))

        # The collector: SQLite in its state directory, self-signed TLS, the portal on.
        home = state / "collector"
        cert, key, _ = self_signed(home, "127.0.0.1", datetime.now(timezone.utc))
        pin = fingerprint(cert)
        outbound_key, inbound_key = _keys(home)
        config = CollectorConfig.model_validate(
            {
                "collector": {"state_dir": home},
                "server": {"host": "127.0.0.1", "port": options.port},
                "plan": {"enabled": False},  # the demo's clock runs it at 23:00
                "warehouse": {"inbound_secret_file": inbound_key},
            }
        )
        app = create_app(config, clock=clock)
        base_url = await _serve(stack, app, server_context(cert, key), options.port)
        collector = app[COLLECTOR]
        db = collector.db
        trust = ssl.create_default_context(cafile=cert)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust))
        stack.push_async_callback(http.close)

        # Customers, and the portal's users with a password made for this run.
        now = clock()
        await apply(db, load_customers(CUSTOMERS), now)
        password = secrets.token_urlsafe(12)
        tokens = {}
        for username, role, customer in USERS:
            user_id = await people.add_user(db, username, password, role, customer, now=now)
            tokens[username] = await people.create_api_token(db, user_id, "demo", now)
        (state / "logins.txt").write_text(
            "".join(f"{u} {password}\n" for u, *_ in USERS), encoding="utf-8"
        )
        say(f"portal     {base_url}/  (self-signed certificate, SHA-256 {pin[:23]}...)")
        say(
            f"login      {', '.join(u for u, *_ in USERS)}; password {password}"
            f"  (also in {state / 'logins.txt'})"
        )

        # The simulated warehouse, over HTTPS both ways, signed both ways.
        warehouse_app = simulated_warehouse_app(
            signing.load_key(outbound_key),
            base_url,
            signing.load_key(inbound_key),
            WarehouseSection(
                ship_after_hours=20,
                deliver_after_hours=30,
                backorder_share=0.2,
                backorder_days=3,
                seed=SEED,
            ),
            clock=clock,
            ssl_context=trust,
        )
        warehouse_url = await _serve(stack, warehouse_app, server_context(cert, key), 0)
        dispatcher = Dispatcher(
            db,
            WarehouseSection(
                mode="webhook",
                url=f"{warehouse_url}/fulfilment/requests",
                ca_file=cert,
                secret_file=outbound_key,
            ),
        )
        stack.push_async_callback(dispatcher.close)
        mailer = Mailer(
            db,
            MailSection(
                enabled=True,
                host="127.0.0.1",
                port=sink.port,
                from_address="asr@dealer.example",
                helpdesk_address=HELPDESK,
                helpdesk_language="en",
                portal_url=f"{base_url}/",
                timeout_seconds=10,
            ),
        )

        # One agent per site, enrolled with a one-time token, pinning the collector.
        clients = await stack.enter_async_context(SnmpClients())
        agents = []
        link = AgentCollectorSection(url=base_url, ca_file=cert, pin_sha256=pin)
        spooling = SpoolSection()
        for customer, site in dict.fromkeys((c, s) for c, s, _ in places):
            agent_dir = make_state_dir(state / "agents" / site)
            client = await stack.enter_async_context(open_client(link))
            token, _ = await collector.create_token(customer, site)
            identity = await enroll(agent_dir, client, token, spooling.cap_rows, clock())
            spool = Spool.open(agent_dir / SPOOL_FILE, spooling.cap_rows)
            stack.callback(spool.close)
            specs = [
                PrinterSpec(
                    p.community,
                    Target("127.0.0.1", snmp_port, timeout=0.1, retries=2, backoff=1.0),
                    Credentials(community=p.community),
                )
                for p, place in zip(printers, places)
                if place[:2] == (customer, site)
            ]
            deliverer = Deliverer(
                spool,
                client,
                identity.agent_id,
                KeyFiles(agent_dir),
                spooling.batch_size,
                link.max_body_bytes,
                clock,
            )
            poller = Poller(profile, clients, clock=clock)
            state_path = agent_dir / STATE_FILE
            work = AgentWork(
                specs, poller, spool, deliverer, load_state(state_path), state_path, clock
            )
            agents.append(SiteAgent(site, work, spool))
        say(
            f"fleet      {len(printers)} simulated printers on 127.0.0.1:{snmp_port} (SNMP),"
            f" {len(agents)} agents enrolled, warehouse {warehouse_url}, SMTP 127.0.0.1:{sink.port}"
        )
        say(
            f"clock      {options.days} simulated days from {start:%a %d %b %Y}, then the real"
            " time; each line below is one day"
        )
        demo = Demo(
            options,
            clock,
            config.rules(),
            db,
            http,
            base_url,
            printers,
            places,
            agents,
            dispatcher,
            warehouse_app[SERVICE],
            mailer,
            sink,
            tokens,
            say,
        )
        for number in range(options.days):
            await demo.day(number, start + timedelta(days=number))
        clock.live = True
        await demo.exchange()
        say("")
        say(f"summary after {options.days} simulated days:")
        for line in await demo.summary():
            say("  " + line)
        say(f"  files      emails in {sink.mailbox.directory}, the log in {state / 'demo.log'}")
        if options.serve:
            say("")
            say(f"serving the portal at {base_url}/ until Ctrl-C")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:  # Ctrl-C: the way to end serving, not a failure
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                say("stopped serving")
        return demo
