"""The warehouse interface across real boundaries, on both databases (R3, R15, R18).

Requests go out over HTTPS (the test PKI) to the simulated warehouse app served on loopback,
through a middleware that records every POST as it arrived and can lose the answer or refuse
a delivery; updates come in over HTTPS to the real collector app. Shipments are made by the
real writes (registration, an extra order, which puts its request in the fulfilment outbox).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from sqlalchemy import insert, select

from collector.app import create_app
from collector.config import CollectorConfig, WarehouseSection
from collector.fulfil import signing
from collector.fulfil import views as fulfil_views
from collector.fulfil.inbound import prune_nonces
from collector.fulfil.outbound import DELIVERY_HEADER, Dispatcher
from collector.fulfil.simulated import SimulatedWarehouse
from collector.fulfil.simulated_app import SERVICE, WarehouseService, simulated_warehouse_app
from collector.fulfil.simulated_mode import SimulatedMode, apply_simulated
from collector.fulfilment import Line, Request, Update, reference
from collector.portal import helpdesk
from collector.records import Principal
from collector.store import fleet, shipping
from collector.store.database import Database
from collector.store.schema import (
    fulfilment_requests,
    notifications,
    shipment_events,
    shipments,
    warehouse_nonces,
)
from collector.tls import server_context
from common.strictconfig import ConfigError
from tests.collector.kit import Clock, Pki, Served, snapshot

NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
SKEW = 300.0


# --- keys, fleet, rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """The two shared keys: ours to sign requests, the warehouse's to sign updates."""

    outbound_file: Path
    inbound_file: Path

    @property
    def outbound(self) -> bytes:
        return signing.load_key(self.outbound_file)

    @property
    def inbound(self) -> bytes:
        return signing.load_key(self.inbound_file)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    outbound, inbound = tmp_path / "warehouse.key", tmp_path / "inbound.key"
    outbound.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")  # base64
    inbound.write_text(f"inbound key {secrets.token_hex(16)}\n")  # not base64: used as text
    return Keys(outbound, inbound)


async def _fleet(db: Database, now: datetime, devices: int = 3) -> None:
    await fleet.add_customer(
        db,
        "rossi",
        "self",
        now,
        name="Rossi S.r.l.",
        language="it",
        sites_=[("milano", "Via Roma 1, 20121 Milano")],
        contacts_=[fleet.ContactSpec("anna", "anna@rossi.example", "Anna Rossi")],
    )
    toner = fleet.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0)
    waste = fleet.SupplySpec("waste", "1.5", "waste", None, "WT-1")
    await fleet.register(
        db,
        [
            fleet.DeviceSpec(f"IT-{n}", "rossi", "milano", "anna", "MFP", (toner, waste))
            for n in range(1, devices + 1)
        ],
        now,
    )


async def _orders(db: Database, now: datetime, count: int = 1) -> list[int]:
    """Extra orders of black toner (R14), each a shipment with its fulfilment request."""
    return [
        await fleet.record_extra_order(db, f"IT-{1 + n % 3}", "black", 1, now) for n in range(count)
    ]


async def _rows(db: Database, table: Any, order: Any) -> list[Any]:
    return await db.read(lambda c: list(c.execute(select(table).order_by(order))))


async def _requests(db: Database) -> dict[int, Any]:
    rows = await _rows(db, fulfilment_requests, fulfilment_requests.c.shipment_id)
    return {row.shipment_id: row for row in rows}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the warehouse, served over TLS ----------------------------------------------------------


@dataclass
class Warehouse:
    """The simulated warehouse app on loopback over TLS, and what arrived at it."""

    url: str  # the webhook
    service: WarehouseService
    arrived: list[tuple[CIMultiDict[str], bytes]] = field(default_factory=list)
    # delivery key -> what happens to its next POSTs, in turn: "400" or "409" answered without
    # the warehouse seeing it; "500" or "drop" after the warehouse took it (the ack is lost).
    faults: dict[str, list[str]] = field(default_factory=dict)

    def keys_arrived(self) -> list[str]:
        return [headers[DELIVERY_HEADER] for headers, _ in self.arrived]


async def _serve(app: web.Application, pki: Pki) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    context = server_context(pki.server_cert, pki.server_key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port


WarehouseFactory = Callable[..., Awaitable[Warehouse]]


@pytest.fixture
async def warehouse(pki: Pki, keys: Keys, clock: Clock) -> AsyncIterator[WarehouseFactory]:
    """Starts simulated warehouses: `await warehouse(collector_url=..., **settings)`."""
    runners = []

    async def start(collector_url: str = "https://127.0.0.1:9", **settings: Any) -> Warehouse:
        app = simulated_warehouse_app(
            keys.outbound,
            collector_url,
            keys.inbound,
            WarehouseSection(**settings),
            clock=clock,
            ssl_context=pki.client_context(),
        )
        seen = Warehouse("", app[SERVICE])

        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            body = await request.read()  # kept by aiohttp: the handler reads it again
            seen.arrived.append((request.headers.copy(), body))
            planned = seen.faults.get(request.headers.get(DELIVERY_HEADER, ""), [])
            fault = planned.pop(0) if planned else None
            if fault in ("400", "409"):
                return web.json_response({"error": f"test-{fault}"}, status=int(fault))
            response = await handler(request)
            if fault == "500":
                return web.json_response({"error": "lost"}, status=500)
            if fault == "drop":
                assert request.transport is not None
                request.transport.close()
            return response

        app.middlewares.append(record)
        runner, port = await _serve(app, pki)
        runners.append(runner)
        seen.url = f"https://127.0.0.1:{port}/fulfilment/requests"
        return seen

    yield start
    for runner in runners:
        await runner.cleanup()


def _webhook(url: str, keys: Keys, pki: Pki, **more: Any) -> WarehouseSection:
    values: dict[str, Any] = {
        "mode": "webhook",
        "url": url,
        "ca_file": pki.ca_cert,
        "secret_file": keys.outbound_file,
        "retry_seconds": 60,
        "timeout_seconds": 5,
    }
    return WarehouseSection(**(values | more))


@pytest.fixture
async def dispatchers() -> AsyncIterator[list[Dispatcher]]:
    """Dispatchers made by a test, closed after it."""
    made: list[Dispatcher] = []
    yield made
    for dispatcher in made:
        await dispatcher.close()


# --- the collector, served over TLS ----------------------------------------------------------


def _wire(app: web.Application) -> None:
    """collector.app serves the updates API and owns the dispatcher."""
    paths = {route.resource.canonical for route in app.router.routes() if route.resource}
    assert fulfil_views.UPDATES_PATH in paths
    assert fulfil_views.inbound_ctx in app.cleanup_ctx
    assert fulfil_views.dispatcher_ctx in app.cleanup_ctx


ServeFactory = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve(db: Database, pki: Pki, clock: Clock, keys: Keys) -> AsyncIterator[ServeFactory]:
    """Starts the real collector app over HTTPS: `await serve(**warehouse_settings)`."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**warehouse: Any) -> Served:
        config = CollectorConfig.model_validate(
            {
                "collector": {"state_dir": keys.inbound_file.parent / "state"},
                "server": {"host": "127.0.0.1", "port": 0},
                "plan": {"enabled": False},
                "warehouse": {
                    "inbound_secret_file": keys.inbound_file,
                    "clock_skew_seconds": SKEW,
                    "max_body_bytes": 1024,
                    **warehouse,
                },
            }
        )
        app = create_app(config, database=db, clock=clock)
        _wire(app)
        runner, port = await _serve(app, pki)
        runners.append(runner)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context()))
        sessions.append(http)
        return Served(f"https://127.0.0.1:{port}", http, app, db, clock)

    yield start
    for http in sessions:
        await http.close()
    for runner in runners:
        await runner.cleanup()


@dataclass
class Reply:
    status: int
    body: dict[str, Any]


async def _post_update(
    served: Served,
    body: bytes,
    key: bytes,
    headers: dict[str, str] | None = None,
    at: datetime | None = None,
    content_type: str = "application/json",
) -> Reply:
    """POST an update to the collector, signed with `key` at `at` unless headers are given."""
    sent = dict(headers) if headers is not None else signing.sign(key, body, at or served.clock())
    sent["Content-Type"] = content_type
    url = served.base_url + fulfil_views.UPDATES_PATH
    async with served.http.post(url, data=body, headers=sent) as response:
        text = await response.text()
        return Reply(response.status, json.loads(text) if text else {})


# --- signatures ------------------------------------------------------------------------------


def test_a_signature_is_the_hmac_of_version_timestamp_nonce_and_body() -> None:
    key = b"k" * 32
    body = b'{"a":1}'
    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    headers = signing.sign(key, body, at, nonce="0" * 32)
    expected = hmac.new(
        key, b"v1\n1772442000\n" + b"0" * 32 + b"\n" + body, hashlib.sha256
    ).hexdigest()
    assert headers == {
        "X-ASR-Timestamp": "1772442000",
        "X-ASR-Nonce": "0" * 32,
        "X-ASR-Signature": f"v1={expected}",
    }
    signed = signing.verify(key, headers, body, at + timedelta(seconds=SKEW), SKEW)
    assert signed == signing.Signed(1772442000, "0" * 32)
    fresh = signing.sign(key, body, at)
    assert len(fresh["X-ASR-Nonce"]) == 32 and fresh["X-ASR-Nonce"] != "0" * 32  # random


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("body", signing.BadSignature),
        ("key", signing.BadSignature),
        ("nonce", signing.BadSignature),
        ("no-signature", signing.MissingSignature),
        ("not-hex", signing.MalformedSignature),
        ("late", signing.StaleSignature),
        ("early", signing.StaleSignature),
    ],
)
def test_a_signature_that_does_not_hold_is_refused_saying_why(
    change: str, refusal: type[signing.SignatureRefused]
) -> None:
    key, body = b"k" * 32, b'{"a":1}'
    headers = signing.sign(key, body, NOW)
    now = NOW
    if change == "body":
        body = b'{"a":2}'
    elif change == "key":
        key = b"x" * 32
    elif change == "nonce":
        headers["X-ASR-Nonce"] = "f" * 32
    elif change == "no-signature":
        del headers["X-ASR-Signature"]
    elif change == "not-hex":
        headers["X-ASR-Signature"] = "v1=" + "Z" * 64
    elif change == "late":
        now = NOW + timedelta(seconds=SKEW + 1)
    elif change == "early":
        now = NOW - timedelta(seconds=SKEW + 1)
    with pytest.raises(refusal):
        signing.verify(key, headers, body, now, SKEW)


def test_a_key_file_is_base64_or_text_of_32_bytes_or_more(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    encoded = tmp_path / "b64"
    encoded.write_text(base64.b64encode(raw).decode() + "\n")
    assert signing.load_key(encoded) == raw
    text = tmp_path / "text"
    text.write_text("correct horse battery staple, and more\n")
    assert signing.load_key(text) == b"correct horse battery staple, and more"
    short = tmp_path / "short"
    short.write_text("s3cret\n")
    with pytest.raises(ConfigError, match=f"{short}.*at least 32 bytes"):
        signing.load_key(short)
    with pytest.raises(ConfigError, match=f"{tmp_path / 'missing'}: cannot read"):
        signing.load_key(tmp_path / "missing")


# --- requests out ----------------------------------------------------------------------------


async def test_r3_r18_a_placed_shipment_is_sent_once_signed_with_its_address_and_serials(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    """R3: every line names the device's serial for the label; R18: the site's address as it
    was when the order was placed goes with it, even if the site moves before it is sent."""
    now = clock()
    await _fleet(db, now)
    [shipment] = await _orders(db, now)
    await fleet.add_customer(db, "rossi", "self", now, sites_=[("milano", "Via Nuova 9")])
    wh = await warehouse()
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(dispatcher)
    done = await dispatcher.send_due(now)
    assert done.acked == [shipment] and not done.retry and not done.failed and not done.error
    [(headers, body)] = wh.arrived
    row = (await _requests(db))[shipment]
    assert body == bytes(row.body)  # the exact bytes fixed when the order was placed
    assert headers["Content-Type"] == "application/json"
    assert headers[DELIVERY_HEADER] == reference(shipment)
    signing.verify(keys.outbound, headers, body, now, SKEW)  # signed with our key
    request = json.loads(body)
    assert request["reference"] == reference(shipment) and request["type"] == "fulfilment.request"
    assert request["ship_to"]["address"] == "Via Roma 1, 20121 Milano"  # R18: as placed
    assert request["ship_to"]["contact"] == {"name": "Anna Rossi", "email": "anna@rossi.example"}
    assert [(line["serial"], line["sku"]) for line in request["lines"]] == [
        ("IT-1", "TN-K"),
        ("IT-1", "WT-1"),  # R11: the waste container with the black toner
    ]
    assert {line["label"] for line in request["lines"]} == {"For device IT-1 only"}  # R3
    assert (row.status, row.attempts, row.acked_at) == ("acked", 1, now)
    assert wh.service.warehouse.received == 1
    again = await dispatcher.send_due(now + timedelta(hours=1))
    assert again.acked == [] and len(wh.arrived) == 1  # sent once


async def test_a_warehouse_that_is_down_is_retried_with_backoff_then_each_request_acked_once(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    await _fleet(db, clock())
    ids = await _orders(db, clock(), 3)
    start = clock()
    down = Dispatcher(db, _webhook(f"https://127.0.0.1:{_free_port()}/hook", keys, pki))
    dispatchers.append(down)
    first = await down.send_due(start)
    assert first.acked == [] and first.retry == ids and first.error is not None
    rows = await _requests(db)
    assert {(r.status, r.attempts) for r in rows.values()} == {("pending", 1)}
    assert {r.next_attempt_at for r in rows.values()} == {start + timedelta(seconds=60)}
    clock.advance(seconds=61)
    second = await down.send_due(clock())
    assert second.retry == ids  # still down: waits twice as long
    rows = await _requests(db)
    assert {r.next_attempt_at for r in rows.values()} == {clock() + timedelta(seconds=120)}
    assert "cannot reach" in rows[ids[0]].last_error
    wh = await warehouse()
    up = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(up)
    clock.advance(seconds=1)
    assert (await up.send_due(clock())).acked == []  # not due yet
    assert wh.arrived == []
    clock.advance(seconds=120)
    third = await up.send_due(clock())
    assert third.acked == ids and third.error is None
    assert sorted(wh.keys_arrived()) == sorted(reference(i) for i in ids)  # each once
    rows = await _requests(db)
    assert {(r.status, r.attempts, r.acked_at) for r in rows.values()} == {("acked", 3, clock())}


@pytest.mark.parametrize("lost", ["500", "drop"])
async def test_a_lost_ack_is_sent_again_with_the_same_key_and_fulfilled_once(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
    lost: str,
) -> None:
    """The warehouse took the request but its answer was lost (a 500, or the connection
    closed): the same request goes again under the same X-ASR-Delivery key, the warehouse
    sees it has it (200 duplicate) and ships it once."""
    await _fleet(db, clock())
    [shipment] = await _orders(db, clock())
    wh = await warehouse()
    wh.faults[reference(shipment)] = [lost]
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(dispatcher)
    first = await dispatcher.send_due(clock())
    assert first.retry == [shipment] and first.acked == []
    assert wh.service.warehouse.received == 1  # it got there
    row = (await _requests(db))[shipment]
    assert row.status == "pending" and row.next_attempt_at == clock() + timedelta(seconds=60)
    clock.advance(seconds=60)
    second = await dispatcher.send_due(clock())
    assert second.acked == [shipment]
    assert wh.keys_arrived() == [reference(shipment)] * 2  # the same key both times
    assert wh.arrived[0][1] == wh.arrived[1][1]  # the same bytes
    assert wh.arrived[0][0]["X-ASR-Nonce"] != wh.arrived[1][0]["X-ASR-Nonce"]  # signed anew
    assert [d.new for d in wh.service.deliveries] == [True, False]
    assert wh.service.warehouse.received == 1  # fulfilled once
    shipped = [u for u in wh.service.warehouse.due(clock() + timedelta(days=30))]
    assert [u.status for u in shipped if u.status == "shipped"] == ["shipped"]  # shipped once
    assert (await _requests(db))[shipment].status == "acked"


class Crash(BaseException):
    """The collector process dies: nothing after it runs."""


async def test_a_dispatcher_that_died_before_marking_is_recovered_after_the_lease(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    await _fleet(db, clock())
    first_id, second_id = await _orders(db, clock(), 2)
    wh = await warehouse()
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki, lease_seconds=300))
    dispatchers.append(dispatcher)

    def die(shipment_id: int) -> None:
        raise Crash(shipment_id)

    with pytest.raises(Crash):
        await dispatcher.send_due(clock(), after_send=die)
    rows = await _requests(db)
    assert (rows[first_id].status, rows[second_id].status) == ("sending", "pending")
    clock.advance(seconds=60)
    soon = await dispatcher.send_due(clock())  # the lease still runs: only the other one
    assert soon.acked == [second_id] and soon.recovered == []
    clock.advance(seconds=241)
    later = await dispatcher.send_due(clock())
    assert later.recovered == [first_id] and later.acked == [first_id]
    assert Counter(wh.keys_arrived()) == {reference(first_id): 2, reference(second_id): 1}
    assert wh.service.warehouse.received == 2  # each fulfilled once
    row = (await _requests(db))[first_id]
    assert (row.status, row.attempts) == ("acked", 2)


async def test_a_request_refused_with_400_fails_alone_and_a_409_counts_as_acked(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    await _fleet(db, clock())
    ids = await _orders(db, clock(), 4)
    wh = await warehouse()
    wh.faults[reference(ids[1])] = ["400"]
    wh.faults[reference(ids[2])] = ["409"]  # "I have this one already"
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(dispatcher)
    done = await dispatcher.send_due(clock())
    assert done.failed == [ids[1]] and done.acked == [ids[0], ids[2], ids[3]]
    assert not done.retry and done.error is None
    rows = await _requests(db)
    assert rows[ids[1]].status == "failed" and "HTTP 400" in rows[ids[1]].last_error
    assert "test-400" in rows[ids[1]].last_error
    assert rows[ids[2]].status == "acked"
    clock.advance(days=1)
    assert (await dispatcher.send_due(clock())).acked == []
    assert len(wh.arrived) == 4  # the failed one is not sent again


# --- updates in ------------------------------------------------------------------------------


async def _kinds(db: Database) -> list[str]:
    return [row.kind for row in await _rows(db, notifications, notifications.c.id)]


async def _events(db: Database, shipment_id: int) -> list[tuple[str, str]]:
    rows = await _rows(db, shipment_events, shipment_events.c.id)
    return [(r.status, r.source) for r in rows if r.shipment_id == shipment_id]


async def test_r15_backordered_then_shipped_then_delivered_each_stored_with_event_and_email(
    db: Database, keys: Keys, clock: Clock, serve: ServeFactory
) -> None:
    served = await serve()
    await _fleet(db, clock())
    [shipment] = await _orders(db, clock())
    at = clock()
    expected = at + timedelta(days=4)
    steps = [
        Update(shipment, "backordered", at, expected_at=expected, note="back on the 5th"),
        Update(shipment, "shipped", at + timedelta(days=2), "1Z999", "UPS", expected),
        Update(shipment, "delivered", at + timedelta(days=3)),
    ]
    for update in steps:
        reply = await _post_update(served, update.encode(), keys.inbound)
        assert reply.status == 200, reply.body
        assert reply.body == {
            "shipment_id": shipment,
            "reference": reference(shipment),
            "status": update.status,
            "changed": True,
        }
    again = await _post_update(served, steps[-1].encode(), keys.inbound)  # told twice
    assert again.status == 200 and again.body["changed"] is False
    [row] = await _rows(db, shipments, shipments.c.id)
    assert (row.status, row.tracking, row.carrier, row.expected_at) == (
        "delivered",
        "1Z999",
        "UPS",
        expected,
    )
    assert (row.shipped_at, row.delivered_at) == (at + timedelta(days=2), at + timedelta(days=3))
    assert await _events(db, shipment) == [
        ("placed", "helpdesk"),
        ("backordered", "warehouse"),
        ("shipped", "warehouse"),
        ("delivered", "warehouse"),
    ]
    # R15: a backorder email, then the one saying the backordered item shipped
    assert (await _kinds(db))[-3:] == ["order_placed", "backordered", "backorder_shipped"]
    assert len(await _rows(db, warehouse_nonces, warehouse_nonces.c.nonce)) == 4
    request = (await _requests(db))[shipment]  # not sent yet, but the warehouse has it
    assert (request.status, request.acked_at) == ("acked", clock())


REJECTIONS: dict[str, tuple[int, str, str | None]] = {
    # case: (status, reason, field)
    "wrong-key": (401, "bad-signature", None),
    "no-signature": (401, "missing-signature", None),
    "stale": (401, "stale", None),
    "replayed": (409, "replayed", None),
    "unknown-shipment": (404, "unknown-shipment", None),
    "invalid-transition": (409, "invalid-transition", None),
    "malformed-json": (400, "invalid-request", "body"),
    "shipped-without-tracking": (400, "invalid-request", "tracking"),
    "oversized": (413, "body-too-large", None),
    "not-json": (415, "content-type", None),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
async def test_a_refused_update_changes_nothing_and_says_why(
    db: Database, keys: Keys, clock: Clock, serve: ServeFactory, case: str
) -> None:
    served = await serve()
    await _fleet(db, clock())
    delivered, placed = await _orders(db, clock(), 2)
    for status in ("shipped", "delivered"):
        await shipping.advance(db, delivered, status, clock(), "helpdesk", tracking="T1")
    key, body = keys.inbound, Update(placed, "backordered", clock()).encode()
    headers: dict[str, str] | None = None
    content_type, at = "application/json", clock()
    if case == "wrong-key":
        key = secrets.token_bytes(32)
    elif case == "no-signature":
        headers = {}
    elif case == "stale":
        at = clock() - timedelta(seconds=SKEW + 5)
    elif case == "replayed":
        headers = signing.sign(key, body, clock())
        assert (await _post_update(served, body, key, headers)).status == 200
    elif case == "unknown-shipment":
        body = Update(placed + 1000, "backordered", clock()).encode()
    elif case == "invalid-transition":
        body = Update(delivered, "backordered", clock()).encode()  # delivered cannot be
    elif case == "malformed-json":
        body = b'{"version": 1, "type": '
    elif case == "shipped-without-tracking":
        body = Update(placed, "shipped", clock()).encode()
    elif case == "oversized":
        body = body[:-1] + b', "pad": "' + b"x" * 1100 + b'"}'
    elif case == "not-json":
        content_type = "text/plain"
    before = await snapshot(db)
    reply = await _post_update(served, body, key, headers, at, content_type)
    got = (reply.status, reply.body.get("error"), reply.body.get("field"))
    assert got == REJECTIONS[case], reply.body
    assert reply.body["message"]
    assert await snapshot(db) == before  # no shipment, event, email or nonce changed


async def test_old_nonces_are_pruned_after_twice_the_skew(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(warehouse_nonces),
            [
                {"nonce": "a" * 32, "received_at": NOW - timedelta(seconds=2 * SKEW + 1)},
                {"nonce": "b" * 32, "received_at": NOW - timedelta(seconds=SKEW)},
            ],
        )
    assert await prune_nonces(db, NOW, SKEW) == 1
    rows = await _rows(db, warehouse_nonces, warehouse_nonces.c.nonce)
    assert [row.nonce for row in rows] == ["b" * 32]


# --- the simulated warehouse -----------------------------------------------------------------


def _settings(**more: Any) -> WarehouseSection:
    values: dict[str, Any] = {
        "ship_after_hours": 24,
        "deliver_after_hours": 48,
        "backorder_share": 0.1,
        "backorder_days": 5,
        "seed": 7,
    }
    return WarehouseSection(**(values | more))


@dataclass(frozen=True)
class _Req:
    shipment_id: int


def test_the_simulated_warehouse_backorders_its_share_whatever_the_order_each_update_once() -> None:
    ids = list(range(1, 1001))
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    one, other = SimulatedWarehouse(_settings()), SimulatedWarehouse(_settings())
    for shipment_id in ids:
        assert one.receive(_Req(shipment_id), NOW)
    for shipment_id in shuffled:
        other.receive(_Req(shipment_id), NOW)
    assert not one.receive(_Req(1), NOW + timedelta(days=1))  # twice: nothing changes
    told: list[Update] = []
    for hours in range(0, 24 * 12, 7):  # time passes in steps; each due update told once
        batch = one.due(NOW + timedelta(hours=hours))
        assert [u.at for u in batch] == sorted(u.at for u in batch)
        assert all(u.at <= NOW + timedelta(hours=hours) for u in batch)
        told += batch
    assert one.due(NOW + timedelta(days=100)) == []
    assert sorted(told, key=lambda u: (u.shipment_id, u.at)) == sorted(
        other.due(NOW + timedelta(days=100)), key=lambda u: (u.shipment_id, u.at)
    )  # the same fates, received in another order
    counts = Counter(u.status for u in told)
    assert counts["shipped"] == counts["delivered"] == 1000
    assert 70 <= counts["backordered"] <= 130  # 10 % of 1000, within 3 standard deviations
    assert Counter((u.shipment_id, u.status) for u in told).most_common(1)[0][1] == 1
    for update in told:
        fate = one.fate(update.shipment_id, NOW)
        if update.status == "shipped":
            days = 5 if fate.backordered else 0
            assert update.at == NOW + timedelta(hours=24, days=days)
            assert update.tracking == f"SIM-{reference(update.shipment_id)}"
            assert update.carrier == "SimPost" and update.expected_at == fate.delivered_at
        elif update.status == "delivered":
            assert update.at == fate.ships_at + timedelta(hours=48)
        else:
            assert fate.backordered and update.at == NOW
    reseeded = SimulatedWarehouse(_settings(seed=8))
    flips = [reseeded.fate(i, NOW).backordered != one.fate(i, NOW).backordered for i in ids]
    assert any(flips)  # the seed decides


async def test_mode_simulated_acks_at_once_and_its_updates_survive_restarts(db: Database) -> None:
    """The collector's own driver keeps no memory of its own: every pass recomputes the fates
    from the acknowledged requests, so a restart (a new SimulatedWarehouse) repeats nothing and
    loses nothing."""
    seed = next(
        s
        for s in range(100)
        if {SimulatedWarehouse(_settings(seed=s)).fate(i, NOW).backordered for i in (1, 2, 3)}
        == {True, False}
    )
    settings = _settings(mode="simulated", seed=seed, backorder_share=0.5)
    await _fleet(db, NOW)
    ids = await _orders(db, NOW, 3)
    assert ids == [1, 2, 3]
    dispatcher = Dispatcher(db, settings, sender=SimulatedMode(settings).sender)
    done = await dispatcher.send_due(NOW)
    assert done.acked == ids
    assert {(r.status, r.acked_at) for r in (await _requests(db)).values()} == {("acked", NOW)}
    fates = {i: SimulatedWarehouse(settings).fate(i, NOW) for i in ids}
    late = [i for i in ids if fates[i].backordered]

    async def restart_and_apply(at: datetime) -> list[tuple[int, str]]:
        applied = await apply_simulated(db, SimulatedWarehouse(settings), at)
        return [(u.shipment_id, u.status) for u in applied]

    assert await restart_and_apply(NOW) == [(i, "backordered") for i in late]
    assert await restart_and_apply(NOW + timedelta(hours=1)) == []
    on_time = [i for i in ids if i not in late]
    assert await restart_and_apply(NOW + timedelta(hours=24)) == [(i, "shipped") for i in on_time]
    assert await restart_and_apply(NOW + timedelta(hours=24)) == []  # not twice
    everything = await restart_and_apply(NOW + timedelta(days=30))
    assert sorted(everything) == sorted(
        [(i, "delivered") for i in on_time]
        + [(i, s) for i in late for s in ("shipped", "delivered")]
    )
    assert await restart_and_apply(NOW + timedelta(days=60)) == []
    for i in ids:
        statuses = [s for s, _ in await _events(db, i)]
        assert statuses == ["placed"] + (["backordered"] if i in late else []) + [
            "shipped",
            "delivered",
        ]
    rows = {r.id: r for r in await _rows(db, shipments, shipments.c.id)}
    for i in ids:
        assert rows[i].tracking == f"SIM-{reference(i)}" and rows[i].carrier == "SimPost"
        assert rows[i].shipped_at == fates[i].ships_at
        assert rows[i].delivered_at == fates[i].delivered_at
    kinds = Counter(await _kinds(db))
    assert kinds["backordered"] == kinds["backorder_shipped"] == len(late)  # R15
    assert kinds["shipped"] == len(on_time)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_serve_sends_requests_and_runs_the_simulated_warehouse(
    db: Database, clock: Clock, serve: ServeFactory
) -> None:
    """`serve` in mode "simulated": the dispatcher acks new shipments, the built-in warehouse
    ships and delivers them as the clock moves (dispatcher_ctx)."""
    await serve(mode="simulated", interval_seconds=0.05, backorder_share=0)
    await _fleet(db, clock())
    [shipment] = await _orders(db, clock())

    async def status() -> str:
        [row] = await _rows(db, shipments, shipments.c.id)
        return str(row.status)

    async def acked() -> bool:
        return bool((await _requests(db))[shipment].status == "acked")

    async def delivered() -> bool:
        return await status() == "delivered"

    await _until(acked)
    assert await status() == "placed"
    clock.advance(hours=24 + 48)
    await _until(delivered)
    assert [s for s, _ in await _events(db, shipment)] == ["placed", "shipped", "delivered"]


async def test_round_trip_through_the_simulated_warehouse_over_https(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    serve: ServeFactory,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    """Signed requests out to the simulated warehouse app, signed updates back to the
    collector's API, both over TLS: every shipment backordered, shipped, delivered, once."""
    served = await serve()
    wh = await warehouse(collector_url=served.base_url, backorder_share=1, backorder_days=2, seed=3)
    await _fleet(db, clock())
    ids = await _orders(db, clock(), 2)
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(dispatcher)
    assert (await dispatcher.send_due(clock())).acked == ids
    pushed = await wh.service.push(clock())
    assert [(u.shipment_id, u.status) for u in pushed.sent] == [(i, "backordered") for i in ids]
    clock.advance(hours=24 + 48)  # shipped after a day and two days of backorder
    pushed = await wh.service.push(clock())
    assert [(u.shipment_id, u.status) for u in pushed.sent] == [(i, "shipped") for i in ids]
    clock.advance(hours=48)
    pushed = await wh.service.push(clock())
    assert [(u.shipment_id, u.status) for u in pushed.sent] == [(i, "delivered") for i in ids]
    assert not pushed.refused and pushed.error is None
    assert (await wh.service.push(clock() + timedelta(days=9))).sent == []
    for i in ids:
        assert await _events(db, i) == [
            ("placed", "helpdesk"),
            ("backordered", "warehouse"),
            ("shipped", "warehouse"),
            ("delivered", "warehouse"),
        ]
    rows = await _rows(db, shipments, shipments.c.id)
    assert [(r.status, r.tracking) for r in rows] == [
        ("delivered", f"SIM-{reference(i)}") for i in ids
    ]
    kinds = Counter(await _kinds(db))
    assert kinds["backordered"] == kinds["backorder_shipped"] == 2  # R15


async def test_the_simulated_warehouse_app_checks_what_it_is_sent(
    db: Database, keys: Keys, clock: Clock, pki: Pki, warehouse: WarehouseFactory
) -> None:
    """It behaves as docs/fulfilment.md asks of a warehouse: 401 for a signature that does not
    hold or a replayed nonce, 400 for a body that is not a request or a key that is not its
    reference, 202 once and 200 for a copy; never 409."""
    await _fleet(db, clock())
    [shipment] = await _orders(db, clock())
    body = bytes((await _requests(db))[shipment].body)
    wh = await warehouse()
    good = {DELIVERY_HEADER: reference(shipment), "Content-Type": "application/json"}

    async def post(data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(wh.url, data=data, headers=headers) as response,
        ):
            return response.status, await response.json()

    wrong = signing.sign(secrets.token_bytes(32), body, clock())
    status, answer = await post(body, good | wrong)
    assert (status, answer["error"]) == (401, "bad-signature") and answer["message"]
    no_serial = body.replace(b'"serial":"IT-1"', b'"serial":""')
    status, answer = await post(no_serial, good | signing.sign(keys.outbound, no_serial, clock()))
    assert (status, answer["error"], answer["field"]) == (400, "invalid-request", "lines")  # R3
    other_key = good | {DELIVERY_HEADER: "ASR-999999"}
    status, answer = await post(body, other_key | signing.sign(keys.outbound, body, clock()))
    assert (status, answer["error"]) == (400, "delivery")
    signed = signing.sign(keys.outbound, body, clock())
    assert await post(body, good | signed) == (
        202,
        {"reference": reference(shipment), "status": "accepted"},
    )
    status, answer = await post(body, good | signed)  # the same nonce again
    assert (status, answer["error"]) == (401, "replayed")
    assert await post(body, good | signing.sign(keys.outbound, body, clock())) == (
        200,
        {"reference": reference(shipment), "status": "duplicate"},
    )
    assert wh.service.warehouse.received == 1


async def test_without_an_inbound_key_the_updates_api_is_off(
    db: Database, keys: Keys, clock: Clock, serve: ServeFactory
) -> None:
    served = await serve(inbound_secret_file=None)
    await _fleet(db, clock())
    [shipment] = await _orders(db, clock())
    before = await snapshot(db)
    reply = await _post_update(
        served, Update(shipment, "backordered", clock()).encode(), keys.inbound
    )
    assert (reply.status, reply.body["error"]) == (404, "updates-off")
    assert await snapshot(db) == before


# --- the documentation -----------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "fulfilment.md"


def _json_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0].strip() for block in text.split("```json\n")[1:]]


def test_the_documented_bodies_and_worked_example_are_the_encoders_own() -> None:
    """docs/fulfilment.md's examples are what the encoders make and the signer signs."""
    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    request = Request(
        123,
        at,
        "rossi",
        "Rossi S.r.l.",
        "milano",
        "Via Roma 1, 20121 Milano",
        "Anna Rossi",
        "anna@rossi.example",
        (
            Line("CL45-0001", "black", "TN-K", 1, "trigger"),
            Line("CL45-0001", "waste", "WT-1", 1, "waste-with-black"),
            Line("CL45-0002", "cyan", "TN-C", 1, "consolidated"),
        ),
    )
    updates = [
        Update(
            123,
            "backordered",
            at + timedelta(hours=1),
            expected_at=at + timedelta(days=8),
            note="back in stock on 2026-03-07",
        ),
        Update(
            123,
            "shipped",
            at + timedelta(days=6),
            tracking="1Z999AA10123456784",
            carrier="UPS",
            expected_at=at + timedelta(days=8),
        ),
        Update(123, "delivered", at + timedelta(days=8)),
        Update(123, "cancelled", at + timedelta(hours=2), note="discontinued item"),
    ]
    text = DOC.read_text()
    blocks = _json_blocks(text)
    assert blocks[0] == json.dumps(json.loads(request.encode()), indent=2)
    assert blocks[1:5] == [u.encode().decode() for u in updates]
    assert [Update.decode(block.encode()) for block in blocks[1:5]] == updates  # parse back
    key_file = "YXNyLWRvY3MtZXhhbXBsZS1rZXktMzItYnl0ZXMtb2s="
    key = base64.b64decode(key_file)
    assert key == b"asr-docs-example-key-32-bytes-ok" and key.hex() in text
    body = updates[2].encode()
    assert body.decode() in text and f"Body ({len(body)} bytes" in text
    timestamp = 1773133260
    assert datetime.fromtimestamp(timestamp, timezone.utc) == at + timedelta(days=8, minutes=1)
    value = signing.signature(key, timestamp, "9f86d081884c7d659a2feaa0c55ad015", body)
    assert f"X-ASR-Signature: {value}" in text and key_file in text


# --- part number needed (issue 14) -----------------------------------------------------------


async def test_r15_a_shipment_waits_for_its_part_numbers_then_is_sent_with_them(
    db: Database,
    pki: Pki,
    keys: Keys,
    clock: Clock,
    warehouse: WarehouseFactory,
    dispatchers: list[Dispatcher],
) -> None:
    """A line without a part number holds its shipment back from the warehouse (the supply is
    still ordered); when the helpdesk gives the number, the request goes with it. A
    description is never sent as a SKU."""
    now = clock()
    await fleet.add_customer(
        db,
        "rossi",
        "self",
        now,
        sites_=[("milano", "Via Roma 1")],
        contacts_=[fleet.ContactSpec("anna", "anna@rossi.example")],
    )
    toner = fleet.SupplySpec("black", "1.1", "toner", "black", "TN-K", 300.0)
    waste = fleet.SupplySpec("waste", "1.5", "waste", None, None)  # part number needed
    await fleet.register(
        db, [fleet.DeviceSpec("IT-9", "rossi", "milano", "anna", "MFP", (toner, waste))], now
    )
    shipment = await fleet.record_extra_order(db, "IT-9", "black", 1, now)
    assert await _requests(db) == {}  # waiting: nothing for the warehouse yet
    events = await _rows(db, shipment_events, shipment_events.c.id)
    assert [e.detail.get("waiting") for e in events] == [shipping.PART_NUMBER_NEEDED]
    wh = await warehouse()
    dispatcher = Dispatcher(db, _webhook(wh.url, keys, pki))
    dispatchers.append(dispatcher)
    idle = await dispatcher.send_due(now)
    assert idle.acked == [] and wh.arrived == []
    helpdesk_user = Principal(1, "hd", "helpdesk", None)
    released = await helpdesk.set_part_number(db, helpdesk_user, "IT-9", "waste", "WT-9", now)
    assert released == [shipment]
    done = await dispatcher.send_due(now)
    assert done.acked == [shipment]
    [(_, body)] = wh.arrived
    lines = [(line["supply_id"], line["sku"]) for line in json.loads(body)["lines"]]
    assert lines == [("black", "TN-K"), ("waste", "WT-9")]
    again = await helpdesk.set_part_number(db, helpdesk_user, "IT-9", "waste", "WT-10", now)
    assert again == [] and len(await _requests(db)) == 1  # sent once; later numbers are new


def test_the_production_sender_does_not_import_the_simulated_warehouse() -> None:
    """collector.fulfil.webhook, what mode "webhook" sends with, loads no simulated module."""
    import subprocess
    import sys

    code = (
        "import sys, collector.fulfil.webhook, collector.fulfil.outbound;"
        " print(sorted(m for m in sys.modules if 'simul' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mode_simulated_takes_its_sender_from_the_edge(db: Database) -> None:
    """The dispatcher has no simulated warehouse of its own: in mode "simulated" the edge
    hands it one (collector.app, IN_PROCESS), and without it the dispatcher refuses to start."""
    settings = _settings(mode="simulated")
    with pytest.raises(ValueError, match="edge"):
        Dispatcher(db, settings)
    mode = SimulatedMode(settings)
    assert Dispatcher(db, settings, sender=mode.sender).outbox.sender is mode.sender
    app = create_app(CollectorConfig(), db)
    assert app[fulfil_views.IN_PROCESS] == {"simulated": SimulatedMode}
