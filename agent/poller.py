"""Poll many printers concurrently, bounded, and keep each printer's state.

A printer that does not answer is a *state* (asleep, then unreachable after a while), logged
when it changes, not an error each time. So is one that answers values breaking the MIB (wrong
types, numbers out of range): it stays answering, its reading is kept (those values null or in
notes), and what is wrong is logged once when it changes and kept as its `problems`.
Requests in flight are bounded: with a whole fleet in flight at once, loopback UDP dropped
datagrams and reads slowed fourfold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from agent.decode import decode_read
from agent.profile import Profile
from agent.reader import read_printer
from agent.snmp.errors import NotAPrinter, SnmpAuthError, SnmpError, SnmpTimeout
from agent.snmp.native import NativeClient
from agent.snmp.session import Credentials, Session, Target
from wire.reading import PrinterReading

log = logging.getLogger(__name__)

ANSWERING = "answering"
ASLEEP = "asleep"  # silent, but answered recently: power-save or switched off for the night
UNREACHABLE = "unreachable"  # silent for longer than `unreachable_after`
REFUSED = "refused"  # wrong credentials
NOT_A_PRINTER = "not-a-printer"
FAULTY = "faulty"  # answers that break the protocol
MAX_PROBLEMS_LOGGED = 6  # per log line; `problems` keeps them all


@dataclass(frozen=True)
class PrinterSpec:
    """One printer to poll."""

    name: str
    target: Target
    credentials: Credentials
    backend: str = "native"  # "native" (v1/v2c) or "pysnmp"; v3 always uses pysnmp


@dataclass(frozen=True)
class PollOutcome:
    """The result of one poll of one printer."""

    printer: PrinterSpec
    at: datetime
    state: str
    reading: PrinterReading | None
    error: str | None
    last_answered: datetime | None
    problems: tuple[str, ...] = ()  # values of the answer that break the MIB (agent.decode)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SnmpClients:
    """The SNMP clients of one process: the native socket, and pysnmp made when first needed."""

    def __init__(self) -> None:
        self.native = NativeClient()
        self._pysnmp: object | None = None
        self._lock = asyncio.Lock()

    async def session(self, spec: PrinterSpec) -> Session:
        """A session for this printer on the right client."""
        if spec.credentials.version != "3" and spec.backend == "native":
            return self.native.session(spec.target, spec.credentials)
        async with self._lock:
            if self._pysnmp is None:
                from agent.snmp.pysnmp_client import PysnmpClient  # heavy import, only if used

                self._pysnmp = await PysnmpClient.create()
        return self._pysnmp.session(spec.target, spec.credentials)  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        """Close every socket."""
        self.native.close()
        if self._pysnmp is not None:
            self._pysnmp.close()  # type: ignore[attr-defined]

    async def __aenter__(self) -> SnmpClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Memory:
    state: str | None = None
    last_answered: datetime | None = None
    problems: tuple[str, ...] = ()


@dataclass
class Poller:
    """Polls printers; remembers when each last answered and in which state it is."""

    profile: Profile
    clients: SnmpClients
    max_in_flight: int = 32
    max_repetitions: int = 10
    unreachable_after: timedelta = timedelta(days=1)
    clock: Callable[[], datetime] = _utcnow
    _memory: dict[str, _Memory] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    def remember(self, name: str, last_answered: datetime | None) -> None:
        """Restore when a printer last answered (kept across agent restarts)."""
        self._memory.setdefault(name, _Memory()).last_answered = last_answered

    async def poll(self, spec: PrinterSpec) -> PollOutcome:
        """Read one printer once; never raises for the printer's own failures."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        memory = self._memory.setdefault(spec.name, _Memory())
        reading = error = None
        problems: list[str] = []
        async with self._slots:
            try:
                session = await self.clients.session(spec)
                raw = await read_printer(session, self.profile, self.max_repetitions)
                reading = decode_read(self.profile, raw, problems)
                state = ANSWERING
            except SnmpTimeout as err:
                error = str(err)
                silent_for = self.clock() - memory.last_answered if memory.last_answered else None
                state = (
                    ASLEEP
                    if silent_for is not None and silent_for < self.unreachable_after
                    else UNREACHABLE
                )
            except SnmpAuthError as err:
                state, error = REFUSED, str(err)
            except NotAPrinter as err:
                state, error = NOT_A_PRINTER, str(err)
            except SnmpError as err:
                state, error = FAULTY, str(err)
            except Exception as err:  # the fleet loop's outer guard: one printer, not all
                log.exception("%s: unexpected failure while reading", spec.name)
                state, error = FAULTY, f"unexpected {type(err).__name__}: {err}"
        now = self.clock()
        if state == ANSWERING:
            memory.last_answered = now
        if state != memory.state:
            self._log_change(spec, memory.state, state, error, memory.last_answered)
            memory.state = state
        if state == ANSWERING and tuple(problems) != memory.problems:
            self._log_problems(spec, problems)
            memory.problems = tuple(problems)
        return PollOutcome(spec, now, state, reading, error, memory.last_answered, tuple(problems))

    async def poll_all(self, specs: Iterable[PrinterSpec]) -> list[PollOutcome]:
        """Poll every printer concurrently (bounded by max_in_flight), in the given order."""
        return list(await asyncio.gather(*(self.poll(s) for s in specs)))

    @staticmethod
    def _log_problems(spec: PrinterSpec, problems: list[str]) -> None:
        where = f"{spec.name} ({spec.target.host}:{spec.target.port})"
        if not problems:
            log.info("%s answers values that fit the MIB again", where)
            return
        shown = "; ".join(problems[:MAX_PROBLEMS_LOGGED])
        more = len(problems) - MAX_PROBLEMS_LOGGED
        log.warning(
            "%s answers values that break the Printer-MIB (kept as null, never as numbers): %s%s",
            where,
            shown,
            f"; and {more} more" if more > 0 else "",
        )

    @staticmethod
    def _log_change(
        spec: PrinterSpec, old: str | None, new: str, error: str | None, last: datetime | None
    ) -> None:
        where = f"{spec.name} ({spec.target.host}:{spec.target.port})"
        if new == ANSWERING:
            if old is not None:
                log.info("%s answers again (was %s)", where, old)
            return
        since = (
            f"; last answered {last.isoformat(timespec='seconds')}" if last else "; never answered"
        )
        level = logging.INFO if new == ASLEEP else logging.WARNING
        log.log(level, "%s is %s: %s%s", where, new, error, since)
