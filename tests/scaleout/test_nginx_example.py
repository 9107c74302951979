"""deploy/nginx/asr-collector.conf agrees with the collector and the agent it stands between
(the deployments in this folder run the file itself, so its syntax is checked there)."""

from __future__ import annotations

import re

from agent.config import CollectorSection as AgentCollector
from collector.config import IngestSection
from tests.scaleout.kit import EXAMPLE

UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}


def _directive(name: str) -> str:
    (value,) = re.findall(rf"^\s*{name}\s+([^;]+);", EXAMPLE.read_text(), re.MULTILINE)
    return value.strip()


def _bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * UNITS[unit]


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m)?", value).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "m" else 1)


def test_the_body_limit_is_the_collectors_and_the_agents() -> None:
    limit = _bytes(_directive("client_max_body_size"))
    assert limit == IngestSection().max_body_bytes == AgentCollector(url="https://x").max_body_bytes


def test_nginx_waits_for_a_collector_as_long_as_the_agent_waits_for_nginx() -> None:
    agent = AgentCollector(url="https://x").request_timeout_seconds
    assert _seconds(_directive("proxy_read_timeout")) >= agent
    assert _seconds(_directive("proxy_send_timeout")) >= agent


def test_a_post_that_reached_a_collector_is_never_passed_to_another() -> None:
    assert "non_idempotent" not in _directive("proxy_next_upstream")


def test_metrics_are_not_served_through_the_proxy() -> None:
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", EXAMPLE.read_text())
