"""A responder of our own: simulated printers answering SNMP v1/v2c on one UDP port.

Is: GET, GETNEXT and GETBULK as RFC 3416 (and RFC 1157 for v1) define them, over the agent's
BER codec; many printers behind one port, chosen by community string, a wrong community
dropped silently as a real agent does; per-printer faults (waking from power-save, asleep,
slow, garbage, truncated, wrong request-id, values of the wrong type or out of range); counters
of what each printer was asked and answered.
Is not: a full agent. No SET (dropped), no v3, no traps, and no MIB: noSuchObject versus
noSuchInstance is told apart by whether other instances share the requested OID's parent.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agent.snmp import ber
from agent.snmp.ber import Message, Oid, Typed
from sim.snmprec import Entry

log = logging.getLogger(__name__)

# net-snmp's default maximum message size: an Ethernet frame less the IP and UDP headers.
MAX_BYTES = 1472
_RECV_BUFFER = 4 * 1024 * 1024

# RFC 3416 error-status values the responder sends.
_NO_ERROR = 0
_TOO_BIG = 1
_NO_SUCH_NAME = 2

_NULL = Typed(ber.NULL, None)
_NO_SUCH_OBJECT = Typed(ber.NO_SUCH_OBJECT, None)
_NO_SUCH_INSTANCE = Typed(ber.NO_SUCH_INSTANCE, None)
_END_OF_MIB_VIEW = Typed(ber.END_OF_MIB_VIEW, None)

Answer = list[tuple[Oid, Typed]]


def _tlv_size(content: int) -> int:
    """Bytes of a definite-length TLV whose value has `content` bytes."""
    if content < 0x80:
        return 2 + content
    return 2 + (content.bit_length() + 7) // 8 + content


def _varbind_size(oid: Oid, value: Typed) -> int:
    name = ber.encode_value(Typed(ber.OBJECT_IDENTIFIER, oid))
    return _tlv_size(len(name) + len(ber.encode_value(value)))


class Dataset:
    """One printer's objects sorted by OID, looked up with bisect; values may change."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._oids: list[Oid] = []
        self._values: list[Typed] = []
        self._sizes: list[int] = []  # encoded varbind sizes, to cap responses cheaply
        for oid, value in entries:
            self.set(oid, value)

    def __len__(self) -> int:
        return len(self._oids)

    def set(self, oid: Oid, value: Typed) -> None:
        """Add an object or change its value (a toner going down); refuses an unencodable one."""
        size = _varbind_size(oid, value)
        i = bisect_left(self._oids, oid)
        if i < len(self._oids) and self._oids[i] == oid:
            self._values[i], self._sizes[i] = value, size
        else:
            self._oids.insert(i, oid)
            self._values.insert(i, value)
            self._sizes.insert(i, size)

    def get(self, oid: Oid) -> Typed | None:
        """The value of exactly this OID, if it exists."""
        i = bisect_left(self._oids, oid)
        if i < len(self._oids) and self._oids[i] == oid:
            return self._values[i]
        return None

    def entries(self) -> list[Entry]:
        """Every object, in OID order."""
        return list(zip(self._oids, self._values))

    def _has_under(self, prefix: Oid) -> bool:
        i = bisect_right(self._oids, prefix)
        return i < len(self._oids) and self._oids[i][: len(prefix)] == prefix

    def _missing(self, oid: Oid) -> Typed:
        """noSuchInstance when the object type seems to exist (siblings), else noSuchObject."""
        if not self._has_under(oid) and self._has_under(oid[:-1]):
            return _NO_SUCH_INSTANCE
        return _NO_SUCH_OBJECT

    def _after(self, oid: Oid, v1: bool) -> int:
        """Index of the first object after oid (len(self) if none)."""
        i = bisect_right(self._oids, oid)
        # RFC 3584 (v1/v2c coexistence): a v1 manager cannot see Counter64, so GETNEXT skips it.
        while v1 and i < len(self._values) and self._values[i].tag == ber.COUNTER64:
            i += 1
        return i


def _frame(request: Message) -> tuple[int, int]:
    """Bytes of a noError Response's fixed parts: version and community, the PDU's INTEGERs."""
    head = len(ber.encode_value(Typed(ber.INTEGER, request.version))) + _tlv_size(
        len(request.community)
    )
    # error-status and error-index are both 0: three bytes each.
    return head, len(ber.encode_value(Typed(ber.INTEGER, request.request_id))) + 6


def _message_size(frame: tuple[int, int], content: int) -> int:
    """Bytes of that Response when its varbind list has `content` bytes."""
    head, ints = frame
    return _tlv_size(head + _tlv_size(ints + _tlv_size(content)))


def _encode(request: Message, status: int, index: int, varbinds: Answer) -> bytes:
    response = Message(
        request.version, request.community, ber.RESPONSE, request.request_id, status, index, ()
    )
    return ber.encode_message(response, typed=tuple(varbinds))


def _echo(request: Message) -> Answer:
    """The request's names with NULL values: what a v1 error response carries (RFC 1157)."""
    return [(oid, _NULL) for oid, _ in request.varbinds]


def _error(request: Message, status: int, index: int) -> bytes:
    # v2c's tooBig carries no varbinds (RFC 3416 §4.2.1); v1 errors echo the request.
    if request.version == ber.V2C and status == _TOO_BIG:
        return _encode(request, status, 0, [])
    return _encode(request, status, index, _echo(request))


def _get(data: Dataset, request: Message) -> bytes:
    v1 = request.version == ber.V1
    out: Answer = []
    for i, (oid, _) in enumerate(request.varbinds, start=1):
        value = data.get(oid)
        if value is None or (v1 and value.tag == ber.COUNTER64):
            if v1:
                return _error(request, _NO_SUCH_NAME, i)
            value = data._missing(oid)
        out.append((oid, value))
    return _encode(request, _NO_ERROR, 0, out)


def _get_next(data: Dataset, request: Message) -> bytes:
    v1 = request.version == ber.V1
    out: Answer = []
    for i, (oid, _) in enumerate(request.varbinds, start=1):
        j = data._after(oid, v1)
        if j < len(data):
            out.append((data._oids[j], data._values[j]))
        elif v1:
            return _error(request, _NO_SUCH_NAME, i)
        else:
            out.append((oid, _END_OF_MIB_VIEW))
    return _encode(request, _NO_ERROR, 0, out)


def _get_bulk(data: Dataset, request: Message, max_bytes: int) -> bytes:
    """RFC 3416 §4.2.3, with fewer varbinds rather than more than `max_bytes` bytes."""
    names = [oid for oid, _ in request.varbinds]
    n = min(max(request.error_status, 0), len(names))
    repetitions = max(request.error_index, 0)
    frame = _frame(request)
    out: Answer = []
    content = 0
    for oid in names[:n]:
        j = data._after(oid, False)
        if j < len(data):
            out.append((data._oids[j], data._values[j]))
            content += data._sizes[j]
        else:
            out.append((oid, _END_OF_MIB_VIEW))
            content += _varbind_size(oid, _END_OF_MIB_VIEW)
    if _message_size(frame, content) > max_bytes:
        return _error(request, _TOO_BIG, 0)
    # Each repeater walks on from where its previous row left it, by index into the dataset.
    cursors = [data._after(oid, False) for oid in names[n:]]
    last = names[n:]
    for _ in range(repetitions if cursors else 0):
        ended = 0
        for r, j in enumerate(cursors):
            if j < len(data):
                vb, size = (data._oids[j], data._values[j]), data._sizes[j]
                cursors[r], last[r] = j + 1, data._oids[j]
            else:
                vb, size = (last[r], _END_OF_MIB_VIEW), _varbind_size(last[r], _END_OF_MIB_VIEW)
                ended += 1
            if _message_size(frame, content + size) > max_bytes:
                return _encode(request, _NO_ERROR, 0, out)
            out.append(vb)
            content += size
        if ended == len(cursors):
            break  # RFC 3416 §4.2.3 lets a row of only endOfMibView end the response
    return _encode(request, _NO_ERROR, 0, out)


def answer(data: Dataset, request: Message, max_bytes: int = MAX_BYTES) -> bytes | None:
    """The encoded Response to a request, or None where a real agent sends nothing."""
    if request.pdu_type == ber.GET:
        reply = _get(data, request)
    elif request.pdu_type == ber.GET_NEXT:
        reply = _get_next(data, request)
    elif request.pdu_type == ber.GET_BULK and request.version == ber.V2C:
        return _get_bulk(data, request, max_bytes)
    else:
        return None  # GETBULK is no v1 PDU; SET and the rest are not served here
    if len(reply) > max_bytes:
        reply = _error(request, _TOO_BIG, 0)
    return reply if len(reply) <= max_bytes else None


@dataclass(frozen=True)
class Faults:
    """How one simulated printer misbehaves; the defaults are a healthy printer."""

    drop_first: int = 0  # requests ignored before answering: a printer waking from power-save
    asleep: bool = False  # ignores every request
    delay: float = 0.0  # seconds before each answer
    garbage: bool = False  # answers bytes that are not BER
    truncated: bool = False  # answers the first half of each message only
    wrong_request_id: bool = False  # answers under a request-id the manager never sent
    wrong_types: bool = False  # INTEGERs answered as OCTET STRINGs and OCTET STRINGs as INTEGERs
    out_of_range: bool = False  # INTEGERs answered as negatives no MIB defines (-4 and below)


def _distorted(data: Dataset, faults: Faults) -> Dataset:
    """The objects as a printer with value faults answers them (well-formed BER, bad values)."""
    if not (faults.wrong_types or faults.out_of_range):
        return data
    out = []
    for oid, value in data.entries():
        v = value.value
        if value.tag == ber.INTEGER and isinstance(v, int):
            if faults.wrong_types:
                value = Typed(ber.OCTET_STRING, str(v).encode())
            else:
                value = Typed(ber.INTEGER, -(abs(v) + 4))
        elif faults.wrong_types and value.tag == ber.OCTET_STRING and isinstance(v, bytes):
            value = Typed(ber.INTEGER, len(v))
        out.append((oid, value))
    return Dataset(out)


class SimPrinter:
    """One simulated printer: its objects, how it misbehaves, and how often it was asked."""

    def __init__(self, entries: Iterable[Entry] = (), faults: Faults | None = None) -> None:
        self.data = Dataset(entries)
        self.received = 0  # requests under this printer's community
        self.served = 0  # answers sent (garbage and truncated ones included)
        # Requests answered, by PDU type; a re-send (the same request-id again) counts once.
        self.answered: Counter[int] = Counter()
        self._last_answered: dict[int, int] = {}  # PDU type -> its last request-id answered
        self.faults = faults or Faults()

    @property
    def faults(self) -> Faults:
        """The faults in force; setting them starts `drop_first` counting again."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._drops_left = faults.drop_first

    def reply(self, request: Message, max_bytes: int = MAX_BYTES) -> bytes | None:
        """What this printer sends back to a request, faults applied; None for silence."""
        self.received += 1
        faults = self._faults
        if faults.asleep:
            return None
        if self._drops_left > 0:
            self._drops_left -= 1
            return None
        asked = request
        if faults.wrong_request_id:
            # Negative: a manager counting its ids upwards from 1 never has it in flight.
            request = replace(request, request_id=~request.request_id)
        out = answer(_distorted(self.data, faults), request, max_bytes)
        if out is None:
            return None
        if self._last_answered.get(asked.pdu_type) != asked.request_id:
            self._last_answered[asked.pdu_type] = asked.request_id
            self.answered[asked.pdu_type] += 1
        if faults.garbage:
            out = bytes(b ^ 0xFF for b in out)
        if faults.truncated:
            out = out[: len(out) // 2]
        self.served += 1
        return out


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.responder._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class Responder:
    """Serves simulated printers on one UDP port, each under its own community string."""

    def __init__(
        self,
        printers: Mapping[str, SimPrinter],
        host: str = "127.0.0.1",
        port: int = 0,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._printers = {community.encode(): p for community, p in printers.items()}
        self._host = host
        self._port = port
        self.max_bytes = max_bytes
        self.malformed = 0  # datagrams that were not a well-formed v1/v2c message
        self.bad_community = 0  # requests under no printer's community, dropped
        self._transport: asyncio.DatagramTransport | None = None
        self._delayed: set[asyncio.TimerHandle] = set()

    @property
    def port(self) -> int:
        """The UDP port bound (known once started)."""
        return self._port

    def add(self, community: str, printer: SimPrinter) -> None:
        """Serve one more printer (or replace one) under this community."""
        self._printers[community.encode()] = printer

    async def start(self) -> int:
        """Bind the socket; the port bound."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self._host, self._port)
        )
        sock = transport.get_extra_info("socket")
        # A fleet polled at once arrives as a burst: the default buffer would drop some.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
        self._transport = transport
        self._port = sock.getsockname()[1]
        return self._port

    def close(self) -> None:
        """Stop answering; delayed answers not yet sent are dropped."""
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> int:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            request = ber.decode_message(data)
        except ber.BerError:
            self.malformed += 1
            return
        if request.pdu_type not in ber.REQUEST_PDUS:
            return  # SET, and responses or reports sent to us
        printer = self._printers.get(request.community)
        if printer is None:
            self.bad_community += 1
            return
        out = printer.reply(request, self.max_bytes)
        if out is None or self._transport is None:
            return
        delay = printer.faults.delay
        if delay <= 0:
            self._transport.sendto(out, addr)
            return
        transport = self._transport

        def send() -> None:
            self._delayed.discard(handle)
            if not transport.is_closing():
                transport.sendto(out, addr)

        handle = asyncio.get_running_loop().call_later(delay, send)
        self._delayed.add(handle)
