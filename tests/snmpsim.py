"""Start snmpsim (a real SNMP agent simulator) on 127.0.0.1 for the tests.

snmpsim lives in its own virtualenv (.venv-sim, made by `make test` on Debian's python3): as
root it must drop privileges, and the unprivileged user must be able to read its Python.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent.snmp.ber import parse_oid
from agent.snmp.native import NativeClient
from agent.snmp.session import Credentials, Target

ROOT = Path(__file__).resolve().parents[1]
SHARED_PRINTERS = ROOT.parent / "shared" / "printers"
OWN_PRINTERS = Path(__file__).resolve().parent / "printers"

# SNMPv3 users the simulator accepts; the context name picks the recording.
V3_USERS = {
    "asr-sha256-aes": ("SHA256", "authkey-256", "AES", "privkey-aes"),
    "asr-sha512-aes256": ("SHA512", "authkey-512", "AES256", "privkey-aes256"),
    "asr-sha-auth": ("SHA", "authkey-sha1", None, None),
}


@dataclass(frozen=True)
class Simulator:
    """A running snmpsim: where it listens."""

    host: str
    port: int


def responder_binary() -> Path | None:
    """snmpsim's responder from ASR_SNMPSIM or .venv-sim, if installed."""
    configured = os.environ.get("ASR_SNMPSIM")
    candidate = Path(configured) if configured else ROOT / ".venv-sim/bin/snmpsim-command-responder"
    return candidate if candidate.exists() else None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _answers(port: int, community: str) -> bool:
    client = NativeClient()
    try:
        session = client.session(
            Target("127.0.0.1", port, 0.3, 0), Credentials(community=community)
        )
        await session.get([parse_oid("1.3.6.1.2.1.1.1.0")])
        return True
    except Exception:
        return False
    finally:
        client.close()


def start(binary: Path, recordings: list[Path]) -> tuple[subprocess.Popen[bytes], Simulator, Path]:
    """Copy the recordings to a scratch folder and serve them; wait until they answer."""
    work = Path(tempfile.mkdtemp(prefix="asr-snmpsim-"))
    work.chmod(0o755)
    data, cache = work / "data", work / "cache"
    data.mkdir()
    cache.mkdir()
    for rec in recordings:
        shutil.copy(rec, data / rec.name)
    for path in [data, *data.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = _free_udp_port()
    cmd = [
        str(binary),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
        "--logging-method=stdout",
        "--log-level=error",
    ]
    for user, (auth, auth_key, priv, priv_key) in V3_USERS.items():
        cmd += [f"--v3-user={user}", f"--v3-auth-key={auth_key}", f"--v3-auth-proto={auth}"]
        if priv:
            cmd += [f"--v3-priv-key={priv_key}", f"--v3-priv-proto={priv}"]
    if os.geteuid() == 0:
        shutil.chown(cache, "nobody", "nogroup")
        cmd += ["--process-user=nobody", "--process-group=nogroup"]
    log = (work / "responder.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    probe = recordings[0].stem
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if asyncio.run(_answers(port, probe)):
            return proc, Simulator("127.0.0.1", port), work
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"snmpsim did not start: {(work / 'responder.log').read_text()[-2000:]}")
