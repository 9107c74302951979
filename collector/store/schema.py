"""The collector's tables, one definition for SQLite and PostgreSQL.

Changed only together with a migration in `migrations/versions` (a test compares the two).
Uniqueness that ingest relies on is a constraint here, never a check in code: readings are
unique per (agent_id, seq), batches per (agent_id, batch_id), nonces per (key_id, nonce).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases (SQLite keeps naive text, so it is UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def sqlite_time(value: datetime) -> str:
    """The text UTCDateTime stores on SQLite, for rows the SQLite writer binds itself."""
    # SQLAlchemy's SQLite DATETIME format, always with microseconds: as text they sort in time
    # order, which the devices upsert relies on (a test compares it with SQLAlchemy's).
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store keeps UTC")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


# A 64-bit surrogate key; on SQLite it must be INTEGER to be the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

SHIPMENT_STATUSES = "'placed', 'backordered', 'shipped', 'delivered', 'installed', 'cancelled'"

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

batches = Table(
    "batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("batch_id", String(36), nullable=False),
    Column("key_id", String(16), ForeignKey("agent_keys.key_id"), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("reading_count", Integer, nullable=False),
    Column("headers", Json, nullable=False),  # the signature headers, for audit
    Column("body", LargeBinary, nullable=False),  # the exact signed bytes, for audit
    UniqueConstraint("agent_id", "batch_id"),
)

readings = Table(
    "readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("batch_pk", Id, ForeignKey("batches.id"), nullable=False),
    Column("serial", Text, nullable=False),  # R3: the device it is attributed to
    Column("printer", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("read_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),  # wire.reading.PrinterReading.to_dict()
    Column("page_count", BigInteger),  # prtMarkerLifeCount: pages per cartridge and per day
    Column("toner_alert", String(8)),  # empty (noToner), low (lowToner), else NULL
    UniqueConstraint("agent_id", "seq"),
    Index("ix_readings_serial_read_at", "serial", "read_at"),
    Index("ix_readings_received_at", "received_at"),  # the daily plan's new readings
)

supplies = Table(
    "supplies",
    metadata,
    Column("reading_id", Id, ForeignKey("readings.id", ondelete="CASCADE"), nullable=False),
    Column("supply_index", String(32), nullable=False),
    Column("kind", Text, nullable=False),
    Column("colour", Text),
    Column("percent", Float),
    Column("level", Integer),
    Column("max_capacity", Integer),
    Column("grams_left", Float),
    Column("grams_used", Float),
    Column("quality", String(16), nullable=False),
    Column("receptacle", Boolean, nullable=False),
    PrimaryKeyConstraint("reading_id", "supply_index"),
)

devices = Table(
    "devices",
    metadata,
    Column("serial", Text, primary_key=True),  # R3: ASR works per device, by serial number
    Column("model", Text),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("last_agent_id", String(36), ForeignKey("agents.id"), nullable=False),
)

# Readings a batch brought that could not be stored (docs/protocol.md, Per reading): kept with
# their signed batch (batch_pk: batches.body holds them as sent) for the helpdesk to see (R2).
QUARANTINE_KINDS = ("invalid", "unattributable", "conflict")
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("batch_pk", Id, ForeignKey("batches.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("field", Text),  # the path of what is wrong, when one field is
    Column("reason", Text, nullable=False),
    Column("serial", Text),  # as sent, cleaned and cut
    Column("printer", Text),
    Column("address", Text),
    UniqueConstraint("agent_id", "seq"),
    CheckConstraint(
        "kind IN (" + ", ".join(f"'{k}'" for k in QUARANTINE_KINDS) + ")",
        name="kind",
    ),
    Index("ix_quarantine_received_at", "received_at"),
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("batch_pk", Id, ForeignKey("batches.id"), primary_key=True),
    Column("agent_id", String(36), ForeignKey("agents.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("agent_version", Text, nullable=False),
    Column("uptime_seconds", Float, nullable=False),
    Column("answering", Integer, nullable=False),
    Column("asleep", Integer, nullable=False),
    Column("unreachable", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("not_a_printer", Integer, nullable=False),
    Column("faulty", Integer, nullable=False),
    Column("spool_depth", Integer, nullable=False),
    Column("dropped_total", BigInteger, nullable=False),
    Column("last_poll_at", UTCDateTime),
    Index("ix_heartbeats_agent_id_received_at", "agent_id", "received_at"),
)


# The replenishment engine's tables (R4 to R16). Registration: which devices are in ASR, where
# they ship and who is told; each registered supply names the reading's supply it is.

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("name", String(64), nullable=False),  # the customer's id for the contact
    Column("email", Text, nullable=False),
    Column("display_name", Text),
    Column("language", String(8)),  # it, fr, en; NULL: the customer's
    UniqueConstraint("customer_id", "name"),
)

asr_devices = Table(
    "asr_devices",
    metadata,
    Column("serial", Text, primary_key=True),  # R3
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),  # R10, R18
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),  # R10, R18
    Column("model", Text),
    Column("registered_at", UTCDateTime, nullable=False),  # R4
)

asr_supplies = Table(
    "asr_supplies",
    metadata,
    Column("serial", Text, ForeignKey("asr_devices.serial"), nullable=False),
    Column("supply_id", String(64), nullable=False),
    Column("supply_index", String(32), nullable=False),  # readings' supplies.supply_index
    Column("kind", String(16), nullable=False),
    Column("colour", Text),
    Column("sku", Text),  # the part number; NULL: part number needed (docs/catalogue.md)
    Column("capacity_grams", Float),
    Column("rated_yield", Integer),  # pages the cartridge is rated for (catalogue), if known
    PrimaryKeyConstraint("serial", "supply_id"),
    UniqueConstraint("serial", "supply_index"),
    CheckConstraint("kind IN ('toner', 'ink', 'waste')", name="kind"),  # R5
)

supply_tracks = Table(
    "supply_tracks",
    metadata,
    Column("serial", Text, nullable=False),
    Column("supply_id", String(64), nullable=False),
    Column("track", Json, nullable=False),  # collector.replenish.forecast.Track
    Column("forecast", Json, nullable=False),  # Forecast.figures() at updated_at
    # R17: when the installed and shipped cartridges run out at the rate (days left = this
    # less now); NULL: not known, or no usage. Holds until the track changes.
    Column("runs_out_at", UTCDateTime),
    Column("balance", Integer, nullable=False),  # R13
    Column("updated_at", UTCDateTime, nullable=False),  # the run that last changed it
    PrimaryKeyConstraint("serial", "supply_id"),
    ForeignKeyConstraint(
        ["serial", "supply_id"], ["asr_supplies.serial", "asr_supplies.supply_id"]
    ),
)

plan_runs = Table(
    "plan_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("received_until", UTCDateTime, nullable=False),  # readings up to here were applied
    Column("counts", Json, nullable=False),
)

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

supply_events = Table(
    "supply_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("serial", Text, nullable=False),
    Column("supply_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Json, nullable=False),
    Column("plan_run_id", Id, ForeignKey("plan_runs.id"), nullable=False),
    ForeignKeyConstraint(
        ["serial", "supply_id"], ["asr_supplies.serial", "asr_supplies.supply_id"]
    ),
    CheckConstraint("kind IN ('install', 'early-replacement')", name="kind"),  # R13
    Index("ix_supply_events_serial_at", "serial", "at"),
)

device_states = Table(
    "device_states",
    metadata,
    Column("serial", Text, ForeignKey("asr_devices.serial"), primary_key=True),
    Column("state", String(24), nullable=False),  # collector.replenish.lifecycle.STATES
    Column("reason", Text, nullable=False),
    Column("high_usage", Boolean, nullable=False),  # R6
    Column("since", UTCDateTime, nullable=False),
    Column("notices_sent", Integer, nullable=False),  # R16: for the current disconnection
    Column("updated_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("contact_id", Id, ForeignKey("contacts.id")),
    Column("recipient", String(16), nullable=False),  # contact, or helpdesk for MPS (R16)
    Column("created_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Column("sent_at", UTCDateTime),  # NULL: waiting in the outbox
    # collector.notify.outbox: pending -> sending -> sent; or unconfirmed, failed.
    Column("status", String(12), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime),  # NULL: at once
    Column("claimed_at", UTCDateTime),  # by the mailer sending it
    Column("last_error", Text),
    Column("message_id", Text),
    CheckConstraint("recipient IN ('contact', 'helpdesk')", name="recipient"),
    CheckConstraint(
        "status IN ('pending', 'sending', 'sent', 'unconfirmed', 'failed')", name="status"
    ),
    Index("ix_notifications_sent_at", "sent_at"),
    Index("ix_notifications_status", "status", "next_attempt_at"),
)


# People (the portal, R17, R18): users with a role, API tokens, and the audit trail.

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("role", String(16), nullable=False),
    Column("customer_id", String(64), ForeignKey("customers.id")),  # a customer user's
    Column("display_name", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    CheckConstraint(
        "(role = 'helpdesk' AND customer_id IS NULL)"
        " OR (role = 'customer' AND customer_id IS NOT NULL)",
        name="role",
    ),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex; the token is shown once
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

# Portal logins: the session cookie names its row, so a logout ends the session on the server
# too (a copy of the cookie kept from before is refused).
portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 hex of the cookie's session id
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),  # logged out; NULL: open until it expires
)

# Failed portal logins per key (collector.portal.auth's throttle): `account:<username>` or
# `address:<client address>`; past the limit the key is refused until `locked_until`.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False, index=True),  # forgotten a day after
)

# Who changed what and when (R4 registration, R14 extra orders, R18 address and contact).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),  # a username, or 'system'
    Column("role", String(16), nullable=False),  # helpdesk, customer, system
    Column("customer_id", String(64), ForeignKey("customers.id")),
    Column("entity", String(24), nullable=False),  # site, contact, device, order, user, token
    Column("entity_key", Text, nullable=False),
    Column("action", String(24), nullable=False),
    Column("before", Json),
    Column("after", Json),
    Index("ix_audit_log_customer_id_at", "customer_id", "at"),
)
