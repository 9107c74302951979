"""The login throttle's counts: one row per key (an account, a client address) (R4).

Is: each key's failed logins and, past its limit, until when it is refused; each attempt is
counted before its password is checked, in one transaction that locks the rows, so guesses sent
in parallel cannot get past the limit, and a right password gives the count back.
Is not: which keys a login is charged to, or the HTTP answer (collector.portal.auth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from collector.store.database import Database
from collector.store.schema import login_throttle

# A key's failed logins are forgotten this long after its last one.
FORGET_FAILURES = timedelta(days=1)


@dataclass(frozen=True)
class LoginLimit:
    """How many failed logins a key may have, then how long it is refused: `base` at the
    limit, doubled with each further failure, at most `cap`."""

    failures: int
    base: timedelta
    cap: timedelta

    def lock(self, failures: int) -> timedelta | None:
        """How long a key with this many failed logins is refused after the last (None: not)."""
        if failures < self.failures:
            return None
        span: timedelta = self.base * 2 ** min(failures - self.failures, 30)
        return min(self.cap, span)


@dataclass(frozen=True)
class Charge:
    """One login attempt counted against its keys, or refused because one of them is locked."""

    refused_until: datetime | None = None  # a key is locked until then: refused, not counted
    refused_key: str | None = None
    locks: dict[str, datetime | None] = field(default_factory=dict)  # set by this attempt


async def charge_login(
    db: Database, keys: Sequence[tuple[str, LoginLimit]], now: datetime
) -> Charge:
    """Count a login attempt against each key before its password is checked (so parallel
    guesses cannot pass a limit), locking a key that reaches its limit; or, when a key is
    locked now, count nothing and say which and until when."""
    ordered = sorted(keys, key=lambda pair: pair[0])  # one lock order: no deadlock
    names = [key for key, _ in ordered]
    async with db.transaction() as conn:
        await conn.execute(
            delete(login_throttle).where(login_throttle.c.updated_at < now - FORGET_FAILURES)
        )
        await conn.execute(
            db.insert(login_throttle)
            .values([{"key": k, "failures": 0, "updated_at": now} for k in names])
            .on_conflict_do_nothing(index_elements=["key"])
        )
        rows = {
            row.key: row
            for row in await conn.execute(
                select(login_throttle)
                .where(login_throttle.c.key.in_(names))
                .order_by(login_throttle.c.key)
                .with_for_update()
            )
        }
        locked = [
            (row.locked_until, key)
            for key, row in rows.items()
            if row.locked_until is not None and row.locked_until > now
        ]
        if locked:
            until, key = max(locked)
            return Charge(refused_until=until, refused_key=key)
        locks: dict[str, datetime | None] = {}
        for key, limit in ordered:
            failures = rows[key].failures + 1
            span = limit.lock(failures)
            locks[key] = now + span if span is not None else None
            await conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key == key)
                .values(failures=failures, locked_until=locks[key], updated_at=now)
            )
    return Charge(locks=locks)


async def login_succeeded(db: Database, account_key: str, charge: Charge) -> None:
    """A right password: the account's count starts again; the other keys (the client's
    address) get this attempt's count back, and a lock it set is lifted."""
    async with db.transaction() as conn:
        await conn.execute(delete(login_throttle).where(login_throttle.c.key == account_key))
        for key, until in charge.locks.items():
            if key == account_key:
                continue
            await conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key == key, login_throttle.c.failures > 0)
                .values(failures=login_throttle.c.failures - 1)
            )
            if until is not None:  # unless a later failure has locked it since
                await conn.execute(
                    update(login_throttle)
                    .where(login_throttle.c.key == key, login_throttle.c.locked_until == until)
                    .values(locked_until=None)
                )
