"""Collector fixtures: both databases, a test PKI, the real app over HTTPS on loopback.

Every storage and ingest test runs on SQLite (a file per test) and on PostgreSQL (a database
made for this test session and dropped after it; tables emptied between tests). PostgreSQL
comes from ASR_TEST_PG_DSN; when it cannot be reached the tests fail, they are not skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from collector.app import create_app
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.schema import metadata
from collector.tls import server_context
from tests.collector.kit import Agent, Clock, Pki, Served, collector_config, make_pki

PG_DSN = os.environ.get("ASR_TEST_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    engine = create_async_engine(PG_DSN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _migrated(url: str) -> None:
    db = Database.open(url)
    try:
        await migrate(db)
    finally:
        await db.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this session, dropped after it."""
    name = f"asr_test_{uuid.uuid4().hex[:12]}"
    problem = None
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, DBAPIError) as err:  # cannot reach or use the server: say how to fix it
        problem = f"{err.__class__.__name__}: {err}"
    if problem is not None:
        pytest.fail(
            f"PostgreSQL at {PG_DSN} cannot be used ({problem}). The collector tests need it:"
            " start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main"
            " start) or point ASR_TEST_PG_DSN at one.",
            pytrace=False,
        )
    url = make_url(PG_DSN).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_migrated(url))
        yield url
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating each time is slower)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(_migrated(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "collector.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("empty_pg_url")
    return url


@pytest.fixture
def empty_pg_url(pg_url: str) -> str:
    """The session's PostgreSQL database, every table emptied."""
    asyncio.run(_truncate(pg_url))
    return pg_url


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = ", ".join(metadata.tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.open(db_url)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def served(db: Database, pki: Pki, clock: Clock) -> AsyncIterator[Served]:
    config = collector_config(pki)
    app = create_app(config, database=db, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=server_context(pki.server_cert, pki.server_key)
    )
    await site.start()
    port = runner.addresses[0][1]
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=connector) as http:
        yield Served(f"https://127.0.0.1:{port}", http, app, db, clock)
    await runner.cleanup()


@pytest.fixture
async def agent(served: Served) -> Agent:
    """An agent enrolled with a fresh token."""
    agent = served.agent()
    reply = await agent.enroll(await served.token())
    assert reply.status == 201, reply.body
    return agent
