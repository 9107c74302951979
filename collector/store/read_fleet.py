"""The fleet as the portal reads it (R4, R17): registered devices and their supplies' rows.

Is: the registered devices a principal sees with their stored state, their supplies, the
forecast figures the last daily run stored, the open shipments' counts and, for supplies
not tracked yet, their latest reading; and the devices its agents read that are not
registered. Raw records: the portal's views add the forecast (collector.portal.queries).
Is not: a writer, or the daily run's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, select

from collector.records import Principal
from collector.replenish.planner import CONSUMED_KINDS
from collector.store.database import Database
from collector.store.read_orders import OPEN_STATUSES
from collector.store.read_records import (
    DeviceRow,
    LevelReading,
    StoredFigures,
    SupplyRow,
    UnregisteredDevice,
    chunks,
    scoped,
)
from collector.store.schema import (
    agents,
    asr_devices,
    asr_supplies,
    contacts,
    customers,
    device_states,
    devices,
    readings,
    shipments,
    supplies,
    supply_tracks,
)
from collector.store.schema import orders as order_lines
from collector.store.schema import sites as site_rows


@dataclass(frozen=True)
class FleetRows:
    """What the fleet list is shaped from."""

    devices: list[DeviceRow]
    supplies: list[SupplyRow]
    figures: list[StoredFigures]
    latest: list[LevelReading]  # of the supplies with no stored figures yet
    open_counts: dict[str, int]  # shipments placed, backordered or shipped, by serial


def registered_query(principal: Principal) -> Select[Any]:
    """The registered devices the principal sees, with customer, site, contact and state."""
    return (
        select(
            asr_devices.c.serial,
            asr_devices.c.model,
            asr_devices.c.customer_id,
            customers.c.name.label("customer_name"),
            customers.c.kind.label("customer_kind"),
            asr_devices.c.site_id,
            site_rows.c.name.label("site_name"),
            asr_devices.c.contact_id,
            contacts.c.display_name,
            contacts.c.email,
            asr_devices.c.registered_at,
            device_states.c.state,
            device_states.c.reason,
            device_states.c.high_usage,
            device_states.c.since,
            devices.c.last_seen,
            devices.c.first_seen,
            devices.c.model.label("seen_model"),
        )
        .join(customers, customers.c.id == asr_devices.c.customer_id)
        .join(site_rows, site_rows.c.id == asr_devices.c.site_id)
        .join(contacts, contacts.c.id == asr_devices.c.contact_id)
        .outerjoin(device_states, device_states.c.serial == asr_devices.c.serial)
        .outerjoin(devices, devices.c.serial == asr_devices.c.serial)
        .where(scoped(principal, asr_devices.c.customer_id))
    )


def device_row(row: Any) -> DeviceRow:
    """A registered_query row as its record."""
    return DeviceRow(**row._mapping)


def stored_figures(conn: Connection, where: ColumnElement[bool]) -> list[StoredFigures]:
    """The tracked supplies' forecast figures as the last daily run stored them."""
    query = (
        select(
            supply_tracks.c.serial,
            supply_tracks.c.supply_id,
            supply_tracks.c.forecast,
            supply_tracks.c.updated_at,
        )
        .join(asr_devices, asr_devices.c.serial == supply_tracks.c.serial)
        .where(where)
    )
    return [StoredFigures(s, i, fig, at) for s, i, fig, at in conn.execute(query)]


def open_counts(conn: Connection, where: ColumnElement[bool]) -> dict[str, int]:
    """Each device's shipments placed, backordered or shipped."""
    query = (
        select(order_lines.c.serial, func.count(func.distinct(order_lines.c.shipment_id)))
        .join(shipments, shipments.c.id == order_lines.c.shipment_id)
        .join(asr_devices, asr_devices.c.serial == order_lines.c.serial)
        .where(where, shipments.c.status.in_(OPEN_STATUSES))
        .group_by(order_lines.c.serial)
    )
    return {serial: int(count) for serial, count in conn.execute(query)}


def supply_rows(conn: Connection, where: ColumnElement[bool]) -> list[SupplyRow]:
    """The registered supplies, by serial and supply index."""
    query = (
        select(asr_supplies)
        .join(asr_devices, asr_devices.c.serial == asr_supplies.c.serial)
        .where(where)
        .order_by(asr_supplies.c.serial, asr_supplies.c.supply_index)
    )
    return [
        SupplyRow(s.serial, s.supply_id, s.supply_index, s.kind, s.colour, s.sku, s.rated_yield)
        for s in conn.execute(query)
    ]


def latest_levels(conn: Connection, where: ColumnElement[bool]) -> list[LevelReading]:
    """Each registered supply's gauge in its device's latest reading (before any track)."""
    query = (
        select(
            readings.c.serial,
            asr_supplies.c.supply_id,
            readings.c.read_at,
            supplies.c.percent,
            supplies.c.grams_left,
            supplies.c.grams_used,
            supplies.c.quality,
            supplies.c.receptacle,
        )
        .select_from(asr_devices)
        .join(devices, devices.c.serial == asr_devices.c.serial)
        .join(
            readings,
            and_(readings.c.serial == devices.c.serial, readings.c.read_at == devices.c.last_seen),
        )
        .join(supplies, supplies.c.reading_id == readings.c.id)
        .join(
            asr_supplies,
            and_(
                asr_supplies.c.serial == readings.c.serial,
                asr_supplies.c.supply_index == supplies.c.supply_index,
            ),
        )
        .where(where)
    )
    return [LevelReading(*row) for row in conn.execute(query)]


async def fleet_rows(db: Database, principal: Principal) -> FleetRows:
    """The registered devices the principal sees, by customer, site and serial (R17)."""
    where = scoped(principal, asr_devices.c.customer_id)

    def read(conn: Connection) -> FleetRows:
        query = registered_query(principal).order_by(
            asr_devices.c.customer_id, site_rows.c.name, asr_devices.c.serial
        )
        rows = [device_row(r) for r in conn.execute(query)]
        figures = stored_figures(conn, where)
        tracked = {(f.serial, f.supply_id) for f in figures}
        kept = supply_rows(conn, where)
        untracked = sorted(
            {
                s.serial
                for s in kept
                if s.kind in CONSUMED_KINDS and (s.serial, s.supply_id) not in tracked
            }
        )
        latest: list[LevelReading] = []
        for chunk in chunks(untracked, 500):  # before their first daily run: the readings'
            latest += latest_levels(conn, and_(where, asr_devices.c.serial.in_(chunk)))
        return FleetRows(rows, kept, figures, latest, open_counts(conn, where))

    return await db.read(read)


def unregistered_query(principal: Principal) -> Select[Any]:
    """The devices the principal's customers' agents read that are not registered (R4)."""
    return (
        select(
            devices.c.serial,
            devices.c.model,
            site_rows.c.customer_id,
            customers.c.name.label("customer_name"),
            customers.c.kind.label("customer_kind"),
            site_rows.c.id.label("site_id"),
            site_rows.c.name.label("site_name"),
            devices.c.first_seen,
            devices.c.last_seen,
            site_rows.c.address,
        )
        .join(agents, agents.c.id == devices.c.last_agent_id)
        .join(site_rows, site_rows.c.id == agents.c.site_id)
        .join(customers, customers.c.id == site_rows.c.customer_id)
        .outerjoin(asr_devices, asr_devices.c.serial == devices.c.serial)
        .where(asr_devices.c.serial.is_(None), scoped(principal, site_rows.c.customer_id))
    )


async def unregistered(db: Database, principal: Principal) -> list[UnregisteredDevice]:
    """R4: devices the principal's customers' agents read that are not in ASR yet."""
    query = unregistered_query(principal).order_by(
        site_rows.c.customer_id, site_rows.c.name, devices.c.serial
    )
    rows = await db.read(lambda c: list(c.execute(query)))
    return [UnregisteredDevice(*r[:9]) for r in rows]
