"""The browser tests' harness: the collector's config, its process (or two of them behind
nginx, tests/scaleout), the database's rows, and Chromium's TLS pin."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import queue
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.collector.kit import Pki
from tests.scaleout.kit import pg_rows

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class Portal:
    """The running portal: its URL, its database (a SQLAlchemy URL), the test CA."""

    url: str
    database: str
    pki: Pki

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query ('?' placeholders) on the collector's database, read-only on SQLite."""
        if self.database.startswith("postgresql"):
            return pg_rows(self.database, sql, *params)
        path = self.database.split(":///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql, params))


class Background:
    """An event loop on a thread of its own: the async scale-out kit, from sync fixtures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, job: Coroutine[Any, Any, _T], timeout: float = 120) -> _T:
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


# The portal's settings (besides address, TLS and database): no daily run under the tests;
# the metrics on a port of their own, any free one.
SETTINGS = (
    '[plan]\nenabled = false\n[portal]\ncookie_secure = true\n[metrics]\nlisten = "127.0.0.1:0"\n'
)


def write_config(work: Path, pki: Pki, db_path: Path) -> Path:
    path = work / "collector.toml"
    path.write_text(
        f'[collector]\nstate_dir = "{work / "state"}"\nlog_level = "info"\n'
        '[server]\nhost = "127.0.0.1"\nport = 0\n'
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
        f'[database]\nurl = "sqlite:///{db_path}"\n' + SETTINGS
    )
    return path


def command_for(config: Path) -> tuple[str, ...]:
    """The real `asr-collector serve` of this environment."""
    script = Path(sys.executable).parent / "asr-collector"
    if script.exists():
        return (str(script), "serve", "--config", str(config))
    return (sys.executable, "-m", "collector.cli", "serve", "--config", str(config))


def start(command: tuple[str, ...], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the collector; returns once it prints where it listens."""
    with log.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def read() -> None:
        for raw in stdout:
            lines.put(raw.decode(errors="replace").strip())
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line and line.startswith("listening on "):
            return proc, line.split()[-1]
        if line == "" or line is None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the collector did not start: {log.read_text()}")


def wait_healthy(url: str, pki: Pki) -> None:
    """Wait for /healthz to answer 200 over TLS verified against the test CA."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def spki_pin(cert: Path) -> str:
    """The base64 SHA-256 of the certificate's public key, as Chromium's pin flag takes it."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
