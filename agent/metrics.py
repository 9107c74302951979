"""The agent's Prometheus metrics, served on `[agent] metrics_address` when it is set.

Is: gauges of what the agent knows after each round (printers per state, spool depth, what
the spool dropped and whether its disk is full, when it last polled and pushed, the clock
offset its pushes correct by) and counters of its rounds, in a registry
of its own, served over plain HTTP by prometheus_client's server (bind it to loopback or a
management network: it holds no secret, but it is not authenticated).
Is not: a log; the heartbeat the collector gets is built from the same state, not from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server

from agent.spool import SpoolStats
from agent.state import AgentState

STATES = ("answering", "asleep", "unreachable", "refused", "not-a-printer", "faulty")


class AgentMetrics:
    """Counters and gauges of one agent process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.printers = Gauge(
            "asr_agent_printers", "Printers by state after the last poll.", ["state"], registry=r
        )
        self.polls = Counter("asr_agent_polls", "Poll rounds made.", registry=r)
        self.spooled = Counter("asr_agent_readings_spooled", "Readings spooled.", registry=r)
        self.pushes = Counter(
            "asr_agent_pushes", "Push rounds, by outcome (ok, failed).", ["outcome"], registry=r
        )
        self.spool_depth = Gauge(
            "asr_agent_spool_depth",
            "Readings waiting in the spool (ready and in flight).",
            registry=r,
        )
        self.dropped = Gauge(
            "asr_agent_spool_dropped",
            "Readings the spool dropped (its cap reached, or its disk full), since it was made.",
            registry=r,
        )
        self.disk_full = Gauge(
            "asr_agent_spool_disk_full",
            "1 while the spool's disk has no room: new readings are dropped and counted.",
            registry=r,
        )
        self.clock_offset = Gauge(
            "asr_agent_clock_offset_seconds",
            "The collector's clock minus this box's, by which sent times are corrected"
            " (0: not corrected).",
            registry=r,
        )
        self.last_poll = Gauge(
            "asr_agent_last_poll_timestamp_seconds", "When the last poll ended.", registry=r
        )
        self.last_push = Gauge(
            "asr_agent_last_push_timestamp_seconds", "When the last push ended.", registry=r
        )
        self.last_push_ok = Gauge(
            "asr_agent_last_push_ok_timestamp_seconds",
            "When a push last delivered everything.",
            registry=r,
        )

    def polled(
        self, state: AgentState, names: Iterable[str], spooled: int, spool: SpoolStats
    ) -> None:
        """After a poll round."""
        self.polls.inc()
        self.spooled.inc(spooled)
        counts = state.counts(names)
        for name in STATES:
            self.printers.labels(name).set(getattr(counts, name.replace("-", "_")))
        self._spool(spool)
        if state.last_poll_at is not None:
            self.last_poll.set(state.last_poll_at.timestamp())

    def pushed(
        self,
        state: AgentState,
        ok: bool,
        spool: SpoolStats,
        clock_offset: timedelta | None = None,
    ) -> None:
        """After a push round."""
        self.pushes.labels("ok" if ok else "failed").inc()
        self._spool(spool)
        self.clock_offset.set(clock_offset.total_seconds() if clock_offset is not None else 0)
        if state.last_push_at is not None:
            self.last_push.set(state.last_push_at.timestamp())
        if state.last_push_ok_at is not None:
            self.last_push_ok.set(state.last_push_ok_at.timestamp())

    def _spool(self, spool: SpoolStats) -> None:
        self.spool_depth.set(spool.ready + spool.in_flight)
        self.dropped.set(spool.dropped_total)
        self.disk_full.set(1 if spool.disk_full else 0)

    def exposition(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve /metrics on host:port in a thread of its own (prometheus_client's server);
        `shutdown()` on the answer stops it."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
