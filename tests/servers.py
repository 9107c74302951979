"""The servers the tests start, watched: a failing test shows the tail of each one's log.

Whatever a test starts that answers it (snmpsim, `asr-collector serve`, nginx, aiosmtpd)
registers its log here with `watch`. When a test fails, tests/conftest.py adds a section per
server to the report: whether the process still runs or how it exited, and the last lines of
its log. A timeout then comes with the responder's own words (a traceback, a refused key),
not alone. A server stopped during the failing test is shown too: its tail is kept when it
stops, as its folder may be removed right after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 40


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of the file at `path` ('' when it is gone)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Watched:
    """One server's log, and how to ask whether its process has ended."""

    name: str
    log: Path
    returncode: Callable[[], int | None]
    kept: str | None = None  # the tail when it stopped

    def state(self) -> str:
        code = self.returncode()
        if self.kept is not None:
            return "stopped by its test"
        return "running" if code is None else f"exited with status {code}"

    def section(self) -> tuple[str, str]:
        text = self.kept if self.kept is not None else tail(self.log)
        body = text if text.strip() else "(its log is empty)"
        return f"{self.name}: {self.state()}; last lines of {self.log}", body


_WATCHED: list[Watched] = []


def watch(name: str, log: Path, returncode: Callable[[], int | None] = lambda: None) -> Watched:
    """Show `log` with any test that fails while it is watched (or in the test that stops it)."""
    watched = Watched(name, log, returncode)
    _WATCHED.append(watched)
    return watched


def unwatch(watched: Watched) -> None:
    """The server stopped: keep its tail for the current test's report, then forget it."""
    if watched in _WATCHED and watched.kept is None:
        watched.kept = tail(watched.log)


@contextlib.contextmanager
def watching(
    name: str, log: Path, returncode: Callable[[], int | None] = lambda: None
) -> Iterator[Watched]:
    watched = watch(name, log, returncode)
    try:
        yield watched
    finally:
        unwatch(watched)


def begin_test() -> None:
    """A new test: servers stopped, or ended, in earlier tests are no longer shown."""
    _WATCHED[:] = [w for w in _WATCHED if w.kept is None and w.returncode() is None]


def sections() -> list[tuple[str, str]]:
    """A (title, text) per watched server, for a failing test's report."""
    return [w.section() for w in _WATCHED]
