"""The portal's people tables (R17, R18): users with a role, API tokens, and the audit trail.

Is: users, API tokens and portal sessions (kept only as hashes), the login throttle's counts,
and the audit log.
Is not: the rules on them (collector.store.people, tokens, login_throttle, audit).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from collector.store.tables.columns import Id, Json, UTCDateTime, metadata

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
