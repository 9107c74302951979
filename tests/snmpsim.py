"""Start snmpsim (a real SNMP agent simulator) on 127.0.0.1 for the tests.

snmpsim lives in its own virtualenv (.venv-sim, made by `make setup` on Debian's python3). It
runs as the user who runs the tests, root included, with no privilege drop: dropped to
`nobody`, it could not read a checkout in a private folder (mode 700, as /root is), and it
imports parts of `cryptography` only at the first SNMPv3 request with privacy. Its scratch
folder (copied recordings, cache, log) is private to that user too. docs/testing.md lists
every process the tests start and what each reads.
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
from tests import servers

ROOT = Path(__file__).resolve().parents[1]
SHARED_PRINTERS = ROOT.parent / "shared" / "printers"
# Why the tests that need them skip in a clone with nothing beside it (`pytest -rs` shows it).
SHARED_ABSENT = (
    "needs the real printers' SNMP recordings and LibreNMS's expected values, kept outside the "
    f"project in {SHARED_PRINTERS} (absent here); our own recordings in tests/printers still run"
)
OWN_PRINTERS = Path(__file__).resolve().parent / "printers"

# SNMPv3 users the simulator accepts; the context name picks the recording.
V3_USERS = {
    "asr-sha256-aes": ("SHA256", "authkey-256", "AES", "privkey-aes"),
    "asr-sha512-aes256": ("SHA512", "authkey-512", "AES256", "privkey-aes256"),
    "asr-sha-auth": ("SHA", "authkey-sha1", None, None),
}


def v3_credentials(user: str, context: str) -> Credentials:
    """SNMPv3 credentials of one of V3_USERS, reading the recording named `context`."""
    auth, auth_key, priv, priv_key = V3_USERS[user]
    return Credentials(
        version="3",
        user=user,
        auth_protocol=auth,
        auth_key=auth_key,
        priv_protocol=priv,
        priv_key=priv_key,
        context=context,
    )


@dataclass(frozen=True)
class Simulator:
    """A running snmpsim: where it listens."""

    host: str
    port: int


def environment() -> Path | None:
    """snmpsim's virtualenv (ASR_SNMPSIM_VENV, else .venv-sim), if installed."""
    configured = os.environ.get("ASR_SNMPSIM_VENV")
    venv = Path(configured) if configured else ROOT / ".venv-sim"
    return venv if (venv / "bin" / "python").exists() else None


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


# The responder, run by the virtualenv's own interpreter (its console script names the
# interpreter of the folder it was installed in, so a copied environment would not be used).
_LAUNCH = "import sys; from snmpsim.commands.responder import main; sys.exit(main())"


@dataclass
class Responder:
    """A running snmpsim: its process, its address and its scratch folder."""

    proc: subprocess.Popen[bytes]
    sim: Simulator
    work: Path
    watched: servers.Watched

    @property
    def log(self) -> Path:
        return self.work / "responder.log"

    def stop(self) -> None:
        """Stop it and remove its scratch folder."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        servers.unwatch(self.watched)
        shutil.rmtree(self.work, ignore_errors=True)


def start(venv: Path, recordings: list[Path], work: Path | None = None) -> Responder:
    """Copy the recordings to a scratch folder (`work`, else a new private one) and serve them
    with the snmpsim of `venv`; wait until they answer."""
    work = Path(tempfile.mkdtemp(prefix="asr-snmpsim-")) if work is None else work
    data, cache = work / "data", work / "cache"
    data.mkdir(parents=True)
    cache.mkdir()
    for rec in recordings:
        shutil.copy(rec, data / rec.name)
    port = _free_udp_port()
    cmd = [
        str(venv / "bin" / "python"),
        "-c",
        _LAUNCH,
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
    # snmpsim refuses to run as root unless told to drop privileges or, with this, not to.
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    log_path = work / "responder.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    watched = servers.watch(f"snmpsim on 127.0.0.1:{port}", log_path, proc.poll)
    responder = Responder(proc, Simulator("127.0.0.1", port), work, watched)
    probe = recordings[0].stem
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if asyncio.run(_answers(port, probe)):
            return responder
        time.sleep(0.3)
    state = f"exited with status {proc.returncode}" if proc.poll() is not None else "is silent"
    log_tail = servers.tail(log_path)
    responder.stop()
    raise RuntimeError(f"snmpsim did not start ({state}); its log ends:\n{log_tail}")
