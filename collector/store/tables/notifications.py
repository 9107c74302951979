"""The notifications table: the mail outbox (R16).

Is: each message to a contact or the helpdesk, with its sending state (pending, sending, sent,
unconfirmed, failed), attempts and back-off.
Is not: what the message says, nor the sending (collector.notify).
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
