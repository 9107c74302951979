"""Every printer supplied (issue 14): the page counter and the toner alert of each reading,
and each registered supply's rated page yield.

- `readings.page_count`: the device's prtMarkerLifeCount at the reading; the forecast learns
  pages per cartridge and pages per day from it (collector.replenish.pages), for gauges that
  say only "some remaining" or nothing, and between the steps of coarse gauges.
- `readings.toner_alert`: `empty` (the noToner error bit) or `low` (lowToner), else NULL;
  evidence for a cold start (R7 to R9: an empty cartridge has 0 days left at any rate).
- `asr_supplies.rated_yield`: the pages its cartridge is rated for (the catalogue, or a
  simulation's `yield_pages`); the last resort before pages per cartridge are learned.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("page_count", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("toner_alert", sa.String(8), nullable=True))
    with op.batch_alter_table("asr_supplies") as batch:
        batch.add_column(sa.Column("rated_yield", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("asr_supplies") as batch:
        batch.drop_column("rated_yield")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("toner_alert")
        batch.drop_column("page_count")
