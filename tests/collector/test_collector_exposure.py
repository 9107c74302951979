"""What `asr-collector serve` exposes and what it refuses to start with (issue 13, items 7, 8).

Each test runs the real command: `serve` as a process over real TLS (the test CA), or the CLI
in this process for the config checks. Headers: Server without versions, HSTS over TLS only,
nosniff everywhere, no-store on the JSON APIs. /metrics: a plain-HTTP listener of its own,
404 on the public port unless on_main_port with a bearer token. Secure defaults: SMTP login
only over TLS, an https:// warehouse, enroll-token for loaded sites only, a private state
directory and database.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from collector.cli import main
from collector.config import CollectorConfig
from tests.collector.kit import Pki, Process, metrics_url, start_collector

HSTS = "max-age=31536000"
TOKEN = "a-metrics-token-for-the-test"


def _config(directory: Path, pki: Pki | None, more: str = "") -> Path:
    """A collector on 127.0.0.1 (any port), SQLite in `directory`/state, TLS with the test
    CA's certificate (`pki`) or plain HTTP (None); then `more` TOML."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = (
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
        if pki is not None
        else "plain_http = true\n"
    )
    path = directory / "collector.toml"
    path.write_text(
        f'[collector]\nstate_dir = "{directory / "state"}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = 0\n{tls}[plan]\nenabled = false\n{more}'
    )
    return path


async def _get(
    http: aiohttp.ClientSession, url: str, **kwargs: object
) -> tuple[int, dict[str, str], str]:
    async with http.get(url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, dict(response.headers), await response.text()


async def _raw(process: Process, pki: Pki, request: bytes) -> str:
    """What the collector answers to these bytes over TLS: its status line and headers."""
    host, port = process.url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(
        host, int(port), ssl=pki.client_context(), server_hostname=host
    )
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    return head.decode()


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask of a shell, whatever the test runner's."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- item 7: headers and exposure ----------------------------------------------------------


async def test_every_answer_over_tls_has_hsts_nosniff_and_no_version(
    pki: Pki, tmp_path: Path
) -> None:
    served = await start_collector(_config(tmp_path, pki))
    try:
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            answers = {
                path: await _get(http, served.url + path)
                for path in ("/healthz", "/api/v1/portal/me", "/login", "/no-such-page")
            }
            async with http.post(
                served.url + "/api/v1/enroll", data=b"{}", headers={"Content-Type": "text/plain"}
            ) as response:
                answers["POST /api/v1/enroll"] = (response.status, dict(response.headers), "")
        # A malformed request is answered by aiohttp itself, before the app sees it.
        malformed = await _raw(served, pki, b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n")
    finally:
        assert await served.stop() == 0
    statuses = {path: status for path, (status, _, _) in answers.items()}
    assert statuses == {
        "/healthz": 200,
        "/api/v1/portal/me": 401,
        "/login": 200,
        "/no-such-page": 404,
        "POST /api/v1/enroll": 415,
    }
    for path, (_, headers, _) in answers.items():
        assert headers["Server"] == "asr-collector", path
        assert headers["Strict-Transport-Security"] == HSTS, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
    for path in ("/healthz", "/api/v1/portal/me", "POST /api/v1/enroll"):  # the JSON APIs
        assert answers[path][1]["Cache-Control"] == "no-store", path
    assert malformed.startswith("HTTP/1.") and " 400 " in malformed.splitlines()[0], malformed
    assert "aiohttp" not in malformed and "Python" not in malformed, malformed
    assert "Server: asr-collector" in malformed, malformed


async def test_plain_http_behind_a_proxy_sends_no_hsts(tmp_path: Path) -> None:
    served = await start_collector(_config(tmp_path, None))
    try:
        async with aiohttp.ClientSession() as http:
            status, headers, _ = await _get(http, served.url + "/healthz")
    finally:
        assert await served.stop() == 0
    assert status == 200
    assert "Strict-Transport-Security" not in headers  # the TLS proxy's job (deploy/nginx)
    assert headers["Server"] == "asr-collector"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


async def test_metrics_have_a_listener_of_their_own_and_404_on_the_public_port(
    pki: Pki, tmp_path: Path
) -> None:
    assert CollectorConfig().metrics.listen == "127.0.0.1:9464"  # loopback by default
    served = await start_collector(_config(tmp_path, pki))
    try:
        assert served.metrics_url is not None
        assert served.metrics_url.startswith("http://127.0.0.1:")
        assert metrics_url(served.url) == served.metrics_url
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            public = await _get(http, served.url + "/metrics")
            own = await _get(http, served.metrics_url)
    finally:
        assert await served.stop() == 0
    assert public[0] == 404
    assert own[0] == 200 and "asr_ingest_batches_total" in own[2]
    assert own[1]["Server"] == "asr-collector"


async def test_metrics_on_the_public_port_need_the_bearer_token(pki: Pki, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    metrics = f'[metrics]\nlisten = ""\non_main_port = true\ntoken_file = "{token_file}"\n'
    config = _config(tmp_path, pki, metrics)
    served = await start_collector(config)
    try:
        assert served.metrics_url is None  # listen = "": no listener of its own
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            url = served.url + "/metrics"
            bare = await _get(http, url)
            wrong = await _get(http, url, headers={"Authorization": "Bearer not-the-token"})
            right = await _get(http, url, headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        assert await served.stop() == 0
    assert bare[0] == 401 and bare[1]["WWW-Authenticate"].startswith("Bearer")
    assert wrong[0] == 401
    assert right[0] == 200
    assert 'asr_rejections_total{endpoint="metrics",reason="bad-token"} 2.0' in right[2]


def test_metrics_on_the_public_port_is_refused_without_a_token_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, None, "[metrics]\non_main_port = true\n")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "metrics:" in err and "on_main_port = true needs token_file" in err, err


# --- item 8: secure defaults ---------------------------------------------------------------


def test_smtp_login_needs_starttls_or_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    login = f'[mail]\nenabled = true\nusername = "asr"\npassword_file = "{secret}"\n'
    config = _config(tmp_path, None, login)
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "mail:" in err and 'security = "none"' in err and "username" in err, err
    for security in ("starttls", "tls"):
        config = _config(tmp_path, None, login + f'security = "{security}"\n')
        assert main(["check-config", str(config)]) == 0, capsys.readouterr().err


def test_the_warehouse_webhook_must_be_https(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "warehouse.key"
    key.write_text("k" * 44 + "\n")
    webhook = f'[warehouse]\nmode = "webhook"\nsecret_file = "{key}"\n'
    plain = _config(tmp_path, None, webhook + 'url = "http://127.0.0.1:9/requests"\n')
    assert main(["serve", "--config", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "warehouse:" in err and "https://" in err and "allow_plain_http_for_tests" in err, err
    plain.write_text(plain.read_text() + "allow_plain_http_for_tests = true\n")
    assert main(["check-config", str(plain)]) == 0, capsys.readouterr().err
    secure = _config(tmp_path, None, webhook + 'url = "https://127.0.0.1:9/requests"\n')
    assert main(["check-config", str(secure)]) == 0, capsys.readouterr().err


def test_enroll_token_only_for_a_loaded_customer_and_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, None)
    customers = tmp_path / "customers.toml"
    customers.write_text(
        '[[customers]]\nid = "acme"\nkind = "self"\n'
        'sites = [{ name = "milano", address = "Via Roma 1, Milano" }]\n'
    )

    def token(customer: str, site: str) -> tuple[int, str, str]:
        args = ["--customer", customer, "--site", site]
        code = main(["enroll-token", "--config", str(config), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = token("acme", "milano")
    assert (code, out) == (3, "") and "unknown customer 'acme'" in err, err
    assert main(["load-customers", "--config", str(config), str(customers)]) == 0
    capsys.readouterr()
    code, out, err = token("acme", "torino")
    assert (code, out) == (3, "") and "no site 'torino'" in err and "'milano'" in err, err
    code, out, err = token("acme", "milano")
    assert code == 0 and out.startswith("asr1_"), err


async def test_a_hand_started_collector_keeps_its_state_private(
    pki: Pki, tmp_path: Path, umask_022: None
) -> None:
    fresh = await start_collector(_config(tmp_path / "fresh", None))
    assert await fresh.stop() == 0
    state = tmp_path / "fresh" / "state"
    assert _mode(state) == 0o700
    for name in ("collector.db", "tls-key.pem", "portal-session.key"):
        if (state / name).exists():
            assert _mode(state / name) == 0o600, name
    assert (state / "collector.db").exists()

    # Made loose by hand (or by an older version): tightened at start, and the log says so.
    loose = tmp_path / "loose" / "state"
    loose.mkdir(parents=True, mode=0o755)
    os.chmod(loose, 0o755)
    (loose / "collector.db").touch(mode=0o644)
    os.chmod(loose / "collector.db", 0o644)
    served = await start_collector(_config(tmp_path / "loose", None))
    assert await served.stop() == 0
    assert (_mode(loose), _mode(loose / "collector.db")) == (0o700, 0o600)
    log = served.log.read_text()
    assert "was mode 0755, open to others: made 0700" in log, log
    assert "was mode 0644, open to others: made 0600" in log, log
