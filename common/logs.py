"""Logging for the agent and the collector: plain text by default, one JSON object per line
when asked (`log_format = "json"`), and no secrets in either.

Is: the handler set-up both commands share. Every record goes through `redact`, which masks
what looks like a credential: enrollment and API tokens (`asr1_...`, `asrp_...`), bearer
and basic authorization values, passwords in URLs and `key=value` secrets. The code does not
log secrets on purpose; this is the net under it.
Is not: the choice of what to log (each module's), or metrics (Prometheus).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

FORMATS = ("text", "json")
MASK = "<secret>"
_SECRETS = [
    (re.compile(r"\b(asr1|asrp)_[A-Za-z0-9_\-]{8,}"), rf"\1_{MASK}"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), rf"\1 {MASK}"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), rf"\1{MASK}@"),
    (
        re.compile(
            r"\b(password|passwd|secret|token|community|auth_key|priv_key)(\s*[=:]\s*)"
            r"(?!<secret>)[^\s,;'\"]+",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}",
    ),
]
# Fields of a record that are not the caller's `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """The text with whatever looks like a secret masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the caller's
    `extra=` fields, and the traceback as `exception`; every string redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) in `fmt`, at `level` and above."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
