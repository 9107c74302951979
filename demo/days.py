"""The demo's day loop: one simulated day, each part at the moment its schedule would run it.

Is: the running pipeline (Demo) and what a day drives on it: one printer switched off and on
again (R16), the agents' polls at 06:30 and 17:00 and their push at 17:05, the devices'
registration through the portal's API on the first day (R4), the helpdesk's answers for
part numbers, the customers putting delivered cartridges in (R13), the daily run at 23:00
and the outboxes' passes (warehouse, mail) at 07:00 and 23:05; a line per day.
Is not: the start of the parts (demo.pipeline), nor the closing summary (demo.summary).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import aiohttp

from agent.spool import Spool
from agent.work import AgentWork
from collector.daily_run import run_plan
from collector.fulfil.outbound import Dispatcher
from collector.notify.outbox import Mailer
from collector.replenish.settings import Rules
from collector.store.database import Database
from collector.store.read_summary import delivered_lines
from demo.mailbox import SmtpSink
from demo.printers import DemoPrinter
from demo.words import PRINTER_WORDS, counts
from demo.world import (
    INSTALL_AT_PERCENT,
    PART_NUMBERS,
    PLAN_AT,
    POLLS,
    REGISTERS,
    DemoClock,
    Options,
    at,
)


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
        self.clock.set(at(date, time(7, 0)))
        mails = await self.exchange()
        await self._helpdesk()
        installed = await self._install()
        pages = sum(p.print_day(date.weekday() < 5) for p in self.printers)
        read += await self._poll(date, POLLS[1])
        self.clock.set(at(date, time(17, 5)))
        for agent in self.agents:
            await agent.work.push()
        if number == 0:
            await self.register()
        self.clock.set(at(date, PLAN_AT))
        result = await run_plan(self.db, self.rules, self.clock())
        placed = int(result.counts.get("shipments", 0)) if result.ran else 0
        self.clock.set(at(date, time(23, 5)))
        mails += await self.exchange()
        states = Counter(
            memory.state or "new"
            for agent in self.agents
            for memory in agent.work.state.printers.values()
        )
        self.say(
            f"day {number + 1:>2} {date:%a %d %b}: {pages:>5} pages printed;"
            f" {read:>2} readings from {len(POLLS)} polls of {len(self.printers)} printers"
            f" (at the last: {counts(states, PRINTER_WORDS)});"
            f" {placed} shipment(s) placed, {installed} cartridge(s) put in, {mails} email(s)"
        )

    async def _poll(self, date: datetime, when: time) -> int:
        self.clock.set(at(date, when))
        for printer in self.printers:
            printer.set_hour(when.hour)
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
        by_serial = {p.serial: p for p in self.printers}
        done = 0
        for line in await delivered_lines(self.db):
            printer = by_serial.get(line.serial)
            if self.used[line.id] >= line.quantity or printer is None:
                continue
            index = int(line.supply_index.rsplit(".", 1)[-1])
            if printer.low(index, INSTALL_AT_PERCENT) and printer.install(index):
                self.used[line.id] += 1
                done += 1
        self.installs += done
        return done
