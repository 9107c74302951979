"""Notifications: the emails of the outbox, composed and sent (R4, R15, R16)."""
