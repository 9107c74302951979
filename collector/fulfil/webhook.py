"""The warehouse sender: POSTs each fulfilment request, signed, to the warehouse's HTTPS API.

Is: the production sender plugged into the outbox worker (collector.outbox) by the dispatcher
(collector.fulfil.outbound). Each request's body is the exact JSON fixed when its shipment
was placed; it is signed (collector.fulfil.signing) and carries its shipment's reference as
the idempotency key `X-ASR-Delivery`, by which the warehouse keeps one shipment per reference,
so a request left `sending` by a crash is sent again. The warehouse's certificate is checked
against `ca_file` (or the system's CAs). Its answers:
- 2xx, or 409 (the warehouse has this reference already): `acked`;
- 408 or another 5xx: this request later, the pass goes on;
- 429, 503, a timeout, a connection or TLS failure: the warehouse takes nothing now, the pass
  stops;
- any other answer (400, 401, 404, a redirect...): `failed`, the same bytes would be refused
  again.
Is not: the simulated warehouse (collector.fulfil.simulated), which it never imports (a
contract of .importlinter).
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime

import aiohttp

from collector.config import WarehouseSection
from collector.fulfil.signing import load_key, sign
from collector.fulfilment import reference
from collector.outbox import Accepted, Answer, Later, Refused, Send, Unreachable
from collector.store.outbox_rows import FULFILMENT_REQUESTS, FulfilmentRequest

DELIVERY_HEADER = "X-ASR-Delivery"
USER_AGENT = "asr-collector (fulfilment)"


class RequestSender:
    """What the fulfilment outbox's senders share: the outbox, its timings, the log's words."""

    name = "warehouse"
    box = FULFILMENT_REQUESTS
    stale_error = f"the dispatcher stopped while sending it: sent again (same {DELIVERY_HEADER})"

    def __init__(self, warehouse: WarehouseSection) -> None:
        self.schedule = self.warehouse = warehouse

    def describe(self, row_id: int) -> str:
        """The request as the log names it."""
        return f"fulfilment request {reference(row_id)}"

    async def load(self, record: FulfilmentRequest) -> bytes:
        """The request's body, as fixed when it was placed."""
        return record.body

    def session(self) -> AbstractAsyncContextManager[Send[bytes]]:
        """A session with the warehouse: each sender's own."""
        raise NotImplementedError


class WebhookSender(RequestSender):
    """Sends fulfilment requests to the warehouse's webhook (mode "webhook")."""

    def __init__(
        self, warehouse: WarehouseSection, session: aiohttp.ClientSession | None = None
    ) -> None:
        super().__init__(warehouse)
        assert warehouse.secret_file is not None and warehouse.url is not None  # config
        self.url = warehouse.url
        self._key = load_key(warehouse.secret_file)
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the HTTP session, if this sender made it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def session(self) -> AbstractAsyncContextManager[Send[bytes]]:
        """The HTTP session outlives the pass: nothing to open or close per pass."""
        return nullcontext(self._post)

    async def _post(self, shipment_id: int, body: bytes, now: datetime) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: reference(shipment_id),
            **sign(self._key, body, now),
        }
        try:
            async with self._http().post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.content.read(300)).decode("utf-8", "replace")
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise Unreachable(f"cannot reach {self.url}: {type(err).__name__}: {err}") from err
        detail = f"HTTP {status}: {text}".strip()
        if 200 <= status < 300 or status == 409:  # 409: it has this reference already
            return Accepted(detail, {"acked_at": now})
        if status in (429, 503):
            raise Unreachable(f"{self.url} answered {detail}")
        if status == 408 or status >= 500:
            return Later(detail)
        return Refused(detail)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            ca_file = self.warehouse.ca_file
            context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file is not None else None
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=self.warehouse.timeout_seconds),
            )
        return self._session
