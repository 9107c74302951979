"""Test kit for the agent: configs, the real processes, a proxy that loses answers, the stores.

The collector's own kit (tests/collector/kit.py) provides the PKI and `start_collector`; this
adds the agent's side. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.spool import Spool, SpoolStats
from collector.tls import server_context
from tests.collector.kit import Pki, Process, start_collector

ROOT = Path(__file__).resolve().parents[2]

# --- waiting -------------------------------------------------------------------------------


async def wait_for(
    condition: Callable[[], Any], timeout: float = 60, what: str = "condition", step: float = 0.1
) -> Any:
    """Poll `condition` (sync or async) until it is truthy; its value. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on a collector's SQLite database, opened read-only."""
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# --- the collector as a process ------------------------------------------------------------


@dataclass
class CollectorSite:
    """A collector's config and state directory; `start` runs `asr-collector serve` on it."""

    config: Path
    state_dir: Path
    port: int
    process: Process | None = None

    @property
    def db(self) -> Path:
        return self.state_dir / "collector.db"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> Process:
        self.process = await start_collector(self.config, timeout=60)
        return self.process

    async def stop(self) -> None:
        if self.process is not None:
            code = await self.process.stop()
            assert code == 0, self.process.log.read_text()
            self.process = None

    async def token(self, customer: str = "acme", site: str = "milano") -> str:
        """A one-time enrollment token from `asr-collector enroll-token`; the customer and its
        site are loaded first with `load-customers` when new, as the operator does."""
        await self.load_site(customer, site)
        done = await run(
            "collector.cli",
            "enroll-token",
            "--config",
            str(self.config),
            "--customer",
            customer,
            "--site",
            site,
        )
        assert done.code == 0, done.stderr
        return done.stdout.strip()

    async def load_site(self, customer: str, site: str) -> None:
        """`asr-collector load-customers` with this customer and site, unless it has them."""
        if self.db.exists() and self.query(
            "SELECT 1 FROM sites WHERE customer_id = ? AND name = ?", customer, site
        ):
            return
        found = (
            self.query("SELECT kind FROM customers WHERE id = ?", customer)
            if self.db.exists()
            else []
        )
        kind = found[0][0] if found else "self"
        path = self.config.parent / f"customers-{customer}-{site}.toml"
        path.write_text(
            f'[[customers]]\nid = "{customer}"\nkind = "{kind}"\n'
            f'sites = [{{ name = "{site}", address = "1 Test Street, {site}" }}]\n'
        )
        done = await run("collector.cli", "load-customers", "--config", str(self.config), str(path))
        assert done.code == 0, done.stderr

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the collector's SQLite database (read-only)."""
        return query(self.db, sql, *params)

    def stored_seqs(self) -> list[int]:
        """The seqs of the stored readings, in the order they were stored."""
        if not self.db.exists():
            return []
        return [row[0] for row in self.query("SELECT seq FROM readings ORDER BY id")]


def collector_site(directory: Path, pki: Pki, port: int = 0) -> CollectorSite:
    """A collector config on 127.0.0.1 serving the test CA's certificate, SQLite in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "collector.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{directory}"\nlog_level = "info"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
    )
    return CollectorSite(config, directory, port)


async def started_collector(directory: Path, pki: Pki) -> CollectorSite:
    """A running collector on a port of its own choosing."""
    site = collector_site(directory, pki)
    process = await site.start()
    site.port = int(process.url.rsplit(":", 1)[1])
    return site


# --- the agent -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """A finished command: exit status and output."""

    code: int
    stdout: str
    stderr: str


async def run(module: str, *args: str, timeout: float = 60) -> Done:
    """Run `python -m MODULE ARGS` and wait for it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Done(proc.returncode, stdout.decode(), stderr.decode())


def agent_config(
    path: Path,
    url: str,
    printers: dict[str, int],
    ca_file: Path | None = None,
    pin: str | None = None,
    **sections: dict[str, Any],
) -> Path:
    """An agent config: one [[printers]] per community (sim printers on 127.0.0.1:port)."""
    state_dir = path.parent / "agent-state"
    lines = [
        f'[agent]\nstate_dir = "{state_dir}"\nlog_level = "info"',
        "[snmp]\ntimeout = 1.0\nretries = 2",
        f'[collector]\nurl = "{url}"\nrequest_timeout_seconds = 60',
    ]
    if ca_file is not None:
        lines.append(f'ca_file = "{ca_file}"')
    if pin is not None:
        lines.append(f'pin_sha256 = "{pin}"')
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    for community in printers:
        lines.append(f'[credentials.{community}]\nversion = "2c"\ncommunity = "{community}"')
    for community, port in printers.items():
        lines.append(
            f'[[printers]]\nname = "{community}"\nhost = "127.0.0.1"\nport = {port}\n'
            f'credentials = "{community}"'
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class AgentProcess:
    """A running `asr-agent run`."""

    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        os.kill(self.proc.pid, signal.SIGKILL)

    async def wait(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status."""
        if self.proc.returncode is None:
            self.proc.terminate()
        return await self.wait(timeout)

    def text(self) -> str:
        return self.log.read_text()


async def start_agent(config: Path, log_name: str = "agent.log") -> AgentProcess:
    """Start `asr-agent run --config CONFIG`, its log in a file next to the config."""
    log = config.parent / log_name
    with log.open("ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.cli",
            "run",
            "--config",
            str(config),
            stdout=stderr,
            stderr=stderr,
            cwd=ROOT,
        )
    return AgentProcess(proc, log)


def spool_stats(state_dir: Path) -> SpoolStats | None:
    """The agent's spool, read-only (None until it exists)."""
    path = state_dir / "spool.db"
    if not path.exists():
        return None
    with Spool.open_read_only(path) as spool:
        return spool.stats()


def spool_seqs(state_dir: Path) -> list[int]:
    """The seqs still in the agent's spool."""
    conn = sqlite3.connect((state_dir / "spool.db").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT seq FROM readings ORDER BY seq")]
    finally:
        conn.close()


# --- a disk of its own, to fill ----------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. '16m') mounted on `directory` for the block, then unmounted.

    Mounting needs root (CAP_SYS_ADMIN): the test is skipped, saying so, without it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the agent's spool needs root")
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"mount -t tmpfs on {directory} failed: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=True)  # busy: detach it


def fill(directory: Path) -> tuple[Path, int]:
    """Write a file in `directory` until its disk has no byte left; the file and its size."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    try:
        for chunk in (1 << 20, 4096, 1):  # big steps first, then the last scraps
            block = b"\0" * chunk
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler, written


# --- a proxy that loses the collector's answers --------------------------------------------


@dataclass
class LosingProxy:
    """An HTTPS reverse proxy with the collector's certificate in front of the collector.

    It forwards each request to the collector. While `hold` is set it keeps the collector's
    answer to itself: the collector has stored the batch, the agent never hears so.
    """

    pki: Pki
    upstream: str
    hold: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)  # answers kept back
    url: str = ""
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        context = server_context(self.pki.server_cert, self.pki.server_key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        connector = aiohttp.TCPConnector(ssl=self.pki.client_context())
        self._http = aiohttp.ClientSession(connector=connector)
        self.url = f"https://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        self._closing.set()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-asr-")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        async with self._http.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            status, payload = answer.status, await answer.read()
        if self.hold:
            self.held.append({"status": status, "body": json.loads(payload or b"{}")})
            await self._closing.wait()  # no answer; the agent is killed meanwhile
        return web.Response(status=status, body=payload, content_type="application/json")
