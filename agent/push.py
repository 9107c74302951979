"""The agent's HTTPS client to the collector; the only module that imports aiohttp.

Is: one keep-alive session per process (`open_client` makes it, its owner's `async with`
closes it); TLS 1.2 or newer with the collector's certificate verified against the configured
CA file (or the system's trust store when none is set) and, when `pin_sha256` is set, its
SHA-256 fingerprint checked too, before a byte of the request is sent; the agent's three
requests (enroll, send readings, rotate its key). Transport failures are translated here:
`Unreachable` (connection, timeout: transient) or `TlsRefused` (the peer is not the
collector we trust). An HTTP answer comes back as data (`Answer`) for agent.delivery to judge;
enroll and rotate raise `Refused` for anything but 201.
Is not: what an answer means for the spool (agent.delivery), nor signing (wire.signing).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from agent import __version__
from agent.config import CollectorSection
from wire.enroll import EnrollRequest, EnrollResponse, KeyRotated, decode_message, encode_message
from wire.errors import WireError

READINGS_PATH = "/api/v1/readings"
ENROLL_PATH = "/api/v1/enroll"
KEEPALIVE_SECONDS = 60
_Reply = TypeVar("_Reply", EnrollResponse, KeyRotated)


class PushError(Exception):
    """A request that did not get an answer we can use."""

    transient = True  # may work if tried again later


class Unreachable(PushError):
    """No answer: connection refused or reset, name not found, timeout."""


class TlsRefused(PushError):
    """The peer's certificate is not trusted, or not the pinned one: nothing was sent."""

    transient = False


class Refused(PushError):
    """The collector answered, but not with success."""

    def __init__(self, what: str, answer: Answer) -> None:
        super().__init__(f"{what} refused: HTTP {answer.status} {answer.reason}: {answer.error}")
        self.answer = answer
        self.transient = answer.status >= 500 or answer.status == 409


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the collector, as data."""

    status: int
    body: Mapping[str, Any] | None  # the JSON object, None if the body was not one
    server_date: datetime | None = None
    retry_after: float | None = None
    raw: bytes = field(default=b"", repr=False)

    @property
    def reason(self) -> str | None:
        """The refusal's machine-readable `reason`, if any."""
        value = self.body.get("reason") if self.body else None
        return value if isinstance(value, str) else None

    @property
    def error(self) -> str:
        """The refusal's text, or the start of the body."""
        value = self.body.get("error") if self.body else None
        if isinstance(value, str):
            return value
        return self.raw[:200].decode("utf-8", "replace") or "(no body)"

    @property
    def field(self) -> str | None:
        """The path of the field a 400 names, e.g. `readings[3].reading.serial`."""
        value = self.body.get("field") if self.body else None
        return value if isinstance(value, str) else None


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context verifying the collector (hostname included) against `ca_file`."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise TlsRefused(f"collector.ca_file: cannot load {ca_file}: {err}") from err
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class CollectorClient:
    """The collector's API over one injected session."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, context: ssl.SSLContext
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._context = context

    @property
    def base_url(self) -> str:
        """Where the collector is."""
        return self._base_url

    async def send_readings(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST a signed batch; the answer, whatever its status."""
        return await self._post(READINGS_PATH, body, headers)

    async def enroll(self, request: EnrollRequest) -> EnrollResponse:
        """POST an enrollment; the collector's record of us, or Refused."""
        answer = await self._post(ENROLL_PATH, encode_message(request), {})
        return _expect(answer, "enrollment", EnrollResponse)

    async def rotate_key(
        self, agent_id: str, body: bytes, headers: Mapping[str, str]
    ) -> KeyRotated:
        """POST a key rotation signed by the current key; the new key id, or Refused."""
        answer = await self._post(f"/api/v1/agents/{agent_id}/keys", body, headers)
        return _expect(answer, "key rotation", KeyRotated)

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        sent = {**headers, "Content-Type": "application/json"}
        url = self._base_url + path
        try:
            async with self._session.post(
                url, data=body, headers=sent, ssl=self._context
            ) as response:
                raw = await response.read()
                return _answer(response, raw)
        except aiohttp.ServerFingerprintMismatch as err:
            raise TlsRefused(
                f"{self._base_url}: certificate SHA-256 {err.got.hex(':').upper()} is not the"
                f" pinned {err.expected.hex(':').upper()} (collector.pin_sha256): nothing sent"
            ) from err
        except aiohttp.ClientConnectorCertificateError as err:
            raise TlsRefused(
                f"{self._base_url}: certificate not trusted ({err.certificate_error});"
                " check collector.ca_file: nothing sent"
            ) from err
        except aiohttp.ClientConnectorError as err:
            why = err.os_error.strerror or str(err.os_error)
            raise Unreachable(f"{self._base_url}: cannot connect: {why}") from err
        except TimeoutError as err:
            raise Unreachable(f"{url}: no answer in time") from err
        except (aiohttp.ClientError, OSError) as err:
            raise Unreachable(f"{url}: {type(err).__name__}: {err}".rstrip(": ")) from err


def _answer(response: aiohttp.ClientResponse, raw: bytes) -> Answer:
    body: Mapping[str, Any] | None = None
    try:
        decoded = json.loads(raw) if raw else None
        body = decoded if isinstance(decoded, dict) else None
    except ValueError:
        body = None
    server_date = None
    if "Date" in response.headers:
        try:
            server_date = parsedate_to_datetime(response.headers["Date"])
        except (TypeError, ValueError):
            server_date = None
    retry_after = None
    if response.headers.get("Retry-After", "").isdigit():
        retry_after = float(response.headers["Retry-After"])
    return Answer(response.status, body, server_date, retry_after, raw)


def _expect(answer: Answer, what: str, kind: type[_Reply]) -> _Reply:
    if answer.status != 201:
        raise Refused(what, answer)
    try:
        return decode_message(kind, answer.raw)
    except WireError as err:
        raise Refused(what, Answer(502, {"error": f"unexpected answer: {err}"})) from err


@asynccontextmanager
async def open_client(settings: CollectorSection) -> AsyncIterator[CollectorClient]:
    """The collector client on one keep-alive HTTPS session, closed on leaving."""
    context = tls_context(settings.ca_file)
    pin = settings.pin()
    # The pin sits on the connector and the CA context on each request: aiohttp then verifies
    # the chain and the hostname with the context and checks the fingerprint on top of that.
    connector = aiohttp.TCPConnector(
        ssl=aiohttp.Fingerprint(pin) if pin else context,
        limit=4,
        keepalive_timeout=KEEPALIVE_SECONDS,
    )
    timeout = aiohttp.ClientTimeout(
        total=settings.request_timeout_seconds, sock_connect=settings.connect_timeout_seconds
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": f"asr-agent/{__version__}"},
    ) as session:
        yield CollectorClient(session, settings.url, context)
        # Let the TLS transports say goodbye before the loop goes (aiohttp's advice).
        await asyncio.sleep(0)
