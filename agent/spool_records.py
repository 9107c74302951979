"""What the agent's spool hands out and raises: its records and its errors (R2).

Is: `NewReading` (what is spooled), `Appended` (what an append did), `Taken` (a batch now in
flight), `SpoolStats` (how full the spool is and what it has lost), `SpoolError`, `SpoolFull`.
Is not: the spool and its promises (agent.spool).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from wire.batch import BatchReading
from wire.reading import PrinterReading


class SpoolError(Exception):
    """The spool file cannot be used (another schema, another agent, not a database)."""


class SpoolFull(SpoolError):
    """No room to write on the spool's disk: the write was rolled back, nothing changed."""


@dataclass(frozen=True)
class NewReading:
    """A reading to spool: which printer, where, when, and what it said."""

    read_at: datetime
    printer: str
    address: str
    reading: PrinterReading


@dataclass(frozen=True)
class Appended:
    """What `append` did: the seqs given, how many old rows the cap dropped, and how many new
    readings a full disk refused (dropped and counted too)."""

    seqs: tuple[int, ...]
    dropped: int
    refused: int = 0


@dataclass(frozen=True)
class Taken:
    """A batch's worth of readings, now in flight under `batch_id`."""

    batch_id: str
    readings: tuple[BatchReading, ...]
    resent: bool  # the same batch as before (its answer never came)
    broken: dict[int, str] = field(default_factory=dict)  # rows that no longer decode: rejected


@dataclass(frozen=True)
class SpoolStats:
    """How full the spool is and what it has lost."""

    ready: int
    in_flight: int
    last_seq: int  # the highest seq ever given (0: none yet)
    dropped_total: int
    rejected_total: int
    oldest_read_at: datetime | None
    agent_id: str | None
    disk_full: bool = False  # the last append found no room: new readings are being dropped

    @property
    def depth(self) -> int:
        """Rows in the spool, whatever their state."""
        return self.ready + self.in_flight
