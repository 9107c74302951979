"""Ingest: customers, sites, enrollment, agents and keys, batches, readings, devices.

Revision ID: 0001
Revises:
Create Date: 2026-01-05
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_table(
        "sites",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_sites_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
        sa.UniqueConstraint("customer_id", "name", name="uq_sites_customer_id"),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("site_id", Id, nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("agent_version", sa.Text(), nullable=False),
        _time("enrolled_at"),
        _time("last_seen_at", nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_agents_site_id_sites"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )
    op.create_table(
        "enroll_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("site_id", Id, nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        sa.Column("agent_id", sa.String(36), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_enroll_tokens_agent_id_agents"
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_enroll_tokens_site_id_sites"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_enroll_tokens"),
    )
    op.create_table(
        "agent_keys",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _time("created_at"),
        _time("retired_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'retired', 'revoked')", name="ck_agent_keys_status"
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_agent_keys_agent_id_agents"),
        sa.PrimaryKeyConstraint("key_id", name="pk_agent_keys"),
        sa.UniqueConstraint("public_key", name="uq_agent_keys_public_key"),
    )
    op.create_index("ix_agent_keys_agent_id", "agent_keys", ["agent_id"])
    op.create_table(
        "nonces",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        _time("signed_at"),
        sa.ForeignKeyConstraint(
            ["key_id"], ["agent_keys.key_id"], name="fk_nonces_key_id_agent_keys"
        ),
        sa.PrimaryKeyConstraint("key_id", "nonce", name="pk_nonces"),
    )
    op.create_index("ix_nonces_signed_at", "nonces", ["signed_at"])
    op.create_table(
        "batches",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        _time("sent_at"),
        _time("received_at"),
        sa.Column("reading_count", sa.Integer(), nullable=False),
        sa.Column("headers", Json, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_batches_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["key_id"], ["agent_keys.key_id"], name="fk_batches_key_id_agent_keys"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("agent_id", "batch_id", name="uq_batches_agent_id"),
    )
    op.create_table(
        "readings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_pk", Id, nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("printer", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        _time("read_at"),
        _time("received_at"),
        sa.Column("payload", Json, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_readings_agent_id_agents"),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], name="fk_readings_batch_pk_batches"),
        sa.PrimaryKeyConstraint("id", name="pk_readings"),
        sa.UniqueConstraint("agent_id", "seq", name="uq_readings_agent_id"),
    )
    op.create_index("ix_readings_serial_read_at", "readings", ["serial", "read_at"])
    op.create_table(
        "supplies",
        sa.Column("reading_id", Id, nullable=False),
        sa.Column("supply_index", sa.String(32), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("colour", sa.Text(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("max_capacity", sa.Integer(), nullable=True),
        sa.Column("grams_left", sa.Float(), nullable=True),
        sa.Column("grams_used", sa.Float(), nullable=True),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("receptacle", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["readings.id"],
            name="fk_supplies_reading_id_readings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reading_id", "supply_index", name="pk_supplies"),
    )
    op.create_table(
        "devices",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        _time("first_seen"),
        _time("last_seen"),
        sa.Column("last_agent_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_agent_id"], ["agents.id"], name="fk_devices_last_agent_id_agents"
        ),
        sa.PrimaryKeyConstraint("serial", name="pk_devices"),
    )
    op.create_table(
        "heartbeats",
        sa.Column("batch_pk", Id, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        _time("received_at"),
        sa.Column("agent_version", sa.Text(), nullable=False),
        sa.Column("uptime_seconds", sa.Float(), nullable=False),
        sa.Column("answering", sa.Integer(), nullable=False),
        sa.Column("asleep", sa.Integer(), nullable=False),
        sa.Column("unreachable", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("not_a_printer", sa.Integer(), nullable=False),
        sa.Column("faulty", sa.Integer(), nullable=False),
        sa.Column("spool_depth", sa.Integer(), nullable=False),
        sa.Column("dropped_total", sa.BigInteger(), nullable=False),
        _time("last_poll_at", nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_heartbeats_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["batch_pk"], ["batches.id"], name="fk_heartbeats_batch_pk_batches"
        ),
        sa.PrimaryKeyConstraint("batch_pk", name="pk_heartbeats"),
    )
    op.create_index("ix_heartbeats_agent_id_received_at", "heartbeats", ["agent_id", "received_at"])


def downgrade() -> None:
    for table in (
        "heartbeats",
        "devices",
        "supplies",
        "readings",
        "batches",
        "nonces",
        "agent_keys",
        "enroll_tokens",
        "agents",
        "sites",
        "customers",
    ):
        op.drop_table(table)
