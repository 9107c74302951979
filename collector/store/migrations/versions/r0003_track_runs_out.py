"""Supply tracks say when the stock runs out, which holds until the track changes.

The daily run rewrites a track only when it changed (new readings or orders), so a figure
that ages with the clock, like days left, would go stale in the rows it leaves alone:
`days_left_total` gives way to `runs_out_at`, the time the installed and shipped cartridges
run out at the supply's rate (R17: the portal counts the days left from it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("supply_tracks") as batch:
        batch.add_column(sa.Column("runs_out_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("days_left_total")


def downgrade() -> None:
    with op.batch_alter_table("supply_tracks") as batch:
        batch.add_column(sa.Column("days_left_total", sa.Float(), nullable=True))
        batch.drop_column("runs_out_at")
