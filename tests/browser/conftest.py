"""The portal in a real browser: the real collector as a process, headless Debian Chromium.

The world (tests/browser/seed.py) goes into a SQLite file first; then `asr-collector serve`
runs on 127.0.0.1 over TLS with a certificate of the test CA (tests.collector.kit). Every test
runs a second time on the scaled-out deployment: the world in a PostgreSQL database, two
`asr-collector serve` processes on it behind nginx (deploy/nginx/asr-collector.conf), which
serves the same certificate. Chromium is told to trust that server's key, and only it
(--ignore-certificate-errors-spki-list: a pin, not "ignore every TLS error"). Chromium is
Debian's, at /usr/bin/chromium (`apt-get install -y chromium`), never a downloaded one. Without
it the tests fail when CI=true and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, sync_playwright

from tests.browser.harness import (
    ROOT,
    SETTINGS,
    Background,
    Portal,
    command_for,
    spki_pin,
    start,
    wait_healthy,
    write_config,
)
from tests.browser.seed import PASSWORD, seed
from tests.collector.kit import Pki, make_pki
from tests.scaleout.kit import Deployment, create_database, drop_database

CHROMIUM = Path(os.environ.get("ASR_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"


@pytest.fixture(scope="session", params=["sqlite", "two-on-postgresql"])
def portal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """The seeded collector, served over TLS on 127.0.0.1: by its own process on SQLite, or
    by two processes on one PostgreSQL database behind nginx (tests/scaleout/kit.py)."""
    work = tmp_path_factory.mktemp("portal")
    pki = make_pki(work)
    if request.param == "sqlite":
        yield from _one_on_sqlite(work, pki)
    else:
        yield from _two_on_postgresql(work, pki)


def _one_on_sqlite(work: Path, pki: Pki) -> Iterator[Portal]:
    db_path = work / "collector.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    asyncio.run(seed(url, datetime.now(timezone.utc)))
    config = write_config(work, pki, db_path)
    proc, address = start(command_for(config), work / "collector.log")
    try:
        wait_healthy(address, pki)
        yield Portal(address, url, pki)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _two_on_postgresql(work: Path, pki: Pki) -> Iterator[Portal]:
    """Each request goes to either process in turn: a login made by one, the next page served
    by the other. Both answered some, by nginx's log and their metrics (Traffic.check)."""
    background = Background()
    url = background.run(create_database())
    try:
        asyncio.run(seed(url, datetime.now(timezone.utc)))
        deployment = Deployment(work / "deployment", pki, url, SETTINGS)
        background.run(deployment.start())
        try:
            wait_healthy(deployment.url, pki)
            yield Portal(deployment.url, url, pki)
        finally:
            traffic = background.run(deployment.stop())
        traffic.check()
    finally:
        background.run(drop_database(url))
        background.close()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; missing: a failure in CI (CI=true), a skip saying why elsewhere."""
    if not CHROMIUM.exists():
        reason = (
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium"
            " (apt-get install -y chromium chromium-driver)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path, portal: Portal) -> Iterator[Browser]:
    """Headless Chromium trusting the test server's key (started after the world is seeded)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=[f"--ignore-certificate-errors-spki-list={spki_pin(portal.pki.server_cert)}"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, portal: Portal) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) on the portal."""
    ctx = browser.new_context(base_url=portal.url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def login() -> Callable[..., Response]:
    """Log in through the form: login(page, username[, password]) -> the final response."""

    def log_in(page: Page, username: str, password: str = PASSWORD) -> Response:
        page.goto("/login")
        page.get_by_test_id("login-username").fill(username)
        page.get_by_test_id("login-password").fill(password)
        with page.expect_navigation() as navigation:
            page.get_by_test_id("login-submit").click()
        return navigation.value

    return log_in
