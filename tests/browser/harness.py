"""The browser tests' harness: the collector's config, its process, and Chromium's TLS pin."""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.collector.kit import Pki

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Portal:
    """The running collector: its URL, its database file, its log, and how it was started."""

    url: str
    db_path: Path
    log: Path
    pki: Pki
    command: tuple[str, ...]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the collector's database (read-only, stdlib sqlite3)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql, params))


def write_config(work: Path, pki: Pki, db_path: Path) -> Path:
    path = work / "collector.toml"
    path.write_text(
        f'[collector]\nstate_dir = "{work / "state"}"\nlog_level = "info"\n'
        '[server]\nhost = "127.0.0.1"\nport = 0\n'
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
        f'[database]\nurl = "sqlite:///{db_path}"\n'
        "[plan]\nenabled = false\n"
        "[portal]\ncookie_secure = true\n"
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
