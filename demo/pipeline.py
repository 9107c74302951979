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
This module starts the parts and runs the days; the world they live in is demo.world, a
day is demo.days, the closing figures are demo.summary, their words demo.words.
Is not: a load test (bench/), nor a second implementation of anything: each step calls the
code the services run, at the moment their schedules would.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import ssl
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from aiohttp import web

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
from collector.fulfil import signing
from collector.fulfil.outbound import Dispatcher
from collector.fulfil.simulated_app import SERVICE, simulated_warehouse_app
from collector.notify.outbox import Mailer
from collector.store import people
from collector.tls import fingerprint, self_signed, server_context
from demo.days import Demo, SiteAgent
from demo.mailbox import SmtpSink
from demo.printers import DemoPrinter
from demo.summary import summary
from demo.world import (
    CUSTOMERS,
    HELPDESK,
    SEED,
    USERS,
    DemoClock,
    Options,
    fresh_state_dir,
    places,
)
from sim.fleet import community
from sim.responder import Responder

log = logging.getLogger(__name__)


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
        layout = places(options.printers)
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
        for customer, site in dict.fromkeys((c, s) for c, s, _ in layout):
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
                for p, place in zip(printers, layout)
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
            layout,
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
        for line in await summary(demo):
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
