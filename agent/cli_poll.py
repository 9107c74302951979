"""`asr-agent poll` and `check-config`: a printer read once, a config file checked.

Is: the two commands that need no state directory and no collector: `poll` reads one printer
(its name looked up, each address tried in turn, retries shown at a terminal) and prints its
supplies as a table or JSON, with an exit status per outcome; `check-config` loads a config.
Is not: the parser's other commands (agent.cli) or the scheduled reads (agent.work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

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
from agent.profile import load_profile
from agent.render import render_table
from agent.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS, Credentials, Session, Target

# Exit status of `poll` by what happened to the printer.
EXIT = {ANSWERING: 0, UNREACHABLE: 3, REFUSED: 4, NOT_A_PRINTER: 5}
EXIT_FAULTY = 6


def split_host_port(text: str, default_port: int = 161) -> tuple[str, int]:
    """'HOST', 'HOST:PORT', '[v6]:PORT' or a bare IPv6 address; ValueError naming `text`."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest + ("" if bracket else "?")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()) or not 0 < int(port or default_port) < 65536:
        raise ValueError(f"{text!r} is not an address: give HOST, HOST:PORT or [IPv6]:PORT")
    return host, int(port) if port else default_port


class BadAddress(ValueError):
    """The printer's address is malformed or its name does not resolve."""


async def resolve(host: str, port: int) -> list[str]:
    """The IP addresses of `host` (itself if it is one), looked up now, in the resolver's order."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
        )
    except (socket.gaierror, UnicodeError) as err:
        reason = err.strerror if isinstance(err, socket.gaierror) else str(err)
        raise BadAddress(f"{host}: no such host ({reason})") from err
    return list(dict.fromkeys(str(info[4][0]) for info in found))


_T = TypeVar("_T")


class _RetriesShown:
    """A session that says on stderr each time a request goes unanswered and is sent again
    (the schedule of `Target.waits`, which both SNMP clients follow)."""

    def __init__(self, session: Session, target: Target) -> None:
        self._session = session
        self._target = target

    @property
    def bulk(self) -> bool:
        return self._session.bulk

    async def get(self, oids: Any) -> Any:
        return await self._shown(self._session.get(oids))

    async def get_next(self, oids: Any) -> Any:
        return await self._shown(self._session.get_next(oids))

    async def get_bulk(self, non_repeaters: Any, repeaters: Any, max_repetitions: int) -> Any:
        return await self._shown(self._session.get_bulk(non_repeaters, repeaters, max_repetitions))

    async def _shown(self, call: Awaitable[_T]) -> _T:
        telling = asyncio.create_task(self._tell())
        try:
            return await call
        finally:
            telling.cancel()

    async def _tell(self) -> None:
        waits = self._target.waits()
        where = f"{self._target.host}:{self._target.port}"
        for attempt, wait in enumerate(waits[:-1], start=2):
            await asyncio.sleep(wait)
            print(
                f"asr-agent: no answer from {where} within {wait:g} s;"
                f" asking again ({attempt} of {len(waits)})",
                file=sys.stderr,
                flush=True,
            )


class _ClientsShowingRetries(SnmpClients):
    async def session(self, spec: PrinterSpec) -> Session:
        return _RetriesShown(await super().session(spec), spec.target)


def _credentials(args: argparse.Namespace) -> Credentials:
    return Credentials(
        version=args.snmp_version or ("3" if args.user else "2c"),
        community=args.community,
        user=args.user,
        auth_protocol=args.auth_protocol,
        auth_key=args.auth_key,
        priv_protocol=args.priv_protocol,
        priv_key=args.priv_key,
        context=args.context,
    )


_SILENT = (
    "A wrong community (or SNMPv3 user) looks the same as no answer: the printer stays"
    " silent. Check the address, the port, the community and that SNMP is on"
)


async def poll(args: argparse.Namespace) -> int:
    """`poll`: read one printer once and print its supplies; the exit status says how it went."""
    profile = load_profile()
    host, port = split_host_port(args.target)  # a ValueError: main says it, status 2
    addresses = await resolve(host, port)
    credentials = _credentials(args)
    # A person at a terminal sees each retry; a script gets the one line of the outcome.
    clients_type = _ClientsShowingRetries if sys.stderr.isatty() else SnmpClients
    async with clients_type() as clients:
        poller = Poller(profile, clients, max_repetitions=args.max_repetitions)
        for n, address in enumerate(addresses, start=1):
            target = Target(address, port, args.timeout, args.retries, args.backoff)
            spec = PrinterSpec(args.target, target, credentials, args.backend)
            outcome = await poller.poll(spec)
            if outcome.state != UNREACHABLE or n == len(addresses):
                break
            print(
                f"asr-agent: {host} is also {addresses[n]}: trying that address",
                file=sys.stderr,
                flush=True,
            )
    if outcome.reading is None:
        hint = f". {_SILENT}" if outcome.state == UNREACHABLE else ""
        print(f"asr-agent: {args.target}: {outcome.state}: {outcome.error}{hint}", file=sys.stderr)
        return EXIT.get(outcome.state, EXIT_FAULTY)
    if args.json:
        print(json.dumps(outcome.reading.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_table(outcome.reading))
    return 0


def check_config(args: argparse.Namespace) -> int:
    """`check-config`: load an agent config file and say what it holds."""
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


def add_poll_arguments(poll: argparse.ArgumentParser) -> None:
    """`poll`'s arguments: the printer, SNMP credentials, timeouts and the output."""
    poll.add_argument(
        "target",
        metavar="HOST[:PORT]",
        help="the printer's address or host name; port 161 if not given",
    )
    poll.add_argument("--json", action="store_true", help="print the reading as JSON")
    poll.add_argument(
        "--snmp-version", choices=["1", "2c", "3"], help="default 2c, or 3 when --user is given"
    )
    poll.add_argument(
        "--community", default="public", help="SNMP v1/v2c community (default public)"
    )
    poll.add_argument("--user", help="SNMPv3 user")
    poll.add_argument("--auth-protocol", choices=AUTH_PROTOCOLS)
    poll.add_argument("--auth-key")
    poll.add_argument("--priv-protocol", choices=PRIV_PROTOCOLS)
    poll.add_argument("--priv-key")
    poll.add_argument("--context", default="", help="SNMPv3 context name")
    poll.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        help="seconds to wait for the first answer (default 1)",
    )
    poll.add_argument("--retries", type=int, default=3, help="tries after the first (default 3)")
    poll.add_argument(
        "--backoff", type=float, default=2.0, help="each wait this many times the last (default 2)"
    )
    poll.add_argument(
        "--max-repetitions", type=int, default=10, help="table rows asked at once (default 10)"
    )
    poll.add_argument(
        "--backend",
        choices=["native", "pysnmp"],
        default="native",
        help="SNMP library for v1/v2c (default native; v3 always uses pysnmp)",
    )
