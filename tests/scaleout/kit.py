"""Scale-out kit: two `asr-collector serve` processes on one PostgreSQL database behind nginx.

nginx runs deploy/nginx/asr-collector.conf itself, with only its addresses, ports, file paths
and the collectors' certificate name replaced (`render_example`), inside a main config of the
test's own (pid, error log, temporary files). It ends TLS with the test CA's server
certificate, so agents and browsers see the same certificate as with one collector (a CA file
or a pin holds either way), and speaks TLS again to each collector, verifying it against the
test CA. Its access log names the collector of every request (`Traffic`), and each collector's
own /metrics, scraped at its own address, says what that process did: the two must agree.

Everything listens on 127.0.0.1. PostgreSQL comes from ASR_TEST_PG_DSN, as for the collector's
tests; each deployment gets a database of its own, made here and dropped after.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests import servers
from tests.collector.kit import Pki, Process, metrics_url, start_collector

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx" / "asr-collector.conf"
NGINX = Path(os.environ.get("ASR_NGINX", "/usr/sbin/nginx"))
PG_DSN = os.environ.get("ASR_TEST_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
START_TIMEOUT = 60.0

# --- PostgreSQL ----------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL ('postgresql+asyncpg://' -> 'postgresql://')."""
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_database() -> str:
    """A new, empty database on the test server; its SQLAlchemy URL."""
    name = f"asr_scale_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(libpq_url(PG_DSN))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return _with_database(PG_DSN, name)


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(libpq_url(PG_DSN))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await conn.close()


def _numbered(sql: str) -> str:
    """sqlite3's '?' placeholders as PostgreSQL's $1, $2, ... (none inside quotes)."""
    out, n, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
    return "".join(out)


def pg_rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query written for sqlite3 ('?' placeholders), run on PostgreSQL.

    Synchronous, like the sqlite3 reads it stands in for, and callable inside an event loop:
    it runs on a thread of its own.
    """

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(libpq_url(url))
        try:
            return [tuple(row) for row in await conn.fetch(_numbered(sql), *params)]
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result()


# --- the collectors ------------------------------------------------------------------------


def collector_toml(
    directory: Path, pki: Pki, database_url: str, session_key: Path, settings: str = ""
) -> Path:
    """One collector's config: TLS on 127.0.0.1 (any port), the shared database, then
    `settings` (more TOML sections, the same for every collector) with the shared session key
    added to its [portal]: every process must open the cookies another one sealed."""
    key = f'session_key_file = "{session_key}"\n'
    if "[portal]\n" in settings:
        settings = settings.replace("[portal]\n", "[portal]\n" + key, 1)
    else:
        settings += "[portal]\n" + key
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "collector.toml"
    path.write_text(
        f'[collector]\nstate_dir = "{directory / "state"}"\nlog_level = "info"\n'
        '[server]\nhost = "127.0.0.1"\nport = 0\n'
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
        f'[database]\nurl = "{database_url}"\n' + settings
    )
    return path


async def start_serve(config: Path, env: dict[str, str] | None = None) -> Process:
    """`asr-collector serve --config CONFIG` with `env` added; returns once it listens."""
    return await start_collector(config, START_TIMEOUT, env=env, cwd=ROOT)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --- nginx ---------------------------------------------------------------------------------


def _replace(text: str, old: str, new: str) -> str:
    """`old` -> `new`, which must be in the example exactly once (else the kit is stale)."""
    count = text.count(old)
    assert count == 1, f"{EXAMPLE} holds {old!r} {count} times, not once: update tests/scaleout"
    return text.replace(old, new)


def render_example(
    port: int, upstreams: Sequence[int], pki: Pki, access_log: Path, example: Path = EXAMPLE
) -> str:
    """The example config on loopback: listen on `port`, the collectors on `upstreams`, the test
    CA's certificates; nothing else changed."""
    text = example.read_text()
    for n, upstream in enumerate(upstreams, start=1):
        text = _replace(
            text, f"server collector-{n}.asr.internal:8443", f"server 127.0.0.1:{upstream}"
        )
    text = _replace(text, "listen 443 ssl", f"listen 127.0.0.1:{port} ssl")
    text = _replace(text, "    listen [::]:443 ssl http2;\n", "")  # IPv4 loopback only
    text = _replace(text, "/etc/nginx/asr/asr.example.com.pem", str(pki.server_cert))
    text = _replace(text, "/etc/nginx/asr/asr.example.com.key", str(pki.server_key))
    text = _replace(text, "/etc/nginx/asr/collectors-ca.pem", str(pki.ca_cert))
    text = _replace(text, "/var/log/nginx/asr-collector.access.log", str(access_log))
    # The test CA's server certificate names 127.0.0.1 and localhost.
    return _replace(text, "proxy_ssl_name collector.asr.internal;", "proxy_ssl_name localhost;")


def main_config(directory: Path, site: Path) -> Path:
    """nginx's main config for a test: one process, everything under `directory`."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    path = directory / "nginx.conf"
    path.write_text(
        "daemon off;\n"
        "master_process off;\n"  # one process: round robin alternates request by request
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    client_body_temp_path {directory / 'client_body'};\n"
        f"    proxy_temp_path {directory / 'proxy'};\n"
        f"    fastcgi_temp_path {directory / 'fastcgi'};\n"
        f"    uwsgi_temp_path {directory / 'uwsgi'};\n"
        f"    scgi_temp_path {directory / 'scgi'};\n"
        f"    include {site};\n"
        "}\n"
    )
    return path


def nginx_command(directory: Path, config: Path) -> list[str]:
    return [str(NGINX), "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Nginx:
    """nginx running the example config in front of the collectors."""

    directory: Path
    port: int
    proc: asyncio.subprocess.Process
    watched: servers.Watched = field(init=False)

    def __post_init__(self) -> None:
        self.watched = servers.watch(
            f"nginx on 127.0.0.1:{self.port}",
            self.directory / "error.log",
            lambda: self.proc.returncode,
        )

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()  # nginx: fast shutdown
        code = await asyncio.wait_for(self.proc.wait(), 20)
        servers.unwatch(self.watched)
        assert code == 0, (self.directory / "error.log").read_text()


def nginx_files(directory: Path, port: int, upstreams: Sequence[int], pki: Pki) -> Path:
    """The rendered example and the main config that includes it, in `directory`."""
    if not NGINX.exists():
        raise AssertionError(
            f"{NGINX} is missing: the scale-out tests need Debian's nginx"
            " (apt-get install -y nginx; `make test` installs it)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "asr-collector.conf"
    site.write_text(render_example(port, upstreams, pki, directory / "access.log"))
    return main_config(directory, site)


async def start_nginx(directory: Path, upstreams: Sequence[int], pki: Pki) -> Nginx:
    """nginx on a free port of 127.0.0.1; returns once it accepts connections."""
    port = free_port()
    config = nginx_files(directory, port, upstreams, pki)
    with (directory / "nginx.out").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *nginx_command(directory, config), stdout=out, stderr=out
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if proc.returncode is not None or loop.time() > deadline:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise AssertionError(
                    f"nginx did not start ({proc.returncode}):"
                    f" {(directory / 'nginx.out').read_text()}"
                    f"{servers.tail(directory / 'error.log')}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return Nginx(directory, port, proc)


# --- what went where -----------------------------------------------------------------------

_LINE = re.compile(
    r'^\S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) \d+ \S+'
    r" upstream=(?P<upstream>.+?) (?P<upstream_status>[\d, :-]+) \S+$"
)


@dataclass(frozen=True)
class Request:
    """One line of nginx's access log: the request, its answer, the collector that gave it."""

    method: str
    path: str
    status: int
    upstream: str  # "127.0.0.1:PORT" of the collector that answered; "-": nginx itself


def read_access_log(path: Path) -> list[Request]:
    """The access log (format asr_upstream), one Request per line; a line that does not parse
    fails the test (the example's log_format changed)."""
    requests = []
    for line in path.read_text().splitlines() if path.exists() else []:
        match = _LINE.match(line)
        assert match is not None, f"an access log line in an unknown format: {line!r}"
        upstream = match["upstream"].split(", ")[-1]  # the last tried answered
        requests.append(Request(match["method"], match["path"], int(match["status"]), upstream))
    return requests


def _counter(text: str, name: str, **labels: str) -> float:
    """A counter's value in a Prometheus exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name + (f"{{{wanted}}}" if wanted else "")) + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclass(frozen=True)
class Traffic:
    """Who answered what: nginx's access log against each collector's own metrics."""

    requests: list[Request]
    metrics: dict[str, str]  # upstream "127.0.0.1:PORT" -> its /metrics text

    def per_collector(self) -> Counter[str]:
        return Counter(r.upstream for r in self.requests if r.upstream in self.metrics)

    def summary(self) -> str:
        per = self.per_collector()
        return ", ".join(f"{up}: {per[up]} requests" for up in sorted(self.metrics))

    def check(self) -> None:
        """Every request nginx passed on went to one of the collectors; with two or more, both
        collectors answered some; and each collector counted the enrollments and batches nginx
        says it answered."""
        for request in self.requests:
            assert request.upstream in self.metrics or request.upstream == "-", request
        per = self.per_collector()
        if sum(per.values()) >= 2:
            assert all(per[up] > 0 for up in self.metrics), self.summary()
        for upstream, text in self.metrics.items():
            mine = [r for r in self.requests if r.upstream == upstream]
            enrolled = sum(r.path == "/api/v1/enroll" and r.status == 201 for r in mine)
            assert _counter(text, "asr_enrollments_total") == enrolled, (upstream, enrolled)
            batches = sum(r.path == "/api/v1/readings" and r.status == 200 for r in mine)
            answered = _counter(text, "asr_ingest_batches_total", outcome="stored") + _counter(
                text, "asr_ingest_batches_total", outcome="resent"
            )
            assert answered == batches, (upstream, answered, batches)


async def scrape(url: str, pki: Pki) -> str:
    """GET /metrics of one collector, on its own metrics listener (not through nginx)."""
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(metrics_url(url)) as response,
    ):
        assert response.status == 200
        return await response.text()


# --- the deployment ------------------------------------------------------------------------


@dataclass
class Deployment:
    """Two collectors with the same settings on one PostgreSQL database, behind nginx."""

    directory: Path
    pki: Pki
    database_url: str
    settings: str = ""  # TOML sections every collector's config ends with
    env: dict[str, str] | None = None  # added to each collector's environment
    collectors: list[Process] = field(default_factory=list)
    nginx: Nginx | None = None
    traffic: Traffic | None = None

    @property
    def url(self) -> str:
        assert self.nginx is not None, "not started"
        return f"https://127.0.0.1:{self.nginx.port}"

    @property
    def configs(self) -> list[Path]:
        return [self.directory / name / "collector.toml" for name in ("a", "b")]

    def write_configs(self) -> None:
        """The collectors' configs and their shared portal session key (32 random bytes)."""
        key = self.directory / "portal-session.key"
        if not key.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            key.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
            key.chmod(0o600)
        for config in self.configs:
            collector_toml(config.parent, self.pki, self.database_url, key, self.settings)

    async def start(self) -> None:
        """Both collectors at once (one migrates the database, the other waits for it), then
        nginx in front of them."""
        self.write_configs()
        started = await asyncio.gather(
            *(start_serve(c, self.env) for c in self.configs), return_exceptions=True
        )
        self.collectors = [p for p in started if isinstance(p, Process)]
        failed = [e for e in started if isinstance(e, BaseException)]
        if failed:
            await self._stop_collectors()
            raise failed[0]
        ports = [_port(p.url) for p in self.collectors]
        self.nginx = await start_nginx(self.directory / "nginx", ports, self.pki)

    async def stop(self) -> Traffic:
        """Scrape each collector's metrics, stop nginx and both collectors; what went where."""
        try:
            metrics = {
                f"127.0.0.1:{_port(p.url)}": await scrape(p.url, self.pki)
                for p in self.collectors
                if p.proc.returncode is None
            }
        finally:
            if self.nginx is not None:
                await self.nginx.stop()
            await self._stop_collectors()
        requests = read_access_log(self.nginx.access_log) if self.nginx else []
        self.traffic = Traffic(requests, metrics)
        self.nginx = None
        return self.traffic

    async def _stop_collectors(self) -> None:
        codes = await asyncio.gather(*(p.stop() for p in self.collectors))
        logs = [p.log.read_text() for p in self.collectors]
        self.collectors = []
        assert all(code == 0 for code in codes), (codes, logs)

    def logs(self) -> list[str]:
        return [(c.parent / "collector.log").read_text() for c in self.configs]
