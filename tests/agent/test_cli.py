"""`asr-agent enroll | status | rotate-key | run` as commands, against the collector's real
app over HTTPS: exit statuses, messages, and the files they leave."""

from __future__ import annotations

import json
import logging
import os
import shlex
import ssl
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.agent.conftest import InProcess
from tests.agent.kit import ROOT, agent_config, free_port, run
from tests.collector.kit import Agent, Pki


def _config(tmp_path: Path, url: str, pki: Pki) -> Path:
    return agent_config(tmp_path / "agent.toml", url, {}, ca_file=pki.ca_cert)


async def _cli(*args: str) -> tuple[int, str]:
    done = await run("agent.cli", *args)
    return done.code, done.stdout + done.stderr


async def test_enroll_status_and_rotate_key(tmp_path: Path, pki: Pki, served: InProcess) -> None:
    config = str(_config(tmp_path, served.url, pki))
    state_dir = tmp_path / "agent-state"
    code, out = await _cli("status", "--config", config)
    assert code == 0 and "not enrolled" in out and "spool      none yet" in out
    code, out = await _cli("run", "--config", config)
    assert code == 2 and "not enrolled" in out
    code, out = await _cli("enroll", "--config", config, "--token", "asr1_wrong")
    assert code == 3 and "token-unknown" in out
    (tmp_path / "token").write_text(await served.token() + "\n")
    code, out = await _cli("enroll", "--config", config, "--token-file", str(tmp_path / "token"))
    assert code == 0, out
    assert stat.S_IMODE((state_dir / "agent-key.pem").stat().st_mode) == 0o600
    code, out = await _cli("enroll", "--config", config, "--token", await served.token())
    assert code == 2 and "already enrolled" in out

    code, out = await _cli("status", "--config", config, "--json")
    status = json.loads(out)
    agent_id, old_key = status["agent"]["agent_id"], status["key_id"]
    assert status["spool"]["depth"] == 0 and status["last_push_at"] is None
    assert status["rotation_pending"] is None
    code, out = await _cli("status", "--config", config)
    assert f"agent      {agent_id} for acme / milano" in out
    assert f"key        {old_key}" in out and "last push  never" in out

    code, out = await _cli("rotate-key", "--config", config)
    assert code == 0, out
    new_key = json.loads((await _cli("status", "--config", config, "--json"))[1])["key_id"]
    assert new_key != old_key
    assert f"agent {agent_id}: key {new_key} replaces {old_key}" in out
    keys = dict(served.query("SELECT key_id, status FROM agent_keys"))
    assert keys == {old_key: "retired", new_key: "active"}


async def test_enroll_without_a_collector_says_it_cannot_reach_it(tmp_path: Path, pki: Pki) -> None:
    config = _config(tmp_path, f"https://127.0.0.1:{free_port()}", pki)
    code, out = await _cli("enroll", "--config", str(config), "--token", "asr1_x")
    assert code == 4 and "cannot reach the collector" in out


async def test_run_refuses_an_enrolled_agent_whose_spool_was_lost(
    tmp_path: Path, pki: Pki, served: InProcess
) -> None:
    config = str(_config(tmp_path, served.url, pki))
    assert (await _cli("enroll", "--config", config, "--token", await served.token()))[0] == 0
    (tmp_path / "agent-state" / "spool.db").unlink()
    code, out = await _cli("run", "--config", config)
    assert code == 2 and "duplicates" in out


async def test_help_speaks_to_users() -> None:
    done = await run("agent.cli", "--help")
    assert done.code == 0
    assert "report them to the collector" in done.stdout
    for developer_word in ("owns the resources", "spool", "push", "contract", "endorses"):
        assert developer_word not in done.stdout
    done = await run("agent.cli", "poll", "--help")
    assert "host name" in done.stdout and "contract" not in done.stdout


def test_the_readmes_check_config_commands_pass(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(
        b for b in readme.split("```sh\n")[1:] if "asr-agent check-config" in b.split("```")[0]
    ).split("```")[0]
    # Run as written, from a clone's root: config/ and .venv/ as in the checkout.
    (tmp_path / "config").symlink_to(ROOT / "config")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    agent = tmp_path / ".venv" / "bin" / "asr-agent"
    agent.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m agent.cli "$@"\n')
    agent.chmod(0o755)
    done = subprocess.run(
        ["sh", "-e", "-c", block],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "OK: 2 printer(s)" in done.stdout and "authPriv" in done.stdout


def test_the_example_names_the_secret_files_it_cannot_read() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check-config", "config/agent.example.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "auth_key_file: cannot read /run/credentials/asr-agent.service/" in done.stderr


async def test_the_collector_logs_one_line_per_batch(
    served: InProcess, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    context = ssl.create_default_context(cafile=pki.ca_cert)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        agent = Agent(http, served.url, served.clock)
        assert (await agent.enroll(await served.token())).status == 201
        batch = agent.batch(range(1, 4))
        future = replace(batch.readings[2], read_at=served.clock() + timedelta(days=2))
        batch = replace(batch, readings=(*batch.readings[:2], future))
        with caplog.at_level(logging.INFO, logger="collector.views"):
            assert (await agent.send(batch)).status == 200
            assert (await agent.send(batch)).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "collector.views"]
    where = f"batch {batch.batch_id} from agent {agent.agent_id}: 3 readings"
    assert lines == [
        f"{where}, 2 accepted, 1 rejected, 0 duplicate",
        f"{where}, 0 accepted, 1 rejected, 2 duplicate (sent again)",
    ]
