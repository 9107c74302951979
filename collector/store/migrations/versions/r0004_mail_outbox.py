"""The mail outbox: each notification's sending state; contacts get a language.

A notification is `pending` until the mailer claims it (`sending`), then `sent`. A claim left
by a mailer that stopped between handing the message to the SMTP server and marking it is
`unconfirmed` after its lease: never sent again (it may have gone), shown to the helpdesk.
A message the server refuses for good is `failed`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = "status IN ('pending', 'sending', 'sent', 'unconfirmed', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column("status", sa.String(12), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.Text(), nullable=True))
        batch.create_check_constraint("ck_notifications_status", STATUSES)
    op.execute("UPDATE notifications SET status = 'sent' WHERE sent_at IS NOT NULL")
    op.create_index("ix_notifications_status", "notifications", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_status", "notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint("ck_notifications_status", type_="check")
        for column in ("message_id", "last_error", "claimed_at", "next_attempt_at", "attempts"):
            batch.drop_column(column)
        batch.drop_column("status")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("language")
