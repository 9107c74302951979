"""The collector's Prometheus metrics, in a registry of their own (one per app)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# A daily run takes a second for a small fleet, half a minute for 100,000 devices.
PLAN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OUTBOX_STATUSES = {
    "notifications": ("pending", "sending", "sent", "unconfirmed", "failed"),
    "fulfilment_requests": ("pending", "sending", "acked", "failed"),
}
# Ingest of a batch on loopback takes milliseconds; a busy database makes it seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An agent's reported clock offset is news (logged again) when it moves by more than this.
CLOCK_NEWS_SECONDS = 60.0


class Metrics:
    """Counters and the latency histogram of ingest, enrollment and rotation."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Counter(
            "asr_ingest_batches",
            "Batches answered, by outcome (stored, resent, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.readings = Counter(
            "asr_ingest_readings",
            "Readings of stored batches, by status (accepted, duplicate, rejected).",
            ["status"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "asr_readings_quarantined",
            "Readings kept in the quarantine instead of stored, by why: invalid (the wire's"
            " bounds), unattributable (no serial, R3), conflict (another customer's device).",
            ["kind"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "asr_rejections",
            "Requests refused, by endpoint and reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "asr_ingest_seconds",
            "Time to answer a batch, from headers read to response.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.logins_throttled = Counter(
            "asr_portal_logins_throttled",
            "Portal logins refused (429) unchecked, by the key that had too many failed logins"
            " (account, address).",
            ["by"],
            registry=self.registry,
        )
        self.enrollments = Counter("asr_enrollments", "Agents enrolled.", registry=self.registry)
        self.rotations = Counter("asr_key_rotations", "Agent keys rotated.", registry=self.registry)
        self.plan_runs = Counter(
            "asr_plan_runs",
            "Daily runs started by this process, by outcome (ran; skipped: another process"
            " held the lock or had made the day's run already; failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.plan_seconds = Histogram(
            "asr_plan_seconds",
            "Duration of a daily run: read, decide and write.",
            buckets=PLAN_BUCKETS,
            registry=self.registry,
        )
        self.plan_progress = Gauge(
            "asr_plan_progress",
            "The daily run being made, as this process last saw it after a chunk it planned:"
            " chunks and groups (customer, site, contact, R10) done, and in all.",
            ["of"],
            registry=self.registry,
        )
        self.plan_budget = Gauge(
            "asr_plan_budget_seconds",
            "How long a scheduled daily run may take ([plan] budget_minutes).",
            registry=self.registry,
        )
        self.plan_last_seconds = Gauge(
            "asr_plan_last_seconds",
            "Wall time of this process's last scheduled daily run that ran, from the"
            " scheduler's start to its end (waits on the database included).",
            registry=self.registry,
        )
        self.plan_overruns = Counter(
            "asr_plan_overruns",
            "Scheduled daily runs slower than their schedule, by kind: budget (a run went past"
            " [plan] budget_minutes; counted once, as it passes), schedule (the next day's"
            " time came while a run was still going: that day's run was skipped).",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("budget", "schedule"):
            self.plan_overruns.labels(kind)
        self.orders = Counter(
            "asr_orders",
            "What the daily runs of this process placed, by kind (shipments, lines).",
            ["kind"],
            registry=self.registry,
        )
        self.clock_offset = Gauge(
            "asr_agent_clock_offset_seconds",
            "The collector's clock minus an agent's, as the agent's heartbeat reports it when it"
            " corrects its times (its clock is off); an agent whose clock is right has none.",
            ["agent"],
            registry=self.registry,
        )
        self._offsets: dict[str, float] = {}
        self.outbox = Gauge(
            "asr_outbox_rows",
            "Rows of each outbox by status (notifications: the emails; fulfilment_requests:"
            " the warehouse's), read from the database at each scrape.",
            ["outbox", "status"],
            registry=self.registry,
        )

    def plan_ran(self, seconds: float, counts: Mapping[str, object]) -> None:
        """A daily run this process made, with its outcome's counts."""
        self.plan_runs.labels("ran").inc()
        self.plan_seconds.observe(seconds)
        for kind in ("shipments", "lines"):
            value = counts.get(kind, 0)
            self.orders.labels(kind).inc(value if isinstance(value, int) else 0)

    def plan_progressed(self, chunks_done: int, chunks: int, groups_done: int, groups: int) -> None:
        """How far the daily run being made is (collector.daily_run's progress)."""
        for of, value in (
            ("chunks_done", chunks_done),
            ("chunks", chunks),
            ("groups_done", groups_done),
            ("groups", groups),
        ):
            self.plan_progress.labels(of).set(value)

    def agent_clock(self, agent_id: str, offset: float | None) -> bool:
        """Record the clock offset an agent's heartbeat reports (None: its clock is right);
        True when it is news: a new offset, one that moved, or one that is gone."""
        before = self._offsets.get(agent_id)
        if offset is None:
            if before is None:
                return False
            del self._offsets[agent_id]
            self.clock_offset.remove(agent_id)
            return True
        self._offsets[agent_id] = offset
        self.clock_offset.labels(agent_id).set(offset)
        return before is None or abs(offset - before) > CLOCK_NEWS_SECONDS

    def set_outboxes(self, depths: Mapping[str, Mapping[str, int]]) -> None:
        """The outboxes' rows per status, every known status shown (0 when none)."""
        for outbox, statuses in OUTBOX_STATUSES.items():
            for status in statuses:
                self.outbox.labels(outbox, status).set(depths.get(outbox, {}).get(status, 0))

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
