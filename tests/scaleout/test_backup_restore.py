"""Backups and restore as deploy/README.md gives them: `sqlite3 .backup` of a collector's
database while `serve` runs on it, `pg_dump` / `pg_restore` of a PostgreSQL one; the copy has
every row of every table, and `asr-collector migrate` finds it at the newest schema.

The world: an enrolled agent's readings of two devices over eight days through the real
ingest, and a daily run that placed an order (with its notices and fulfilment request).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.daily_run import run_plan
from collector.replenish.settings import Rules
from collector.store.database import Database
from collector.store.migrate import head_revision, migrate
from tests.agent.kit import run
from tests.collector.kit import Pki, make_pki, snapshot
from tests.scaleout.kit import create_database, drop_database, libpq_url, start_serve
from tests.scaleout.world import DAYS, batches, make_world
from wire.batch import encode_batch
from wire.signing import sign


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _fill(url: str) -> None:
    """Readings through the real ingest and a run that places an order."""
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=DAYS, hours=1)
    db = Database.open(url)
    try:
        await migrate(db)
        token, agent = await make_world(db, since)
        await agent.enroll(token)
        for batch in batches(agent, agent.agent_id, since, now):
            body = encode_batch(batch)
            stored = await agent.collector.ingest(sign(agent.key, body, now), body)
            assert {r.status for r in stored.results} == {"accepted"}
        result = await run_plan(db, Rules(), datetime.now(timezone.utc))  # after the ingest
        assert result.ran and result.counts["shipments"] == 1
    finally:
        await db.close()


async def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    db = Database.open(url)
    try:
        return await snapshot(db)
    finally:
        await db.close()


async def _migrate(config: Path) -> str:
    done = await run("collector.cli", "migrate", "--config", str(config))
    assert done.code == 0, done.stderr
    return done.stdout.strip()


async def _shell(*command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (command, out.decode(), err.decode())


async def test_sqlite_online_backup_has_every_row(tmp_path: Path, pki: Pki) -> None:
    if shutil.which("sqlite3") is None:
        pytest.fail("sqlite3 is missing: apt-get install -y sqlite3", pytrace=False)
    live, copy = tmp_path / "live" / "collector.db", tmp_path / "restored" / "collector.db"
    live.parent.mkdir()
    copy.parent.mkdir()
    await _fill(f"sqlite+aiosqlite:///{live}")
    config = tmp_path / "live" / "collector.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{live.parent}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = 0\ntls_cert = "{pki.server_cert}"\n'
        f'tls_key = "{pki.server_key}"\n[plan]\nenabled = false\n'
    )
    serving = await start_serve(config)
    try:
        await _shell("sqlite3", str(live), f".backup '{copy}'")
    finally:
        assert await serving.stop() == 0
    restored = tmp_path / "restored" / "collector.toml"
    restored.write_text(f'[collector]\nstate_dir = "{copy.parent}"\n')
    assert await _migrate(restored) == f"database at schema revision {head_revision()}"
    before, after = (
        await _rows(f"sqlite+aiosqlite:///{live}"),
        await _rows(f"sqlite+aiosqlite:///{copy}"),
    )
    assert after == before
    assert len(after["readings"]) == 2 * DAYS and len(after["orders"]) == 4


async def test_postgresql_dump_and_restore_has_every_row(tmp_path: Path) -> None:
    live, restored = await create_database(), await create_database()
    try:
        await _fill(live)
        dump = tmp_path / "asr.dump"
        await _shell("pg_dump", "--format=custom", f"--file={dump}", libpq_url(live))
        await _shell("pg_restore", "--no-owner", f"--dbname={libpq_url(restored)}", str(dump))
        config = tmp_path / "collector.toml"
        config.write_text(
            f'[collector]\nstate_dir = "{tmp_path}"\n[database]\nurl = "{libpq_url(restored)}"\n'
        )
        assert await _migrate(config) == f"database at schema revision {head_revision()}"
        before, after = await _rows(live), await _rows(restored)
        assert after == before
        assert len(after["readings"]) == 2 * DAYS and len(after["orders"]) == 4
    finally:
        await drop_database(live)
        await drop_database(restored)
