"""`asr-agent`: read printers over SNMP (`poll`) and check the agent's configuration."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from agent import __version__
from agent.config import load_config
from agent.poller import (
    ANSWERING,
    NOT_A_PRINTER,
    REFUSED,
    UNREACHABLE,
    Poller,
    PrinterSpec,
    SnmpClients,
)
from agent.profile import ProfileError, load_profile
from agent.render import render_table
from agent.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS, Credentials, Target
from common.strictconfig import ConfigError

# Exit status of `poll` by what happened to the printer.
EXIT = {ANSWERING: 0, UNREACHABLE: 3, REFUSED: 4, NOT_A_PRINTER: 5}
EXIT_FAULTY = 6


def split_host_port(text: str, default_port: int = 161) -> tuple[str, int]:
    """'HOST', 'HOST:PORT', '[v6]:PORT' or a bare IPv6 address."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def _poll_spec(args: argparse.Namespace) -> PrinterSpec:
    host, port = split_host_port(args.target)
    version = args.snmp_version or ("3" if args.user else "2c")
    credentials = Credentials(
        version=version,
        community=args.community,
        user=args.user,
        auth_protocol=args.auth_protocol,
        auth_key=args.auth_key,
        priv_protocol=args.priv_protocol,
        priv_key=args.priv_key,
        context=args.context,
    )
    target = Target(host, port, args.timeout, args.retries, args.backoff)
    return PrinterSpec(
        name=args.target, target=target, credentials=credentials, backend=args.backend
    )


async def _poll(args: argparse.Namespace) -> int:
    profile = load_profile()
    spec = _poll_spec(args)
    async with SnmpClients() as clients:
        poller = Poller(profile, clients, max_repetitions=args.max_repetitions)
        outcome = await poller.poll(spec)
    if outcome.reading is None:
        print(f"asr-agent: {spec.name}: {outcome.state}: {outcome.error}", file=sys.stderr)
        return EXIT.get(outcome.state, EXIT_FAULTY)
    if args.json:
        print(json.dumps(outcome.reading.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_table(outcome.reading))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.file))
    specs = config.printer_specs()
    print(
        f"{args.file}: OK: {len(specs)} printer(s), credentials "
        f"{', '.join(sorted(config.credentials))}"
    )
    for spec in specs:
        c = spec.credentials
        print(
            f"  {spec.name}: {spec.target.host}:{spec.target.port} SNMP v{c.version} "
            f"{c.security_level}{' user ' + c.user if c.user else ''}"
        )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"asr-agent {__version__}")
    parser.add_argument(
        "--log-level", default="error", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    poll = sub.add_parser("poll", help="read one printer once")
    poll.add_argument("target", metavar="HOST[:PORT]")
    poll.add_argument("--json", action="store_true", help="print the poll JSON contract")
    poll.add_argument(
        "--snmp-version", choices=["1", "2c", "3"], help="default 2c, or 3 when --user is given"
    )
    poll.add_argument("--community", default="public")
    poll.add_argument("--user", help="SNMPv3 user")
    poll.add_argument("--auth-protocol", choices=AUTH_PROTOCOLS)
    poll.add_argument("--auth-key")
    poll.add_argument("--priv-protocol", choices=PRIV_PROTOCOLS)
    poll.add_argument("--priv-key")
    poll.add_argument("--context", default="", help="SNMPv3 context name")
    poll.add_argument("--timeout", type=float, default=1.0, help="seconds, first try")
    poll.add_argument("--retries", type=int, default=3)
    poll.add_argument("--backoff", type=float, default=2.0)
    poll.add_argument("--max-repetitions", type=int, default=10)
    poll.add_argument(
        "--backend",
        choices=["native", "pysnmp"],
        default="native",
        help="SNMP client for v1/v2c (v3 always uses pysnmp)",
    )

    check = sub.add_parser("check-config", help="validate an agent config file")
    check.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `asr-agent` command; the exit status says how it went."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "poll":
            return asyncio.run(_poll(args))
        return _check_config(args)
    except (ConfigError, ProfileError, ValueError) as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
