"""`asr-collector plan` and `mail`: the scheduled jobs, run once from the command line.

Is: the daily forecast and order plan run now (or, with --worker, this process's share of the
run being made), with its counts and timings as JSON, and one
pass over the notifications outbox (at the clock's time or a given one).
Is not: the jobs themselves (collector.daily_run, collector.notify.outbox) or their schedule
(`serve` runs them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone

from collector.cli_common import with_database
from collector.config import CollectorConfig
from collector.daily_run import CHUNK_DEVICES, RunResult, run_plan, work_plan
from collector.notify.outbox import Mailer, Pass
from collector.service import utcnow
from collector.store.database import Database
from collector.store.migrate import migrate


def cmd_plan(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Run the daily forecast and order plan for the whole fleet now (R6 to R16); with
    --worker, plan chunks of the run being made beside other workers."""
    now = utcnow()
    worker = getattr(args, "worker", False)
    chunk = getattr(args, "chunk", CHUNK_DEVICES)

    async def run(db: Database) -> RunResult:
        await migrate(db)
        if worker:
            return await work_plan(db, config.rules(), now, chunk=chunk)
        return await run_plan(db, config.rules(), now, chunk=chunk)

    result = asyncio.run(with_database(config, run))
    if not result.ran:
        print(
            "plan: the run now is made already; nothing done"
            if worker
            else "plan: another collector process is running it; nothing done"
        )
        return 0
    print(
        json.dumps(
            {
                "run": result.run_id,
                "as_of": now.isoformat(),
                "chunks_planned_here": result.chunks,
                **result.counts,
                "seconds": {
                    "read": round(result.read_seconds, 3),
                    "decide": round(result.decide_seconds, 3),
                    "write": round(result.write_seconds, 3),
                },
            }
        )
    )
    if not result.counts.get("supplies"):
        print(NOTHING_TO_PLAN, file=sys.stderr)
    return 0


NOTHING_TO_PLAN = (
    "plan: no supplies to plan for. A printer counts once an agent has sent its readings and"
    " the device is registered: on the portal's Register page, or"
    " POST /api/v1/portal/devices/SERIAL/registration (docs/portal.md, docs/operations.md)"
)


def cmd_mail(config: CollectorConfig, args: argparse.Namespace) -> int:
    """One pass over the notifications outbox now (or at --now): send what is due (R4, R15, R16)."""
    now = args.now or utcnow()

    async def run(db: Database) -> Pass:
        await migrate(db)
        return await Mailer(db, config.mail).send_due(now)

    done = asyncio.run(with_database(config, run))
    print(
        json.dumps(
            {
                "sent": len(done.sent),
                "retry": len(done.retry),
                "failed": len(done.failed),
                "unconfirmed": len(done.unconfirmed),
                "error": done.error,
            }
        )
    )
    return 0 if done.error is None and not done.failed else 1


def instant(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset, for an argument."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from err
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add +00:00 or Z)")
    return instant.astimezone(timezone.utc)
