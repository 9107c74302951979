"""A small world for the scale-out tests: one self-service customer, two registered devices,
eight days of readings that bring one to the 21-day trigger (R8) and the other into its
shipment (R10), a waste container with each black toner (R11)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import SupplySpec as SimSupply
from collector.simulation.world import Slot
from collector.store import fleet
from collector.store.database import Database
from wire.batch import Batch, BatchReading, Heartbeat, PrinterCounts

DAYS = 8
SERIALS = ("A1", "A2")
BLACK = SimSupply("black", "toner", "black", "TN-K", 300.0, 300.0)
WASTE = SimSupply("waste", "waste", None, "WT-1", 40.0, 20.0)
# What the run at the end of the eight days orders: (serial, supply) of each line.
ORDERED = [("A1", "black"), ("A1", "waste"), ("A2", "black"), ("A2", "waste")]


async def make_world(db: Database, since: datetime) -> tuple[str, SimAgent]:
    """The customer and its devices, registered at `since` in a migrated database; an
    enrollment token, and the simulated agent that reads the devices (its key not enrolled)."""
    await fleet.add_customer(
        db,
        "acme",
        "self",
        since,
        sites_=[("milano", "Via Roma 1")],
        contacts_=[fleet.ContactSpec("anna", "anna@acme.example")],
    )
    supplies = tuple(
        fleet.SupplySpec(s.id, supply_index(i), s.kind, s.colour, s.sku, s.capacity_grams)
        for i, s in enumerate((BLACK, WASTE))
    )
    devices = [fleet.DeviceSpec(s, "acme", "milano", "anna", "MFP", supplies) for s in SERIALS]
    await fleet.register(db, devices, since)
    collector = Collector(db, Settings())
    token, _ = await collector.create_token("acme", "milano")
    return token, SimAgent(collector)


def batches(reader: SimAgent, agent_id: str, since: datetime, now: datetime) -> list[Batch]:
    """A batch a day after `since`, sent at `now`; 10 g of black a day per device."""
    slots = {
        "A1": (Slot(BLACK, 220.0), Slot(WASTE, 20.0)),
        "A2": (Slot(BLACK, 300.0), Slot(WASTE, 20.0)),
    }
    out, seq = [], 0
    for day in range(1, DAYS + 1):
        items = []
        for serial, (black, waste) in slots.items():
            black.use(10.0)
            waste.use(1.0)
            seq += 1
            reading = reader.read(serial, "MFP", [black, waste])
            items.append(
                BatchReading(seq, since + timedelta(days=day), serial, "192.0.2.1:161", reading)
            )
        heartbeat = Heartbeat("0.1.0", 60.0, PrinterCounts(answering=2), len(items), 0, now)
        out.append(Batch(agent_id, str(uuid.uuid4()), now, tuple(items), heartbeat))
    return out
