"""The quarantine: readings a batch brought that could not be stored, kept for the helpdesk.

A reading the wire's schema refuses (a NUL in a text, a number no column holds), one that
cannot be attributed to a device (no serial, R3) and one of a device that belongs to another
customer: each becomes a `quarantine` row that points to its signed batch (batches.body),
and the batch's other readings are stored (R2).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_pk", Id, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=True),
        sa.Column("printer", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_quarantine_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["batch_pk"], ["batches.id"], name="fk_quarantine_batch_pk_batches"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.UniqueConstraint("agent_id", "seq", name="uq_quarantine_agent_id"),
        sa.CheckConstraint(
            "kind IN ('invalid', 'unattributable', 'conflict')", name="ck_quarantine_kind"
        ),
    )
    op.create_index("ix_quarantine_received_at", "quarantine", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_received_at", table_name="quarantine")
    op.drop_table("quarantine")
