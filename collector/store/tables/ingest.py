"""The tables of what the agents send: batches, readings, their supplies, devices (R2).

Is: each signed batch, its readings (unique per agent and seq) and supply levels, the latest
known state per device, readings put in quarantine, and agents' heartbeats.
Is not: who may send (collector.store.tables.fleet), nor what is made of it (replenish).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collector.store.tables.columns import Id, Json, UTCDateTime, metadata

batches = Table(
    "batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("batch_id", String(36), nullable=False),
    Column("key_id", String(16), ForeignKey("agent_keys.key_id"), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("reading_count", Integer, nullable=False),
    Column("headers", Json, nullable=False),  # the signature headers, for audit
    Column("body", LargeBinary, nullable=False),  # the exact signed bytes, for audit
    UniqueConstraint("agent_id", "batch_id"),
)

readings = Table(
    "readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("batch_pk", Id, ForeignKey("batches.id"), nullable=False),
    Column("serial", Text, nullable=False),  # R3: the device it is attributed to
    Column("printer", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("read_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),  # wire.reading.PrinterReading.to_dict()
    Column("page_count", BigInteger),  # prtMarkerLifeCount: pages per cartridge and per day
    Column("toner_alert", String(8)),  # empty (noToner), low (lowToner), else NULL
    UniqueConstraint("agent_id", "seq"),
    Index("ix_readings_serial_read_at", "serial", "read_at"),
    Index("ix_readings_received_at", "received_at"),  # the daily plan's new readings
)

supplies = Table(
    "supplies",
    metadata,
    Column("reading_id", Id, ForeignKey("readings.id", ondelete="CASCADE"), nullable=False),
    Column("supply_index", String(32), nullable=False),
    Column("kind", Text, nullable=False),
    Column("colour", Text),
    Column("percent", Float),
    Column("level", Integer),
    Column("max_capacity", Integer),
    Column("grams_left", Float),
    Column("grams_used", Float),
    Column("quality", String(16), nullable=False),
    Column("receptacle", Boolean, nullable=False),
    PrimaryKeyConstraint("reading_id", "supply_index"),
)

devices = Table(
    "devices",
    metadata,
    Column("serial", Text, primary_key=True),  # R3: ASR works per device, by serial number
    Column("model", Text),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("last_agent_id", String(36), ForeignKey("agents.id"), nullable=False),
)

# Readings a batch brought that could not be stored (docs/protocol.md, Per reading): kept with
# their signed batch (batch_pk: batches.body holds them as sent) for the helpdesk to see (R2).
QUARANTINE_KINDS = ("invalid", "unattributable", "conflict")
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("batch_pk", Id, ForeignKey("batches.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("field", Text),  # the path of what is wrong, when one field is
    Column("reason", Text, nullable=False),
    Column("serial", Text),  # as sent, cleaned and cut
    Column("printer", Text),
    Column("address", Text),
    UniqueConstraint("agent_id", "seq"),
    CheckConstraint(
        "kind IN (" + ", ".join(f"'{k}'" for k in QUARANTINE_KINDS) + ")",
        name="kind",
    ),
    Index("ix_quarantine_received_at", "received_at"),
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("batch_pk", Id, ForeignKey("batches.id"), primary_key=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("agent_version", Text, nullable=False),
    Column("uptime_seconds", Float, nullable=False),
    Column("answering", Integer, nullable=False),
    Column("asleep", Integer, nullable=False),
    Column("unreachable", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("not_a_printer", Integer, nullable=False),
    Column("faulty", Integer, nullable=False),
    Column("spool_depth", Integer, nullable=False),
    Column("dropped_total", BigInteger, nullable=False),
    Column("last_poll_at", UTCDateTime),
    Index("ix_heartbeats_agent_id_received_at", "agent_id", "received_at"),
)
