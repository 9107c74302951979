"""Logs: plain text or one JSON object per line, and no secrets in either (common.logs)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from common import logs

SECRETS = [
    ("enroll with asr1_Zx9fK2LmQ7vB3nR8tY1u", "asr1_Zx9fK2LmQ7vB3nR8tY1u"),
    ("Authorization: Bearer asrp_GXQRfKWWPlWB5DGK-R8yEQ", "GXQRfKWWPlWB5DGK"),
    ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("postgresql://asr:hunter2@db:5432/asr", "hunter2"),
    ("smtp login password=s3cr3t-pw failed", "s3cr3t-pw"),
    ("community: private-string for 192.0.2.1", "private-string"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_what_looks_like_a_secret_is_masked(text: str, secret: str) -> None:
    masked = logs.redact(text)
    assert secret not in masked and logs.MASK in masked


def test_ordinary_text_is_left_alone() -> None:
    text = "batch 3f2a accepted: 12 readings from agent a1b2 (printer 192.0.2.10:161)"
    assert logs.redact(text) == text


@pytest.fixture(autouse=True)
def _root_restored() -> Iterator[None]:
    """logs.setup replaces the root logger's handlers: give pytest's back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _capture(fmt: str) -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    logs.setup("debug", fmt, stream)
    return stream, logging.getLogger("asr.test")


def test_json_lines_carry_time_level_logger_message_extras_and_traceback() -> None:
    stream, log = _capture("json")
    log.info("pushed %d readings", 12, extra={"agent_id": "a1", "token": "asr1_AAAAAAAAAAAA"})
    try:
        raise ValueError("database url postgresql://u:pw-secret@h/db is wrong")
    except ValueError:
        log.exception("ingest failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "info" and first["logger"] == "asr.test"
    assert first["message"] == "pushed 12 readings" and first["agent_id"] == "a1"
    assert first["token"] == f"asr1_{logs.MASK}"
    assert first["time"].endswith("+00:00")
    assert second["level"] == "error" and "ValueError" in second["exception"]
    assert "pw-secret" not in stream.getvalue()


def test_text_lines_are_redacted_too() -> None:
    stream, log = _capture("text")
    log.warning("refused token asrp_0123456789abcdef")
    line = stream.getvalue()
    assert " WARNING asr.test: refused token asrp_<secret>" in line


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        logs.setup("info", "xml")
