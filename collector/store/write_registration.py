"""A registration as written (R4, R5): a reporting device into ASR, in one transaction.

Is: the device's owner (the customer of the site whose agent read it last) handed to the
caller's `Check` (collector.store.write_changes), then its ASR supplies from its latest
reading (toner, ink, waste; drums, fusers and kits are ordered by hand), each with its part
number and rated yield (R15; docs/catalogue.md), the confirmation notice and the audit row.
Is not: who may register (collector.portal.changes), or the bulk registration of a customers
file (collector.store.fleet.register).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from collector import catalogue
from collector.errors import InvalidRequest
from collector.records import Principal
from collector.replenish.planner import ASR_KINDS
from collector.store import fleet
from collector.store.database import Database
from collector.store.people import audit
from collector.store.schema import (
    agents,
    asr_devices,
    devices,
    readings,
    sites,
    supplies,
)
from collector.store.write_changes import Check, approved, in_transaction, site_and_contact


def _supply_specs(
    conn: Connection, serial: str, model: str | None, book: catalogue.Catalogue
) -> list[fleet.SupplySpec]:
    """R4, R5: the ASR supplies of the device's latest reading (toner, ink, waste), each with
    its part number and rated yield (R15; docs/catalogue.md)."""
    latest = conn.execute(
        select(readings.c.id, readings.c.payload)
        .where(readings.c.serial == serial)
        .order_by(readings.c.read_at.desc(), readings.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return []
    described = {str(s.get("index")): s for s in (latest.payload or {}).get("supplies", ()) if s}
    rows = conn.execute(
        select(supplies.c.supply_index, supplies.c.kind, supplies.c.colour, supplies.c.max_capacity)
        .where(supplies.c.reading_id == latest.id)
        .order_by(supplies.c.supply_index)
    )
    specs: list[fleet.SupplySpec] = []
    taken: set[str] = set()
    for index, kind, colour, capacity in rows:
        if kind not in ASR_KINDS:  # R5: drums, fusers, kits are ordered by hand
            continue
        base = "waste" if kind == "waste" else (colour or kind).lower().replace(" ", "-")
        supply_id = base if base not in taken else f"{base}-{index}"
        taken.add(supply_id)
        wire = described.get(index, {})
        reported = wire.get("part_number")
        # R15: the device's part number, else the catalogue's, else none ("part number
        # needed"); the description is never one (docs/catalogue.md).
        part = catalogue.resolve(
            book, model, kind, colour, reported if isinstance(reported, str) else None
        )
        grams = capacity / 10 if capacity and wire.get("unit") == "tenthsOfGrams" else None
        specs.append(
            fleet.SupplySpec(
                supply_id, index, kind, colour, part.part_number, grams, part.rated_yield
            )
        )
    return specs


async def register(
    db: Database,
    principal: Principal,
    serial: str,
    site_id: int,
    contact_id: int,
    now: datetime,
    book: catalogue.Catalogue,
    check: Check,
) -> None:
    """R4: a device read by an agent of its customer's sites into ASR, with its supplies from
    the latest reading (R5) and the confirmation notice, in one transaction; audited. Its
    owner is the customer of the site whose agent read it last."""

    def write(conn: Connection) -> None:
        seen = approved(
            conn,
            conn.execute(
                select(devices.c.serial, devices.c.model, sites.c.customer_id)
                .join(agents, agents.c.id == devices.c.last_agent_id)
                .join(sites, sites.c.id == agents.c.site_id)
                .where(devices.c.serial == serial)
            ).first(),
            check,
        )
        customer_id = seen.customer_id
        registered = conn.execute(
            select(asr_devices.c.serial).where(asr_devices.c.serial == serial)
        ).first()
        if registered is not None:
            raise InvalidRequest(f"serial: {serial} is registered already", "serial")
        site, contact = site_and_contact(conn, customer_id, site_id, contact_id)
        specs = _supply_specs(conn, serial, seen.model, book)
        if not specs:
            raise InvalidRequest(  # R5
                f"serial: {serial} reports no toner, ink or waste container", "serial"
            )
        spec = fleet.DeviceSpec(
            serial, customer_id, site.name, contact.name, seen.model, tuple(specs)
        )
        fleet.register_in(conn, [spec], now)  # R4: with its 'registered' notice
        after = {
            "site_id": site_id,
            "contact_id": contact_id,
            "model": seen.model,
            "supplies": [
                {"supply_id": s.supply_id, "kind": s.kind, "colour": s.colour, "sku": s.sku}
                for s in specs
            ],
        }
        audit(conn, now, principal, customer_id, "device", serial, "registered", None, after)

    await in_transaction(db, write)
