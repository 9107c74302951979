"""`asr-agent`: the edge agent's commands (poll, check-config, enroll, run, status, rotate-key).

The CLI owns the resources (spool, SNMP sockets, the HTTPS session) and closes them; the
modules they are handed to only use them. What `--help` says is in `DESCRIPTION`, for users.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from agent import __version__
from agent.config import AgentConfig, load_config
from agent.delivery import Deliverer
from agent.enrollment import enroll, rotate_key
from agent.identity import (
    KEY_FILE,
    Identity,
    IdentityError,
    KeyFiles,
    load_identity,
    load_key,
    pending_key,
)
from agent.metrics import AgentMetrics
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
from agent.push import PushError, Refused, open_client
from agent.render import render_table
from agent.service import Service
from agent.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS, Credentials, Session, Target
from agent.spool import Spool, SpoolError
from agent.state import (
    SPOOL_FILE,
    STATE_FILE,
    StateDirBusy,
    load_state,
    lock_state_dir,
    make_state_dir,
)
from agent.work import AgentWork
from common import logs
from common.strictconfig import ConfigError
from wire.signing import key_id

log = logging.getLogger("agent")

DESCRIPTION = """Read office printers' supplies over SNMP and report them to the collector.
Try a printer with `poll`, check a config file with `check-config`, join the collector once
with `enroll` (a one-time token from its operator), then `run` the agent: it reads the printers
on a schedule and sends what it read. `status` shows what the agent holds and when it last read
and sent; `rotate-key` replaces its key."""

# Exit status of `poll` by what happened to the printer.
EXIT = {ANSWERING: 0, UNREACHABLE: 3, REFUSED: 4, NOT_A_PRINTER: 5}
EXIT_FAULTY = 6
# Exit status of enroll, run, status and rotate-key.
EXIT_CONFIG = 2  # config, state directory or usage
EXIT_REFUSED = 3  # the collector said no
EXIT_UNREACHABLE = 4  # no (trusted) answer from the collector


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


async def _poll(args: argparse.Namespace) -> int:
    profile = load_profile()
    try:
        host, port = split_host_port(args.target)
        addresses = await resolve(host, port)
    except ValueError as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return EXIT_CONFIG
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


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        return str(Path(args.token_file).read_text().strip())
    return str(args.token)


async def _enroll(config: AgentConfig, token: str) -> int:
    collector = config.require_collector()
    state_dir = make_state_dir(config.agent.state_dir)
    async with open_client(collector) as client:
        identity = await enroll(state_dir, client, token, config.spool.cap_rows, _utcnow())
    key = load_key(state_dir)
    print(
        f"enrolled as agent {identity.agent_id} for {identity.customer} / {identity.site}"
        f" at {identity.collector_url}; key {key_id(key.public_key())}"
        f" ({state_dir / KEY_FILE}, never leaves this box)"
    )
    return 0


async def _rotate(config: AgentConfig) -> int:
    collector = config.require_collector()
    state_dir = config.agent.state_dir
    identity = _enrolled(config)
    async with open_client(collector) as client:
        rotated = await rotate_key(state_dir, client, identity, _utcnow())
    print(
        f"agent {identity.agent_id}: key {rotated.key_id} replaces {rotated.retired_key_id}"
        " (the old one still verifies for the collector's grace period)"
    )
    return 0


def _enrolled(config: AgentConfig) -> Identity:
    identity = load_identity(config.agent.state_dir)
    if identity is None:
        raise IdentityError(
            f"not enrolled ({config.agent.state_dir} has no identity):"
            " run asr-agent enroll --config FILE --token TOKEN first"
        )
    return identity


def _open_spool(config: AgentConfig, agent_id: str) -> Spool:
    path = config.agent.state_dir / SPOOL_FILE
    if not path.exists():
        raise SpoolError(
            f"{path} is missing though the agent is enrolled: a new spool would number"
            " readings from 1 again and the collector would take them for duplicates."
            " Restore it, or move identity.json and agent-key.pem away and enroll anew"
        )
    spool = Spool.open(path, config.spool.cap_rows)
    bound = spool.stats().agent_id
    if bound != agent_id:
        spool.close()
        raise SpoolError(f"{path} belongs to agent {bound}, not to {agent_id}")
    return spool


async def _run(config: AgentConfig) -> int:
    collector = config.require_collector()
    state_dir = make_state_dir(config.agent.state_dir)
    lock = lock_state_dir(state_dir)
    try:
        identity = _enrolled(config)
        keys = KeyFiles(state_dir)
        log.info(
            "agent %s (%s / %s), key %s, pushing to %s",
            identity.agent_id,
            identity.customer,
            identity.site,
            key_id(keys.current().public_key()),
            collector.url,
        )
        spool = _open_spool(config, identity.agent_id)
        try:
            if spool.reset_on_open:
                log.info(
                    "%d readings were in flight when the agent stopped: ready again",
                    spool.reset_on_open,
                )
            await _serve(config, identity.agent_id, spool, keys)
        finally:
            spool.close()
    finally:
        lock.close()
    return 0


async def _serve(config: AgentConfig, agent_id: str, spool: Spool, keys: KeyFiles) -> None:
    collector = config.require_collector()
    state_path = config.agent.state_dir / STATE_FILE
    state = load_state(state_path)
    profile = load_profile()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SnmpClients() as clients, open_client(collector) as client:
        poller = Poller(
            profile,
            clients,
            max_in_flight=config.snmp.max_in_flight,
            max_repetitions=config.snmp.max_repetitions,
            unreachable_after=timedelta(hours=config.snmp.unreachable_after_hours),
        )
        deliverer = Deliverer(
            spool,
            client,
            agent_id,
            keys,
            config.spool.batch_size,
            collector.max_body_bytes,
            _utcnow,
        )
        specs = config.printer_specs()
        metrics = AgentMetrics()
        if config.agent.metrics_address is not None:
            host, _, port = config.agent.metrics_address.rpartition(":")
            metrics.serve(host.strip("[]"), int(port))
            log.info("metrics on http://%s/metrics", config.agent.metrics_address)
        work = AgentWork(specs, poller, spool, deliverer, state, state_path, _utcnow, metrics)
        service = Service(work, config.schedule)
        log.info("asr-agent %s: %d printer(s)", __version__, len(specs))
        await service.start(state.last_push_ok_at)
        await stop.wait()
        log.info("stopping")
        await service.stop(timeout=collector.request_timeout_seconds + 5)


def _status(config: AgentConfig, as_json: bool) -> int:
    state_dir = config.agent.state_dir
    identity = load_identity(state_dir)
    key = None
    if (state_dir / KEY_FILE).exists():
        key = key_id(load_key(state_dir).public_key())
    pending = pending_key(state_dir)
    spool_path = state_dir / SPOOL_FILE
    spool: dict[str, Any] | None = None
    if spool_path.exists():
        with Spool.open_read_only(spool_path) as opened:
            stats = opened.stats()
        spool = {
            "depth": stats.depth,
            "ready": stats.ready,
            "in_flight": stats.in_flight,
            "last_seq": stats.last_seq,
            "dropped_total": stats.dropped_total,
            "rejected_total": stats.rejected_total,
            "oldest_read_at": stats.oldest_read_at.isoformat() if stats.oldest_read_at else None,
        }
    state = load_state(state_dir / STATE_FILE)
    data: dict[str, Any] = {
        "agent": identity.to_dict() if identity else None,
        "key_id": key,
        "rotation_pending": key_id(pending.public_key()) if pending else None,
        "spool": spool,
        **state.to_dict(),
    }
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(_render_status(data, config))
    return 0


def _render_status(data: dict[str, Any], config: AgentConfig) -> str:
    agent, spool = data["agent"], data["spool"]
    lines = []
    if agent is None:
        lines.append(f"agent      not enrolled (state directory {config.agent.state_dir})")
    else:
        lines.append(
            f"agent      {agent['agent_id']} for {agent['customer']} / {agent['site']},"
            f" enrolled {agent['enrolled_at']}"
        )
        lines.append(f"collector  {agent['collector_url']}")
    if data["key_id"]:
        pending = f" (rotation to {data['rotation_pending']} unfinished)"
        lines.append(f"key        {data['key_id']}{pending if data['rotation_pending'] else ''}")
    if spool is None:
        lines.append("spool      none yet")
    else:
        lines.append(
            f"spool      {spool['depth']} readings ({spool['ready']} ready,"
            f" {spool['in_flight']} in flight), oldest read {spool['oldest_read_at'] or '-'};"
            f" last seq {spool['last_seq']}; dropped {spool['dropped_total']},"
            f" rejected {spool['rejected_total']}"
        )
    states: dict[str, int] = {}
    for printer in data["printers"].values():
        states[printer["state"]] = states.get(printer["state"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    lines.append(f"last poll  {data['last_poll_at'] or 'never'}{': ' + summary if summary else ''}")
    if data["last_push_at"] is None:
        lines.append("last push  never")
    elif data["last_push_error"] is None:
        lines.append(f"last push  {data['last_push_at']}: delivered")
    else:
        lines.append(
            f"last push  {data['last_push_at']}: FAILED: {data['last_push_error']};"
            f" last good push {data['last_push_ok_at'] or 'never'}"
        )
    offset = data.get("clock_offset_seconds")
    if offset is not None:
        lines.append(
            f"clock      {abs(offset):.0f} s {'behind' if offset > 0 else 'ahead of'} the"
            f" collector's: times sent are corrected by {offset:+.0f} s; set it right (NTP)"
        )
    for name, printer in data["printers"].items():
        error = printer.get("error")
        lines.append(
            f"  {name}: {printer['state']}, last answered {printer['last_answered'] or 'never'}"
            + (f": {error}" if error else "")
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-agent", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"asr-agent {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="how much to log (default: error for poll and check-config, else the config's)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    poll = sub.add_parser(
        "poll",
        help="read one printer once and show its supplies",
        description="Read one printer once and show its supplies.",
    )
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
    status = with_config("status", "show what the agent holds, and when it last read and sent")
    status.add_argument("--json", action="store_true", help="print JSON")
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
            return asyncio.run(_enroll(config, _token(args)))
        if args.command == "run":
            return asyncio.run(_run(config))
        if args.command == "rotate-key":
            return asyncio.run(_rotate(config))
        return _status(config, args.json)
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
            return asyncio.run(_poll(args))
        return _check_config(args)
    except (ConfigError, ProfileError, ValueError) as err:
        print(f"asr-agent: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
