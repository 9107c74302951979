"""Deliver the spool to the collector: batches out, answers sorted into the spool's states.

Is: `judge`, pure: what one answer means for each reading of the batch (acked: accepted or
duplicate; rejected: the collector will never take it; kept: sent again later), and what to do
next (go on, retry at once, back off). `Deliverer.push` drains the spool oldest first, up to the
highest seq spooled when it began: each batch is built with wire.batch's encoder and signed
afresh (new timestamp and nonce) with the key read from disk, so a rotation takes effect at the
next batch. An empty spool still sends one batch: a bare heartbeat (R2, R16).
A clock that is off: when the collector refuses a batch as `stale-timestamp`, its answer's Date
says how far our clock is from its own; the deliverer adopts that offset (`clock_offset`, logged
once), signs the same batch again at once with corrected times, and from then on corrects every
time it sends by it: the signature's timestamp, `sent_at`, each reading's `read_at` and the
heartbeat's `last_poll_at`, all shifted alike so the readings keep their order. The heartbeat
carries the offset, so the collector can flag the agent. The collector still checks freshness
and nonces as always: only the times change, and only to what the collector's clock says.
A full disk: rows the spool cannot move are kept as they are and the round fails (a bare
heartbeat still goes out, with the drop count); rows a round left in flight are made ready again
at the start of the next (`Spool.recover`) and go out as the same batch.
Is not: the HTTP transport (agent.push) nor when to push (agent.service).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import __version__
from agent.push import Answer, PushError
from agent.spool import Spool, SpoolFull, SpoolStats
from agent.state import AgentState
from wire.batch import Batch, BatchReading, Heartbeat, encode_batch
from wire.signing import sign

log = logging.getLogger(__name__)

CONTINUE = "continue"  # the batch is settled: take the next one
RETRY_NOW = "retry-now"  # something was fixed here (a reading dropped, batches halved): again
BACK_OFF = "back-off"  # the collector cannot take it now: keep everything, try again later

# The envelope of a batch besides its readings: ids, times, the heartbeat.
ENVELOPE_BYTES = 2048
_READING_FIELD = re.compile(r"readings\[(\d+)\]")
_MAX_RETRY_NOW = 32
# An offset this small is the Date header's whole seconds and the round trip, not a wrong clock.
CLOCK_NOISE = timedelta(seconds=2)


@dataclass(frozen=True)
class Verdict:
    """What an answer means for the batch's readings, and what to do next."""

    ack: tuple[int, ...] = ()
    reject: Mapping[int, str] = field(default_factory=dict)
    keep: tuple[int, ...] = ()
    then: str = CONTINUE
    new_batch: bool = False  # kept readings go out in a new batch (this one changed)
    shrink: bool = False  # batches are too large for the collector: halve them
    problem: str | None = None
    retry_after: float | None = None


def judge(readings: Sequence[BatchReading], answer: Answer, now: datetime) -> Verdict:
    """Sort a batch's readings by the collector's answer (docs/protocol.md, Refusals)."""
    seqs = tuple(r.seq for r in readings)
    status, reason = answer.status, answer.reason
    if status == 200:
        return _results(seqs, answer)
    if status == 400:
        match = _READING_FIELD.match(answer.field or "")
        index = int(match.group(1)) if match else None
        if index is not None and index < len(readings):
            bad = readings[index].seq
            return Verdict(
                reject={bad: f"{answer.field}: {answer.error}"},
                keep=tuple(s for s in seqs if s != bad),
                then=RETRY_NOW,
                new_batch=True,
            )
        return Verdict(
            keep=seqs,
            then=BACK_OFF,
            problem=f"the collector refused the whole batch (400 {reason}): {answer.error};"
            " readings kept (an agent bug or a protocol version mismatch)",
        )
    if status == 409 and reason == "batch-conflict":  # its id was used for other readings
        return Verdict(keep=seqs, then=RETRY_NOW, new_batch=True)
    if status == 413:
        if len(seqs) == 1:
            return Verdict(reject={seqs[0]: "larger than the collector accepts (413)"})
        return Verdict(keep=seqs, then=RETRY_NOW, new_batch=True, shrink=True)
    if status == 401 and reason == "stale-timestamp":
        skew = f"{(now - answer.server_date).total_seconds():+.0f} s" if answer.server_date else "?"
        return Verdict(
            keep=seqs,
            then=BACK_OFF,
            problem=f"the collector refused our timestamp: this box's clock is {skew} off the"
            f" collector's ({answer.error}); set the clock right (NTP)",
        )
    if status in (401, 403):
        return Verdict(
            keep=seqs,
            then=BACK_OFF,
            problem=f"the collector refused our key ({status} {reason}): {answer.error}",
        )
    return Verdict(
        keep=seqs,
        then=BACK_OFF,
        problem=f"the collector did not take the batch ({status} {reason}): {answer.error}",
        retry_after=answer.retry_after,
    )


def _results(seqs: tuple[int, ...], answer: Answer) -> Verdict:
    results = answer.body.get("results") if answer.body else None
    fates: dict[int, tuple[str, str]] = {}
    for item in results if isinstance(results, list) else []:
        if isinstance(item, dict) and isinstance(item.get("seq"), int):
            fates[item["seq"]] = (str(item.get("status")), str(item.get("error") or "rejected"))
    ack, keep, reject = [], [], {}
    for seq in seqs:
        status, error = fates.get(seq, ("missing", ""))
        if status in ("accepted", "duplicate"):
            ack.append(seq)
        elif status == "rejected":
            reject[seq] = error
        else:
            keep.append(seq)
    if keep:
        return Verdict(
            tuple(ack),
            reject,
            tuple(keep),
            then=BACK_OFF,
            problem=f"the collector's answer has no result for {len(keep)} reading(s): kept",
        )
    return Verdict(tuple(ack), reject)


def heartbeat(
    state: AgentState,
    printers: Iterable[str],
    stats: SpoolStats,
    started_at: datetime,
    now: datetime,
) -> Heartbeat:
    """The agent's health as the collector sees it in every batch."""
    return Heartbeat(
        agent_version=__version__,
        uptime_seconds=max(0.0, (now - started_at).total_seconds()),
        printers=state.counts(printers),
        spool_depth=stats.depth,
        dropped_total=stats.dropped_total,
        last_poll_at=state.last_poll_at,
    )


def corrected(beat: Heartbeat, offset: timedelta | None) -> Heartbeat:
    """The heartbeat in the collector's time: its last poll shifted, the offset told."""
    if offset is None:
        return beat
    return replace(
        beat,
        last_poll_at=beat.last_poll_at + offset if beat.last_poll_at else None,
        clock_offset_seconds=offset.total_seconds(),
    )


def shifted(readings: Sequence[BatchReading], offset: timedelta | None) -> tuple[BatchReading, ...]:
    """The readings with `read_at` in the collector's time: all moved alike, order kept."""
    if offset is None:
        return tuple(readings)
    return tuple(replace(r, read_at=r.read_at + offset) for r in readings)


def measured_offset(server_date: datetime, sent_at: datetime) -> timedelta | None:
    """The collector's clock minus ours from an answer's Date (whole seconds, floored: +0.5 s
    centres it); None when the difference is within the noise."""
    offset = timedelta(seconds=round((server_date - sent_at).total_seconds() + 0.5))
    return offset if abs(offset) > CLOCK_NOISE else None


class Sender(Protocol):
    """Where batches go (agent.push.CollectorClient)."""

    async def send_readings(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST a signed batch; the answer, or PushError without one."""


class Keys(Protocol):
    """The agent's signing key (agent.identity.KeyFiles)."""

    def current(self) -> Ed25519PrivateKey:
        """The key to sign with now."""

    def finish_rotation(self) -> bool:
        """Adopt the successor of an unfinished rotation; False if there is none."""


@dataclass(frozen=True)
class PushReport:
    """What one push round did."""

    batches: int = 0
    acked: int = 0
    rejected: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Everything due was delivered (or rejected for good)."""
        return self.error is None


class Deliverer:
    """Drains the spool to the collector, one batch at a time."""

    def __init__(
        self,
        spool: Spool,
        sender: Sender,
        agent_id: str,
        keys: Keys,
        batch_size: int,
        max_body_bytes: int,
        clock: Callable[[], datetime],
        clock_offset: timedelta | None = None,
    ) -> None:
        self._spool = spool
        self._sender = sender
        self._agent_id = agent_id
        self._keys = keys
        self.batch_size = batch_size  # halved when the collector says a batch is too large
        self._budget = max(1, max_body_bytes - ENVELOPE_BYTES)
        self._clock = clock
        # The collector's clock minus ours, added to every time we send; None: ours is right.
        self.clock_offset = clock_offset

    async def push(self, make_heartbeat: Callable[[SpoolStats, datetime], Heartbeat]) -> PushReport:
        """Send what is spooled now, oldest first, until done or the collector cannot take it."""
        spool = self._spool
        try:
            recovered = spool.recover()
        except SpoolFull:
            recovered = 0  # they wait in flight until there is room; take() will say so
        if recovered:
            log.info("%d readings a push could not settle are ready again", recovered)
        up_to = spool.stats().last_seq
        batches = acked = rejected = retries = 0
        relearned = False
        while True:
            full: SpoolFull | None = None
            try:
                taken = spool.take(self.batch_size, self._budget, up_to_seq=up_to)
            except SpoolFull as err:
                taken, full = None, err
                if batches:  # the collector has heard from us in this round already
                    return PushReport(batches, acked, rejected, f"spool: {err}")
            if taken is not None:
                rejected += self._log_rejected(taken.broken, "in the spool")
                if not taken.readings:
                    continue
            if taken is None and batches:
                return PushReport(batches, acked, rejected)
            readings = taken.readings if taken else ()
            seqs = [r.seq for r in readings]
            local = self._clock()
            offset = self.clock_offset
            now = local + offset if offset is not None else local
            batch = Batch(
                agent_id=self._agent_id,
                batch_id=taken.batch_id if taken else str(uuid.uuid4()),
                sent_at=now,
                readings=shifted(readings, offset),
                heartbeat=corrected(make_heartbeat(spool.stats(), local), offset),
            )
            try:
                body = encode_batch(batch)
                answer = await self._sender.send_readings(
                    body, sign(self._keys.current(), body, now)
                )
            except PushError as err:
                self._settle(release=seqs)
                return PushReport(batches, acked, rejected, str(err))
            except BaseException:
                self._settle(release=seqs)  # cancelled or a bug: ready again, nothing lost
                raise
            batches += 1
            verdict = judge(readings, answer, now)
            if (
                answer.reason == "stale-timestamp"
                and answer.server_date is not None
                and not relearned
            ):
                relearned = True
                if self._learn(measured_offset(answer.server_date, local)):
                    verdict = replace(verdict, then=RETRY_NOW, problem=None)
            rejected += self._log_rejected(verdict.reject, "by the collector")
            try:
                acked += spool.ack(verdict.ack)
                spool.reject(verdict.reject)
                spool.release(verdict.keep, new_batch=verdict.new_batch)
            except SpoolFull as err:
                # Rows stay as they were (in flight): recover() makes them ready again, and the
                # collector answers duplicates for what it has.
                return PushReport(
                    batches, acked, rejected, f"the collector answered, but the spool: {err}"
                )
            if full is not None:  # the bare heartbeat told the collector; the spool waits
                return PushReport(batches, acked, rejected, f"spool: {full}")
            if verdict.shrink:
                self.batch_size = max(1, len(readings) // 2)
                log.warning("the collector finds batches too large: now %d", self.batch_size)
            if answer.reason == "retired-key" and self._keys.finish_rotation():
                log.warning("our key was retired by a rotation: finished it, signing anew")
                verdict = Verdict(then=RETRY_NOW)
            if verdict.then == BACK_OFF:
                return PushReport(batches, acked, rejected, verdict.problem or "refused")
            if verdict.then == RETRY_NOW:
                retries += 1
                if retries > _MAX_RETRY_NOW:
                    return PushReport(batches, acked, rejected, "no progress: giving up for now")
                continue
            log.info(
                "batch %s: %d readings, %d acked, %d rejected%s",
                batch.batch_id,
                len(readings),
                len(verdict.ack),
                len(verdict.reject),
                " (sent again)" if taken is not None and taken.resent else "",
            )
            if taken is None:  # the bare heartbeat went through
                return PushReport(batches, acked, rejected)

    def _settle(self, release: Sequence[int]) -> None:
        """Put unanswered rows back to ready; on a full disk they wait in flight (recover)."""
        try:
            self._spool.release(release)
        except SpoolFull as err:
            log.warning("cannot put %d readings back to ready: %s", len(release), err)

    def _learn(self, offset: timedelta | None) -> bool:
        """Adopt the offset a stale-timestamp refusal measured; False if it is the one in use."""
        old = self.clock_offset
        if offset == old or (
            offset is not None and old is not None and abs(offset - old) <= CLOCK_NOISE
        ):
            return False
        self.clock_offset = offset
        if offset is None:
            log.warning(
                "the collector refused our timestamps: this box's clock agrees with the"
                " collector's again, times are sent uncorrected"
            )
        else:
            seconds = -offset.total_seconds()
            log.warning(
                "this box's clock is %.0f s %s the collector's (its Date header): every time"
                " sent is corrected by %+.0f s from now on, readings keep their order;"
                " set this box's clock right (NTP)",
                abs(seconds),
                "ahead of" if seconds > 0 else "behind",
                offset.total_seconds(),
            )
        return True

    @staticmethod
    def _log_rejected(reasons: Mapping[int, str], by: str) -> int:
        for seq, why in reasons.items():
            log.warning("reading seq %d rejected %s, dropped: %s", seq, by, why)
        return len(reasons)
