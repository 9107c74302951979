"""The helpdesk's queue in the JSON API (collector.portal.helpdesk; openapi.yaml).

Is: GET /api/v1/portal/helpdesk/queue (supplies needing a part number, supplies that cannot
be forecast) and PUT .../devices/{serial}/supplies/{supply_id}/part-number; the helpdesk's
only: a customer's user gets 403. Its routes join collector.portal.api's table.
Is not: the queue's reads and the change (collector.portal.helpdesk).
"""

from __future__ import annotations

from aiohttp import web

from collector.appkeys import CLOCK
from collector.fulfilment import reference
from collector.portal import helpdesk, inputs
from collector.portal.api import PREFIX, ROUTES, _body, _db, _serial, _who, api


class PartNumber(inputs.Body):
    part_number: str


@ROUTES.get(f"{PREFIX}/helpdesk/queue")
@api
async def get_queue(request: web.Request) -> web.Response:
    """The helpdesk's queue: part numbers needed and supplies that cannot be forecast."""
    principal = await _who(request)
    needed = await helpdesk.part_numbers_needed(_db(request), principal)
    blind = await helpdesk.cannot_forecast(_db(request), principal)
    return web.json_response(
        {
            "part_numbers_needed": [row.to_dict() for row in needed],
            "cannot_forecast": [row.to_dict() for row in blind],
        }
    )


@ROUTES.put(f"{PREFIX}/devices/{{serial}}/supplies/{{supply_id}}/part-number")
@api
async def put_part_number(request: web.Request) -> web.Response:
    """A supply's part number, given by the helpdesk; waiting shipments go to the warehouse."""
    principal = await _who(request)
    serial = _serial(request)
    supply_id = inputs.path_text(
        request.match_info["supply_id"], "supply_id", "supply", inputs.MAX_SUPPLY_ID
    )
    body = await _body(request, PartNumber)
    released = await helpdesk.set_part_number(
        _db(request), principal, serial, supply_id, body.part_number, request.app[CLOCK]()
    )
    return web.json_response(
        {
            "serial": serial,
            "supply_id": supply_id,
            "part_number": helpdesk.clean_part_number(body.part_number),
            "released": [reference(i) for i in released],
        }
    )
