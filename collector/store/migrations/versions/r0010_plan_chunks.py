"""The daily run in chunks (issue 16): a run's work, its chunks, and who planned each.

- `plan_work`: one row per run being planned in chunks, beside its `plan_runs` row: the
  readings it takes (received after `since`), the fleet's pages per cartridge by part number
  computed once for the whole run (`yields`), how many chunks and groups, and when the last
  chunk was done (`done_at`; NULL: the run is not complete).
- `plan_chunks`: the run's chunks, each a range of supplies contacts (`after_contact` <
  contact id <= `through_contact`; NULL: to the end), so every group of one contact (R10) and
  every R16 notice of one contact fall in one chunk. A worker claims a chunk with
  `SELECT ... FOR UPDATE SKIP LOCKED` and marks it done in the transaction that writes its
  outcome: all of it, or nothing.
- `ix_asr_devices_contact_id`: a chunk reads its devices by contact.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plan_work",
        sa.Column("run_id", Id, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("yields", Json, nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["plan_runs.id"], name="fk_plan_work_run_id_plan_runs"),
        sa.PrimaryKeyConstraint("run_id", name="pk_plan_work"),
    )
    op.create_table(
        "plan_chunks",
        sa.Column("run_id", Id, nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("after_contact", sa.BigInteger(), nullable=False),
        sa.Column("through_contact", sa.BigInteger(), nullable=True),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("counts", Json, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["plan_work.run_id"], name="fk_plan_chunks_run_id_plan_work"
        ),
        sa.PrimaryKeyConstraint("run_id", "chunk", name="pk_plan_chunks"),
    )
    op.create_index("ix_asr_devices_contact_id", "asr_devices", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_asr_devices_contact_id", table_name="asr_devices")
    op.drop_table("plan_chunks")
    op.drop_table("plan_work")
