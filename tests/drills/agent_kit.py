"""Kit for the agent's fault drills: a small disk of its own (tmpfs) that can be filled, a clock
a day off (libfaketime), a test CA whose certificates such a clock still accepts, a simulated
fleet with faults, metrics and status read as the operator reads them.

Everything runs on 127.0.0.1: a real `asr-agent run`, a real `asr-collector serve`, printers
simulated by sim/responder.py over UDP. The rest comes from tests/agent/kit.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.profile import Profile
from sim.fleet import HR_DEVICE_INDEX, make_fleet
from sim.responder import Faults, Responder, SimPrinter
from tests.agent.kit import ROOT, AgentProcess, CollectorSite, run
from tests.agent.kit import fill as fill
from tests.agent.kit import tmpfs as tmpfs
from tests.collector import kit as collector_kit
from tests.collector.kit import Pki, metrics_url

# Seconds instead of hours: a poll every 0.2 s, a push every second, a failed push retried
# within a second.
FAST = {
    "poll_interval_seconds": 0.2,
    "poll_jitter_seconds": 0,
    "push_interval_seconds": 1,
    "push_jitter_seconds": 0,
    "backoff_base_seconds": 0.2,
    "backoff_max_seconds": 1,
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- a clock a day off ---------------------------------------------------------------------


def faked_env(offset: str | None) -> dict[str, str]:
    """The environment that runs a process with its wall clock `offset` off ('+1d', '-1d'):
    Debian's libfaketime preloaded (its thread-safe build), the monotonic clock left alone.

    Preloaded rather than run under the `faketime` command, which forks and waits: a signal
    sent to the process started would stop the wrapper, not the agent."""
    env = dict(os.environ)
    if offset is None:
        return env
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.fail("libfaketime is not installed: apt-get install faketime (make system-packages)")
    env.update(LD_PRELOAD=str(found[0]), FAKETIME=offset, FAKETIME_DONT_FAKE_MONOTONIC="1")
    return env


async def start_agent(
    config: Path, log_name: str = "agent.log", clock_offset: str | None = None
) -> AgentProcess:
    """`asr-agent run --config CONFIG`, its clock `clock_offset` off if given; log in a file."""
    log = config.parent / log_name
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent.cli",
            "run",
            "--config",
            str(config),
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env=faked_env(clock_offset),
        )
    return AgentProcess(proc, log)


async def enroll(config: Path, site: CollectorSite, clock_offset: str | None = None) -> None:
    """`asr-agent enroll` with a fresh token of the collector (on the same clock as the agent)."""
    token = await site.token()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.cli",
        "enroll",
        "--config",
        str(config),
        "--token",
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=faked_env(clock_offset),
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (stdout.decode(), stderr.decode())


def make_pki(directory: Path, margin: timedelta) -> Pki:
    """A test CA and a server certificate for 127.0.0.1, valid from `margin` ago to `margin`
    ahead: a box whose clock is off by less than that still trusts the collector."""
    return collector_kit.make_pki(directory, before=margin, after=margin)


# --- printers ------------------------------------------------------------------------------


@dataclass
class Printers:
    """Simulated printers on one UDP port of 127.0.0.1, each under its own community."""

    port: int
    printers: dict[str, SimPrinter]
    profile: Profile

    @property
    def targets(self) -> dict[str, int]:
        """Community -> port, as tests.agent.kit.agent_config takes it."""
        return dict.fromkeys(self.printers, self.port)

    def serial(self, name: str) -> str:
        """The serial number a printer has (whatever its faults make it answer)."""
        oid = self.profile.per_device["prtGeneralSerialNumber"] + (HR_DEVICE_INDEX,)
        value = self.printers[name].data.get(oid)
        assert value is not None and isinstance(value.value, bytes)
        return value.value.decode()


@contextlib.asynccontextmanager
async def printers(
    profile: Profile, names: list[str], faults: Mapping[str, Faults] | None = None
) -> AsyncIterator[Printers]:
    """Printers of the synthetic fleet under the given names (each its own serial), the ones
    named in `faults` misbehaving so, all served on one port."""
    entries = list(make_fleet(profile, len(names)).values())
    made = {name: SimPrinter(data, (faults or {}).get(name)) for name, data in zip(names, entries)}
    async with Responder(made) as port:
        yield Printers(port, made, profile)


# --- what the operator sees ----------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def agent_metrics(address: str) -> dict[str, float]:
    """The agent's unlabelled metrics, served on `[agent] metrics_address` (plain HTTP)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://{address}/metrics") as answer:
        assert answer.status == 200
        text = await answer.text()
    return {name: value for (name, labels), value in samples(text).items() if not labels}


async def collector_metrics(
    url: str, pki: Pki
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The collector's /metrics, on its own listener ([metrics] listen)."""
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(metrics_url(url)) as answer,
    ):
        assert answer.status == 200
        return samples(await answer.text())


async def status(config: Path) -> dict[str, Any]:
    """`asr-agent status --json`, as an operator runs it next to the running agent."""
    done = await run("agent.cli", "status", "--config", str(config), "--json")
    assert done.code == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


async def status_text(config: Path) -> str:
    """`asr-agent status`, in plain text."""
    done = await run("agent.cli", "status", "--config", str(config))
    assert done.code == 0, done.stderr
    return done.stdout
