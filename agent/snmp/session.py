"""What a printer read needs from SNMP, whatever the client: credentials, target, three calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.snmp.ber import Oid, VarBind

AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "AES", "AES192", "AES256")


@dataclass(frozen=True)
class Credentials:
    """How to talk to a printer: v1/v2c community or SNMPv3 USM user. Secrets never print."""

    version: str = "2c"  # "1", "2c" or "3"
    community: str = field(default="public", repr=False)
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_key: str | None = field(default=None, repr=False)
    context: str = ""

    def __post_init__(self) -> None:
        if self.version not in ("1", "2c", "3"):
            raise ValueError(f"SNMP version must be 1, 2c or 3, not {self.version!r}")
        if self.version != "3":
            return
        if not self.user:
            raise ValueError("SNMPv3 needs a user")
        if self.auth_protocol is not None and self.auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(
                f"auth protocol must be one of {', '.join(AUTH_PROTOCOLS)}, "
                f"not {self.auth_protocol!r}"
            )
        if self.priv_protocol is not None and self.priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(
                f"priv protocol must be one of {', '.join(PRIV_PROTOCOLS)}, "
                f"not {self.priv_protocol!r}"
            )
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("SNMPv3 auth protocol and auth key go together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("SNMPv3 priv protocol and priv key go together")
        if self.priv_protocol and not self.auth_protocol:
            raise ValueError("SNMPv3 privacy needs authentication (authPriv)")
        for name, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if key is not None and len(key) < 8:
                raise ValueError(f"SNMPv3 {name} key must have at least 8 characters")

    @property
    def security_level(self) -> str:
        """noAuthNoPriv, authNoPriv or authPriv (v3); 'community' otherwise."""
        if self.version != "3":
            return "community"
        if self.priv_protocol:
            return "authPriv"
        return "authNoPriv" if self.auth_protocol else "noAuthNoPriv"


@dataclass(frozen=True)
class Target:
    """Where a printer answers, and how patiently to ask it."""

    host: str
    port: int = 161
    timeout: float = 1.0  # seconds for the first try
    retries: int = 3  # further tries after the first
    backoff: float = 2.0  # each retry waits this many times longer (a printer waking up)

    def waits(self) -> list[float]:
        """The wait after each try, first to last."""
        return [self.timeout * self.backoff**i for i in range(self.retries + 1)]


class Session(Protocol):
    """SNMP calls against one printer. Each raises an `SnmpError` on failure."""

    @property
    def bulk(self) -> bool:
        """Whether GETBULK is available (v2c and v3)."""

    async def get(self, oids: list[Oid]) -> list[VarBind]:
        """GET: one varbind per OID, in order; missing objects come back as a NoValue."""

    async def get_next(self, oids: list[Oid]) -> list[VarBind]:
        """GETNEXT: the next object after each OID, in order."""

    async def get_bulk(
        self, non_repeaters: list[Oid], repeaters: list[Oid], max_repetitions: int
    ) -> list[VarBind]:
        """GETBULK: the non-repeaters' successors, then rows of the repeaters' successors."""
