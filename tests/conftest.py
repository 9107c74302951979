"""Shared fixtures: the MIB profile, and snmpsim serving the real and our own recordings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from agent.profile import Profile, load_profile
from tests import snmpsim


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile()


@pytest.fixture(scope="session")
def simulator() -> Iterator[snmpsim.Simulator]:
    """snmpsim on 127.0.0.1 serving ../shared/printers and tests/printers recordings."""
    recordings = sorted(snmpsim.OWN_PRINTERS.glob("*.snmprec"))
    if snmpsim.SHARED_PRINTERS.is_dir():
        recordings = sorted((snmpsim.SHARED_PRINTERS / "snmprec").glob("*.snmprec")) + recordings
    binary = snmpsim.responder_binary()
    if binary is None:
        pytest.fail("snmpsim is not installed: run `make test` (it makes .venv-sim)")
    proc, sim, work = snmpsim.start(binary, recordings)
    try:
        yield sim
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_expected() -> dict[str, Any]:
    """LibreNMS's expected supply rows and device values, or skip when shared/ is absent."""
    if not snmpsim.SHARED_PRINTERS.is_dir():
        pytest.skip("../shared/printers is absent")
    return {
        "supplies": json.loads((snmpsim.SHARED_PRINTERS / "expected.json").read_text()),
        "devices": json.loads((snmpsim.SHARED_PRINTERS / "devices.json").read_text()),
    }
