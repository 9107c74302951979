"""Benchmark: what the agent's BER decoder costs on normal and on malformed datagrams.

    .venv/bin/python bench/ber_decode.py [--repeat 200]

Each datagram is decoded `--repeat` times by agent.snmp.ber.decode_message; the table shows
the median time per decode, per KB, and what came of it (decoded, or the BerError). Normal
rows are answers a printer gives (a GETBULK answer of 25 supplies, and one datagram of
65 KB full of varbinds); malformed rows carry one OID arc or one INTEGER of growing size,
up to 65 KB, one OID of 65,000 arcs, and bytes that are no BER at all. Malformed datagrams
must cost no more per KB than normal ones: a decoder that sums a huge arc up costs time
quadratic in its size.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

from benchinfo import code_version

from agent.snmp import ber
from agent.snmp.ber import Typed

SUPPLY = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1)
HEAD = ber.Message(ber.V2C, b"public", ber.RESPONSE, 1234567, 0, 0, ())


def _tlv(tag: int, body: bytes) -> bytes:
    # Written here, not taken from the codec: the malformed rows need bodies it would not make.
    n = len(body)
    length = bytes((n,)) if n < 0x80 else bytes((0x82,)) + n.to_bytes(2, "big")
    return bytes((tag,)) + length + body


def _response(varbinds: bytes) -> bytes:
    pdu = (
        _tlv(ber.INTEGER, HEAD.request_id.to_bytes(4, "big"))
        + b"\x02\x01\x00\x02\x01\x00"
        + _tlv(ber.SEQUENCE, varbinds)
    )
    return _tlv(
        ber.SEQUENCE, b"\x02\x01\x01" + _tlv(ber.OCTET_STRING, b"public") + _tlv(ber.RESPONSE, pdu)
    )


def _varbind(oid_body: bytes, value: bytes = b"\x02\x01\x01") -> bytes:
    return _tlv(ber.SEQUENCE, _tlv(ber.OBJECT_IDENTIFIER, oid_body) + value)


def _arc(size: int) -> bytes:
    """An OID 1.3.6.N whose last arc N takes `size` bytes."""
    return _varbind(b"\x2b\x06" + b"\xff" * (size - 1) + b"\x7f")


def _integer(size: int) -> bytes:
    return _varbind(b"\x2b\x06\x01", _tlv(ber.INTEGER, b"\x01" * size))


def _bulk(supplies: int) -> bytes:
    typed = tuple(((*SUPPLY, i), Typed(ber.INTEGER, 1570 + i)) for i in range(supplies))
    return ber.encode_message(HEAD, typed)


def _full_of_varbinds(size: int) -> bytes:
    one = _varbind(b"\x2b\x06\x01\x02\x01\x2b\x0b\x01\x01\x09\x01\x01", b"\x02\x02\x06\x22")
    return _response(one * (size // len(one)))


CASES: list[tuple[str, bytes]] = [
    ("normal: GETBULK answer, 25 supplies", _bulk(25)),
    ("normal: 65 KB of varbinds", _full_of_varbinds(65_000)),
    *(
        (f"malformed: OID arc of {n:,} bytes", _response(_arc(n)))
        for n in (6, 1024, 16_384, 65_000)
    ),
    *(
        (f"malformed: INTEGER of {n:,} bytes", _response(_integer(n)))
        for n in (10, 1024, 16_384, 65_000)
    ),
    ("malformed: OID of 65,000 arcs", _response(_varbind(b"\x2b" + b"\x01" * 64_999))),
    ("malformed: 65 KB of 0xff", b"\xff" * 65_000),
]


def _outcome(data: bytes) -> str:
    try:
        msg = ber.decode_message(data)
    except ber.BerError as err:
        return f"BerError: {err}"
    return f"decoded, {len(msg.varbinds)} varbinds"


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _decode(data: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return ber.decode_message(data)
        except ber.BerError as err:
            return err

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="decodes per datagram")
    args = parser.parse_args(argv)
    print(f"{code_version()}; python {platform.python_version()}; {os.cpu_count()} CPUs")
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print()
    print("| datagram | bytes | µs per decode | µs per KB | outcome |")
    print("|---|---:|---:|---:|---|")
    for name, data in CASES:
        # The slow decoder this bench was written against takes 0.4 s a 65 KB arc: fewer runs.
        repeat = args.repeat if len(data) < 4096 else max(3, args.repeat // 20)
        seconds = _median_seconds(_decode(data), repeat)
        outcome = _outcome(data)
        cells = [
            name,
            f"{len(data):,}",
            f"{seconds * 1e6:,.1f}",
            f"{seconds * 1e6 / (len(data) / 1024):,.2f}",
            outcome if len(outcome) < 90 else outcome[:87] + "...",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
