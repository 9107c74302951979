"""Kept for old import paths: the outboxes' claim, back-off and depths are one module now,
collector.store.outbox_rows."""

from collector.store.outbox_rows import PENDING, SENDING, backoff, depths

__all__ = ["PENDING", "SENDING", "backoff", "depths"]
