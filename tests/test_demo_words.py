"""The demo's summary speaks in words: every state and email kind the collector can name has
a phrase, so no raw name ("no-toner-pending", "backorder_shipped") reaches the reader."""

from __future__ import annotations

from collector.notify.compose import KINDS
from collector.replenish import lifecycle
from demo.words import DEVICE_WORDS, EMAIL_WORDS


def test_every_email_kind_has_words() -> None:
    assert set(EMAIL_WORDS) == set(KINDS)
    assert all("_" not in words for words in EMAIL_WORDS.values())


def test_every_device_state_has_words() -> None:
    assert set(DEVICE_WORDS) == set(lifecycle.STATES)
    assert all("-" not in words for words in DEVICE_WORDS.values())
