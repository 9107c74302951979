"""Real part numbers (issue 14): a supply's part number, and an order line's, may be unknown.

- `asr_supplies.sku`: NULL when neither the device nor the catalogue gives the part number
  (docs/catalogue.md); the helpdesk gives it. Before, registration wrote the printer's
  description there, which no distributor can ship.
- `orders.sku`: NULL on a line whose supply has no part number yet: "part number needed". Its
  shipment is not sent to the warehouse until every line has one (collector.store.shipping).

Rows already stored keep their values. Downgrading refuses while a NULL is stored (it would
have to invent a part number).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# The tables whose rows point at asr_supplies (orders is also altered itself).
_CHILDREN = ("supply_tracks", "supply_events", "orders")


def _alter(nullable: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite's batch mode copies a table into a new one and drops the old: with foreign keys
        # on, dropping asr_supplies while rows point at it fails (deferring them does not help:
        # SQLite counts the dropped parent's children and never takes them back). So the rows
        # that point at it wait in temporary tables, and come back once it is rebuilt.
        for table in _CHILDREN:
            op.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT * FROM {table}")
            op.execute(f"DELETE FROM {table}")
    with op.batch_alter_table("asr_supplies") as batch:
        batch.alter_column("sku", existing_type=sa.Text(), nullable=nullable)
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("sku", existing_type=sa.Text(), nullable=nullable)
    if sqlite:
        for table in reversed(_CHILDREN):
            op.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
            op.execute(f"DROP TABLE keep_{table}")


def upgrade() -> None:
    _alter(nullable=True)


def downgrade() -> None:
    _alter(nullable=False)
