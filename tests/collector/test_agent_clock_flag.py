"""The collector flags an agent whose clock is off (collector/metrics.py, collector/views.py):
the offset its heartbeat reports is a gauge per agent, news when it appears, moves or goes."""

from __future__ import annotations

from collector.metrics import Metrics


def _gauge(metrics: Metrics) -> str:
    return "\n".join(
        line
        for line in metrics.exposition()[0].decode().splitlines()
        if line.startswith("asr_agent_clock_offset_seconds{")
    )


def test_an_offset_is_news_when_it_appears_moves_or_goes() -> None:
    metrics = Metrics()
    assert not metrics.agent_clock("a", None)  # a right clock is no news, and no series
    assert _gauge(metrics) == ""
    assert metrics.agent_clock("a", -86400.0)
    assert not metrics.agent_clock("a", -86401.0)  # the same offset, measured again
    assert metrics.agent_clock("b", 3600.0)
    assert _gauge(metrics) == (
        'asr_agent_clock_offset_seconds{agent="a"} -86401.0\n'
        'asr_agent_clock_offset_seconds{agent="b"} 3600.0'
    )
    assert metrics.agent_clock("a", -3600.0)  # moved: the box's clock was changed
    assert metrics.agent_clock("a", None)  # set right: the series goes
    assert _gauge(metrics) == 'asr_agent_clock_offset_seconds{agent="b"} 3600.0'
    assert not metrics.agent_clock("a", None)
