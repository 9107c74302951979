"""The helpdesk's queue: supplies that need a person (R3, R7, R15; issue 14).

Is: two lists and one change, the helpdesk's alone (anyone else is refused: Forbidden).
- *Part number needed*: registered supplies with no part number (neither the device nor the
  catalogue gave one, docs/catalogue.md), with the order lines waiting for it. Such a supply
  is still forecast and ordered; its shipment is not sent to the warehouse until every line
  has a part number.
- *Cannot be forecast*: supplies whose latest forecast says it has no usable evidence
  (`basis` "none": no level, no page counter), with the forecast's reason. A forecast
  without a `basis` is not listed.
- Setting a supply's part number: checked (a short token, never free text), written on the
  supply and on its order lines still without one, and the shipments that then have every
  number get their warehouse request (collector.store.shipping.release); audited.
Is not: the queries and the write (collector.store.read_helpdesk, .write_changes), HTTP
(collector.portal.helpdesk_api, .helpdesk_pages) or the forecast itself.
"""

from __future__ import annotations

from datetime import datetime

from collector.catalogue import PART_NUMBER_RULE, is_part_number
from collector.errors import InvalidRequest
from collector.portal.errors import Forbidden, NotFound
from collector.portal.inputs import MAX_SERIAL, MAX_SUPPLY_ID, is_plain
from collector.records import Principal
from collector.store import read_helpdesk, write_changes
from collector.store.database import Database
from collector.store.read_helpdesk import CannotForecast, PartNumberNeeded

HELPDESK_ONLY = "the helpdesk's queue is shown to the helpdesk only"


def _helpdesk(principal: Principal) -> None:
    if not principal.is_helpdesk:
        raise Forbidden(HELPDESK_ONLY)


def clean_part_number(value: object) -> str:
    """A part number as the helpdesk types it: a short token, never a description."""
    text = value.strip() if isinstance(value, str) else ""
    if not is_part_number(text):
        raise InvalidRequest(f"part_number: {PART_NUMBER_RULE}", "part_number")
    return text


async def part_numbers_needed(db: Database, principal: Principal) -> list[PartNumberNeeded]:
    """Registered supplies without a part number, and the order lines waiting for one."""
    _helpdesk(principal)
    return await read_helpdesk.part_numbers_needed(db)


async def cannot_forecast(db: Database, principal: Principal) -> list[CannotForecast]:
    """Supplies with no usable evidence for a forecast, with the forecast's reason."""
    _helpdesk(principal)
    return await read_helpdesk.cannot_forecast(db)


def _supply_exists(owner: write_changes.Owner | None) -> None:
    if owner is None:
        raise NotFound("no such supply")


async def set_part_number(
    db: Database,
    principal: Principal,
    serial: str,
    supply_id: str,
    part_number: object,
    now: datetime,
) -> list[int]:
    """The helpdesk gives a supply's part number; its waiting order lines take it, and the
    shipments that then have every number go to the warehouse. The shipments released."""
    _helpdesk(principal)
    number = clean_part_number(part_number)
    if not is_plain(serial) or not serial or len(serial) > MAX_SERIAL:
        raise NotFound("no such device", "serial")
    if not is_plain(supply_id) or not supply_id or len(supply_id) > MAX_SUPPLY_ID:
        raise NotFound("no such supply", "supply_id")
    return await write_changes.set_part_number(
        db, principal, serial, supply_id, number, now, _supply_exists
    )
