"""The collector's records: what the store hands back and the service returns.

They sit below every package of the collector (docs/architecture.md, Layers): the store,
the portal, the mailer and the fulfilment all import them, and they import none of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"

ACTIVE = "active"
RETIRED = "retired"
REVOKED = "revoked"


@dataclass(frozen=True)
class AgentKey:
    """One of an agent's public keys and its state."""

    key_id: str
    agent_id: str
    public_key: bytes
    status: str
    created_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Enrollment:
    """A newly enrolled agent."""

    agent_id: str
    key_id: str
    customer: str
    site: str


@dataclass(frozen=True)
class EnrollToken:
    """An enrollment token as stored: its hash only; the token itself is shown once."""

    token_hash: str
    customer: str
    site: str
    created_at: datetime
    expires_at: datetime


# Why a reading went to the quarantine (schema.quarantine.kind).
INVALID = "invalid"  # the wire's schema refuses it (docs/protocol.md, Bounds)
UNATTRIBUTABLE = "unattributable"  # no serial, a time in the future, a supply twice (R3)
CONFLICT = "conflict"  # its serial belongs to another customer than the agent's


@dataclass(frozen=True)
class Rejection:
    """Why one reading of a batch is not stored, and what is shown of it in the quarantine."""

    kind: str
    reason: str
    field: str | None = None
    serial: str | None = None
    printer: str | None = None
    address: str | None = None

    @property
    def error(self) -> str:
        """The reason as the agent is told it."""
        return f"{self.field}: {self.reason}" if self.field else self.reason


@dataclass(frozen=True)
class ReadingResult:
    """What became of one reading of a batch."""

    seq: int
    status: str
    error: str | None = None
    kind: str | None = None  # a rejected one's quarantine kind (not sent)

    def to_dict(self) -> dict[str, object]:
        """The response's object for this reading."""
        out: dict[str, object] = {"seq": self.seq, "status": self.status}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class IngestResult:
    """What became of one batch."""

    batch_id: str
    results: tuple[ReadingResult, ...]
    new_batch: bool  # False when the batch id was received before (a re-send)
    agent_id: str = ""
    clock_offset_seconds: float | None = None  # the heartbeat's: the agent's clock is off

    def to_dict(self) -> dict[str, object]:
        """The response body."""
        return {"batch_id": self.batch_id, "results": [r.to_dict() for r in self.results]}


# Who is asking: a helpdesk user, a customer's user, or the system itself.
HELPDESK = "helpdesk"
CUSTOMER = "customer"
SYSTEM_ROLE = "system"
ROLES = (HELPDESK, CUSTOMER)


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or the system), and the customer it is scoped to."""

    user_id: int | None
    username: str
    role: str  # helpdesk, customer, system
    customer_id: str | None  # a customer user's; None for the helpdesk and the system

    @property
    def is_helpdesk(self) -> bool:
        """The helpdesk (and the system) see and act for every customer."""
        return self.role in (HELPDESK, SYSTEM_ROLE)

    def sees(self, customer_id: str | None) -> bool:
        """Whether this principal may see the customer's objects (others are not found)."""
        return self.is_helpdesk or (customer_id is not None and customer_id == self.customer_id)

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role,
            "customer_id": self.customer_id,
        }


# The actor of changes no user made (the CLI, the daily run).
SYSTEM = Principal(None, "system", SYSTEM_ROLE, None)
