"""Replenishment: contacts, registered devices and supplies, tracks, orders, states, notices.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, columns: list[str], target: str, target_columns: list[str]) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        columns, [f"{target}.{c}" for c in target_columns], name=f"fk_{table}_{columns[0]}_{target}"
    )


def _supply_fk(table: str) -> sa.Constraint:
    return _fk(table, ["serial", "supply_id"], "asr_supplies", ["serial", "supply_id"])


def upgrade() -> None:
    op.add_column(
        "customers", sa.Column("kind", sa.String(8), nullable=False, server_default="self")
    )
    op.add_column("customers", sa.Column("name", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("language", sa.String(16), nullable=True))
    op.add_column("sites", sa.Column("address", sa.Text(), nullable=True))
    op.create_index("ix_readings_received_at", "readings", ["received_at"])
    op.create_table(
        "contacts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        _fk("contacts", ["customer_id"], "customers", ["id"]),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("customer_id", "name", name="uq_contacts_customer_id"),
    )
    op.create_table(
        "asr_devices",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("site_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        _time("registered_at"),
        _fk("asr_devices", ["customer_id"], "customers", ["id"]),
        _fk("asr_devices", ["site_id"], "sites", ["id"]),
        _fk("asr_devices", ["contact_id"], "contacts", ["id"]),
        sa.PrimaryKeyConstraint("serial", name="pk_asr_devices"),
    )
    op.create_table(
        "asr_supplies",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("supply_id", sa.String(64), nullable=False),
        sa.Column("supply_index", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("colour", sa.Text(), nullable=True),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("capacity_grams", sa.Float(), nullable=True),
        sa.CheckConstraint("kind IN ('toner', 'ink', 'waste')", name="ck_asr_supplies_kind"),
        _fk("asr_supplies", ["serial"], "asr_devices", ["serial"]),
        sa.PrimaryKeyConstraint("serial", "supply_id", name="pk_asr_supplies"),
        sa.UniqueConstraint("serial", "supply_index", name="uq_asr_supplies_serial"),
    )
    op.create_table(
        "supply_tracks",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("supply_id", sa.String(64), nullable=False),
        sa.Column("track", Json, nullable=False),
        sa.Column("forecast", Json, nullable=False),
        sa.Column("days_left_total", sa.Float(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=False),
        _time("updated_at"),
        _supply_fk("supply_tracks"),
        sa.PrimaryKeyConstraint("serial", "supply_id", name="pk_supply_tracks"),
    )
    op.create_table(
        "plan_runs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        _time("as_of"),
        _time("started_at"),
        _time("finished_at"),
        _time("received_until"),
        sa.Column("counts", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plan_runs"),
    )
    op.create_table(
        "shipments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("site_id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _time("placed_at"),
        _time("shipped_at", nullable=True),
        _time("delivered_at", nullable=True),
        sa.Column("plan_run_id", Id, nullable=True),
        sa.CheckConstraint(
            "status IN ('placed', 'backordered', 'shipped', 'delivered')",
            name="ck_shipments_status",
        ),
        _fk("shipments", ["customer_id"], "customers", ["id"]),
        _fk("shipments", ["site_id"], "sites", ["id"]),
        _fk("shipments", ["contact_id"], "contacts", ["id"]),
        _fk("shipments", ["plan_run_id"], "plan_runs", ["id"]),
        sa.PrimaryKeyConstraint("id", name="pk_shipments"),
    )
    op.create_index("ix_shipments_status", "shipments", ["status"])
    op.create_table(
        "orders",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("shipment_id", Id, nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("supply_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("figures", Json, nullable=False),
        _time("placed_at"),
        _time("counted_at", nullable=True),
        sa.CheckConstraint("quantity > 0", name="ck_orders_quantity"),
        sa.CheckConstraint(
            "reason IN ('trigger', 'consolidated', 'waste-with-black', 'spike', 'extra')",
            name="ck_orders_reason",
        ),
        _fk("orders", ["shipment_id"], "shipments", ["id"]),
        _supply_fk("orders"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_shipment_id", "orders", ["shipment_id"])
    op.create_index("ix_orders_serial_supply_id", "orders", ["serial", "supply_id"])
    op.create_table(
        "supply_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("supply_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        _time("at"),
        sa.Column("detail", Json, nullable=False),
        sa.Column("plan_run_id", Id, nullable=False),
        sa.CheckConstraint(
            "kind IN ('install', 'early-replacement')", name="ck_supply_events_kind"
        ),
        _supply_fk("supply_events"),
        _fk("supply_events", ["plan_run_id"], "plan_runs", ["id"]),
        sa.PrimaryKeyConstraint("id", name="pk_supply_events"),
    )
    op.create_index("ix_supply_events_serial_at", "supply_events", ["serial", "at"])
    op.create_table(
        "device_states",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("high_usage", sa.Boolean(), nullable=False),
        _time("since"),
        sa.Column("notices_sent", sa.Integer(), nullable=False),
        _time("updated_at"),
        _fk("device_states", ["serial"], "asr_devices", ["serial"]),
        sa.PrimaryKeyConstraint("serial", name="pk_device_states"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("contact_id", Id, nullable=True),
        sa.Column("recipient", sa.String(16), nullable=False),
        _time("created_at"),
        sa.Column("payload", Json, nullable=False),
        _time("sent_at", nullable=True),
        sa.CheckConstraint(
            "recipient IN ('contact', 'helpdesk')", name="ck_notifications_recipient"
        ),
        _fk("notifications", ["customer_id"], "customers", ["id"]),
        _fk("notifications", ["contact_id"], "contacts", ["id"]),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_sent_at", "notifications", ["sent_at"])


def downgrade() -> None:
    for table in (
        "notifications",
        "device_states",
        "supply_events",
        "orders",
        "shipments",
        "plan_runs",
        "supply_tracks",
        "asr_supplies",
        "asr_devices",
        "contacts",
    ):
        op.drop_table(table)
    op.drop_index("ix_readings_received_at", "readings")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("address")
    with op.batch_alter_table("customers") as batch:
        for column in ("language", "name", "kind"):
            batch.drop_column(column)
