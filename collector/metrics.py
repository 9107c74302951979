"""The collector's Prometheus metrics, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

# Ingest of a batch on loopback takes milliseconds; a busy database makes it seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self.enrollments = Counter("asr_enrollments", "Agents enrolled.", registry=self.registry)
        self.rotations = Counter("asr_key_rotations", "Agent keys rotated.", registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
