"""The tables of orders and their shipments, and the fulfilment outbox (R10 to R14).

Is: shipments with their status and every step of their life, the order lines they carry,
the requests to the warehouse (sent until acknowledged) and the warehouse nonces already taken.
Is not: the daily plan's state (collector.store.tables.replenish).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from collector.store.tables.columns import Id, Json, UTCDateTime, metadata

SHIPMENT_STATUSES = "'placed', 'backordered', 'shipped', 'delivered', 'installed', 'cancelled'"


shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("shipped_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("plan_run_id", Id, ForeignKey("plan_runs.id")),  # NULL: recorded by the helpdesk
    # R3, R18: the site's shipping address when the order was placed (the label's).
    Column("address", Text),
    Column("tracking", Text),  # the warehouse's, once shipped
    Column("carrier", Text),
    Column("expected_at", UTCDateTime),  # the warehouse's delivery estimate
    Column("installed_at", UTCDateTime),  # R13: every line's cartridge seen installed
    Column("cancelled_at", UTCDateTime),
    CheckConstraint(f"status IN ({SHIPMENT_STATUSES})", name="status"),
    Index("ix_shipments_status", "status"),
)

# Every step of a shipment's life, with its time and who made it (collector.store.shipping).
shipment_events = Table(
    "shipment_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", Id, ForeignKey("shipments.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("detail", Json, nullable=False),
    CheckConstraint(f"status IN ({SHIPMENT_STATUSES})", name="status"),
    CheckConstraint(
        "source IN ('plan', 'helpdesk', 'warehouse', 'readings', 'customer')", name="source"
    ),
    Index("ix_shipment_events_shipment_id_at", "shipment_id", "at"),
)

# The fulfilment outbox: each new shipment's request to the warehouse, sent until acknowledged
# (collector.fulfil.outbound). `body` is the exact JSON sent, fixed when the order is placed.
fulfilment_requests = Table(
    "fulfilment_requests",
    metadata,
    Column("shipment_id", Id, ForeignKey("shipments.id"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime),  # NULL: at once
    Column("claimed_at", UTCDateTime),
    Column("acked_at", UTCDateTime),
    Column("last_error", Text),
    CheckConstraint("status IN ('pending', 'sending', 'acked', 'failed')", name="status"),
    Index("ix_fulfilment_requests_status", "status", "next_attempt_at"),
)

# The warehouse's updates already taken (collector.fulfil.inbound): a replay is refused.
warehouse_nonces = Table(
    "warehouse_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", Id, ForeignKey("shipments.id"), nullable=False, index=True),
    Column("serial", Text, nullable=False),  # R3: for this device alone
    Column("supply_id", String(64), nullable=False),
    Column("sku", Text),  # NULL: part number needed; the shipment waits for it
    Column("quantity", Integer, nullable=False),
    Column("reason", String(24), nullable=False),
    Column("figures", Json, nullable=False),  # what the decision was made from
    Column("placed_at", UTCDateTime, nullable=False),
    Column("counted_at", UTCDateTime),  # R13/R14: in the supply's balance since; NULL: not yet
    ForeignKeyConstraint(
        ["serial", "supply_id"], ["asr_supplies.serial", "asr_supplies.supply_id"]
    ),
    CheckConstraint("quantity > 0", name="quantity"),
    CheckConstraint(
        "reason IN ('trigger', 'consolidated', 'waste-with-black', 'spike', 'extra')",
        name="reason",
    ),
    Index("ix_orders_serial_supply_id", "serial", "supply_id"),
)
