"""SNMP v1/v2c over one asyncio UDP socket shared by every printer, with our BER codec.

One socket per address family serves any number of concurrent requests: answers are matched
by request-id and source address, so a fleet poll costs no socket per printer. A request is
re-sent after each wait of `Target.waits()` (a sleeping printer often drops the first packet);
a late answer to an earlier try still counts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import random
import socket
from typing import Any

from agent.snmp import ber
from agent.snmp.ber import Oid, VarBind
from agent.snmp.errors import SnmpProtocolError, SnmpTimeout, TooBig
from agent.snmp.session import Credentials, Target

log = logging.getLogger(__name__)

_RECV_BUFFER = 4 * 1024 * 1024


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NativeClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.client._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the request's own timeout reports it.
        log.debug("UDP error: %s", exc)


class NativeClient:
    """Owns the UDP sockets; hands out per-printer sessions. Close it when done."""

    def __init__(self) -> None:
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._pending: dict[int, tuple[tuple[str, int], asyncio.Future[ber.Message]]] = {}
        self._first_id = random.randrange(1, 1 << 30)
        self._ids = itertools.count(self._first_id)
        self._issued = 0
        # What came back that we could not use, numbered by arrival: reported if a request to
        # that address then times out, so a broken printer reads as faulty, not as asleep. Keyed
        # by the community too when the message says it (a wrong request-id), so printers
        # sharing an address (one agent, several communities) are each told their own; bytes
        # that do not decode name no community and count for every printer at the address.
        self._troubles: dict[tuple[tuple[str, int], bytes | None], tuple[int, str]] = {}
        self._datagrams = 0
        self._lock = asyncio.Lock()
        self.malformed = 0  # datagrams that were not well-formed SNMP

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        async with self._lock:
            transport = self._transports.get(family)
            if transport is None or transport.is_closing():
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
                sock.setblocking(False)
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), sock=sock
                )
                self._transports[family] = transport
            return transport

    def session(self, target: Target, credentials: Credentials) -> NativeSession:
        """A session for one printer (v1 or v2c credentials only)."""
        return NativeSession(self, target, credentials)

    def close(self) -> None:
        """Close the sockets and fail what is still waiting."""
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for _, future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    async def __aenter__(self) -> NativeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        source = (_normal_host(addr[0]), addr[1])
        self._datagrams += 1
        try:
            msg = ber.decode_message(data)
        except ber.BerError as err:
            self.malformed += 1
            what = f"answered with malformed SNMP ({err})"
            self._troubles[(source, None)] = (self._datagrams, what)
            log.debug("malformed datagram from %s: %s", addr[0], err)
            return
        entry = self._pending.get(msg.request_id)
        if entry is None:
            if not self._ours(msg.request_id):
                what = f"answered request-id {msg.request_id}, never asked"
                self._troubles[(source, msg.community)] = (self._datagrams, what)
            return  # else a late answer to a request already answered or given up
        expected, future = entry
        if source != expected or future.done():
            return
        future.set_result(msg)

    async def request(
        self,
        target: Target,
        community: bytes,
        version: int,
        pdu_type: int,
        oids: list[Oid],
        non_repeaters: int = 0,
        max_repetitions: int = 0,
    ) -> ber.Message:
        """Send one request, re-sending on silence; the matching response."""
        host = _normal_host(target.host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport = await self._transport(family)
        request_id = next(self._ids) & 0x7FFFFFFF
        self._issued += 1
        since = self._datagrams  # troubles older than this request are not its own
        payload = ber.encode_request(
            version, community, pdu_type, request_id, oids, non_repeaters, max_repetitions
        )
        future: asyncio.Future[ber.Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = ((host, target.port), future)
        try:
            for wait in target.waits():
                transport.sendto(payload, (host, target.port))
                done, _ = await asyncio.wait((future,), timeout=wait)
                if done:
                    return future.result()
        finally:
            del self._pending[request_id]
            if not future.done():
                future.cancel()
        tries = f"after {target.retries + 1} tries over {sum(target.waits()):.1f} s"
        trouble = self._trouble((host, target.port), community, since)
        if trouble:
            raise SnmpProtocolError(
                f"{target.host}:{target.port} {trouble}; no usable answer {tries}"
            )
        raise SnmpTimeout(f"no answer from {target.host}:{target.port} {tries}")

    def _trouble(self, address: tuple[str, int], community: bytes, since: int) -> str | None:
        """What came from `address` since datagram `since` that we could not use: first what
        its answer under `community` said, else bytes that named no community."""
        for key in ((address, community), (address, None)):
            seen = self._troubles.get(key)
            if seen is not None and seen[0] > since:
                return seen[1]
        return None

    def _ours(self, request_id: int) -> bool:
        """Whether we ever sent this request-id (ids run up from a random start)."""
        return (request_id - self._first_id) % (1 << 31) < self._issued


def _normal_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


class NativeSession:
    """v1/v2c calls to one printer through the shared NativeClient."""

    def __init__(self, client: NativeClient, target: Target, credentials: Credentials) -> None:
        if credentials.version == "3":
            raise ValueError("the native client speaks v1 and v2c; use pysnmp for v3")
        try:
            ipaddress.ip_address(target.host.strip("[]"))
        except ValueError as err:
            raise ValueError(f"printer address must be an IP address: {target.host!r}") from err
        self._client = client
        self._target = target
        self._community = credentials.community.encode()
        self._version = ber.V1 if credentials.version == "1" else ber.V2C

    @property
    def bulk(self) -> bool:
        return self._version == ber.V2C

    async def _call(
        self, pdu_type: int, oids: list[Oid], non_repeaters: int = 0, max_repetitions: int = 0
    ) -> ber.Message:
        msg = await self._client.request(
            self._target,
            self._community,
            self._version,
            pdu_type,
            oids,
            non_repeaters,
            max_repetitions,
        )
        if msg.pdu_type != ber.RESPONSE:
            raise SnmpProtocolError(
                f"{self._target.host}: answered with PDU 0x{msg.pdu_type:02x}, not a Response"
            )
        return msg

    async def get(self, oids: list[Oid]) -> list[VarBind]:
        return await self._v1_tolerant(ber.GET, oids, ber.NO_SUCH_OBJECT_VALUE)

    async def get_next(self, oids: list[Oid]) -> list[VarBind]:
        return await self._v1_tolerant(ber.GET_NEXT, oids, ber.END_OF_MIB_VIEW_VALUE)

    async def get_bulk(
        self, non_repeaters: list[Oid], repeaters: list[Oid], max_repetitions: int
    ) -> list[VarBind]:
        msg = await self._call(
            ber.GET_BULK, [*non_repeaters, *repeaters], len(non_repeaters), max_repetitions
        )
        self._check_status(msg, [*non_repeaters, *repeaters])
        return list(msg.varbinds)

    async def _v1_tolerant(
        self, pdu_type: int, oids: list[Oid], missing: ber.NoValue
    ) -> list[VarBind]:
        """One call; v1's noSuchName drops the named varbind and asks again for the rest."""
        answers: dict[int, VarBind] = {}
        remaining = list(range(len(oids)))
        while remaining:
            msg = await self._call(pdu_type, [oids[i] for i in remaining])
            if (
                msg.error_status == 2
                and self._version == ber.V1
                and 1 <= msg.error_index <= len(remaining)
            ):
                gone = remaining.pop(msg.error_index - 1)
                answers[gone] = (oids[gone], missing)
                continue
            self._check_status(msg, [oids[i] for i in remaining])
            if len(msg.varbinds) != len(remaining):
                raise SnmpProtocolError(
                    f"{self._target.host}: asked {len(remaining)} objects, got {len(msg.varbinds)}"
                )
            for i, vb in zip(remaining, msg.varbinds):
                answers[i] = vb
            break
        return [answers[i] for i in range(len(oids))]

    def _check_status(self, msg: ber.Message, asked: list[Oid]) -> None:
        if msg.error_status == 0:
            return
        name = ber.ERROR_STATUS.get(msg.error_status, str(msg.error_status))
        if msg.error_status == 1:
            raise TooBig(f"{self._target.host}: tooBig")
        where = ""
        if 1 <= msg.error_index <= len(asked):
            where = f" at {ber.format_oid(asked[msg.error_index - 1])}"
        raise SnmpProtocolError(f"{self._target.host}: error status {name}{where}")
