"""`asr-agent`: the edge agent's commands (poll, check-config, enroll, run, status, rotate-key).

The CLI owns the resources (spool, SNMP sockets, the HTTPS session) and closes them; the
modules they are handed to only use them. What `--help` says is in `DESCRIPTION`, for users.
Is: the parser, logging set up, and each command handed to its module (agent.cli_poll,
agent.cli_enroll, agent.cli_run, agent.cli_status) with its errors turned into exit statuses.
Is not: any command's work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from agent import __version__
from agent.cli_enroll import enroll_agent, rotate, token_of
from agent.cli_poll import add_poll_arguments, check_config, poll
from agent.cli_run import run
from agent.cli_status import status
from agent.config import load_config
from agent.identity import IdentityError
from agent.profile import ProfileError
from agent.push import PushError, Refused
from agent.spool import SpoolError
from agent.state import StateDirBusy
from common import logs
from common.strictconfig import ConfigError

DESCRIPTION = """Read office printers' supplies over SNMP and report them to the collector.
Try a printer with `poll`, check a config file with `check-config`, join the collector once
with `enroll` (a one-time token from its operator), then `run` the agent: it reads the printers
on a schedule and sends what it read. `status` shows what the agent holds and when it last read
and sent; `rotate-key` replaces its key."""

# Exit status of enroll, run, status and rotate-key (poll's: agent.cli_poll.EXIT).
EXIT_CONFIG = 2  # config, state directory or usage
EXIT_REFUSED = 3  # the collector said no
EXIT_UNREACHABLE = 4  # no (trusted) answer from the collector


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-agent", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"asr-agent {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="how much to log (default: error for poll and check-config, else the config's)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    poll_command = sub.add_parser(
        "poll",
        help="read one printer once and show its supplies",
        description="Read one printer once and show its supplies.",
    )
    add_poll_arguments(poll_command)

    check = sub.add_parser(
        "check-config",
        help="check an agent config file: its keys, printers and secret files",
    )
    check.add_argument("file")

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=help)
        command.add_argument("--config", required=True, help="the agent's TOML file")
        return command

    enroll = with_config("enroll", "enroll once with the collector, with a one-time token")
    token = enroll.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="the token of `asr-collector enroll-token`")
    token.add_argument("--token-file", help="a file holding the token (kept off `ps`)")
    with_config("run", "read the printers on a schedule and send what was read")
    status_command = with_config(
        "status", "show what the agent holds, and when it last read and sent"
    )
    status_command.add_argument("--json", action="store_true", help="print JSON")
    with_config("rotate-key", "replace the agent's key with a new one")
    return parser


def _setup_logging(level: str, fmt: str = "text") -> None:
    logs.setup(level, fmt)
    if level != "debug":  # "Running job ..." for each poll is not news
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _with_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    _setup_logging(args.log_level or config.agent.log_level, config.agent.log_format)
    try:
        if args.command == "enroll":
            return asyncio.run(enroll_agent(config, token_of(args)))
        if args.command == "run":
            return asyncio.run(run(config))
        if args.command == "rotate-key":
            return asyncio.run(rotate(config))
        return status(config, args.json)
    except Refused as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except PushError as err:
        print(f"asr-agent: cannot reach the collector: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (IdentityError, SpoolError, StateDirBusy, OSError) as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    """Run one `asr-agent` command; the exit status says how it went."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command not in ("poll", "check-config"):
            return _with_config(args)
        _setup_logging(args.log_level or "error")
        if args.command == "poll":
            return asyncio.run(poll(args))
        return check_config(args)
    except (ConfigError, ProfileError, ValueError) as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
