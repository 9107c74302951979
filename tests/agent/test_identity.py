"""The agent's identity (agent/identity.py, agent/enrollment.py): a key pair made on first
start (0600, never sent), enrollment with a one-time token, key rotation endorsed by the old
key, and rotations whose answer was lost, against the collector's real app over HTTPS."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.delivery import Deliverer, heartbeat
from agent.enrollment import enroll, rotate_key
from agent.identity import (
    KEY_FILE,
    NEXT_KEY_FILE,
    IdentityError,
    KeyFiles,
    load_identity,
    load_key,
    load_or_make_key,
    load_or_make_next_key,
)
from agent.push import Refused
from agent.spool import NewReading, Spool, SpoolStats
from agent.state import AgentState, make_state_dir
from tests.agent.conftest import Enrolled, InProcess
from tests.collector.kit import reading
from wire.batch import Heartbeat
from wire.enroll import KeyRotation, encode_message
from wire.signing import encode_public_key, endorse, key_id, sign


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_pair_is_made_once_private_to_the_agent(tmp_path: Path) -> None:
    state_dir = make_state_dir(tmp_path / "state")
    assert _mode(state_dir) == 0o700
    key, made = load_or_make_key(state_dir)
    again, made_again = load_or_make_key(state_dir)
    assert (made, made_again) == (True, False)
    assert key_id(key.public_key()) == key_id(again.public_key())
    assert _mode(state_dir / KEY_FILE) == 0o600


def test_a_key_file_readable_by_others_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_or_make_key(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    load_key(tmp_path)
    assert _mode(tmp_path / KEY_FILE) == 0o600
    assert "readable by others" in caplog.text


async def test_enrollment_records_our_key_and_binds_the_spool(
    served: InProcess, enrolled: Enrolled
) -> None:
    identity = load_identity(enrolled.state_dir)
    assert identity == enrolled.identity
    assert (identity.customer, identity.site, identity.collector_url) == (
        "acme",
        "milano",
        served.url,
    )
    ours = key_id(load_key(enrolled.state_dir).public_key())
    assert served.query("SELECT key_id, agent_id, status FROM agent_keys") == [
        (ours, identity.agent_id, "active")
    ]
    with Spool.open_read_only(enrolled.state_dir / "spool.db") as spool:
        assert spool.stats().agent_id == identity.agent_id


async def test_an_enrolled_agent_does_not_enroll_again(
    served: InProcess, enrolled: Enrolled
) -> None:
    with pytest.raises(IdentityError, match="already enrolled"):
        await enroll(enrolled.state_dir, enrolled.client, await served.token(), 1000, _now())


async def test_a_refused_token_leaves_no_identity_and_keeps_the_key(
    tmp_path: Path, served: InProcess, enrolled: Enrolled
) -> None:
    state_dir = tmp_path / "second"
    state_dir.mkdir()
    with pytest.raises(Refused) as refused:
        await enroll(state_dir, enrolled.client, "asr1_wrong", 1000, _now())
    assert refused.value.answer.reason == "token-unknown"
    assert load_identity(state_dir) is None
    first_key = key_id(load_key(state_dir).public_key())
    identity = await enroll(state_dir, enrolled.client, await served.token(), 1000, _now())
    assert served.query("SELECT key_id FROM agent_keys WHERE agent_id = ?", identity.agent_id) == [
        (first_key,)
    ]


async def test_rotation_replaces_the_key_with_one_the_old_key_endorsed(
    served: InProcess, enrolled: Enrolled
) -> None:
    old = key_id(load_key(enrolled.state_dir).public_key())
    rotated = await rotate_key(enrolled.state_dir, enrolled.client, enrolled.identity, _now())
    new = key_id(load_key(enrolled.state_dir).public_key())
    assert (rotated.retired_key_id, rotated.key_id) == (old, new) and new != old
    assert not (enrolled.state_dir / NEXT_KEY_FILE).exists()
    assert _mode(enrolled.state_dir / KEY_FILE) == 0o600
    statuses = dict(served.query("SELECT key_id, status FROM agent_keys"))
    assert statuses == {old: "retired", new: "active"}
    assert await _push(enrolled)  # signed with the new key
    assert served.query("SELECT DISTINCT key_id FROM batches") == [(new,)]


async def _rotate_and_lose_the_answer(enrolled: Enrolled) -> str:
    """Rotate at the collector but do not adopt the new key, as if the answer was lost."""
    old = load_key(enrolled.state_dir)
    new = load_or_make_next_key(enrolled.state_dir)
    body = encode_message(
        KeyRotation(encode_public_key(new.public_key()), endorse(old, new.public_key()))
    )
    await enrolled.client.rotate_key(enrolled.identity.agent_id, body, sign(old, body, _now()))
    return key_id(new.public_key())


async def test_a_rotation_whose_answer_was_lost_is_finished_by_asking_again(
    enrolled: Enrolled,
) -> None:
    new = await _rotate_and_lose_the_answer(enrolled)
    rotated = await rotate_key(enrolled.state_dir, enrolled.client, enrolled.identity, _now())
    assert rotated.key_id == new == key_id(load_key(enrolled.state_dir).public_key())


async def test_a_lost_rotation_past_its_grace_adopts_the_new_key(
    served: InProcess, enrolled: Enrolled
) -> None:
    new = await _rotate_and_lose_the_answer(enrolled)
    served.clock.advance(hours=25)  # the old key is refused now
    later = served.clock()
    rotated = await rotate_key(enrolled.state_dir, enrolled.client, enrolled.identity, later)
    assert rotated.key_id == new == key_id(load_key(enrolled.state_dir).public_key())


async def test_a_push_refused_for_a_retired_key_finishes_the_lost_rotation(
    served: InProcess, enrolled: Enrolled
) -> None:
    new = await _rotate_and_lose_the_answer(enrolled)
    served.clock.advance(hours=25)
    assert await _push(enrolled, [1, 2], clock=served.clock)
    assert key_id(KeyFiles(enrolled.state_dir).current().public_key()) == new
    assert served.query("SELECT key_id, reading_count FROM batches") == [(new, 2)]


async def _push(
    enrolled: Enrolled, ns: list[int] | None = None, clock: Callable[[], datetime] = _now
) -> bool:
    def beat(stats: SpoolStats, now: datetime) -> Heartbeat:
        return heartbeat(AgentState(), [], stats, now, now)

    with Spool.open(enrolled.state_dir / "spool.db", cap_rows=100) as spool:
        read_at = clock() - timedelta(minutes=5)
        spool.append(
            [NewReading(read_at, "p", "192.0.2.1:161", reading(f"S{n}")) for n in ns or []]
        )
        keys = KeyFiles(enrolled.state_dir)
        agent_id = enrolled.identity.agent_id
        push = Deliverer(spool, enrolled.client, agent_id, keys, 10, 10**6, clock)
        return (await push.push(beat)).ok


async def test_re_enrolling_a_box_takes_its_spool_over(
    served: InProcess, enrolled: Enrolled
) -> None:
    state_dir = enrolled.state_dir
    with Spool.open(state_dir / "spool.db", cap_rows=100) as spool:
        read_at = _now() - timedelta(minutes=5)
        spool.append([NewReading(read_at, "p", "192.0.2.1:161", reading(f"S{n}")) for n in (1, 2)])
    (state_dir / "identity.json").rename(state_dir / "identity.old")
    (state_dir / KEY_FILE).rename(state_dir / "agent-key.old")
    again = await enroll(state_dir, enrolled.client, await served.token(), 100, _now())
    assert again.agent_id != enrolled.identity.agent_id
    with Spool.open(state_dir / "spool.db", cap_rows=100) as spool:
        assert spool.stats().agent_id == again.agent_id
    reenrolled = Enrolled(state_dir, again, enrolled.client, enrolled.settings)
    assert await _push(reenrolled)
    assert served.query("SELECT agent_id, seq FROM readings") == [
        (again.agent_id, 1),
        (again.agent_id, 2),
    ]
