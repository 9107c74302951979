"""The agent's new config sections: [collector], [schedule], [spool]; strict, defaults once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import CollectorSection, ScheduleSection, SpoolSection, parse_config
from common.strictconfig import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.example.toml"
URL = '[collector]\nurl = "https://collector.example.net:8443"\n'


def test_collector_is_optional_until_a_command_needs_it() -> None:
    config = parse_config("")
    assert config.collector is None
    with pytest.raises(ConfigError, match=r"\[collector\]"):
        config.require_collector()
    assert parse_config(URL).require_collector().url == "https://collector.example.net:8443"


def test_r2_defaults_poll_hourly_and_push_daily() -> None:
    config = parse_config(URL)
    assert (config.schedule.poll_interval_seconds, config.schedule.push_interval_seconds) == (
        3600,
        86_400,
    )
    assert config.spool.batch_size <= 500 and config.spool.cap_rows >= 2 * config.spool.batch_size


def test_the_example_shows_every_default(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    for secret in ("snmp-auth-key", "snmp-priv-key"):
        (tmp_path / secret).write_text("a-secret-of-some-length\n")
        text = text.replace(f"/run/credentials/asr-agent.service/{secret}", str(tmp_path / secret))
    config = parse_config(text, str(EXAMPLE))
    assert config.schedule == ScheduleSection()
    assert config.spool == SpoolSection()
    collector = config.require_collector()
    defaults = CollectorSection(url=collector.url, ca_file=collector.ca_file)
    assert collector == defaults


def test_pin_accepts_the_fingerprint_as_the_collector_prints_it() -> None:
    printed = ":".join(["AB"] * 32)
    config = parse_config(URL + f'pin_sha256 = "{printed}"\n')
    collector = config.require_collector()
    assert collector.pin_sha256 == "ab" * 32
    assert collector.pin() == bytes([0xAB]) * 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[collector]\nurl = "http://collector:8080"\n', "https://"),
        (URL + 'pin_sha256 = "ABCD"\n', "64 hex digits"),
        (URL + "timeout = 5\n", "collector.timeout: unknown key"),
        ("[schedule]\npoll_interval_seconds = 60\npoll_jitter_seconds = 60\n", "poll_jitter"),
        ("[schedule]\npush_jitter_seconds = 86400\n", "push_jitter"),
        ("[schedule]\npush_interval_seconds = 90000\n", "push_interval_seconds"),
        ("[schedule]\nbackoff_base_seconds = 7200\n", "backoff_base_seconds"),
        ("[schedule]\npoll_interval_seconds = 0\n", "poll_interval_seconds"),
        ("[spool]\nbatch_size = 501\n", "spool.batch_size"),
        ("[spool]\nbatch_size = 100\ncap_rows = 150\n", "twice batch_size"),
        ("[spool]\ncap = 10\n", "spool.cap: unknown key"),
    ],
)
def test_wrong_values_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "agent.toml")
