"""`asr-printer-sim`: serve simulated printers over SNMP, or write a fleet as snmprec files."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from agent.profile import ProfileError, load_profile
from sim.fleet import make_fleet
from sim.responder import MAX_BYTES, Responder, SimPrinter
from sim.snmprec import Entry, format_snmprec, load_snmprec


def _load_dir(directory: Path) -> dict[str, list[Entry]]:
    """Every DIR/*.snmprec by community (the file name less .snmprec), as snmpsim does."""
    paths = sorted(directory.glob("*.snmprec"))
    if not paths:
        raise ValueError(f"{directory}: no .snmprec files")
    return {path.stem: load_snmprec(path) for path in paths}


def _datasets(args: argparse.Namespace) -> dict[str, list[Entry]]:
    if args.data_dir is not None:
        return _load_dir(args.data_dir)
    return make_fleet(load_profile(), args.fleet, args.seed)


async def _serve(args: argparse.Namespace, datasets: dict[str, list[Entry]]) -> None:
    printers = {name: SimPrinter(entries) for name, entries in datasets.items()}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Responder(printers, args.host, args.port, args.max_bytes) as port:
        # One line, flushed: scripts that start us read the bound port from it.
        print(
            f"asr-printer-sim: serving {len(printers)} printers on {args.host}:{port}", flush=True
        )
        await stop.wait()
    served = sum(p.served for p in printers.values())
    print(f"asr-printer-sim: stopped after {served} answers", flush=True)


def _export(args: argparse.Namespace, datasets: dict[str, list[Entry]]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, entries in datasets.items():
        (args.out / f"{name}.snmprec").write_text(format_snmprec(entries), encoding="utf-8")
    print(f"asr-printer-sim: wrote {len(datasets)} files to {args.out}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-printer-sim", description="Simulated printers for the ASR agent (SNMP v1/v2c)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def source(sub: argparse.ArgumentParser) -> None:
        group = sub.add_mutually_exclusive_group(required=True)
        group.add_argument(
            "--data-dir", type=Path, help="serve every DIR/*.snmprec; community = file name stem"
        )
        group.add_argument("--fleet", type=int, metavar="N", help="a synthetic fleet of N printers")
        sub.add_argument("--seed", type=int, default=0, help="the fleet's seed (default 0)")

    serve = commands.add_parser("serve", help="answer SNMP until SIGINT or SIGTERM")
    source(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="UDP port; 0 picks a free one")
    serve.add_argument(
        "--max-bytes",
        type=int,
        default=MAX_BYTES,
        help=f"largest response message (default {MAX_BYTES})",
    )
    export = commands.add_parser("export", help="write the printers as snmprec files (snmpsim)")
    source(export)
    export.add_argument("--out", type=Path, required=True, help="folder for NAME.snmprec files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = _parser().parse_args(argv)
    if args.fleet is not None and args.fleet < 1:
        print("asr-printer-sim: --fleet needs at least 1 printer", file=sys.stderr)
        return 2
    try:
        datasets = _datasets(args)
    except (OSError, ValueError, ProfileError) as err:
        print(f"asr-printer-sim: {err}", file=sys.stderr)
        return 2
    if args.command == "export":
        _export(args, datasets)
        return 0
    try:
        asyncio.run(_serve(args, datasets))
    except OSError as err:
        print(f"asr-printer-sim: cannot serve on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
