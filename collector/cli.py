"""`asr-collector`: serve the ingest API, migrate the database, manage enrollment and keys.

Is: the parser and `main`, which loads the config, sets up logging and hands each command to
its module (collector.cli_serve, cli_admin, cli_jobs, cli_offline), its errors turned into
exit statuses.
Is not: any command's work.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from collector import __version__
from collector.cli_admin import (
    cmd_add_user,
    cmd_create_api_token,
    cmd_enroll_token,
    cmd_load_customers,
    cmd_revoke_key,
)
from collector.cli_common import EXIT_CONFIG, EXIT_REFUSED
from collector.cli_jobs import cmd_mail, cmd_plan, instant
from collector.cli_offline import add_offline_commands
from collector.cli_serve import cmd_check_config, cmd_migrate, cmd_serve
from collector.config import CollectorConfig, load_config
from collector.daily_run import CHUNK_DEVICES
from collector.errors import CollectorError
from common import logs
from common.strictconfig import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-collector",
        description="The ASR collector: receives signed printer readings from edge agents.",
    )
    parser.add_argument("--version", action="version", version=f"asr-collector {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--config", type=Path, required=True, help="the collector's TOML file")
        sub.set_defaults(run=run)
        return sub

    command("serve", cmd_serve, "migrate the database, then serve the ingest API")
    command("migrate", cmd_migrate, "bring the database to the newest schema")
    check = commands.add_parser(
        "check-config", help="check a config file and print it with secrets redacted"
    )
    check.add_argument("config", type=Path)
    check.set_defaults(run=cmd_check_config)
    token = command("enroll-token", cmd_enroll_token, "make a one-time enrollment token")
    token.add_argument("--customer", required=True, help="customer id, e.g. acme")
    token.add_argument("--site", required=True, help="the customer's site, e.g. milano")
    token.add_argument(
        "--ttl-hours", type=float, help="hours until it expires (default: enroll.token_ttl_hours)"
    )
    planner = command("plan", cmd_plan, "forecast every supply and place the orders due")
    how = planner.add_mutually_exclusive_group(required=True)
    how.add_argument("--now", action="store_true", help="run now (the schedule runs it daily)")
    how.add_argument(
        "--worker",
        action="store_true",
        help="plan chunks of the run being made (or of the run now, started), beside other"
        " workers on the same PostgreSQL; until every chunk is done",
    )
    planner.add_argument(
        "--chunk",
        type=int,
        default=CHUNK_DEVICES,
        metavar="DEVICES",
        help=f"devices per chunk of a run it starts (default {CHUNK_DEVICES})",
    )
    mailer = command("mail", cmd_mail, "send the notifications due from the outbox, once")
    mailer.add_argument(
        "--once", action="store_true", required=True, help="one pass (`serve` runs it all along)"
    )
    mailer.add_argument(
        "--now",
        type=instant,
        metavar="TIME",
        help="act as if it were TIME (ISO 8601 with a UTC offset, e.g. 2026-03-02T09:00:00+00:00)"
        " for what is due, the backoff and the emails' Date; default: the clock",
    )
    add_offline_commands(commands)
    load = command(
        "load-customers", cmd_load_customers, "create or update customers, sites and contacts"
    )
    load.add_argument("file", type=Path, help="customers TOML (examples/demo/customers.toml)")
    user = command("add-user", cmd_add_user, "add a portal user (password from a file or stdin)")
    user.add_argument("--username", required=True)
    user.add_argument("--role", choices=("helpdesk", "customer"), required=True)
    user.add_argument("--customer", help="the customer's id, for a customer user")
    user.add_argument("--display-name")
    user.add_argument("--password-file", type=Path, help="its first line is the password")
    api_token = command(
        "create-api-token", cmd_create_api_token, "make an API token for a user (shown once)"
    )
    api_token.add_argument("--username", required=True)
    api_token.add_argument("--name", required=True, help="what the token is for")
    revoke = command("revoke-key", cmd_revoke_key, "revoke an agent's key")
    revoke.add_argument("key_id", help="the key id (16 hex digits)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the collector command."""
    args = _parser().parse_args(argv)
    if args.config is None:  # commands of their own, without the collector's config
        simulate_: Callable[[argparse.Namespace], int] = args.run
        return simulate_(args)
    try:
        config = load_config(args.config)
        logs.setup(config.collector.log_level, config.collector.log_format)
        if config.collector.log_level != "debug":  # its per-run chatter is not news
            logging.getLogger("alembic").setLevel(logging.WARNING)
        run: Callable[[CollectorConfig, argparse.Namespace], int] = args.run
        return run(config, args)
    except ConfigError as err:
        print(f"asr-collector: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except CollectorError as err:
        print(f"asr-collector: {err}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
