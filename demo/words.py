"""The demo's words: what its day lines and summary say for the collector's raw names.

Is: a phrase in a customer's words for each registered device's state
(collector/replenish/lifecycle.py), each kind of email (collector/notify/compose.py, KINDS)
and each printer state an agent's poll names (agent/poller.py); and the one way the demo
counts them in a line. Is not: the portal's or the emails' texts (their own catalogues).
"""

from __future__ import annotations

from collections import Counter

DEVICE_WORDS = {
    "disconnected": "not heard from (disconnected)",
    "no-usage-rate": "still learning their usage",
    "no-toner-pending": "no toner due",
    "activation": "toner due, not ordered yet",
    "toner-ordered": "toner on its way",
    "toner-delivered": "toner delivered, not put in yet",
    "toner-replaced": "new toner put in",
}
EMAIL_WORDS = {
    "registered": "device registered",
    "order_placed": "order placed",
    "shipped": "order shipped",
    "backordered": "order delayed (backordered)",
    "backorder_shipped": "delayed order shipped",
    "disconnected": "printer not heard from",
    "disconnected_followup": "printer still not heard from",
    "reconnected": "printer heard from again",
}
# A printer as its agent saw it at the day's last poll.
PRINTER_WORDS = {
    "answering": "answering",
    "asleep": "asleep (power-save)",
    "unreachable": "not answering",
    "refused": "refusing the credentials",
    "not-a-printer": "not a printer",
    "faulty": "answering garbled",
    "new": "not polled yet",
}


def counts(counter: Counter[str], words: dict[str, str] | None = None) -> str:
    """`counter` as "2 name, 5 other", each name in `words` if it has some; "none" if empty."""
    named = Counter[str]()
    for name, n in counter.items():
        named[(words or {}).get(name, name)] += n
    return ", ".join(f"{n} {name}" for name, n in sorted(named.items())) or "none"
