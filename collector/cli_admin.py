"""`asr-collector` admin commands: enrolment tokens, agent keys, customers and portal users.

Is: a one-time enrolment token for a customer's site (printed once), an agent key revoked,
customers, sites and contacts loaded from a file, a portal user added (its password from a
file or stdin, never an argument) and an API token made for a user (printed once).
Is not: the rules behind them (collector.service, collector.customers, collector.store.people).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import timedelta
from pathlib import Path

from collector.cli_common import with_collector, with_database
from collector.config import CollectorConfig
from collector.customers import apply as apply_customers
from collector.customers import load_customers, require_site
from collector.errors import InvalidRequest
from collector.records import EnrollToken
from collector.service import Collector, utcnow
from collector.store import people
from collector.store.database import Database
from collector.store.migrate import migrate
from common.strictconfig import ConfigError


def cmd_enroll_token(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Make a one-time enrollment token for a customer's site and print it, once."""
    ttl = timedelta(hours=args.ttl_hours) if args.ttl_hours else None

    async def make(collector: Collector) -> tuple[str, EnrollToken]:
        await require_site(collector.db, args.customer, args.site)  # loaded by load-customers
        return await collector.create_token(args.customer, args.site, ttl)

    token, record = asyncio.run(with_collector(config, make))
    print(token)
    print(
        f"enrollment token for {record.customer} / {record.site}, works once, expires"
        f" {record.expires_at.isoformat()}; it is not stored and cannot be shown again",
        file=sys.stderr,
    )
    return 0


def cmd_revoke_key(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Revoke an agent key: every request it signs is refused from now on."""
    key = asyncio.run(with_collector(config, lambda c: c.revoke_key(args.key_id)))
    print(f"key {key.key_id} of agent {key.agent_id}: {key.status}")
    return 0


def cmd_load_customers(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Create or update customers, sites and contacts from a customers file (R4, R18)."""
    customers = load_customers(args.file)

    async def run(db: Database) -> int:
        await migrate(db)
        return await apply_customers(db, customers, utcnow())

    count = asyncio.run(with_database(config, run))
    print(f"{count} customers loaded from {args.file}")
    return 0


def _password(args: argparse.Namespace) -> str:
    """The new user's password: the file's first line, or stdin's (never an argument)."""
    if args.password_file is not None:
        try:
            path: Path = args.password_file
            return path.read_text().splitlines()[0]
        except (OSError, IndexError) as err:
            raise ConfigError(f"--password-file {args.password_file}: no password: {err}") from err
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


def cmd_add_user(config: CollectorConfig, args: argparse.Namespace) -> int:
    """A portal user: the helpdesk, or a customer's user (R17)."""
    password = _password(args)

    async def run(db: Database) -> int:
        await migrate(db)
        return await people.add_user(
            db,
            args.username,
            password,
            args.role,
            args.customer,
            args.display_name,
            now=utcnow(),
        )

    user_id = asyncio.run(with_database(config, run))
    print(f"user {args.username} ({args.role}) added, id {user_id}")
    return 0


def cmd_create_api_token(config: CollectorConfig, args: argparse.Namespace) -> int:
    """An API token for a user's machine client; printed once, stored hashed."""

    async def run(db: Database) -> str:
        await migrate(db)
        now = utcnow()
        found = [u for u in await people.list_users(db) if u.username == args.username]
        if not found or found[0].disabled_at is not None:
            raise InvalidRequest(f"no active user {args.username!r}", "username")
        return await people.create_api_token(db, found[0].id, args.name, now)

    print(asyncio.run(with_database(config, run)))
    return 0
