"""Agent fixtures: the test PKI, a simulated fleet on loopback, the collector in-process
(its real app over HTTPS, with a clock the test moves) or as a process, an enrolled agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.config import CollectorSection as AgentCollectorSection
from agent.enrollment import enroll
from agent.identity import Identity
from agent.profile import Profile
from agent.push import CollectorClient, open_client
from collector.app import create_app
from collector.appkeys import COLLECTOR
from collector.config import CollectorSection
from collector.service import Collector
from collector.tls import server_context
from sim.fleet import make_fleet
from sim.responder import Responder, SimPrinter
from tests.agent.kit import CollectorSite, query, started_collector
from tests.collector.kit import Clock, Pki, collector_config, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Fleet:
    """Simulated printers served on one UDP port, each under its own community."""

    port: int
    printers: dict[str, SimPrinter]

    @property
    def targets(self) -> dict[str, int]:
        """Community -> port, as agent_config takes it."""
        return dict.fromkeys(self.printers, self.port)


@pytest.fixture
async def fleet(profile: Profile) -> AsyncIterator[Fleet]:
    """Three printers of the synthetic fleet (asr-printer-sim's), on 127.0.0.1."""
    printers = {name: SimPrinter(entries) for name, entries in make_fleet(profile, 3).items()}
    async with Responder(printers) as port:
        yield Fleet(port, printers)


@pytest.fixture
async def collector(tmp_path: Path, pki: Pki) -> AsyncIterator[CollectorSite]:
    """`asr-collector serve` on 127.0.0.1 with the test CA's certificate, SQLite."""
    site = await started_collector(tmp_path / "collector", pki)
    try:
        yield site
    finally:
        await site.stop()


@dataclass
class InProcess:
    """The collector's real app served over HTTPS on 127.0.0.1, in this process."""

    url: str
    app: web.Application
    clock: Clock
    db: Path

    @property
    def collector(self) -> Collector:
        return self.app[COLLECTOR]

    async def token(self) -> str:
        token, _ = await self.collector.create_token("acme", "milano")
        return token

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return query(self.db, sql, *params)


@pytest.fixture
async def served(tmp_path: Path, pki: Pki) -> AsyncIterator[InProcess]:
    clock = Clock()
    state_dir = tmp_path / "collector"
    config = collector_config(pki).model_copy(
        update={"collector": CollectorSection(state_dir=state_dir)}
    )
    app = create_app(config, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = server_context(pki.server_cert, pki.server_key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield InProcess(url, app, clock, state_dir / "collector.db")
    finally:
        await runner.cleanup()


@dataclass
class Enrolled:
    """An agent enrolled with the in-process collector: its state dir and its client."""

    state_dir: Path
    identity: Identity
    client: CollectorClient
    settings: AgentCollectorSection


@pytest.fixture
async def enrolled(tmp_path: Path, pki: Pki, served: InProcess) -> AsyncIterator[Enrolled]:
    settings = AgentCollectorSection(url=served.url, ca_file=pki.ca_cert)
    state_dir = tmp_path / "agent"
    state_dir.mkdir()
    async with open_client(settings) as client:
        now = datetime.now(timezone.utc)
        identity = await enroll(state_dir, client, await served.token(), 1000, now)
        yield Enrolled(state_dir, identity, client, settings)
