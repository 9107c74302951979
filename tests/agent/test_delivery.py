"""Pushing the spool (agent/delivery.py): the answers sorted (pure), then against the real
collector app over HTTPS: oldest first in bounded batches, rejections, a 400 naming one reading,
drops counted up to the collector, a lost answer re-sent as the same batch (R2, R3), a clock a
day off learned from the refusal and corrected, a full disk."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.config import CollectorSection
from agent.delivery import (
    BACK_OFF,
    CONTINUE,
    RETRY_NOW,
    Deliverer,
    corrected,
    heartbeat,
    judge,
    measured_offset,
    shifted,
)
from agent.identity import KeyFiles
from agent.push import Answer, open_client
from agent.spool import NewReading, Spool, SpoolStats
from agent.state import AgentState, PrinterMemory
from collector.appkeys import METRICS
from tests.agent.conftest import Enrolled, InProcess
from tests.agent.kit import fill, free_port, tmpfs
from tests.collector.kit import reading
from wire.batch import Batch, BatchReading, Heartbeat, encode_batch
from wire.signing import sign

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


def entries(*seqs: int) -> list[BatchReading]:
    return [BatchReading(s, NOW, "p", "192.0.2.10:161", reading(f"S{s}")) for s in seqs]


# --- judge: pure ---------------------------------------------------------------------------


def test_200_acks_accepted_and_duplicates_and_rejects_the_rejected() -> None:
    answer = Answer(
        200,
        {
            "results": [
                {"seq": 1, "status": "accepted"},
                {"seq": 2, "status": "duplicate"},
                {"seq": 3, "status": "rejected", "error": "no serial number (R3)"},
            ]
        },
    )
    verdict = judge(entries(1, 2, 3), answer, NOW)
    assert (verdict.ack, dict(verdict.reject), verdict.keep, verdict.then) == (
        (1, 2),
        {3: "no serial number (R3)"},
        (),
        CONTINUE,
    )


def test_200_without_a_result_for_a_reading_keeps_it() -> None:
    verdict = judge(
        entries(1, 2), Answer(200, {"results": [{"seq": 1, "status": "accepted"}]}), NOW
    )
    assert (verdict.ack, verdict.keep, verdict.then) == ((1,), (2,), BACK_OFF)
    assert judge(entries(1), Answer(200, None), NOW).keep == (1,)


def test_400_naming_one_reading_rejects_it_alone_and_sends_the_rest_at_once() -> None:
    answer = Answer(
        400,
        {"error": "must be ip:port", "reason": "invalid-message", "field": "readings[1].address"},
    )
    verdict = judge(entries(7, 8, 9), answer, NOW)
    assert dict(verdict.reject) == {8: "readings[1].address: must be ip:port"}
    assert (verdict.keep, verdict.then, verdict.new_batch) == ((7, 9), RETRY_NOW, True)


@pytest.mark.parametrize(
    "body",
    [
        {"error": "not JSON", "reason": "malformed-json"},
        {"error": "schema 2", "reason": "schema-version", "field": "schema"},
        {"error": "bad", "reason": "invalid-message", "field": "heartbeat.spool_depth"},
        {"error": "bad", "reason": "invalid-message", "field": "readings[9].seq"},
    ],
)
def test_400_not_naming_a_reading_of_the_batch_keeps_everything(body: dict[str, str]) -> None:
    verdict = judge(entries(1, 2), Answer(400, body), NOW)
    assert (verdict.keep, dict(verdict.reject), verdict.then) == ((1, 2), {}, BACK_OFF)


def test_401_stale_timestamp_says_how_far_off_the_clock_is() -> None:
    answer = Answer(
        401,
        {"error": "timestamp is 400 s ahead", "reason": "stale-timestamp"},
        server_date=NOW - timedelta(seconds=400),
    )
    verdict = judge(entries(1), answer, NOW)
    assert (verdict.keep, verdict.then) == ((1,), BACK_OFF)
    assert (
        verdict.problem is not None and "+400 s" in verdict.problem and "clock" in verdict.problem
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (409, "replayed-nonce"),
        (503, "store-unavailable"),
        (500, None),
        (502, None),
        (401, "unknown-key"),
        (403, "revoked-key"),
        (415, "content-type"),
    ],
)
def test_transient_and_key_refusals_keep_the_batch_and_back_off(
    status: int, reason: str | None
) -> None:
    body = {"error": "no", "reason": reason} if reason else None
    verdict = judge(entries(1, 2), Answer(status, body, retry_after=30.0), NOW)
    assert (verdict.ack, verdict.keep, dict(verdict.reject), verdict.then) == (
        (),
        (1, 2),
        {},
        BACK_OFF,
    )
    assert verdict.retry_after == (30.0 if status not in (401, 403) else None)


def test_413_halves_the_batches_and_a_single_reading_too_large_is_rejected() -> None:
    too_large = Answer(413, {"error": "body too large", "reason": "body-too-large"})
    verdict = judge(entries(1, 2, 3, 4), too_large, NOW)
    assert (verdict.keep, verdict.shrink, verdict.then, verdict.new_batch) == (
        (1, 2, 3, 4),
        True,
        RETRY_NOW,
        True,
    )
    assert list(judge(entries(5), too_large, NOW).reject) == [5]


# --- against the collector -----------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _beat(stats: SpoolStats, now: datetime) -> Heartbeat:
    return heartbeat(AgentState(), ["p"], stats, now - timedelta(hours=1), now)


def new(n: int, serial: str | None = None, address: str = "192.0.2.10:161") -> NewReading:
    read_at = _now() - timedelta(minutes=30) + timedelta(seconds=n)
    return NewReading(read_at, f"p{n % 3}", address, reading(serial or f"CL45-{n % 3:04d}"))


@pytest.fixture
def spool(enrolled: Enrolled) -> Iterator[Spool]:
    with Spool.open(enrolled.state_dir / "spool.db", cap_rows=1000) as opened:
        yield opened


def deliverer(enrolled: Enrolled, spool: Spool, batch_size: int = 200) -> Deliverer:
    return Deliverer(
        spool,
        enrolled.client,
        enrolled.identity.agent_id,
        KeyFiles(enrolled.state_dir),
        batch_size,
        1_048_576,
        _now,
    )


async def test_r2_push_sends_oldest_first_in_bounded_batches(
    served: InProcess, enrolled: Enrolled, spool: Spool
) -> None:
    spool.append([new(n) for n in range(1, 26)])
    report = await deliverer(enrolled, spool, batch_size=10).push(_beat)
    assert (report.ok, report.batches, report.acked, report.rejected) == (True, 3, 25, 0)
    assert [r[0] for r in served.query("SELECT seq FROM readings ORDER BY id")] == list(
        range(1, 26)
    )
    counts = served.query("SELECT reading_count FROM batches ORDER BY id")
    assert [c[0] for c in counts] == [10, 10, 5]
    depths = served.query("SELECT spool_depth FROM heartbeats ORDER BY batch_pk")
    assert [d[0] for d in depths] == [25, 15, 5]  # the heartbeat says what is left to send
    assert spool.stats().depth == 0


async def test_r2_an_empty_spool_still_sends_a_heartbeat(
    served: InProcess, enrolled: Enrolled, spool: Spool
) -> None:
    report = await deliverer(enrolled, spool).push(_beat)
    assert (report.ok, report.batches) == (True, 1)
    assert served.query("SELECT reading_count FROM batches") == [(0,)]
    assert len(served.query("SELECT * FROM heartbeats")) == 1


async def test_r3_a_rejected_reading_is_deleted_counted_and_logged(
    served: InProcess, enrolled: Enrolled, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool.append([new(1), new(2, serial=" "), new(3)])
    report = await deliverer(enrolled, spool).push(_beat)
    assert (report.ok, report.acked, report.rejected) == (True, 2, 1)
    assert [r[0] for r in served.query("SELECT seq FROM readings ORDER BY seq")] == [1, 3]
    stats = spool.stats()
    assert (stats.depth, stats.rejected_total) == (0, 1)
    assert "reading seq 2 rejected by the collector" in caplog.text


async def test_a_400_naming_one_reading_drops_it_and_delivers_the_rest(
    served: InProcess, enrolled: Enrolled, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool.append([new(1), new(2, address="nowhere"), new(3)])
    report = await deliverer(enrolled, spool).push(_beat)
    assert (report.ok, report.acked, report.rejected) == (True, 2, 1)
    assert [r[0] for r in served.query("SELECT seq FROM readings ORDER BY seq")] == [1, 3]
    assert spool.stats().rejected_total == 1
    assert "readings[1].address" in caplog.text


async def test_r2_drops_of_a_full_spool_are_counted_up_to_the_collector(
    served: InProcess, enrolled: Enrolled
) -> None:
    with Spool.open(enrolled.state_dir / "spool.db", cap_rows=10) as small:
        assert small.append([new(n) for n in range(1, 16)]).dropped == 5
        report = await deliverer(enrolled, small).push(_beat)
    assert report.ok
    assert [r[0] for r in served.query("SELECT seq FROM readings ORDER BY seq")] == list(
        range(6, 16)
    )
    assert served.query("SELECT dropped_total FROM heartbeats") == [(5,)]


async def test_r2_a_lost_answer_is_sent_again_as_the_same_batch(
    served: InProcess, enrolled: Enrolled, spool: Spool
) -> None:
    spool.append([new(n) for n in range(1, 6)])
    push = deliverer(enrolled, spool, batch_size=3)
    await push.push(_beat)
    # As if the agent died after the collector stored a batch and before the answer came:
    spool.append([new(n) for n in range(6, 9)])
    lost = spool.take(3, 10**6)
    assert lost is not None
    body_sent = await _send(enrolled, lost.batch_id, lost.readings, spool)
    assert body_sent == ["accepted"] * 3
    spool.close()
    with Spool.open(enrolled.state_dir / "spool.db", cap_rows=1000) as reopened:
        assert reopened.reset_on_open == 3
        report = await deliverer(enrolled, reopened).push(_beat)
        assert report.ok and reopened.stats().depth == 0
    seqs = [r[0] for r in served.query("SELECT seq FROM readings ORDER BY seq")]
    assert seqs == list(range(1, 9))  # each once
    assert len(served.query("SELECT * FROM batches WHERE batch_id = ?", lost.batch_id)) == 1


async def _send(
    enrolled: Enrolled, batch_id: str, readings: tuple[BatchReading, ...], spool: Spool
) -> list[str]:
    now = _now()
    batch = Batch(enrolled.identity.agent_id, batch_id, now, readings, _beat(spool.stats(), now))
    body = encode_batch(batch)
    key = KeyFiles(enrolled.state_dir).current()
    answer = await enrolled.client.send_readings(body, sign(key, body, now))
    assert answer.body is not None
    return [r["status"] for r in answer.body["results"]]


async def test_r2_collector_unreachable_keeps_every_reading_ready(
    enrolled: Enrolled, spool: Spool
) -> None:
    spool.append([new(n) for n in range(1, 6)])
    closed = CollectorSection(
        url=f"https://127.0.0.1:{free_port()}", ca_file=enrolled.settings.ca_file
    )
    async with open_client(closed) as client:
        push = Deliverer(
            spool, client, enrolled.identity.agent_id, KeyFiles(enrolled.state_dir), 2, 10**6, _now
        )
        report = await push.push(_beat)
    assert not report.ok and report.error is not None and "cannot connect" in report.error
    stats = spool.stats()
    assert (stats.ready, stats.in_flight, stats.rejected_total) == (5, 0, 0)


async def test_a_wrong_clock_is_reported_and_nothing_is_lost(
    served: InProcess, enrolled: Enrolled, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    spool.append([new(1)])
    served.clock.advance(hours=1)  # the collector's clock is an hour ahead of ours
    report = await deliverer(enrolled, spool).push(_beat)
    assert not report.ok and report.error is not None and "clock" in report.error
    assert spool.stats().ready == 1
    served.clock.advance(hours=-1)
    assert (await deliverer(enrolled, spool).push(_beat)).ok
    assert spool.stats().depth == 0


def test_heartbeat_counts_printers_by_their_last_state() -> None:
    state = AgentState(
        printers={
            "a": PrinterMemory("answering", NOW),
            "b": PrinterMemory("asleep", NOW),
            "c": PrinterMemory("not-a-printer", None),
            "gone": PrinterMemory("unreachable", None),  # no longer configured
        },
        last_poll_at=NOW,
    )
    stats = SpoolStats(3, 1, 9, 2, 0, None, None)
    beat = heartbeat(state, ["a", "b", "c", "new"], stats, NOW - timedelta(hours=2), NOW)
    assert beat.printers.to_dict() == {
        "answering": 1,
        "asleep": 1,
        "unreachable": 0,
        "refused": 0,
        "not-a-printer": 1,
        "faulty": 0,
    }
    assert (beat.spool_depth, beat.dropped_total, beat.uptime_seconds, beat.last_poll_at) == (
        4,
        2,
        7200.0,
        NOW,
    )


# --- a clock that is off -------------------------------------------------------------------


def test_the_offset_is_measured_from_the_date_and_small_ones_are_noise() -> None:
    day = timedelta(days=1)
    assert measured_offset(NOW, NOW + day + timedelta(seconds=0.2)) == -day
    assert measured_offset(NOW, NOW - day + timedelta(seconds=0.2)) == day
    # The Date has whole seconds (floored): an agent right to the millisecond is not off.
    assert measured_offset(NOW, NOW + timedelta(seconds=0.9)) is None
    assert measured_offset(NOW, NOW - timedelta(seconds=1.5)) is None


def test_corrected_times_move_alike_and_keep_their_order() -> None:
    offset = timedelta(days=-1)
    readings = [
        BatchReading(s, NOW + timedelta(seconds=s), "p", "192.0.2.10:161", reading("S"))
        for s in (1, 2, 3)
    ]
    moved = shifted(readings, offset)
    assert [r.read_at for r in moved] == [r.read_at + offset for r in readings]
    assert [r.seq for r in moved] == [1, 2, 3]
    assert shifted(readings, None) == tuple(readings)
    beat = _beat(SpoolStats(0, 0, 0, 0, 0, None, None), NOW)
    assert corrected(beat, None) == beat
    fixed = corrected(replace(beat, last_poll_at=NOW), offset)
    assert (fixed.last_poll_at, fixed.clock_offset_seconds) == (NOW + offset, -86400.0)


class _Clock:
    """The agent's clock: the real one, `off` away."""

    def __init__(self, off: timedelta) -> None:
        self.off = off

    def __call__(self) -> datetime:
        return _now() + self.off


async def test_a_clock_a_day_off_is_learned_from_the_refusal_and_corrected(
    served: InProcess, enrolled: Enrolled, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = _Clock(timedelta(days=1))  # this box is a day ahead of the collector
    first = clock()
    spool.append(
        [
            NewReading(first + timedelta(seconds=n), f"p{n}", "192.0.2.10:161", reading(f"S{n}"))
            for n in range(3)
        ]
    )
    push = Deliverer(
        spool,
        enrolled.client,
        enrolled.identity.agent_id,
        KeyFiles(enrolled.state_dir),
        200,
        10**6,
        clock,
    )
    report = await push.push(_beat)
    assert (report.ok, report.batches, report.acked) == (True, 2, 3)  # refused, then corrected
    assert push.clock_offset is not None
    assert abs(push.clock_offset + timedelta(days=1)) <= timedelta(seconds=3)
    read_at = [
        datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
        for (at,) in served.query("SELECT read_at FROM readings ORDER BY seq")
    ]
    assert abs(read_at[0] - served.clock()) <= timedelta(seconds=5)  # on the collector's clock
    assert [b - a for a, b in itertools.pairwise(read_at)] == [timedelta(seconds=1)] * 2
    ((body,),) = served.query("SELECT body FROM batches")
    assert json.loads(body)["heartbeat"]["clock_offset_seconds"] == (
        push.clock_offset.total_seconds()
    )
    spool.append([NewReading(clock(), "p", "192.0.2.10:161", reading("S9"))])
    assert (await push.push(_beat)).batches == 1  # no refusal any more
    said = [r for r in caplog.records if "this box's clock is" in r.getMessage()]
    assert len(said) == 1 and "ahead of the collector's" in said[0].getMessage()
    exposed = served.app[METRICS].exposition()[0].decode()
    agent = enrolled.identity.agent_id
    assert f'asr_agent_clock_offset_seconds{{agent="{agent}"}} -8640' in exposed
    assert "its clock is" in caplog.text and agent in caplog.text  # the collector's warning

    clock.off = timedelta(0)  # NTP set it right: the correction is now wrong, and unlearned
    spool.append([NewReading(clock(), "p", "192.0.2.10:161", reading("S10"))])
    report = await push.push(_beat)
    assert (report.ok, report.batches, push.clock_offset) == (True, 2, None)
    assert "agrees with the collector's again" in caplog.text
    (body,) = served.query("SELECT body FROM batches ORDER BY id DESC")[0]
    assert "clock_offset_seconds" not in json.loads(body)["heartbeat"]
    assert "asr_agent_clock_offset_seconds{" not in served.app[METRICS].exposition()[0].decode()
    assert [s for (s,) in served.query("SELECT seq FROM readings ORDER BY seq")] == [1, 2, 3, 4, 5]


async def test_a_full_disk_still_sends_a_heartbeat_with_the_drops_then_delivers(
    served: InProcess, enrolled: Enrolled, tmp_path: Path
) -> None:
    with (
        tmpfs(tmp_path / "disk", "2m") as disk,
        Spool.open(disk / "spool.db", cap_rows=1000) as small,
    ):
        small.append([new(n) for n in range(1, 4)])
        filler, _ = fill(disk)
        assert small.append([new(4), new(5)]).refused == 2
        push = deliverer(enrolled, small)
        report = await push.push(_beat)
        assert not report.ok and report.error is not None and "no room" in report.error
        assert served.query("SELECT reading_count FROM batches") == [(0,)]  # a bare heartbeat
        assert served.query("SELECT dropped_total FROM heartbeats") == [(2,)]
        filler.unlink()
        assert small.append([new(6)]).seqs == (4,)
        assert (await push.push(_beat)).ok
        assert small.stats().depth == 0
    assert [s for (s,) in served.query("SELECT seq FROM readings ORDER BY seq")] == [1, 2, 3, 4]
    assert served.query("SELECT MAX(dropped_total) FROM heartbeats") == [(2,)]
