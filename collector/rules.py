"""Ingest rules that need no I/O: which readings of a batch can be stored, which key can sign.

Is: pure functions of a batch (or key), the settings and `now`.
Is not: storage; duplicates are found by the database's unique constraints, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.errors import RetiredKey, RevokedKey
from collector.records import RETIRED, REVOKED, AgentKey
from wire.batch import Batch, BatchReading


@dataclass(frozen=True)
class Sorted:
    """A batch's readings sorted into those to store and those rejected (seq -> why)."""

    storable: tuple[BatchReading, ...]
    rejected: dict[int, str]


def sort_readings(batch: Batch, now: datetime, clock_skew: timedelta) -> Sorted:
    """Split the readings of a valid batch by whether they can be attributed and trusted."""
    storable: list[BatchReading] = []
    rejected: dict[int, str] = {}
    for item in batch.readings:
        why = _why_not(item, now, clock_skew)
        if why is None:
            storable.append(item)
        else:
            rejected[item.seq] = why
    return Sorted(tuple(storable), rejected)


def _why_not(item: BatchReading, now: datetime, clock_skew: timedelta) -> str | None:
    serial = item.reading.serial
    if serial is None or not serial.strip():
        # R3: ASR works per device; a reading without a serial cannot be attributed to one.
        return "no serial number: the reading cannot be attributed to a device (R3)"
    if item.read_at > now + clock_skew:
        return f"read_at {item.read_at.isoformat()} is in the future"
    seen: set[str] = set()
    for i, supply in enumerate(item.reading.supplies):
        if supply.index in seen:
            return f"supplies[{i}].index {supply.index!r} appears twice"
        seen.add(supply.index)
    return None


def check_key(key: AgentKey, now: datetime, retired_grace: timedelta) -> None:
    """RevokedKey or RetiredKey unless `key` may sign at `now`."""
    if key.status == REVOKED:
        raise RevokedKey(f"key {key.key_id} was revoked")
    if (
        key.status == RETIRED
        and key.retired_at is not None
        and now > key.retired_at + retired_grace
    ):
        raise RetiredKey(
            f"key {key.key_id} was replaced on {key.retired_at.isoformat()} and its grace"
            f" period of {retired_grace} is over"
        )
