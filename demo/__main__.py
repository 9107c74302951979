"""`make demo` (`python -m demo`): the whole pipeline on loopback, weeks in a couple of minutes.

Simulated printers are read over SNMP by enrolled agents that push signed readings over HTTPS
to the collector (SQLite, self-signed TLS); its daily run orders, the simulated warehouse
ships and backorders, the customers put the cartridges in, and every email lands in a local
SMTP sink. The portal's URL and logins are printed first; a summary last. Ctrl-C stops it
cleanly at any point; the next run starts from a clean state directory. See demo.pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from demo.pipeline import run
from demo.world import Options

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def _say(line: str) -> None:
    print(line, flush=True)


async def _main(options: Options) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # Ctrl-C and SIGTERM cancel the run, which closes every part on its way out. SIGINT is
    # handled here, not left to asyncio.run: a shell starts background jobs with SIGINT
    # ignored, and the demo must still stop on it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    await run(options, _say)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when it ran its days (or served until Ctrl-C after them)."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--days", type=int, default=60, help="simulated days (default 60)")
    parser.add_argument("--printers", type=int, default=24, help="at least 8 (default 24)")
    parser.add_argument(
        "--port", type=int, default=8443, help="the portal's port (a free one if taken)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".demo"),
        help="where the demo keeps its state; wiped at each run (default .demo)",
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep the portal serving after the days, until Ctrl-C"
    )
    args = parser.parse_args(argv)
    if args.days < 1 or args.printers < 8:
        parser.error("--days must be at least 1 and --printers at least 8")
    options = Options(
        state_dir=args.state_dir.resolve(),
        days=args.days,
        printers=args.printers,
        port=args.port,
        serve=args.serve,
    )
    try:
        asyncio.run(_main(options))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nstopped: every part closed cleanly", flush=True)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
