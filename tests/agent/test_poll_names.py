"""`asr-agent poll` as a user types it: a host name looked up at each poll, one line and exit 2
for an address that is not one, and a visible wait when nothing answers. The printer is the
project's own UDP responder; the agent a real process."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
import sys

import pytest

from agent.profile import Profile
from sim.fleet import community, make_fleet
from sim.responder import Responder, SimPrinter
from tests.agent.kit import ROOT, run


async def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `asr-agent ARGS` with its stderr on a pseudo-terminal, as a person sees it."""
    controller, terminal = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.cli", *args, stderr=terminal, cwd=ROOT
        )
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        os.close(terminal)
    out = b""
    try:
        while chunk := os.read(controller, 4096):
            out += chunk
    except OSError:  # EIO: the terminal's other end is closed and everything was read
        pass
    finally:
        os.close(controller)
    return code, out.decode().replace("\r\n", "\n")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("127.0.0.1", "localhost"),
        pytest.param(
            "::1",
            "[::1]",
            marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
)
async def test_poll_reads_a_printer_by_name_or_address(
    profile: Profile, host: str, name: str
) -> None:
    try:
        found = socket.getaddrinfo(name.strip("[]"), 161, type=socket.SOCK_DGRAM)
    except socket.gaierror:
        pytest.skip(f"{name} does not resolve on this machine")
    if host not in {info[4][0] for info in found}:
        pytest.skip(f"{name} is not {host} on this machine")
    printers = {c: SimPrinter(entries) for c, entries in make_fleet(profile, 1).items()}
    async with Responder(printers, host=host) as port:
        done = await run(
            "agent.cli", "poll", f"{name}:{port}", "--community", community(0), "--json"
        )
    assert done.code == 0, done.stderr
    assert '"supplies"' in done.stdout


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("printer.invalid", "printer.invalid: no such host"),
        ("localhost:port", "'localhost:port' is not an address"),
        ("127.0.0.1:70000", "'127.0.0.1:70000' is not an address"),
        ("[::1", "'[::1' is not an address"),
    ],
)
async def test_a_bad_address_is_one_line_and_exit_2(target: str, said: str) -> None:
    done = await run("agent.cli", "poll", target, "--timeout", "0.1", "--retries", "0")
    assert done.code == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"asr-agent: {said}")


async def test_no_answer_shows_each_retry_and_says_a_wrong_community_looks_the_same(
    profile: Profile,
) -> None:
    printers = {c: SimPrinter(entries) for c, entries in make_fleet(profile, 1).items()}
    responder = Responder(printers)
    args = ["--community", "not-the-one", "--timeout", "0.2", "--retries", "2"]
    async with responder as port:
        code, shown = await _on_a_terminal("poll", f"localhost:{port}", *args)
        assert responder.bad_community == 3  # it heard every try, and stayed silent
        done = await run("agent.cli", "poll", f"localhost:{port}", *args)
    assert code == done.code == 3
    lines = shown.splitlines()
    assert lines[:2] == [
        f"asr-agent: no answer from 127.0.0.1:{port} within 0.2 s; asking again (2 of 3)",
        f"asr-agent: no answer from 127.0.0.1:{port} within 0.4 s; asking again (3 of 3)",
    ]
    assert len(lines) == 3 and lines[2].startswith(f"asr-agent: localhost:{port}: unreachable")
    assert "A wrong community (or SNMPv3 user) looks the same as no answer" in lines[2]
    # Not on a terminal (a script, a log): the outcome's one line only.
    assert done.stderr.splitlines() == lines[2:]
