"""The agent's identity: its Ed25519 key pair, and who enrollment made it.

Is: the private key in `agent-key.pem` (PKCS#8 PEM, mode 0600, made in the state directory on
first start; it never leaves the box, only its public key is sent); during a key rotation the
successor in `agent-key.next.pem` until the collector has it (then renamed over the old one,
atomically); `identity.json`, written once enrollment succeeded (agent id, customer, site,
collector). The key id is always computed from the key file, never stored.
Is not: the requests that enroll or rotate (agent.push), nor the signature (wire.signing).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from agent.state import write_atomically

log = logging.getLogger(__name__)

KEY_FILE = "agent-key.pem"
NEXT_KEY_FILE = "agent-key.next.pem"
IDENTITY_FILE = "identity.json"


class IdentityError(Exception):
    """The key or identity files cannot be used."""


@dataclass(frozen=True)
class Identity:
    """What enrollment made of this agent."""

    agent_id: str
    customer: str
    site: str
    collector_url: str
    enrolled_at: datetime

    def to_dict(self) -> dict[str, str]:
        """The JSON form of identity.json."""
        data = asdict(self)
        data["enrolled_at"] = self.enrolled_at.isoformat()
        return data


def _write_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_atomically(path, pem, mode=0o600)
    os.chmod(path, 0o600)  # whatever the umask was


def _read_key(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): made 0600", path, mode)
        os.chmod(path, 0o600)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise IdentityError(f"{path}: not a private key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path}: not an Ed25519 private key")
    return key


def load_or_make_key(state_dir: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The agent's private key, made now if there is none; True if it was just made."""
    path = state_dir / KEY_FILE
    if path.exists():
        return _read_key(path), False
    key = Ed25519PrivateKey.generate()
    _write_key(path, key)
    return key, True


def load_key(state_dir: Path) -> Ed25519PrivateKey:
    """The agent's current private key; IdentityError if there is none."""
    path = state_dir / KEY_FILE
    if not path.exists():
        raise IdentityError(f"{path}: no key: enroll first (asr-agent enroll)")
    return _read_key(path)


def load_or_make_next_key(state_dir: Path) -> Ed25519PrivateKey:
    """The successor key of a rotation: the one made before (if the last try failed) or new."""
    path = state_dir / NEXT_KEY_FILE
    if path.exists():
        return _read_key(path)
    key = Ed25519PrivateKey.generate()
    _write_key(path, key)
    return key


def pending_key(state_dir: Path) -> Ed25519PrivateKey | None:
    """The successor key of an unfinished rotation, if any."""
    path = state_dir / NEXT_KEY_FILE
    return _read_key(path) if path.exists() else None


def promote_next_key(state_dir: Path) -> None:
    """The collector has the successor key: it becomes the agent's key (atomic rename)."""
    os.replace(state_dir / NEXT_KEY_FILE, state_dir / KEY_FILE)
    fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_identity(state_dir: Path) -> Identity | None:
    """The identity enrollment wrote, or None if the agent is not enrolled."""
    path = state_dir / IDENTITY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Identity(
            agent_id=data["agent_id"],
            customer=data["customer"],
            site=data["site"],
            collector_url=data["collector_url"],
            enrolled_at=datetime.fromisoformat(data["enrolled_at"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IdentityError(f"{path}: unreadable: {err}") from err


def save_identity(state_dir: Path, identity: Identity) -> None:
    """Write identity.json (atomically)."""
    text = json.dumps(identity.to_dict(), indent=1)
    write_atomically(state_dir / IDENTITY_FILE, text.encode("utf-8"))


class KeyFiles:
    """The agent's key as the service uses it: read from disk for each batch it signs."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir

    def current(self) -> Ed25519PrivateKey:
        """The key to sign with now (a rotation by `asr-agent rotate-key` shows at once)."""
        return load_key(self._state_dir)

    def finish_rotation(self) -> bool:
        """Adopt the successor of an unfinished rotation; False if there is none.

        Only the collector's answer to our rotation was lost: it retired the old key for the
        new one, which only we hold, so the new key is the one it expects.
        """
        if pending_key(self._state_dir) is None:
            return False
        promote_next_key(self._state_dir)
        return True
