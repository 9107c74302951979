"""What the collector's commands share: exit statuses, the state directory, a database.

Is: the exit statuses, the state directory and SQLite file made private (0700, 0600) and
`with_database` / `with_collector`, which open the database for one command and close it.
Is not: any command (collector.cli and its cli_* modules).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from collector.config import CollectorConfig
from collector.service import Collector, Settings
from collector.store.database import Database
from collector.store.migrate import migrate

log = logging.getLogger("collector")
EXIT_CONFIG = 2
EXIT_REFUSED = 3
_T = TypeVar("_T")


def private_state(config: CollectorConfig) -> None:
    """The state directory 0700 and the SQLite database 0600, also when not started by
    systemd (StateDirectoryMode=0700, UMask=0077): made so, or tightened and logged."""
    state = config.collector.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(state, 0o700)
    if not config.is_embedded():
        return
    path = config.database_url().partition(":///")[2].partition("?")[0]
    if not path or path == ":memory:":
        return
    database = Path(path)
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # An empty file is an empty SQLite database; its -wal and -shm files take its mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if name.exists():
            _tighten(name, 0o600)


def _tighten(path: Path, mode: int) -> None:
    """Take group's and others' rights away from `path`, saying so; warn if it cannot."""
    was = stat.S_IMODE(path.stat().st_mode)
    if not was & 0o077:
        return
    try:
        path.chmod(was & mode)
    except OSError as err:
        log.warning(
            "%s is mode %04o, open to others, and cannot be made %04o: %s", path, was, mode, err
        )
        return
    log.warning("%s was mode %04o, open to others: made %04o", path, was, was & mode)


async def with_collector(config: CollectorConfig, job: Callable[[Collector], Awaitable[_T]]) -> _T:
    """Run `job` on a Collector over the migrated database, closed after."""
    private_state(config)
    db = Database.open(config.database_url(), config.database.pool_size)
    try:
        await migrate(db)
        return await job(Collector(db, Settings.from_config(config)))
    finally:
        await db.close()


async def with_database(config: CollectorConfig, job: Callable[[Database], Awaitable[_T]]) -> _T:
    """Run `job` on the database, closed after."""
    private_state(config)
    db = Database.open(config.database_url(), config.database.pool_size)
    try:
        return await job(db)
    finally:
        await db.close()
