"""The agent's two rounds, as the service runs them: poll every printer, push the spool.

Is: a poll round reads every configured printer (agent.poller), commits what they said to the
spool in one transaction (seqs given there), and saves each printer's state and last answer
(state.json) so asleep/unreachable survive restarts. A push round drains the spool
(agent.delivery) with a heartbeat made from the last poll, and saves how it went.
A full disk stops neither: readings the spool cannot store are dropped and counted (the
heartbeat, the metrics and, once there is room again, `status` show how many), a state file
that cannot be written is kept in memory until it can, and each is logged when it starts and
when it ends, not at every round.
Is not: when rounds run (agent.service), nor the resources: the spool, the poller and the
collector client are injected, and their owner (the CLI) closes them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from agent.delivery import Deliverer, heartbeat
from agent.metrics import AgentMetrics
from agent.poller import Poller, PrinterSpec
from agent.spool import NewReading, Spool, SpoolStats
from agent.state import AgentState, save_state
from wire.batch import Heartbeat

log = logging.getLogger(__name__)


def address(spec: PrinterSpec) -> str:
    """The printer's `ip:port` as the batch carries it ('[v6]:port' for IPv6)."""
    host = spec.target.host
    if ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"{host}:{spec.target.port}"


class AgentWork:
    """The rounds of one agent process."""

    def __init__(
        self,
        specs: Sequence[PrinterSpec],
        poller: Poller,
        spool: Spool,
        deliverer: Deliverer,
        state: AgentState,
        state_path: Path,
        clock: Callable[[], datetime],
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._specs = list(specs)
        self._metrics = metrics
        self._poller = poller
        self._spool = spool
        self._deliverer = deliverer
        self.state = state
        self._state_path = state_path
        self._clock = clock
        self.started_at = clock()
        self._last_error: str | None = None  # logged once per process, not at every retry
        self._refused = 0  # readings dropped since the spool's disk became full
        self._unsaved: str | None = None  # why state.json could not be written, if it cannot
        for name, memory in state.printers.items():
            poller.remember(name, memory.last_answered)

    async def poll(self) -> None:
        """Read every printer once; spool the readings; remember the states."""
        outcomes = await self._poller.poll_all(self._specs)
        items = [
            NewReading(o.at, o.printer.name, address(o.printer), o.reading)
            for o in outcomes
            if o.reading is not None
        ]
        appended = self._spool.append(items)
        if appended.dropped:
            log.warning(
                "spool full: dropped the %d oldest readings (counted, reported in the heartbeat)",
                appended.dropped,
            )
        self._disk_full(appended.refused, bool(appended.seqs))
        self.state = self.state.with_poll(outcomes, self._clock())
        self._save()
        if self._metrics is not None:
            names = [s.name for s in self._specs]
            self._metrics.polled(self.state, names, len(appended.seqs), self._spool.stats())
        states = Counter(o.state for o in outcomes)
        seqs = f" (seq {appended.seqs[0]}..{appended.seqs[-1]})" if appended.seqs else ""
        log.info(
            "polled %d printers (%s): spooled %d readings%s",
            len(outcomes),
            ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none configured",
            len(appended.seqs),
            seqs,
        )

    async def push(self) -> bool:
        """Deliver the spool; True if everything due went through."""
        report = await self._deliverer.push(self._heartbeat)
        failed_before, self._last_error = self._last_error, report.error
        offset = self._deliverer.clock_offset
        self.state = self.state.with_push(
            self._clock(), report.error, offset.total_seconds() if offset is not None else None
        )
        self._save()
        if self._metrics is not None:
            self._metrics.pushed(self.state, report.ok, self._spool.stats(), offset)
        if report.ok:
            log.info(
                "pushed %d batch(es): %d readings delivered, %d rejected",
                report.batches,
                report.acked,
                report.rejected,
            )
        elif report.error != failed_before:  # a failure is news once, not at every retry
            log.warning("push failed, readings kept: %s", report.error)
        else:
            log.debug("push failed again: %s", report.error)
        return report.ok

    def _disk_full(self, refused: int, stored: bool) -> None:
        """Log a full spool disk when it starts and when it ends, not at every poll."""
        if refused:
            if not self._refused:
                log.warning(
                    "the spool's disk is full: %d readings not stored, dropped and counted"
                    " (dropped_total); polling goes on, and so will spooling when there is room",
                    refused,
                )
            else:
                log.debug("the spool's disk is still full: %d more readings dropped", refused)
            self._refused += refused
        elif stored and self._refused:
            log.warning(
                "the spool's disk has room again: readings are spooled; %d were dropped"
                " while it was full",
                self._refused,
            )
            self._refused = 0

    def _save(self) -> None:
        """Write state.json; when the disk refuses, keep the state in memory and say so once."""
        try:
            save_state(self._state_path, self.state)
        except OSError as err:
            if self._unsaved is None:
                log.warning(
                    "cannot write %s (%s): the state is kept in memory", self._state_path, err
                )
            self._unsaved = str(err)
            return
        if self._unsaved is not None:
            log.info("%s written again", self._state_path)
            self._unsaved = None

    def _heartbeat(self, stats: SpoolStats, now: datetime) -> Heartbeat:
        names = [s.name for s in self._specs]
        return heartbeat(self.state, names, stats, self.started_at, now)
