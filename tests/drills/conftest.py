"""Fixtures of the fault drills: the test PKI, a simulated fleet, a collector database of each
kind, and a PostgreSQL server of the drill's own.

PostgreSQL comes from ASR_TEST_PG_DSN (as for the collector's tests); when it cannot be reached
the drills fail, they are not skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from agent.profile import Profile
from sim.fleet import make_fleet
from sim.responder import Faults, Responder, SimPrinter
from tests.collector.kit import Pki, make_pki
from tests.drills.collector_kit import PrivatePostgres

PG_DSN = os.environ.get("ASR_TEST_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PRINTERS = 4


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Fleet:
    """Simulated printers served on one UDP port of 127.0.0.1, each under its own community."""

    port: int
    printers: dict[str, SimPrinter]

    @property
    def targets(self) -> dict[str, int]:
        """Community -> port, as tests.agent.kit.agent_config takes it."""
        return dict.fromkeys(self.printers, self.port)

    def switch_off(self) -> None:
        """Every printer stops answering: the agent spools nothing more."""
        for printer in self.printers.values():
            printer.faults = Faults(asleep=True)


@pytest.fixture
async def fleet(profile: Profile) -> AsyncIterator[Fleet]:
    """Printers of the synthetic fleet (asr-printer-sim's), mono and colour, on 127.0.0.1."""
    printers = {
        name: SimPrinter(entries) for name, entries in make_fleet(profile, PRINTERS).items()
    }
    async with Responder(printers) as port:
        yield Fleet(port, printers)


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """An empty database of each kind for a collector process (which migrates it): None for
    the embedded SQLite in its state directory, or a database of its own on the suite's
    PostgreSQL, dropped after the test."""
    if request.param == "sqlite":
        yield None
        return
    name = f"asr_drill_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(PG_DSN, f"CREATE DATABASE {name}"))
    except Exception as err:  # cannot reach or use the server: say how to fix it
        pytest.fail(
            f"PostgreSQL at {PG_DSN} cannot be used ({type(err).__name__}: {err}): start it"
            " (make postgres) or point ASR_TEST_PG_DSN at one.",
            pytrace=False,
        )
    try:
        yield make_url(PG_DSN).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(PG_DSN, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the drills' own (one initdb for the session), removed after it."""
    server = PrivatePostgres.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_postgres(postgres_server: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The drills' own PostgreSQL server, running, its `url` naming a new empty database;
    whatever the test did to the server, it runs again afterwards."""
    server = postgres_server
    if not server.running():
        server.start()
    server.database = f"asr_drill_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server.admin_url, f"CREATE DATABASE {server.database}"))
    try:
        yield server
    finally:
        if not server.running():
            server.start()
        asyncio.run(_admin(server.admin_url, f"DROP DATABASE {server.database} WITH (FORCE)"))
        server.database = "postgres"
