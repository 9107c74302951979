"""`asr-agent poll` against a printer whose answers break SNMP's bounds: exit 6 ("a broken
answer") in one line, no traceback, however large the broken part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from agent.snmp import ber
from tests.agent.kit import run

Answer = Callable[[ber.Message], bytes]


class _Responder(asyncio.DatagramProtocol):
    """Answers every request with what `answer` makes of it."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answer(ber.decode_message(data)), addr)


@asynccontextmanager
async def _printer(answer: Answer) -> AsyncIterator[int]:
    """A UDP responder on 127.0.0.1; yields its port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Responder(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def _named(extra: tuple[int, ...]) -> Answer:
    """The OIDs asked, worth 1, the first followed by `extra` arcs unless it ends with them
    already (a walk asking on must not grow it past a datagram, nor must a 60 KB arc)."""

    def name(oid: ber.Oid) -> ber.Oid:
        return oid if oid[-len(extra) :] == extra else (*oid, *extra)

    def answer(request: ber.Message) -> bytes:
        head = ber.Message(
            request.version, request.community, ber.RESPONSE, request.request_id, 0, 0, ()
        )
        # The encoder writes any arcs; only the decoder holds to SNMP's bounds.
        one = ber.Typed(ber.INTEGER, 1)
        oids = [oid for oid, _ in request.varbinds]
        return ber.encode_message(head, tuple((o, one) for o in [name(oids[0]), *oids[1:]]))

    return answer


def _arc_of(size: int) -> int:
    """The arc whose BER sub-identifier is `size` bytes long (all bits set)."""
    return 2 ** (7 * size) - 1


BROKEN = {
    "6-byte arc": ((_arc_of(6),), "sub-identifier wider than 32 bits"),
    "2 KB arc": ((_arc_of(2048),), "more than SNMP's 635"),
    "60 KB arc": ((_arc_of(60_000),), "more than SNMP's 635"),
    "arc of 2^32": ((2**32,), "arc 4294967296 above 4294967295"),
    "over 128 arcs": ((1,) * 128, "OBJECT IDENTIFIER of more than 128 arcs"),
}


@pytest.mark.parametrize(("extra", "named"), BROKEN.values(), ids=BROKEN.keys())
async def test_a_broken_answer_exits_6_in_one_line(extra: tuple[int, ...], named: str) -> None:
    async with _printer(_named(extra)) as port:
        target = f"127.0.0.1:{port}"
        # The agent waits out its timeout after a broken answer. The responder encodes a 60 KB
        # arc in about 0.35 s (more on a busy machine): that one gets longer to arrive.
        wait = "3" if sum(extra).bit_length() > 100_000 else "0.5"
        done = await run(
            "agent.cli", "poll", target, "--timeout", wait, "--retries", "0", timeout=30
        )
    assert done.code == 6, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"asr-agent: {target}: faulty: ")
    assert "malformed SNMP" in lines[0] and named in lines[0]
