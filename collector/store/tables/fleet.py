"""The fleet's tables: customers, their sites, and the agents that may send (R1, R2).

Is: customers, sites (with their shipping address), agents, their enrolment tokens and signing
keys, and the nonces of batches already taken (a replay is refused).
Is not: what the agents send (collector.store.tables.ingest).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collector.store.tables.columns import Id, UTCDateTime, metadata

customers = Table(
    "customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("kind", String(8), nullable=False, server_default="self"),  # mps: the helpdesk is told
    Column("name", Text),
    Column("language", String(16)),
)

sites = Table(
    "sites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("address", Text),  # R18: where shipments go
    UniqueConstraint("customer_id", "name"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),
    Column("hostname", Text, nullable=False),
    Column("agent_version", Text, nullable=False),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime),
)

enroll_tokens = Table(
    "enroll_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex; the token is shown once
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("agent_id", String(36), ForeignKey("agents.id")),
)

agent_keys = Table(
    "agent_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False, index=True),
    Column("public_key", LargeBinary(32), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    CheckConstraint("status IN ('active', 'retired', 'revoked')", name="status"),
)

nonces = Table(
    "nonces",
    metadata,
    Column("key_id", String(16), ForeignKey("agent_keys.key_id"), nullable=False),
    Column("nonce", String(32), nullable=False),
    Column("signed_at", UTCDateTime, nullable=False, index=True),  # pruned by this
    PrimaryKeyConstraint("key_id", "nonce"),
)
