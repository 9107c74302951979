"""`make demo`: the whole pipeline runs unattended and ends with orders, shipments and emails;
Ctrl-C stops it cleanly at any point; `--serve` keeps the portal up until Ctrl-C; a second
run starts clean.

Each test runs `python -m demo` as a subprocess, as the Makefile does, on a small fleet and a
few simulated days, in its own state directory, with the portal on a free port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 120.0  # seconds a step may take on a busy machine before the test gives up


class Demo:
    """A running `python -m demo`, read line by line."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        command = [sys.executable, "-m", "demo", "--state-dir", str(state_dir), "--port", "0"]
        self.process = subprocess.Popen(
            [*command, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []

    def until(self, pattern: str) -> re.Match[str]:
        """Read stdout until a line matches `pattern`; that match."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end: exit status, the rest of stdout, stderr."""
        out, err = self.process.communicate(timeout=DEADLINE)
        self.lines += out.splitlines()
        return self.process.returncode, "\n".join(self.lines), err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.kill()


def _start(demos: list[Demo], state_dir: Path, *args: str) -> Demo:
    demo = Demo(state_dir, *args)
    demos.append(demo)
    return demo


def _figure(output: str, pattern: str) -> int:
    found = re.search(pattern, output)
    assert found, (pattern, output)
    return int(found.group(1))


def test_the_demo_runs_the_pipeline_and_ends_with_orders_shipments_and_emails(
    demos: list[Demo], tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    demo = _start(demos, state, "--days", "14", "--printers", "10")
    code, output, err = demo.finish()
    assert code == 0, (output, err)
    assert "Traceback" not in err
    # The portal and a login are printed first; one progress line per simulated day.
    assert re.search(r"portal +https://127\.0\.0\.1:\d+/", output)
    assert re.search(r"login +helpdesk, anna, claire, sam; password \S+", output)
    assert len(re.findall(r"^day +\d+ ", output, re.MULTILINE)) == 14
    # In a customer's words: the day's readings and the printers' and devices' states.
    assert re.search(
        r"^day +1 .* readings from 2 polls of \d+ printers \(at the last: \d+ answer",
        output,
        re.MULTILINE,
    )
    assert re.search(
        r"^  devices .*\b(no toner due|toner on its way|new toner put in)\b", output, re.MULTILINE
    )
    for raw in ("no-toner-pending", "toner-ordered", "toner-replaced", "no-usage-rate"):
        assert raw not in output
    # The summary: readings stored, orders placed and shipped, emails received by the sink.
    assert _figure(output, r"readings +(\d+) stored") > 100
    assert _figure(output, r"orders +(\d+) order lines") > 0
    assert _figure(output, r"shipments +(\d+):") > 0
    assert re.search(r"shipments .*\b(shipped|delivered|installed)\b", output)
    emails = _figure(output, r"emails +(\d+) received")
    assert emails == len(list((state / "mail").glob("*.eml")))
    assert emails == len(re.findall(r"^   mail to ", output, re.MULTILINE))
    # R4: a confirmation per registered device (all but one), then the order emails (R15).
    assert re.search(r"emails .*\b9 device registered\b", output)
    assert re.search(r"emails .*\b\d+ order placed\b", output)
    # R16: the printer switched off on day 4 is disconnected 7 days later, and told.
    assert re.search(r"mail to sam\.taylor@harbour\.example \[en\]: .*not sending", output)
    assert "registered printers out of toner: 0 printer-day(s)" in output
    # Issue 14: a "some remaining" printer and a coarse one, read and forecast like the rest;
    # a model no catalogue knows waits for the helpdesk's part numbers, then ships.
    assert re.search(
        r'gauge +SIM\S+ \("some remaining"\): \d+ cartridge\(s\) ordered, 0 day', output
    )
    assert re.search(r"gauge +SIM\S+ \(steps of 25 %\): \d+ cartridge\(s\) ordered, 0 day", output)
    assert re.search(r"^   helpdesk: SIM\S+ black is SL-TN-K-M460; released", output, re.MULTILINE)
    assert _figure(output, r"helpdesk +(\d+) part number") >= 1


def test_ctrl_c_stops_every_part_cleanly_and_the_next_run_starts_clean(
    demos: list[Demo], tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    first = _start(demos, state, "--days", "30", "--printers", "8")
    port = int(first.until(r"portal +https://127\.0\.0\.1:(\d+)/").group(1))
    first.until(r"^day +2 ")
    first.process.send_signal(signal.SIGINT)
    code, output, err = first.finish()
    assert code == 130, (output, err)
    assert "stopped: every part closed cleanly" in output
    assert "Traceback" not in err, err
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the portal's port is closed
    # A second run in the same state directory starts from nothing: its first order is
    # ASR-000001 again, and only its own emails are in the sink's folder.
    second = _start(demos, state, "--days", "6", "--printers", "8")
    code, output, err = second.finish()
    assert code == 0, (output, err)
    emails = _figure(output, r"emails +(\d+) received")
    assert emails == len(list((state / "mail").glob("*.eml")))


def test_serve_keeps_the_portal_up_until_ctrl_c(demos: list[Demo], tmp_path: Path) -> None:
    state = tmp_path / "demo"
    demo = _start(demos, state, "--days", "2", "--printers", "8", "--serve")
    url = demo.until(r"serving the portal at (https://\S+) until Ctrl-C").group(1)
    context = ssl.create_default_context(cafile=state / "collector" / "tls-cert.pem")
    with urllib.request.urlopen(url + "login", context=context, timeout=10) as response:
        assert response.status == 200
        assert "<form" in response.read().decode()
    demo.process.send_signal(signal.SIGINT)
    code, output, err = demo.finish()
    assert code == 0, (output, err)
    assert "stopped serving" in output
    assert "Traceback" not in err, err


def test_a_state_directory_that_is_not_the_demo_s_is_not_wiped(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("not the demo's")
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--state-dir", str(tmp_path), "--days", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode != 0
    assert "is not a demo state directory" in result.stderr
    assert keep.read_text() == "not the demo's"
