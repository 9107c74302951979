"""`asr-collector`: serve the ingest API, migrate the database, manage enrollment and keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import ssl
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web, web_response

from collector import __version__, catalogue
from collector.app import SERVER, create_app, create_metrics_app
from collector.config import CollectorConfig, host_port, load_config
from collector.customers import apply as apply_customers
from collector.customers import load_customers, require_site
from collector.daily_run import RunResult, run_plan
from collector.errors import CollectorError, InvalidRequest
from collector.notify.outbox import Mailer, Pass
from collector.records import EnrollToken
from collector.service import Collector, Settings, utcnow
from collector.simulation.contract import ContractError, load_fleet, load_usage
from collector.simulation.runner import simulate
from collector.store import people
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.tls import fingerprint, self_signed, server_context
from common import logs
from common.strictconfig import ConfigError

log = logging.getLogger("collector")
EXIT_CONFIG = 2
EXIT_REFUSED = 3
_T = TypeVar("_T")


def _tls(config: CollectorConfig) -> tuple[ssl.SSLContext | None, str]:
    """The server's TLS context and a line saying how it is served."""
    server = config.server
    if server.plain_http:
        return None, "plain HTTP (plain_http = true: TLS is the proxy's job)"
    if server.tls_cert is not None and server.tls_key is not None:
        return _context(server.tls_cert, server.tls_key), f"TLS with {server.tls_cert}"
    if not config.is_embedded():
        raise ConfigError(
            "server.tls_cert / server.tls_key: required with PostgreSQL (or plain_http = true"
            " behind a TLS proxy); a self-signed certificate is for the embedded default only"
        )
    cert, key, made = self_signed(config.collector.state_dir, server.host, utcnow())
    how = "made a self-signed certificate" if made else "self-signed certificate"
    return _context(cert, key), f"TLS, {how} {cert}, SHA-256 {fingerprint(cert)}"


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"server.tls_cert / server.tls_key: cannot load {cert}, {key}: {err}"
        ) from err


def _private_state(config: CollectorConfig) -> None:
    """The state directory 0700 and the SQLite database 0600, also when not started by
    systemd (StateDirectoryMode=0700, UMask=0077): made so, or tightened and logged."""
    state = config.collector.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(state, 0o700)
    if not config.is_embedded():
        return
    path = config.database_url().partition(":///")[2].partition("?")[0]
    if not path or path == ":memory:":
        return
    database = Path(path)
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # An empty file is an empty SQLite database; its -wal and -shm files take its mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if name.exists():
            _tighten(name, 0o600)


def _tighten(path: Path, mode: int) -> None:
    """Take group's and others' rights away from `path`, saying so; warn if it cannot."""
    was = stat.S_IMODE(path.stat().st_mode)
    if not was & 0o077:
        return
    try:
        path.chmod(was & mode)
    except OSError as err:
        log.warning(
            "%s is mode %04o, open to others, and cannot be made %04o: %s", path, was, mode, err
        )
        return
    log.warning("%s was mode %04o, open to others: made %04o", path, was, was & mode)


async def _serve(config: CollectorConfig, context: ssl.SSLContext | None) -> None:
    # aiohttp names itself and its version in the answers it makes before any app sees the
    # request (a malformed request's 400); the apps' own answers set SERVER themselves.
    web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined]
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    metrics: web.AppRunner | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before "listening on": a stop may follow
        loop.add_signal_handler(signum, stop.set)
    try:
        if config.metrics.listen:  # first: its line comes before "listening on"
            metrics = web.AppRunner(create_metrics_app(app), access_log=None)
            await metrics.setup()
            host, port = host_port(config.metrics.listen)
            try:
                await web.TCPSite(metrics, host, port).start()
            except OSError as err:
                raise ConfigError(f"metrics.listen: cannot listen on {host}:{port}: {err}") from err
            for address in metrics.addresses:
                print(f"metrics on {_url('http', address)}/metrics", flush=True)
        site = web.TCPSite(runner, config.server.host, config.server.port, ssl_context=context)
        await site.start()
        scheme = "https" if context else "http"
        for address in runner.addresses:
            print(f"listening on {_url(scheme, address)}", flush=True)
        await stop.wait()
        log.info("stopping")
    finally:
        if metrics is not None:
            await metrics.cleanup()
        await runner.cleanup()


def _url(scheme: str, address: Any) -> str:
    host, port = address[0], address[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


async def _with_collector(config: CollectorConfig, job: Callable[[Collector], Awaitable[_T]]) -> _T:
    _private_state(config)
    db = Database.open(config.database_url(), config.database.pool_size)
    try:
        await migrate(db)
        return await job(Collector(db, Settings.from_config(config)))
    finally:
        await db.close()


def cmd_serve(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Migrate the database, then serve until SIGINT/SIGTERM."""
    _private_state(config)
    context, how = _tls(config)
    print(f"asr-collector {__version__}: {how}", flush=True)
    asyncio.run(_serve(config, context))
    return 0


def cmd_migrate(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Bring the database to the newest schema."""

    print(f"database at schema revision {asyncio.run(_with_database(config, migrate))}")
    return 0


def cmd_check_config(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Print the whole configuration, defaults filled in and secrets redacted."""
    config.database_url()  # reads url_file, if any
    config.metrics_token()  # reads token_file, if any
    if config.server.tls_cert is not None and config.server.tls_key is not None:
        _context(config.server.tls_cert, config.server.tls_key)
    print(json.dumps(config.redacted(), indent=2))
    return 0


def cmd_enroll_token(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Make a one-time enrollment token for a customer's site and print it, once."""
    ttl = timedelta(hours=args.ttl_hours) if args.ttl_hours else None

    async def make(collector: Collector) -> tuple[str, EnrollToken]:
        await require_site(collector.db, args.customer, args.site)  # loaded by load-customers
        return await collector.create_token(args.customer, args.site, ttl)

    token, record = asyncio.run(_with_collector(config, make))
    print(token)
    print(
        f"enrollment token for {record.customer} / {record.site}, works once, expires"
        f" {record.expires_at.isoformat()}; it is not stored and cannot be shown again",
        file=sys.stderr,
    )
    return 0


def cmd_revoke_key(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Revoke an agent key: every request it signs is refused from now on."""
    key = asyncio.run(_with_collector(config, lambda c: c.revoke_key(args.key_id)))
    print(f"key {key.key_id} of agent {key.agent_id}: {key.status}")
    return 0


def cmd_plan(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Run the daily forecast and order plan for the whole fleet now (R6 to R16)."""
    now = utcnow()

    async def run(db: Database) -> RunResult:
        await migrate(db)
        return await run_plan(db, config.rules(), now)

    result = asyncio.run(_with_database(config, run))
    if not result.ran:
        print("plan: another collector process is running it; nothing done")
        return 0
    print(
        json.dumps(
            {
                "run": result.run_id,
                "as_of": now.isoformat(),
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


async def _with_database(config: CollectorConfig, job: Callable[[Database], Awaitable[_T]]) -> _T:
    _private_state(config)
    db = Database.open(config.database_url(), config.database.pool_size)
    try:
        return await job(db)
    finally:
        await db.close()


def cmd_simulate(args: argparse.Namespace) -> int:
    """Replay a fleet's life through the real ingest and daily run; write the report (JSON)."""
    try:
        fleet = load_fleet(args.fleet)
        usage = load_usage(args.usage, fleet)
    except ContractError as err:
        print(f"asr-collector simulate: {err}", file=sys.stderr)
        return EXIT_CONFIG
    started = time.perf_counter()
    what = f"simulate: {fleet.days} days of {len(fleet.devices)} devices ({args.policy})"
    report = asyncio.run(
        _shown_while_running(simulate(fleet, usage, args.policy, args.database), what)
    )
    report["wall_seconds"] = round(time.perf_counter() - started, 2)
    text = json.dumps(report, indent=1)
    if args.out == Path("-"):
        print(text)
    else:
        args.out.write_text(text + "\n")
    print(
        f"simulated {report['devices']} devices over {report['days']} days ({args.policy}):"
        f" {report['stockout_device_days']} stock-out device-days, {report['orders']} order"
        f" lines in {report['shipments']} shipments, in {report['wall_seconds']} s",
        file=sys.stderr,
    )
    return 0


async def _shown_while_running(job: Awaitable[_T], what: str) -> _T:
    """Await `job`; meanwhile, on a terminal only, one line on stderr says how long it has run."""
    if not sys.stderr.isatty():
        return await job
    started = time.monotonic()

    async def tick() -> None:
        while True:
            elapsed = int(time.monotonic() - started)
            sys.stderr.write(f"\r{what}: running for {elapsed // 60}:{elapsed % 60:02d}")
            sys.stderr.flush()
            await asyncio.sleep(1)

    ticking = asyncio.create_task(tick())
    try:
        return await job
    finally:
        ticking.cancel()
        sys.stderr.write("\r\033[K")  # the summary line takes its place


def cmd_mail(config: CollectorConfig, args: argparse.Namespace) -> int:
    """One pass over the notifications outbox now (or at --now): send what is due (R4, R15, R16)."""
    now = args.now or utcnow()

    async def run(db: Database) -> Pass:
        await migrate(db)
        return await Mailer(db, config.mail).send_due(now)

    done = asyncio.run(_with_database(config, run))
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


def cmd_load_customers(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Create or update customers, sites and contacts from a customers file (R4, R18)."""
    customers = load_customers(args.file)

    async def run(db: Database) -> int:
        await migrate(db)
        return await apply_customers(db, customers, utcnow())

    count = asyncio.run(_with_database(config, run))
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

    user_id = asyncio.run(_with_database(config, run))
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

    print(asyncio.run(_with_database(config, run)))
    return 0


def _instant(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset, for an argument."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from err
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add +00:00 or Z)")
    return instant.astimezone(timezone.utc)


def cmd_catalogue_check(args: argparse.Namespace) -> int:
    """Check supplies catalogue files (docs/catalogue.md): 0 if they load, else each problem."""
    paths = args.files or sorted(catalogue.DIRECTORY.glob("*.toml"))
    try:
        loaded = catalogue.load(paths)
    except catalogue.CatalogueError as err:
        for problem in err.problems:
            print(f"asr-collector catalogue check: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{len(loaded.models)} models in {len(paths)} files: valid")
    return 0


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
    planner.add_argument(
        "--now", action="store_true", required=True, help="run now (the schedule runs it daily)"
    )
    mailer = command("mail", cmd_mail, "send the notifications due from the outbox, once")
    mailer.add_argument(
        "--once", action="store_true", required=True, help="one pass (`serve` runs it all along)"
    )
    mailer.add_argument(
        "--now",
        type=_instant,
        metavar="TIME",
        help="act as if it were TIME (ISO 8601 with a UTC offset, e.g. 2026-03-02T09:00:00+00:00)"
        " for what is due, the backoff and the emails' Date; default: the clock",
    )
    sim = commands.add_parser(
        "simulate",
        help="replay a fleet's life day by day and report (../shared/contracts/simulation.md)",
    )
    sim.add_argument("fleet", type=Path, help="fleet.json")
    sim.add_argument("usage", type=Path, help="usage.csv")
    sim.add_argument("--out", type=Path, required=True, help="report.json ('-': stdout)")
    sim.add_argument(
        "--policy", choices=("asr", "naive"), default="asr", help="naive: the baseline policy"
    )
    sim.add_argument(
        "--database", type=Path, help="keep the simulation's SQLite store in this file"
    )
    sim.set_defaults(run=cmd_simulate, config=None)
    books = commands.add_parser("catalogue", help="the supplies catalogue (docs/catalogue.md)")
    book_commands = books.add_subparsers(dest="catalogue_command", required=True)
    book_check = book_commands.add_parser(
        "check",
        help="check catalogue files (default: the shipped mibs/catalogue/)",
        description="check catalogue files: exit 0 when valid, 2 with each problem named",
    )
    book_check.add_argument("files", type=Path, nargs="*", metavar="FILE")
    book_check.set_defaults(run=cmd_catalogue_check, config=None)
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
