"""The browser tests' world: two customers, their devices and a month of readings, planned.

Readings reach the store as an agent's do: decoded Printer-MIB rows in signed batches through
the collector's real ingest (collector.simulation.agent); the real daily run plans each day
(R6 to R16), so the device pages show real levels, rates, balances, orders and states.
- acme: MPS, Italian, sites milano and torino, contacts anna and marco. ACME-MI-001 reaches
  the 21-day trigger (R8: an order with ACME-MI-002, R10); ACME-MI-002 had a new cartridge
  installed mid-month (R13: the chart's refill); ACME-TO-001 stopped reporting (R16).
- bistro: self-service, French, site paris, contact claire. BIST-PA-001 registered;
  BIST-PA-009 reports but is not registered (R4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.daily_run import run_plan
from collector.replenish.settings import Rules
from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import SupplySpec as SimSupply
from collector.simulation.world import Slot
from collector.store import fleet, people
from collector.store.database import Database
from collector.store.migrate import migrate

DAYS = 30
PASSWORD = "correct horse battery"
BLACK = SimSupply("black", "toner", "black", "TN-K", 300.0, 300.0)
CYAN = SimSupply("cyan", "toner", "cyan", "TN-C", 200.0, 200.0)
WASTE = SimSupply("waste", "waste", None, "WT-1", 400.0, 0.0)


@dataclass(frozen=True)
class Printer:
    serial: str
    customer: str
    site: str
    contact: str | None  # None: reported, not registered (R4)
    model: str
    start: dict[str, float]  # grams at the start, per supply id
    grams_per_day: dict[str, float]
    spares: int = 0  # cartridges on site: one goes in when the installed one empties
    stops_after: int | None = None  # the day it stops reporting (R16)


PRINTERS = (
    Printer(
        "ACME-MI-001",
        "acme",
        "milano",
        "anna",
        "Acme ColorLaser CL-4500dn",
        {"black": 210.0, "cyan": 150.0},
        {"black": 5.0, "cyan": 1.5},
    ),
    Printer(
        "ACME-MI-002",
        "acme",
        "milano",
        "anna",
        "Acme MonoLaser ML-300",
        {"black": 40.0},
        {"black": 4.0},
        spares=1,
    ),
    Printer(
        "ACME-TO-001",
        "acme",
        "torino",
        "marco",
        "Acme MonoLaser ML-300",
        {"black": 250.0},
        {"black": 3.0},
        stops_after=DAYS - 12,
    ),
    Printer(
        "BIST-PA-001",
        "bistro",
        "paris",
        "claire",
        "Acme MonoLaser ML-300",
        {"black": 260.0},
        {"black": 2.0},
    ),
    Printer("BIST-PA-009", "bistro", "paris", None, "Acme MonoLaser ML-300", {"black": 280.0}, {}),
)
USERS: dict[str, tuple[str, str | None]] = {
    # username: (role, customer)
    "giulia.helpdesk": ("helpdesk", None),
    "anna.acme": ("customer", "acme"),
    "claire.bistro": ("customer", "bistro"),
}


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _specs(printer: Printer) -> list[SimSupply]:
    return [s for s in (BLACK, CYAN) if s.id in printer.start] + [WASTE]


async def seed(db_url: str, now: datetime) -> None:
    """Migrate the database, then make the world: customers, devices, readings, plans, users."""
    db = Database.open(db_url)
    try:
        await migrate(db)
        await _seed(db, now)
    finally:
        await db.close()


async def _seed(db: Database, now: datetime) -> None:
    clock = _Clock(now - timedelta(days=DAYS))
    await fleet.add_customer(
        db,
        "acme",
        "mps",
        clock.now,
        name="Acme S.p.A.",
        language="it",
        sites_=[
            ("milano", "Via Roma 1, 20121 Milano MI"),
            ("torino", "Corso Francia 10, 10138 Torino TO"),
        ],
        contacts_=[
            fleet.ContactSpec("anna", "anna.rossi@acme.example", "Anna Rossi", "it"),
            fleet.ContactSpec("marco", "marco.bianchi@acme.example", "Marco Bianchi", "it"),
        ],
    )
    await fleet.add_customer(
        db,
        "bistro",
        "self",
        clock.now,
        name="Bistro du Coin SARL",
        language="fr",
        sites_=[("paris", "12 rue de la Paix, 75002 Paris")],
        contacts_=[fleet.ContactSpec("claire", "claire.martin@bistro.example", "Claire Martin")],
    )
    await fleet.register(
        db,
        [
            fleet.DeviceSpec(
                p.serial,
                p.customer,
                p.site,
                p.contact,
                p.model,
                tuple(
                    fleet.SupplySpec(
                        s.id, supply_index(i), s.kind, s.colour, s.sku, s.capacity_grams
                    )
                    for i, s in enumerate(_specs(p))
                ),
            )
            for p in PRINTERS
            if p.contact is not None
        ],
        clock.now,
    )
    collector = Collector(db, Settings(), clock)
    agents: dict[tuple[str, str], SimAgent] = {}
    for customer, site in sorted({(p.customer, p.site) for p in PRINTERS}):
        agent = SimAgent(collector)
        token, _ = await collector.create_token(customer, site)
        await agent.enroll(token)
        agents[(customer, site)] = agent
    slots = {
        p.serial: [
            Slot(s, p.start.get(s.id, s.start_grams), spares=p.spares if s.kind != "waste" else 0)
            for s in _specs(p)
        ]
        for p in PRINTERS
    }
    rules = Rules()
    for day in range(1, DAYS + 1):
        clock.now = now - timedelta(days=DAYS - day, hours=2)
        for (customer, site), agent in agents.items():
            readings = []
            for p in PRINTERS:
                if (p.customer, p.site) != (customer, site):
                    continue
                if p.stops_after is not None and day > p.stops_after:
                    continue
                for slot in slots[p.serial]:
                    used = p.grams_per_day.get(slot.spec.id, 0.0)
                    slot.use(used if not slot.waste else sum(p.grams_per_day.values()) * 0.1)
                readings.append(agent.read(p.serial, p.model, slots[p.serial]))
            await agent.push(readings, clock.now)
        await run_plan(db, rules, clock.now + timedelta(minutes=30))
    for username, (role, customer_id) in USERS.items():
        await people.add_user(db, username, PASSWORD, role, customer_id, now=now)
