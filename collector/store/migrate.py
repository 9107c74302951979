"""Bring the database to the newest schema with Alembic, programmatically.

Safe to run from several collector processes at once on PostgreSQL: an advisory lock makes
them take turns, and the later ones find nothing to do. On SQLite the file lock does that.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from collector.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x4153520001  # "ASR" + 1: the advisory lock migrations hold on PostgreSQL


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection) -> str | None:
    command.upgrade(_config(connection), "head")
    return MigrationContext.configure(connection).get_current_revision()


async def migrate(db: Database) -> str:
    """Upgrade to the newest schema (a no-op when there); the revision the database is at."""
    async with db.transaction() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        revision = await conn.run_sync(_upgrade)
    return revision or ""


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, None if it was never migrated."""
    async with db.transaction(write=False) as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
