"""`asr-collector plan --now` and `simulate` as a new user meets them, as real processes: a
hint when there is nothing to plan, and progress on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from sim.scenarios import SCENARIOS


def _on_a_terminal(command: list[str]) -> tuple[int, str, str]:
    """Run `command` with stderr on a pseudo-terminal; exit status, stdout and stderr."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal, text=True)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(terminal)
    shown = b""
    try:
        while chunk := os.read(controller, 4096):
            shown += chunk
    except OSError:  # EIO: the other end is closed and everything was read
        pass
    finally:
        os.close(controller)
    return proc.returncode, stdout, shown.decode()


def test_plan_with_no_device_registered_says_how_to_register_one(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[collector]\nstate_dir = "{tmp_path / "state"}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", "plan", "--now", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["supplies"] == 0  # stdout stays the JSON scripts read
    assert "no supplies to plan for" in done.stderr
    assert "registered" in done.stderr and "/devices/SERIAL/registration" in done.stderr


def test_simulate_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    fleet, usage = SCENARIOS["gauge-some-remaining"](days=10).write(tmp_path / "s")
    command = [sys.executable, "-m", "collector.cli", "simulate", str(fleet), str(usage)]
    code, _, shown = _on_a_terminal([*command, "--out", str(tmp_path / "a.json")])
    assert code == 0, shown
    assert "\rsimulate: 10 days of 2 devices (asr): day 1/10, 0:0" in shown
    assert "\rsimulate: 10 days of 2 devices (asr): day 10/10, 0:" in shown
    assert "\r\x1b[Ksimulated 2 devices over 10 days" in shown
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("simulated 2 devices over 10 days") and "\r" not in done.stderr
