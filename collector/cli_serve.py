"""`asr-collector serve`, `migrate` and `check-config`: the service and its configuration.

Is: TLS set up (a certificate given, or a self-signed one for the embedded default, or plain
HTTP behind a proxy), the apps served until SIGINT or SIGTERM with the metrics endpoint if
configured, the database migrated, and a config printed with its secrets redacted.
Is not: the apps themselves (collector.app) or what the config holds (collector.config).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web, web_response

from collector import __version__
from collector.app import SERVER, create_app, create_metrics_app
from collector.cli_common import private_state, with_database
from collector.config import CollectorConfig, host_port
from collector.service import utcnow
from collector.store.migrate import migrate
from collector.tls import fingerprint, self_signed, server_context
from common.strictconfig import ConfigError

log = logging.getLogger("collector")


def server_tls(config: CollectorConfig) -> tuple[ssl.SSLContext | None, str]:
    """The server's TLS context and a line saying how it is served."""
    server = config.server
    if server.plain_http:
        return None, "plain HTTP (plain_http = true: TLS is the proxy's job)"
    if server.tls_cert is not None and server.tls_key is not None:
        return tls_context(server.tls_cert, server.tls_key), f"TLS with {server.tls_cert}"
    if not config.is_embedded():
        raise ConfigError(
            "server.tls_cert / server.tls_key: required with PostgreSQL (or plain_http = true"
            " behind a TLS proxy); a self-signed certificate is for the embedded default only"
        )
    cert, key, made = self_signed(config.collector.state_dir, server.host, utcnow())
    how = "made a self-signed certificate" if made else "self-signed certificate"
    return tls_context(cert, key), f"TLS, {how} {cert}, SHA-256 {fingerprint(cert)}"


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server's TLS context from its files; a ConfigError naming them if they do not load."""
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"server.tls_cert / server.tls_key: cannot load {cert}, {key}: {err}"
        ) from err


async def _serve(config: CollectorConfig, context: ssl.SSLContext | None) -> None:
    """Serve the apps (and the metrics app) until SIGINT or SIGTERM."""
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


def cmd_serve(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Migrate the database, then serve until SIGINT/SIGTERM."""
    private_state(config)
    context, how = server_tls(config)
    print(f"asr-collector {__version__}: {how}", flush=True)
    asyncio.run(_serve(config, context))
    return 0


def cmd_migrate(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Bring the database to the newest schema."""

    print(f"database at schema revision {asyncio.run(with_database(config, migrate))}")
    return 0


def cmd_check_config(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Print the whole configuration, defaults filled in and secrets redacted."""
    config.database_url()  # reads url_file, if any
    config.metrics_token()  # reads token_file, if any
    if config.server.tls_cert is not None and config.server.tls_key is not None:
        tls_context(config.server.tls_cert, config.server.tls_key)
    print(json.dumps(config.redacted(), indent=2))
    return 0
