"""What the agent remembers across restarts besides its spool, in `state.json`.

Is: when each printer last answered, its last state and what was wrong with its last answer
(so asleep/unreachable survive a restart, `Poller.remember`), the printers per state of the
last poll, when the last poll and the last push were, whether that push delivered everything,
and why not, and the clock offset the pushes correct by. Written whole and atomically (a
temporary file renamed over the old one); a state file that is missing or unreadable is an
empty state: printers count as never answered and a push is due at start. Keys added since
are optional, so an older file still reads.
Also the state directory's lock, which keeps a second `asr-agent run` away.
Is not: the readings (agent.spool) nor the identity (agent.identity).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from agent.poller import PollOutcome
from wire.batch import PrinterCounts

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
SPOOL_FILE = "spool.db"
LOCK_FILE = "agent.lock"

_COUNT_FIELDS = {
    "answering": "answering",
    "asleep": "asleep",
    "unreachable": "unreachable",
    "refused": "refused",
    "not-a-printer": "not_a_printer",
    "faulty": "faulty",
}


@dataclass(frozen=True)
class PrinterMemory:
    """One printer as last seen."""

    state: str | None = None
    last_answered: datetime | None = None
    error: str | None = None  # why the last read failed, or what in its answer broke the MIB


@dataclass(frozen=True)
class AgentState:
    """The agent's memory; every change makes a new one (`with_poll`, `with_push`)."""

    printers: Mapping[str, PrinterMemory] = field(default_factory=dict)
    last_poll_at: datetime | None = None
    last_push_at: datetime | None = None  # the last push that ended, well or not
    last_push_ok_at: datetime | None = None  # the last push that delivered everything
    last_push_error: str | None = None
    clock_offset_seconds: float | None = None  # the collector's clock minus ours, if corrected

    def with_poll(self, outcomes: Iterable[PollOutcome], at: datetime) -> AgentState:
        """The state after a poll round."""
        printers = dict(self.printers)
        for o in outcomes:
            error = o.error or ("; ".join(o.problems) if o.problems else None)
            printers[o.printer.name] = PrinterMemory(o.state, o.last_answered, error)
        return replace(self, printers=printers, last_poll_at=at)

    def with_push(
        self, at: datetime, error: str | None, clock_offset_seconds: float | None = None
    ) -> AgentState:
        """The state after a push round: delivered (no error) or not, and the clock offset."""
        return replace(
            self,
            last_push_at=at,
            last_push_ok_at=at if error is None else self.last_push_ok_at,
            last_push_error=error,
            clock_offset_seconds=clock_offset_seconds,
        )

    def counts(self, names: Iterable[str]) -> PrinterCounts:
        """How many of these printers are in each state (never polled: not counted)."""
        tally = dict.fromkeys(_COUNT_FIELDS.values(), 0)
        for name in names:
            memory = self.printers.get(name)
            if memory is not None and memory.state in _COUNT_FIELDS:
                tally[_COUNT_FIELDS[memory.state]] += 1
        return PrinterCounts(**tally)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (also what `status --json` shows)."""
        return {
            "printers": {
                name: {"state": m.state, "last_answered": _iso(m.last_answered), "error": m.error}
                for name, m in sorted(self.printers.items())
            },
            "last_poll_at": _iso(self.last_poll_at),
            "last_push_at": _iso(self.last_push_at),
            "last_push_ok_at": _iso(self.last_push_ok_at),
            "last_push_error": self.last_push_error,
            "clock_offset_seconds": self.clock_offset_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentState:
        """The state from its JSON form; KeyError/TypeError/ValueError if it is not one."""
        return cls(
            printers={
                str(name): PrinterMemory(p["state"], _time(p["last_answered"]), p.get("error"))
                for name, p in data["printers"].items()
            },
            last_poll_at=_time(data["last_poll_at"]),
            last_push_at=_time(data["last_push_at"]),
            last_push_ok_at=_time(data["last_push_ok_at"]),
            last_push_error=data["last_push_error"],
            clock_offset_seconds=data.get("clock_offset_seconds"),
        )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"naive time {text!r}")
    return at


def load_state(path: Path) -> AgentState:
    """The state in `path`; an empty state (logged) if it is missing or unreadable."""
    try:
        return AgentState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return AgentState()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("%s unreadable (%s): starting from an empty state", path, err)
        return AgentState()


def save_state(path: Path, state: AgentState) -> None:
    """Write the state atomically: the old file or the new one, never half of one."""
    write_atomically(path, json.dumps(state.to_dict(), indent=1).encode("utf-8"))


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temporary file, synced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_state_dir(state_dir: Path) -> Path:
    """The state directory, made private (0700) if it is new."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return state_dir


class StateDirBusy(Exception):
    """Another agent process holds the state directory."""


def lock_state_dir(state_dir: Path) -> IO[bytes]:
    """Hold the state directory's lock until the returned file is closed (or we die)."""
    handle = (state_dir / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateDirBusy(f"{state_dir}: another asr-agent run uses it") from None
    return handle
