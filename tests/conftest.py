"""Shared fixtures: the MIB profile, and snmpsim serving the real and our own recordings.

A failing test's report ends with the tail of the log of every server the tests started that
still runs, or that the test stopped (tests/servers.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from agent.profile import Profile, load_profile
from tests import servers, snmpsim


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    servers.begin_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test shows the servers' logs (tests/servers.py)."""
    report = yield
    if report.failed:
        report.sections.extend(servers.sections())
    return report


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """A test that runs a command's main() in the test process (which sends the root logger
    to stderr at INFO) leaves the root logger as it found it. Else a thread of a later test
    (aiosmtpd's) logs into a stream pytest has closed: '--- Logging error ---'."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile()


@pytest.fixture(scope="session")
def simulator() -> Iterator[snmpsim.Simulator]:
    """snmpsim on 127.0.0.1 serving ../shared/printers and tests/printers recordings."""
    recordings = sorted(snmpsim.OWN_PRINTERS.glob("*.snmprec"))
    if snmpsim.SHARED_PRINTERS.is_dir():
        recordings = sorted((snmpsim.SHARED_PRINTERS / "snmprec").glob("*.snmprec")) + recordings
    venv = snmpsim.environment()
    if venv is None:
        pytest.fail("snmpsim is not installed: run `make setup` (it makes .venv-sim)")
    responder = snmpsim.start(venv, recordings)
    try:
        yield responder.sim
    finally:
        responder.stop()


@pytest.fixture(scope="session")
def shared_expected() -> dict[str, Any]:
    """LibreNMS's expected supply rows and device values, or skip when shared/ is absent."""
    if not snmpsim.SHARED_PRINTERS.is_dir():
        pytest.skip(snmpsim.SHARED_ABSENT)
    return {
        "supplies": json.loads((snmpsim.SHARED_PRINTERS / "expected.json").read_text()),
        "devices": json.loads((snmpsim.SHARED_PRINTERS / "devices.json").read_text()),
    }
