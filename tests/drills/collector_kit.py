"""Kit for the collector's fault drills: `asr-collector serve` on a port of its own that can be
killed and started again, a PostgreSQL server of the drill's own that can be stopped and started,
the store seen from the test, and a signed probe of the ingest endpoint.

Everything runs on 127.0.0.1. The agent's side comes from tests/agent/kit.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine

from agent.spool import SpoolStats
from collector.service import Collector, Settings
from collector.store.database import Database
from tests import servers
from tests.agent.kit import AgentProcess, free_port, run, spool_stats, wait_for
from tests.collector.kit import Pki, Process, metrics_url, start_collector
from wire.signing import sign

# --- the collector as a process that dies --------------------------------------------------


@dataclass
class CollectorService:
    """`asr-collector serve` with the test CA's certificate on a fixed port of 127.0.0.1.

    Each start writes its own config copy and log (collector-1.toml, collector-1.log, ...), so
    a drill that kills and restarts it keeps every run's log.
    """

    directory: Path
    pki: Pki
    database_url: str | None = None  # None: the embedded SQLite in `directory`
    port: int = field(default_factory=free_port)
    extra: str = ""  # more TOML, appended
    process: Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        """The database the collector uses, as SQLAlchemy's URL."""
        return self.database_url or f"sqlite+aiosqlite:///{self.directory / 'collector.db'}"

    @property
    def config(self) -> Path:
        """The config file (the one of the latest start)."""
        return self._config(max(self.starts, 1))

    def _config(self, number: int) -> Path:
        path = self.directory / f"collector-{number}.toml"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            database = f'[database]\nurl = "{self.database_url}"\n' if self.database_url else ""
            path.write_text(
                f'[collector]\nstate_dir = "{self.directory}"\nlog_level = "info"\n'
                f'[server]\nhost = "127.0.0.1"\nport = {self.port}\n'
                f'tls_cert = "{self.pki.server_cert}"\ntls_key = "{self.pki.server_key}"\n'
                f"{database}"
                "[plan]\nenabled = false\n"  # the daily run is not what these drills are about
                f"{self.extra}"
            )
        return path

    async def start(self) -> Process:
        """Start it (again); returns once it listens."""
        self.starts += 1
        self.process = await start_collector(self._config(self.starts), timeout=60)
        return self.process

    async def kill(self) -> None:
        """kill -9, and reap it: no cleanup of any kind runs."""
        assert self.process is not None
        os.kill(self.process.proc.pid, signal.SIGKILL)
        await self.process.proc.wait()
        self.process = None

    async def stop(self) -> int:
        """SIGTERM, then its exit status (0 if it was not running)."""
        if self.process is None:
            return 0
        code = await self.process.stop()
        self.process = None
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.proc.returncode is None

    def logs(self) -> str:
        """Every run's log, in order."""
        return "".join(
            (self.directory / f"collector-{n}.log").read_text()
            for n in range(1, self.starts + 1)
            if (self.directory / f"collector-{n}.log").exists()
        )

    async def token(self, customer: str = "acme", site: str = "milano") -> str:
        """A one-time enrollment token, made on its database (as `enroll-token` does)."""
        db = Database.open(self.db_url)
        try:
            token, _ = await Collector(db, Settings()).create_token(customer, site)
        finally:
            await db.close()
        return token


# --- the store, seen from the test ---------------------------------------------------------


class StoreView:
    """Queries on the collector's database from the test (a fresh connection each time, so a
    database restart leaves nothing stale here)."""

    def __init__(self, url: str) -> None:
        self._engine = create_async_engine(url, poolclass=NullPool)

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self._engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]

    async def stored(self) -> list[tuple[str, int]]:
        """(agent_id, seq) of every stored reading, in the order they were stored."""
        return [
            (str(agent), int(seq))
            for agent, seq in await self.rows("SELECT agent_id, seq FROM readings ORDER BY id")
        ]

    async def count(self, table: str) -> int:
        return int((await self.rows(f"SELECT COUNT(*) FROM {table}"))[0][0])

    async def close(self) -> None:
        await self._engine.dispose()


# --- a probe of the ingest endpoint --------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What the collector answered a signed POST /api/v1/readings."""

    status: int
    reason: str | None
    retry_after: str | None


async def probe_readings(url: str, pki: Pki) -> Probe:
    """POST a batch signed by a key no agent has: the collector must look the key up in its
    database, so the answer says whether the database is there (401 unknown-key) or not (503)."""
    body = b"{}"
    headers = sign(Ed25519PrivateKey.generate(), body, datetime.now(timezone.utc))
    headers["Content-Type"] = "application/json"
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(url + "/api/v1/readings", data=body, headers=headers) as response,
    ):
        answer = await response.json(content_type=None)
        reason = answer.get("reason") if isinstance(answer, dict) else None
        return Probe(response.status, reason, response.headers.get("Retry-After"))


# --- a PostgreSQL server of the drill's own ------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise AssertionError(
            "PostgreSQL's server programs are not installed (Debian package postgresql)"
        )
    return found[-1].parent


def _passable(folder: Path) -> bool:
    """Every user may pass through `folder` and each folder above it (o+x)."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in [folder, *folder.parents])


def _scratch_folder(prefix: str, owner: str | None) -> Path:
    """A new folder for a server run as `owner` (None: the user running the tests), where
    that user can reach it: as root, not under a private TMPDIR (a folder in /root, say)."""
    if owner is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    parent = next(
        p for p in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")) if _passable(p)
    )
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    shutil.chown(folder, owner, owner)
    return folder


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, on a free port of 127.0.0.1, trust auth.

    The drill that restarts PostgreSQL restarts this one, not the server the rest of the suite
    (and whoever else on the machine) uses. As root it runs as the `postgres` user, as
    PostgreSQL refuses to run as root.
    """

    root: Path
    port: int
    bin: Path
    database: str = "postgres"  # the one `url` names
    watched: servers.Watched | None = None

    @classmethod
    def create(cls) -> PrivatePostgres:
        """initdb, and start it."""
        owner = "postgres" if os.geteuid() == 0 else None
        root = _scratch_folder("asr-drill-pg-", owner)
        server = cls(root, free_port(), _pg_bin())
        try:
            server._run(
                "initdb",
                "-D",
                str(root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            )
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    @property
    def url(self) -> str:
        """SQLAlchemy's URL of `database` on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """pg_ctl start, waiting until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._pg_ctl("start", "-l", str(self.root / "server.log"), "-o", options)
        if self.watched is None:
            self.watched = servers.watch(f"PostgreSQL on 127.0.0.1:{self.port}", self.log_path)

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` rolls back the open transactions and closes every connection;
        `immediate` is a crash (recovery from the WAL at the next start)."""
        self._pg_ctl("stop", "-m", mode)

    def running(self) -> bool:
        return (self.root / "data" / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop it if it runs, and remove its files."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            if self.watched is not None:
                servers.unwatch(self.watched)
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def log(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-w", "-t", "60", *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=90, check=False, cwd=self.root
        )
        if done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(args)}: {done.stderr}{self.log()}")


async def scrape(url: str, pki: Pki) -> dict[str, float]:
    """The collector's /metrics (on its own listener), as {'name{label="value",...}': value}."""
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(metrics_url(url)) as response,
    ):
        assert response.status == 200
        exposition = await response.text()
    samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


# --- the agent, pushing into the collector -------------------------------------------------

# Seconds instead of hours: a poll every 0.1 s, a push every 0.5 s in batches of 5, so that
# batches flow most of the time; a failed push retried within a second.
FLOWING = {
    "poll_interval_seconds": 0.1,
    "poll_jitter_seconds": 0,
    "push_interval_seconds": 0.5,
    "push_jitter_seconds": 0,
    "backoff_base_seconds": 0.2,
    "backoff_max_seconds": 1,
}
BATCH_SIZE = 5


def agent_config(directory: Path, url: str, pki: Pki, targets: dict[str, int]) -> Path:
    """An agent config for the simulated printers at `targets` (community -> UDP port), pushing
    to `url`; its state directory is `directory / "agent-state"`. A silent printer costs a
    poll round half a second (one try), so rounds go on while printers are switched off."""
    lines = [
        f'[agent]\nstate_dir = "{directory / "agent-state"}"\nlog_level = "info"',
        "[snmp]\ntimeout = 0.5\nretries = 0",
        f'[collector]\nurl = "{url}"\nca_file = "{pki.ca_cert}"\nrequest_timeout_seconds = 60',
        "[schedule]",
        *(f"{key} = {value}" for key, value in FLOWING.items()),
        f"[spool]\nbatch_size = {BATCH_SIZE}",
    ]
    for community, port in targets.items():
        lines.append(f'[credentials.{community}]\nversion = "2c"\ncommunity = "{community}"')
        lines.append(
            f'[[printers]]\nname = "{community}"\nhost = "127.0.0.1"\nport = {port}\n'
            f'credentials = "{community}"'
        )
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def enrolled_agent(
    directory: Path, pki: Pki, targets: dict[str, int], collector: CollectorService
) -> Path:
    """`agent_config`, enrolled with the collector through `asr-agent enroll`."""
    config = agent_config(directory, collector.url, pki, targets)
    token = await collector.token()
    done = await run("agent.cli", "enroll", "--config", str(config), "--token", token)
    assert done.code == 0, done.stderr
    return config


def poll_rounds(agent: AgentProcess) -> int:
    """Poll rounds the agent has logged."""
    return agent.text().count(": spooled ")


async def quiet(agent: AgentProcess) -> None:
    """Wait until a whole poll round ran after now: after the printers are switched off, the
    agent spools nothing more (a round that began before may still spool what it read)."""
    rounds = poll_rounds(agent)
    await wait_for(lambda: poll_rounds(agent) >= rounds + 2, 30, "a whole poll round")


async def delivered(store: StoreView, state_dir: Path) -> SpoolStats | None:
    """The agent's spool once it is empty and the store holds as many readings as the agent
    ever spooled; None before."""
    stats = spool_stats(state_dir)
    if stats is None or stats.depth or not stats.last_seq:
        return None
    return stats if await store.count("readings") >= stats.last_seq else None


def assert_each_once(stored: list[tuple[str, int]], stats: SpoolStats) -> None:
    """Every reading the agent spooled is stored once (by agent and seq), in seq order, and
    the spool is empty with nothing dropped or rejected."""
    seqs = [seq for _, seq in stored]
    assert {agent for agent, _ in stored} == {stats.agent_id}
    assert len(seqs) == len(set(seqs)), "a reading stored twice"
    assert sorted(seqs) == list(range(1, stats.last_seq + 1)), "a reading lost"
    assert seqs == sorted(seqs), "readings stored out of the spool's order"
    assert (stats.depth, stats.dropped_total, stats.rejected_total) == (0, 0, 0)
