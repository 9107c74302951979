"""Test kit for the collector: a PKI, a movable clock, readings and batches, a signing agent."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from collector.app import create_metrics_app
from collector.appkeys import COLLECTOR
from collector.config import CollectorConfig
from collector.service import Collector
from collector.store.database import Database
from collector.store.schema import metadata
from tests import servers
from wire.batch import Batch, BatchReading, Heartbeat, PrinterCounts, encode_batch
from wire.enroll import EnrollRequest, encode_message
from wire.reading import PrinterReading, Status, Supply
from wire.signing import encode_public_key, sign

# --- PKI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA and a server certificate it issued for 127.0.0.1 and localhost."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only the test CA (hostname checked)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def make_pki(
    directory: Path, before: timedelta = timedelta(hours=1), after: timedelta = timedelta(days=2)
) -> Pki:
    """Generate the CA and the server certificate into `directory`, valid from `before` ago
    to `after` ahead."""
    now = datetime.now(timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ASR test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - before)
        .not_valid_after(now + after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - before)
        .not_valid_after(now + after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


# --- time ----------------------------------------------------------------------------------


class Clock:
    """A clock the test moves; starts at the real time, so TLS certificates are valid."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# --- readings and batches ------------------------------------------------------------------


def supply(index: str, colour: str = "black", level: int = 1570) -> Supply:
    """A toner supply measured in tenths of grams (R1)."""
    return Supply(
        index=index,
        description=f"{colour.title()} Toner",
        type="toner",
        supply_class="consumed",
        colour=colour,
        unit="tenthsOfGrams",
        max_capacity=2400,
        level=level,
        percent=round(100 * level / 2400, 1),
        grams_left=level / 10,
        grams_used=(2400 - level) / 10,
        quality="measured",
        kind="toner",
        receptacle=False,
    )


WASTE = Supply(
    index="1.5",
    description="Waste Toner Box",
    type="wasteToner",
    supply_class="filled",
    colour=None,
    unit="percent",
    max_capacity=100,
    level=-3,
    percent=None,
    grams_left=None,
    grams_used=None,
    quality="some-remaining",
    kind="waste",
    receptacle=True,
)


def reading(serial: str | None = "CL45-0001", level: int = 1570) -> PrinterReading:
    """A colour printer's reading: four toners and a waste box."""
    return PrinterReading(
        serial=serial,
        serial_source="prtGeneralSerialNumber" if serial else None,
        model="Acme ColorLaser CL-4500dn",
        sys_object_id="1.3.6.1.4.1.99999.1.4500",
        sys_descr="Acme ColorLaser",
        vendor="acme",
        uptime_seconds=12345.6,
        page_count=184321,
        power_on_count=None,
        counter_unit="impressions",
        status=Status(device="running", printer="idle", errors=("lowToner",), power="ready"),
        supplies=(
            supply("1.1", "black", level),
            supply("1.2", "cyan", level - 100),
            supply("1.3", "magenta", level - 200),
            supply("1.4", "yellow", level - 300),
            WASTE,
        ),
    )


def make_batch(
    agent_id: str,
    seqs: range | list[int],
    now: datetime,
    serials: int = 3,
    batch_id: str | None = None,
) -> Batch:
    """A batch with one reading per seq, spread over `serials` printers, read before `now`."""
    items = tuple(
        BatchReading(
            seq=seq,
            read_at=now - timedelta(minutes=len(seqs) - i),
            printer=f"printer-{seq % serials}",
            address=f"192.0.2.{10 + seq % serials}:161",
            reading=reading(f"CL45-{seq % serials:04d}", level=2000 - seq),
        )
        for i, seq in enumerate(seqs)
    )
    return Batch(
        agent_id=agent_id,
        batch_id=batch_id or str(uuid.uuid4()),
        sent_at=now,
        readings=items,
        heartbeat=Heartbeat(
            agent_version="0.1.0",
            uptime_seconds=3600.0,
            printers=PrinterCounts(answering=serials, asleep=1),
            spool_depth=len(items),
            dropped_total=0,
            last_poll_at=now - timedelta(minutes=1),
        ),
    )


def with_reading(batch: Batch, index: int, **changes: Any) -> Batch:
    """The batch with one of its readings changed."""
    items = list(batch.readings)
    items[index] = replace(items[index], **changes)
    return replace(batch, readings=tuple(items))


# --- a signing agent -----------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer: status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass
class Agent:
    """An enrolled agent as the collector sees it from outside: keys, id, its HTTP session."""

    http: aiohttp.ClientSession
    base_url: str
    clock: Clock
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    agent_id: str = ""
    key_id: str = ""

    async def enroll(self, token: str) -> Reply:
        """POST /api/v1/enroll with this agent's key; remembers the id on success."""
        body = encode_message(
            EnrollRequest(token, encode_public_key(self.key.public_key()), "0.1.0", "edge-1")
        )
        reply = await self.post("/api/v1/enroll", body, signed=False)
        if reply.status == 201:
            self.agent_id = reply.body["agent_id"]
            self.key_id = reply.body["key_id"]
        return reply

    def batch(self, seqs: range | list[int], **kwargs: Any) -> Batch:
        """A batch of this agent's."""
        return make_batch(self.agent_id, seqs, self.clock(), **kwargs)

    def sign(
        self, body: bytes, key: Ed25519PrivateKey | None = None, at: datetime | None = None
    ) -> dict[str, str]:
        """Signature headers over `body`."""
        return sign(key or self.key, body, at or self.clock())

    async def send(self, batch: Batch | bytes, **kwargs: Any) -> Reply:
        """POST /api/v1/readings, signed by this agent's key unless `headers` are given."""
        body = batch if isinstance(batch, bytes) else encode_batch(batch)
        return await self.post("/api/v1/readings", body, **kwargs)

    async def post(
        self,
        path: str,
        body: bytes,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        """POST `body` to `path`, signed now unless headers are given."""
        sent = dict(headers) if headers is not None else (self.sign(body) if signed else {})
        sent["Content-Type"] = content_type
        async with self.http.post(self.base_url + path, data=body, headers=sent) as response:
            text = await response.text()
            payload = json.loads(text) if text else {}
            return Reply(response.status, payload)


# --- the served app ------------------------------------------------------------------------


@dataclass
class Served:
    """The real collector app, served over HTTPS on 127.0.0.1, and a client trusting it."""

    base_url: str
    http: aiohttp.ClientSession
    app: web.Application
    db: Database
    clock: Clock

    @property
    def collector(self) -> Collector:
        return self.app[COLLECTOR]

    def agent(self) -> Agent:
        """A new, not yet enrolled agent with its own key."""
        return Agent(self.http, self.base_url, self.clock)

    async def token(self, customer: str = "acme", site: str = "milano") -> str:
        token, _ = await self.collector.create_token(customer, site)
        return token


@contextlib.asynccontextmanager
async def metrics_listener(app: web.Application) -> AsyncIterator[str]:
    """The collector app's /metrics on a listener of its own on 127.0.0.1, as `serve` does
    ([metrics] listen): yields its URL."""
    runner = web.AppRunner(create_metrics_app(app))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    finally:
        await runner.cleanup()


def collector_config(pki: Pki, **ingest: object) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "tls_cert": pki.server_cert,
                "tls_key": pki.server_key,
            },
            "ingest": ingest,
            "collector": {"state_dir": pki.server_cert.parent / "state"},  # the session key
        }
    )


# --- the store, seen from a test -----------------------------------------------------------


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order: to show that nothing changed."""
    out = {}
    async with db.transaction() as conn:
        for name, table in metadata.tables.items():
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out[name] = [tuple(row) for row in rows]
    return out


# --- `asr-collector serve` as a process ----------------------------------------------------


@dataclass
class Process:
    """A running `asr-collector serve` and what it printed when it started."""

    proc: asyncio.subprocess.Process
    url: str
    lines: list[str]
    log: Path
    watched: servers.Watched = field(init=False)

    @property
    def metrics_url(self) -> str | None:
        """Its GET /metrics on the listener of its own ([metrics] listen), if it has one."""
        found = [line.split()[-1] for line in self.lines if line.startswith("metrics on ")]
        return found[0] if found else None

    def __post_init__(self) -> None:
        if self.metrics_url is not None:
            _METRICS_URLS[self.url] = self.metrics_url
        self.watched = servers.watch(
            f"asr-collector serve at {self.url}", self.log, lambda: self.proc.returncode
        )

    async def stop(self) -> int:
        """SIGTERM, then its exit status."""
        if self.proc.returncode is None:
            self.proc.terminate()
        code = await asyncio.wait_for(self.proc.wait(), 20)
        servers.unwatch(self.watched)
        return code


# The latest collector started at each URL -> its /metrics (on a listener of its own).
_METRICS_URLS: dict[str, str] = {}


def metrics_url(url: str) -> str:
    """Where the collector serving `url` answers GET /metrics: its own listener when
    start_collector started it, else `url`/metrics (a collector with on_main_port)."""
    return _METRICS_URLS.get(url, url + "/metrics")


def _own_metrics_port(config: Path) -> None:
    if "[metrics]" not in config.read_text():
        with config.open("a") as out:
            out.write('\n[metrics]\nlisten = "127.0.0.1:0"\n')


async def start_collector(
    config: Path,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start `asr-collector serve --config CONFIG` (with `env` added to the environment);
    returns once it listens. A config without a [metrics] section gets one listening on any
    free port of 127.0.0.1 (the default port would clash between collectors)."""
    _own_metrics_port(config)
    log = config.with_suffix(".log")
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collector.cli",
            "serve",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: list[str] = []

    async def listening() -> Process:
        while True:
            line = (await stdout.readline()).decode()
            if not line:
                raise AssertionError(f"collector exited: {log.read_text()}")
            lines.append(line.strip())
            if line.startswith("listening on "):
                return Process(proc, line.split()[-1], lines, log)

    try:
        return await asyncio.wait_for(listening(), timeout)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
