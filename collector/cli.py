"""`asr-collector`: the collector's command line (the service arrives with the ingest issue)."""

from __future__ import annotations

import argparse
import sys

from collector import __version__


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the collector command."""
    parser = argparse.ArgumentParser(prog="asr-collector", description=__doc__)
    parser.add_argument("--version", action="version", version=f"asr-collector {__version__}")
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
