"""The warehouse's HTTP side in the collector: the updates endpoint and the background jobs.

`ROUTES` holds `POST /api/v1/warehouse/updates`; every refusal answers JSON
{"error": reason, "message": text[, "field": name]} and counts in the metrics by reason.
`inbound_ctx` loads the inbound key (failing at start, naming the file, if it cannot be used)
and prunes the nonces; `dispatcher_ctx` runs the dispatcher and, in mode "simulated", the
built-in warehouse. Both are `cleanup_ctx` entries of the collector's app (collector.app).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from aiohttp import web

from collector.appkeys import CLOCK, COLLECTOR, CONFIG
from collector.config import WarehouseSection
from collector.errors import (
    BodyTooLarge,
    CollectorError,
    InvalidRequest,
    InvalidTransition,
    ReplayedNonce,
    StoreUnavailable,
    UnknownShipment,
    UnsupportedMediaType,
)
from collector.fulfil.inbound import UpdatesOff, prune_nonces, take_update
from collector.fulfil.outbound import Dispatcher, InProcess, run_dispatcher
from collector.fulfil.signing import SignatureRefused, load_key
from collector.periodic import every
from collector.views import json_body, refusal

log = logging.getLogger(__name__)

INBOUND_KEY = web.AppKey("warehouse_inbound_key", bytes)
DISPATCHER = web.AppKey("warehouse_dispatcher", Dispatcher)
# The warehouses the edge can run in this process, by `warehouse.mode` ("simulated"): set by
# collector.app, so that the dispatcher never imports the simulated warehouse.
InProcessModes = Mapping[str, Callable[[WarehouseSection], InProcess]]
IN_PROCESS: web.AppKey[InProcessModes] = web.AppKey("warehouse_in_process")
UPDATES_PATH = "/api/v1/warehouse/updates"

Refusal = CollectorError | SignatureRefused

# First match wins: subclasses before their bases.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UpdatesOff, 404),
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (SignatureRefused, 401),  # missing, malformed, wrong, or stale
    (InvalidRequest, 400),
    (UnknownShipment, 404),
    (InvalidTransition, 409),
    (ReplayedNonce, 409),
    (StoreUnavailable, 503),
)

ROUTES = web.RouteTableDef()


@ROUTES.post(UPDATES_PATH)
async def post_update(request: web.Request) -> web.Response:
    """POST /api/v1/warehouse/updates: a signed update of one shipment (R15)."""
    app = request.app
    warehouse = app[CONFIG].warehouse
    try:
        key = app.get(INBOUND_KEY)
        if key is None:
            raise UpdatesOff(
                "warehouse updates are not taken: warehouse.inbound_secret_file is unset"
            )
        body = await json_body(request, warehouse.max_body_bytes)
        taken = await take_update(
            app[COLLECTOR].db,
            key,
            request.headers,
            body,
            app[CLOCK](),
            warehouse.clock_skew_seconds,
        )
    except (CollectorError, SignatureRefused) as err:
        return _refuse(request, err)
    log.info(
        "warehouse: shipment %d %s%s",
        taken.update.shipment_id,
        taken.update.status,
        "" if taken.changed else " (had it already)",
    )
    return web.json_response(taken.to_dict())


def _refuse(request: web.Request, err: Refusal) -> web.Response:
    return refusal(request, "warehouse", err, _STATUS, {"error": err.reason, "message": str(err)})


async def inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    """The key that checks the warehouse's updates, and the pruning of their nonces."""
    warehouse = app[CONFIG].warehouse
    if warehouse.inbound_secret_file is None:
        yield
        return
    app[INBOUND_KEY] = load_key(warehouse.inbound_secret_file)
    db, clock = app[COLLECTOR].db, app[CLOCK]
    interval = app[CONFIG].ingest.nonce_prune_interval_seconds

    def prune() -> Awaitable[int]:
        return prune_nonces(db, clock(), warehouse.clock_skew_seconds)

    failed, done = "pruning warehouse nonces failed", "pruned %d warehouse nonces"
    async with every(interval, prune, "warehouse-nonce-pruner", log, failed, done):
        yield


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """The fulfilment outbox sent every `warehouse.interval_seconds` (mode "webhook" or
    "simulated"); in mode "simulated" the built-in warehouse's updates applied as often (the
    warehouse in this process is the edge's, `IN_PROCESS`)."""
    warehouse = app[CONFIG].warehouse
    if warehouse.mode == "off":
        yield
        return
    db, clock = app[COLLECTOR].db, app[CLOCK]
    make = app.get(IN_PROCESS, {}).get(warehouse.mode)
    local = make(warehouse) if make is not None else None
    dispatcher = Dispatcher(db, warehouse, sender=local.sender if local is not None else None)
    app[DISPATCHER] = dispatcher
    tasks = [asyncio.create_task(run_dispatcher(dispatcher, clock), name="dispatcher")]
    if local is not None:
        tasks.append(asyncio.create_task(local.run(db, clock), name="simulated-warehouse"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await dispatcher.close()
