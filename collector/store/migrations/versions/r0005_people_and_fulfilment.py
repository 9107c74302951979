"""Orders' whole life with the warehouse, and the portal's people.

Shipments keep the address they were placed for (R3, R18), the warehouse's tracking, and
two more states: installed (R13) and cancelled. Every step is a `shipment_events` row with
its time and source. Each new shipment's request to the warehouse waits in
`fulfilment_requests` until acknowledged; the warehouse's updates leave their nonce in
`warehouse_nonces` so a replay is refused. Users (customer or helpdesk), their portal
sessions, hashed API tokens and an audit trail of who changed what (R4, R14, R18).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")

OLD = "status IN ('placed', 'backordered', 'shipped', 'delivered')"
STATUSES = "status IN ('placed', 'backordered', 'shipped', 'delivered', 'installed', 'cancelled')"
SOURCES = "source IN ('plan', 'helpdesk', 'warehouse', 'readings', 'customer')"


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tracking", sa.Text(), nullable=True))
        batch.add_column(sa.Column("carrier", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expected_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("ck_shipments_status", type_="check")
        batch.create_check_constraint("ck_shipments_status", STATUSES)
    # Shipments placed before this revision ship to their site's address of today.
    op.execute(
        "UPDATE shipments SET address ="
        " (SELECT address FROM sites WHERE sites.id = shipments.site_id)"
    )
    op.create_table(
        "shipment_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("shipment_id", Id, sa.ForeignKey("shipments.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detail", Json, nullable=False),
        sa.CheckConstraint(STATUSES, name="ck_shipment_events_status"),
        sa.CheckConstraint(SOURCES, name="ck_shipment_events_source"),
    )
    op.create_index("ix_shipment_events_shipment_id_at", "shipment_events", ["shipment_id", "at"])
    op.create_table(
        "fulfilment_requests",
        sa.Column("shipment_id", Id, sa.ForeignKey("shipments.id"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'acked', 'failed')",
            name="ck_fulfilment_requests_status",
        ),
    )
    op.create_index(
        "ix_fulfilment_requests_status", "fulfilment_requests", ["status", "next_attempt_at"]
    )
    op.create_table(
        "warehouse_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_warehouse_nonces_received_at", "warehouse_nonces", ["received_at"])
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'helpdesk' AND customer_id IS NULL)"
            " OR (role = 'customer' AND customer_id IS NOT NULL)",
            name="ck_users_role",
        ),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_portal_sessions_user_id", "portal_sessions", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("entity", sa.String(24), nullable=False),
        sa.Column("entity_key", sa.Text(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("before", Json, nullable=True),
        sa.Column("after", Json, nullable=True),
    )
    op.create_index("ix_audit_log_customer_id_at", "audit_log", ["customer_id", "at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "portal_sessions",
        "api_tokens",
        "users",
        "warehouse_nonces",
        "fulfilment_requests",
        "shipment_events",
    ):
        op.drop_table(table)
    op.execute("UPDATE shipments SET status = 'delivered' WHERE status = 'installed'")
    op.execute(
        "DELETE FROM orders WHERE shipment_id IN"
        " (SELECT id FROM shipments WHERE status = 'cancelled')"
    )
    op.execute("DELETE FROM shipments WHERE status = 'cancelled'")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_constraint("ck_shipments_status", type_="check")
        batch.create_check_constraint("ck_shipments_status", OLD)
        for column in ("cancelled_at", "installed_at", "expected_at", "carrier", "tracking"):
            batch.drop_column(column)
        batch.drop_column("address")
