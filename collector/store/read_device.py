"""One device as the portal reads it (R4, R17): registered, or only read by its agents.

Is: a device's rows the principal may see: its record, supplies, tracks and the
cartridges ordered and not yet counted in them (R13, R14), its readings' levels over the
history window, its site, contact and shipments; or, when it is not registered, what its
latest reading shows (R4). Raw records: the portal's view adds the forecast
(collector.portal.queries). Is not: a writer, or the daily run's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, func, select

from collector.records import Principal
from collector.replenish.forecast import Track
from collector.store.database import Database
from collector.store.read_fleet import (
    device_row,
    latest_levels,
    registered_query,
    supply_rows,
    unregistered_query,
)
from collector.store.read_orders import device_shipments, shipment_views
from collector.store.read_records import (
    ContactView,
    DeviceRow,
    LevelReading,
    ShipmentView,
    SiteRef,
    SupplyRow,
    UnregisteredDevice,
)
from collector.store.read_sites import contact_view
from collector.store.schema import (
    asr_devices,
    contacts,
    devices,
    readings,
    shipments,
    supplies,
    supply_tracks,
)
from collector.store.schema import orders as order_lines
from collector.store.schema import sites as site_rows


@dataclass(frozen=True)
class RegisteredRows:
    """What a registered device's view is shaped from."""

    device: DeviceRow
    supplies: list[SupplyRow]
    tracks: dict[tuple[str, str], Track]
    uncounted: dict[tuple[str, str], int]  # R13/R14: ordered, not yet in the balance
    latest: list[LevelReading]  # by supply_id
    history: list[LevelReading]  # by supply_index, oldest first
    runs_out: dict[str, datetime | None]  # as the last daily run stored it, by supply_id
    site: SiteRef
    contact: ContactView
    shipments: list[ShipmentView]


@dataclass(frozen=True)
class UnregisteredRows:
    """What an unregistered device's view is shaped from (R4)."""

    device: UnregisteredDevice
    address: str | None
    supplies: list[SupplyRow]  # its latest reading's, supply_id = supply_index, no sku
    history: list[LevelReading]  # by supply_index, oldest first


def tracks(conn: Connection, where: ColumnElement[bool]) -> dict[tuple[str, str], Track]:
    """The stored tracks of the registered supplies `where` selects."""
    query = (
        select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track)
        .join(asr_devices, asr_devices.c.serial == supply_tracks.c.serial)
        .where(where)
    )
    return {(s, i): Track.from_json(t) for s, i, t in conn.execute(query)}


def uncounted(conn: Connection, where: ColumnElement[bool]) -> dict[tuple[str, str], int]:
    """R13/R14: cartridges ordered and not yet in a track's balance (none cancelled)."""
    query = (
        select(order_lines.c.serial, order_lines.c.supply_id, func.sum(order_lines.c.quantity))
        .join(shipments, shipments.c.id == order_lines.c.shipment_id)
        .join(asr_devices, asr_devices.c.serial == order_lines.c.serial)
        .where(where, order_lines.c.counted_at.is_(None), shipments.c.status != "cancelled")
        .group_by(order_lines.c.serial, order_lines.c.supply_id)
    )
    return {(s, i): int(q) for s, i, q in conn.execute(query)}


def history(conn: Connection, serial: str, since: datetime) -> list[LevelReading]:
    """Each supply index's gauge in every reading since `since`, oldest first."""
    query = (
        select(
            readings.c.serial,
            supplies.c.supply_index,
            readings.c.read_at,
            supplies.c.percent,
            supplies.c.grams_left,
            supplies.c.grams_used,
            supplies.c.quality,
            supplies.c.receptacle,
        )
        .join(supplies, supplies.c.reading_id == readings.c.id)
        .where(readings.c.serial == serial, readings.c.read_at >= since)
        .order_by(readings.c.read_at)
    )
    return [LevelReading(*row) for row in conn.execute(query)]


def latest_reading_supplies(conn: Connection, serial: str) -> list[SupplyRow]:
    """The supplies of the device's latest reading (R4: what registration takes)."""
    latest = conn.execute(
        select(readings.c.id)
        .where(readings.c.serial == serial)
        .order_by(readings.c.read_at.desc(), readings.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return []
    query = (
        select(supplies).where(supplies.c.reading_id == latest.id).order_by(supplies.c.supply_index)
    )
    return [
        SupplyRow(serial, s.supply_index, s.supply_index, s.kind, s.colour, None, None)
        for s in conn.execute(query)
    ]


def _registered(conn: Connection, row: DeviceRow, since: datetime) -> RegisteredRows:
    serial = row.serial
    where = asr_devices.c.serial == serial
    runs_out = {
        r.supply_id: r.runs_out_at
        for r in conn.execute(
            select(supply_tracks.c.supply_id, supply_tracks.c.runs_out_at).where(
                supply_tracks.c.serial == serial
            )
        )
    }
    site = conn.execute(
        select(site_rows.c.id, site_rows.c.name, site_rows.c.address).where(
            site_rows.c.id == row.site_id
        )
    ).one()
    contact = conn.execute(select(contacts).where(contacts.c.id == row.contact_id)).one()
    return RegisteredRows(
        device=row,
        supplies=supply_rows(conn, where),
        tracks=tracks(conn, where),
        uncounted=uncounted(conn, where),
        latest=latest_levels(conn, where),
        history=history(conn, serial, since),
        runs_out=runs_out,
        site=SiteRef(site.id, site.name, site.address),
        contact=contact_view(contact),
        shipments=shipment_views(conn, device_shipments(serial)),
    )


async def device_rows(
    db: Database, principal: Principal, serial: str, since: datetime
) -> RegisteredRows | UnregisteredRows | None:
    """The device's rows, its readings since `since`; None if the principal does not see it."""

    def read(conn: Connection) -> RegisteredRows | UnregisteredRows | None:
        row = conn.execute(
            registered_query(principal).where(asr_devices.c.serial == serial)
        ).first()
        if row is not None:
            return _registered(conn, device_row(row), since)
        seen = conn.execute(unregistered_query(principal).where(devices.c.serial == serial)).first()
        if seen is None:
            return None
        return UnregisteredRows(
            UnregisteredDevice(*seen[:9]),
            seen.address,
            latest_reading_supplies(conn, serial),
            history(conn, serial, since),
        )

    return await db.read(read)
