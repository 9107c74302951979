"""The simulated warehouse over HTTP: takes the collector's signed webhooks, answers with updates.

Is: a small aiohttp app around collector.fulfil.simulated, for the demo and the tests, that
behaves as docs/fulfilment.md asks of a real warehouse:
- `POST /fulfilment/requests` checks the signature (401 when missing, wrong, stale or a
  replayed nonce), that the body is a request naming every line's serial (400) and that
  `X-ASR-Delivery` is its reference (400); then answers 202 for a new reference and
  200 `{"status": "duplicate"}` for one it has already, which it does not fulfil again.
  It never answers 409 for anything else, since the collector reads a 409 as "have it";
- `push(now)` posts, signed with the collector's inbound key, every update that is due to
  the collector's `POST /api/v1/warehouse/updates`, oldest first, until the collector takes
  it (200) or refuses it for good (a 4xx other than 401/408/429); a 5xx, 401 or an
  unreachable collector stops the push, and the rest wait for the next one. The app pushes
  every `interval_seconds` if given; tests call `push` themselves.
`python -m collector.fulfil.simulated_app --help` serves it on its own.
Is not: durable: its memory (what it received, what it has still to say) is this process's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from collector.config import WarehouseSection
from collector.errors import InvalidRequest
from collector.fulfil.outbound import DELIVERY_HEADER
from collector.fulfil.signing import SignatureRefused, load_key, sign, verify
from collector.fulfil.simulated import Order, SimulatedWarehouse, read_request
from collector.fulfilment import Update
from collector.service import Clock, utcnow

log = logging.getLogger(__name__)
REQUESTS_PATH = "/fulfilment/requests"
UPDATES_PATH = "/api/v1/warehouse/updates"  # the collector's (collector.fulfil.views)


@dataclass(frozen=True)
class Delivery:
    """A request the warehouse took in (signature good): its key, body, and if it was new."""

    key: str
    body: bytes
    order: Order
    new: bool


@dataclass
class Push:
    """What one push did."""

    sent: list[Update] = field(default_factory=list)  # taken by the collector
    refused: list[tuple[Update, int, str]] = field(default_factory=list)  # for good
    error: str | None = None  # why the rest wait


class WarehouseService:
    """The simulated warehouse's state and its two directions of traffic."""

    def __init__(
        self,
        secret: bytes,
        collector_url: str,
        collector_secret: bytes,
        settings: WarehouseSection,
        clock: Clock = utcnow,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.secret = secret
        self.collector_url = collector_url.rstrip("/")
        self.collector_secret = collector_secret
        self.settings = settings
        self.clock = clock
        self.ssl_context = ssl_context
        self.warehouse = SimulatedWarehouse(settings)
        self.deliveries: list[Delivery] = []
        self.outbox: list[Update] = []  # due, not yet taken by the collector
        self._nonces: dict[str, datetime] = {}
        self._session: aiohttp.ClientSession | None = None

    async def take_request(self, request: web.Request) -> web.Response:
        """The webhook: a signed fulfilment request."""
        now = self.clock()
        body = await request.read()
        try:
            signed = verify(
                self.secret, request.headers, body, now, self.settings.clock_skew_seconds
            )
        except SignatureRefused as err:
            return _error(401, err.reason, str(err))
        self._forget_nonces(now)
        if signed.nonce in self._nonces:
            return _error(401, "replayed", f"nonce {signed.nonce} was used before")
        self._nonces[signed.nonce] = now
        try:
            order = read_request(body)
        except InvalidRequest as err:
            return _error(400, err.reason, str(err), err.field)
        key = request.headers.get(DELIVERY_HEADER, "")
        if key != order.reference:
            return _error(400, "delivery", f"{DELIVERY_HEADER} must be {order.reference}")
        new = self.warehouse.receive(order, now)
        self.deliveries.append(Delivery(key, body, order, new))
        log.info("simulated warehouse: %s %s", key, "accepted" if new else "again (duplicate)")
        answer = {"reference": order.reference, "status": "accepted" if new else "duplicate"}
        return web.json_response(answer, status=202 if new else 200)

    def _forget_nonces(self, now: datetime) -> None:
        older = now - timedelta(seconds=2 * self.settings.clock_skew_seconds)
        for nonce in [n for n, at in self._nonces.items() if at < older]:
            del self._nonces[nonce]

    async def push(self, now: datetime | None = None) -> Push:
        """Post the due updates to the collector, oldest first; see the module's doc."""
        now = now or self.clock()
        self.outbox.extend(self.warehouse.due(now))
        result = Push()
        url = self.collector_url + UPDATES_PATH
        while self.outbox:
            update = self.outbox[0]
            body = update.encode()
            headers = {"Content-Type": "application/json", **sign(self.collector_secret, body, now)}
            try:
                async with self._http().post(url, data=body, headers=headers) as response:
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
                result.error = f"cannot reach {url}: {type(err).__name__}: {err}"
                break
            if status == 200:
                result.sent.append(update)
            elif 400 <= status < 500 and status not in (401, 408, 429):
                result.refused.append((update, status, text))
                log.warning("collector refused %s: %d %s", update.status, status, text)
            else:
                result.error = f"collector answered {status}: {text}"
                break
            self.outbox.pop(0)
        return result

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context or True),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP session to the collector."""
        if self._session is not None:
            await self._session.close()
            self._session = None


SERVICE = web.AppKey("simulated_warehouse", WarehouseService)


def simulated_warehouse_app(
    secret: bytes,
    collector_url: str,
    collector_secret: bytes,
    settings: WarehouseSection | None = None,
    *,
    clock: Clock = utcnow,
    ssl_context: ssl.SSLContext | None = None,
    interval_seconds: float | None = None,
) -> web.Application:
    """The simulated warehouse's app: `secret` checks the collector's requests,
    `collector_secret` signs the updates posted to `collector_url` (its base URL);
    `ssl_context` verifies the collector's certificate; it pushes every `interval_seconds`."""
    service = WarehouseService(
        secret,
        collector_url,
        collector_secret,
        settings or WarehouseSection(),
        clock,
        ssl_context,
    )
    app = web.Application()
    app[SERVICE] = service
    app.router.add_post(REQUESTS_PATH, service.take_request)

    async def pusher(app: web.Application) -> AsyncIterator[None]:
        task = None
        if interval_seconds is not None:
            task = asyncio.create_task(_push_loop(service, interval_seconds), name="sim-push")
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.close()

    app.cleanup_ctx.append(pusher)
    return app


async def _push_loop(service: WarehouseService, interval_seconds: float) -> None:
    while True:
        try:
            done = await service.push()
        except Exception:  # the loop's outer guard: log, try again at the next push
            log.exception("simulated warehouse: push failed")
        else:
            if done.error:
                log.warning("simulated warehouse: %s; %d wait", done.error, len(service.outbox))
        await asyncio.sleep(interval_seconds)


def _error(status: int, reason: str, message: str, field: str | None = None) -> web.Response:
    body = {"error": reason, "message": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulated warehouse on its own (the demo's)."""
    parser = argparse.ArgumentParser(
        prog="python -m collector.fulfil.simulated_app", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8444)
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--secret-file", type=Path, required=True, help="checks requests")
    parser.add_argument("--collector-url", required=True, help="https://collector:8443")
    parser.add_argument("--collector-secret-file", type=Path, required=True, help="signs updates")
    parser.add_argument("--collector-ca-file", type=Path, help="verifies the collector's cert")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between pushes")
    parser.add_argument("--ship-after-hours", type=float, default=24)
    parser.add_argument("--deliver-after-hours", type=float, default=48)
    parser.add_argument("--backorder-share", type=float, default=0.1)
    parser.add_argument("--backorder-days", type=float, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = WarehouseSection(
        ship_after_hours=args.ship_after_hours,
        deliver_after_hours=args.deliver_after_hours,
        backorder_share=args.backorder_share,
        backorder_days=args.backorder_days,
        seed=args.seed,
    )
    client = None
    if args.collector_ca_file is not None:
        client = ssl.create_default_context(cafile=str(args.collector_ca_file))
    server = None
    if args.tls_cert is not None:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(args.tls_cert, args.tls_key)
    app = simulated_warehouse_app(
        load_key(args.secret_file),
        args.collector_url,
        load_key(args.collector_secret_file),
        settings,
        ssl_context=client,
        interval_seconds=args.interval,
    )
    web.run_app(app, host=args.host, port=args.port, ssl_context=server)


if __name__ == "__main__":
    main()
