"""What ASR cannot forecast goes to a person, with the reason (issue 14; R7), on both databases.

Real readings through the ingest, the real daily run, then the helpdesk's queue and the
device's state: a printer whose toner gauge says nothing (-2) and that has no page counter is
listed ("no level and no page counter"), gets no order by guess, and its state says why; one
that says only "some remaining" with a page counter is watched, not listed, and ordered the
day it reads empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from collector.daily_run import run_plan
from collector.portal import helpdesk
from collector.records import Principal
from collector.replenish.settings import Rules
from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent
from collector.store import fleet as store
from collector.store.database import Database
from collector.store.schema import device_states, orders
from wire.reading import PrinterReading, Status, Supply

START = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
HD = Principal(1, "hd", "helpdesk", None)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _reading(serial: str, level: int, pages: int | None, empty: bool = False) -> PrinterReading:
    quality = "some-remaining" if level == -3 else "unknown"
    toner = Supply(
        index="1.1",
        description="Black Toner",
        type="toner",
        supply_class="consumed",
        colour="black",
        unit="percent",
        max_capacity=-2,
        level=level,
        percent=None,
        grams_left=None,
        grams_used=None,
        quality=quality if level < 0 else "unknown",
        kind="toner",
        receptacle=False,
    )
    errors = ("noToner",) if empty else ()
    return PrinterReading(
        serial=serial,
        serial_source="prtGeneralSerialNumber",
        model="MFP",
        sys_object_id=None,
        sys_descr="MFP",
        vendor=None,
        uptime_seconds=None,
        page_count=pages,
        power_on_count=None,
        counter_unit="impressions" if pages is not None else None,
        status=Status("running", "idle", errors, "ready"),
        supplies=(toner,),
    )


async def test_a_supply_with_nothing_to_go_on_is_listed_for_the_helpdesk(db: Database) -> None:
    clock = Clock()
    collector = Collector(db, Settings(), clock)
    await store.add_customer(
        db,
        "acme",
        "self",
        clock.now,
        sites_=[("milano", "Via Roma 1")],
        contacts_=[store.ContactSpec("anna", "anna@acme.example")],
    )
    black = (store.SupplySpec("black", "1.1", "toner", "black", "TN-K", None, 12000),)
    await store.register(
        db,
        [store.DeviceSpec(s, "acme", "milano", "anna", "MFP", black) for s in ("MUTE", "HINT")],
        clock.now,
    )
    agent = SimAgent(collector)
    token, _ = await collector.create_token("acme", "milano")
    await agent.enroll(token)
    for day in range(6):
        clock.now = START + timedelta(days=day)
        empty = day == 5  # HINT's cartridge runs out on the last day
        readings = [
            _reading("MUTE", -2, None),
            _reading("HINT", 0 if empty else -3, 1000 + 300 * day, empty=empty),
        ]
        await agent.push(readings, clock.now)
        result = await run_plan(db, Rules(), clock.now + timedelta(hours=11))
        assert result.ran
    listed = await helpdesk.cannot_forecast(db, HD)
    assert [(row.serial, row.supply_id, row.why) for row in listed] == [
        ("MUTE", "black", "no level and no page counter")
    ]
    states = await db.read(
        lambda c: dict(c.execute(select(device_states.c.serial, device_states.c.reason)).all())
    )
    assert "no level and no page counter" in states["MUTE"]
    placed = await db.read(lambda c: list(c.execute(select(orders.c.serial)).scalars()))
    assert placed == ["HINT"]  # empty: ordered that day; MUTE: nothing by guess
