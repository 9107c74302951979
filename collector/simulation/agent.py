"""The simulated edge agent: reads the world's devices as the real agent would, and pushes.

Is: for each reachable device, the raw Printer-MIB supply rows its gauge gives (unit, max
capacity and level as collector.simulation.gauges says for the supply's gauge kind, class
consumed or receptacle) and its hrPrinterDetectedErrorState (noToner while a toner or ink
supply is empty, whatever the gauge shows), decoded by the agent's own decoder (agent.api,
R1), with the device's page counter (prtMarkerLifeCount, impressions), in signed batches
that go through the collector's real ingest (authentication, validation, storage), as an
enrolled agent's do. One agent is enrolled per customer: an agent writes only its own
customer's devices (docs/architecture.md: Identity), so each customer's readings go in its
own agent's batches, signed with that agent's key.
The decoder is pure, so a row it decoded once is not decoded again: the agent keeps what
each distinct row (a supply's position, kind and colour, and what its gauge shows) decoded to,
up to DECODED_ROWS rows (fleet_of(300, 365)'s year reads 447,855 rows, 9,039 of them
distinct).
Is not: SNMP on the wire (the agent's tests cover that) or HTTP (the ingest tests do); it
raises no other error bit (no lowToner: the simulated devices do not say "low").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.api import Profile, Value, decode_errors, decode_supply, load_profile
from collector.service import Collector
from collector.simulation.gauges import Shown
from collector.simulation.world import Slot
from wire.batch import Batch, BatchReading, Heartbeat, PrinterCounts, encode_batch
from wire.enroll import EnrollRequest, encode_message
from wire.reading import PrinterReading, Status, Supply
from wire.signing import encode_public_key, sign

# Printer-MIB codes (mibs/printer.toml): class and type of a supply row, the counter's unit.
_CONSUMED, _FILLED = 3, 4
_TYPES = {"toner": 3, "waste": 4, "ink": 5}
_IMPRESSIONS = 7
BATCH_SIZE = 500
DECODED_ROWS = 100_000  # decoded supply rows kept; a new row past this starts afresh
AGENT_VERSION = "sim"


def supply_index(position: int) -> str:
    """The reading's index of a device's n-th supply (hrDeviceIndex 1)."""
    return f"1.{position + 1}"


@dataclass
class Enrolled:
    """One customer's enrolled agent: its id, its signing key, its last seq and first push."""

    agent_id: str
    key: Ed25519PrivateKey
    seq: int = 0
    started: datetime | None = None


class SimAgent:
    """The simulated fleet's agents, one enrolled per customer, and their shared decoder."""

    def __init__(self, collector: Collector, profile: Profile | None = None) -> None:
        self.collector = collector
        self.profile = profile or load_profile()
        self.enrolled: dict[str, Enrolled] = {}  # customer -> its agent
        self._decoded: dict[tuple[int, str, str | None, Shown], Supply] = {}
        self._errors = {
            empty: decode_errors(self.profile, self._error_state(["noToner"] if empty else []))
            for empty in (False, True)
        }

    @property
    def agent_id(self) -> str:
        """The id of the agent enrolled without a customer's name (a one-customer fleet's)."""
        return self.enrolled[""].agent_id if "" in self.enrolled else ""

    @property
    def key(self) -> Ed25519PrivateKey:
        """The signing key of the agent enrolled without a customer's name."""
        return self.enrolled[""].key

    async def enroll(self, token: str, customer: str = "") -> None:
        """Enroll `customer`'s agent with a one-time token, as `asr-agent enroll` does (the
        token says the customer; `customer` names the agent for `push`)."""
        key = Ed25519PrivateKey.generate()
        public_key = encode_public_key(key.public_key())
        request = EnrollRequest(token, public_key, "sim", f"sim-{customer}")
        response = await self.collector.enroll(encode_message(request))
        self.enrolled[customer] = Enrolled(response.agent_id, key)

    def read(
        self,
        serial: str,
        model: str | None,
        slots: Sequence[Slot],
        page_count: int | None = None,
    ) -> PrinterReading:
        """What the agent's poll of this device reports (R1), with its page counter."""
        supplies = tuple(self._supply(i, slot) for i, slot in enumerate(slots))
        empty = any(not slot.waste and slot.remaining() <= 0 for slot in slots)
        errors = self._errors[empty]
        return PrinterReading(
            serial=serial,
            serial_source="prtGeneralSerialNumber",
            model=model,
            sys_object_id=None,
            sys_descr=model,
            vendor=None,
            uptime_seconds=None,
            page_count=page_count,
            power_on_count=None,
            counter_unit=None if page_count is None else self._counter_unit,
            status=Status("running", "idle", errors, "ready"),
            supplies=supplies,
        )

    def _error_state(self, names: list[str]) -> bytes:
        """hrPrinterDetectedErrorState with these bits set (bit 0 = MSB of the first octet)."""
        state = bytearray(2)
        for name in names:
            bit = self.profile.error_bits.index(name)
            state[bit // 8] |= 0x80 >> (bit % 8)
        return bytes(state)

    @property
    def _counter_unit(self) -> str | None:
        return self.profile.enums["counterUnit"].get(_IMPRESSIONS)

    def _supply(self, position: int, slot: Slot) -> Supply:
        spec = slot.spec
        # A receptacle's level is the room left in it (RFC 3805), a cartridge's the toner left.
        shown = spec.gauge.shows(slot.remaining(), spec.capacity_grams)
        key = (position, spec.kind, spec.colour, shown)
        supply = self._decoded.get(key)
        if supply is None:
            if len(self._decoded) >= DECODED_ROWS:
                self._decoded.clear()
            supply = self._decoded[key] = self._decode(position, slot, shown)
        return supply

    def _decode(self, position: int, slot: Slot, shown: Shown) -> Supply:
        """The agent's decoder on the row the device gives."""
        spec = slot.spec
        what = {"toner": "Toner", "ink": "Ink", "waste": "Waste Toner Container"}[spec.kind]
        description = f"{(spec.colour or '').title()} {what}".strip()
        row: dict[str, Value] = {
            "description": description.encode(),
            "class": _FILLED if slot.waste else _CONSUMED,
            "type": _TYPES[spec.kind],
            "unit": shown.unit,
            "maxCapacity": shown.max_capacity,
            "level": shown.level,
        }
        return decode_supply(self.profile, None, 1, supply_index(position), row, {})

    async def push(
        self, readings: Iterable[PrinterReading], at: datetime, customer: str = ""
    ) -> int:
        """Send `customer`'s readings, read at `at`, in its agent's signed batches through the
        real ingest; how many were stored."""
        agent = self.enrolled[customer]
        items = []
        for reading in readings:
            agent.seq += 1
            serial = reading.serial or ""
            items.append(BatchReading(agent.seq, at, serial, "192.0.2.1:161", reading))
        agent.started = agent.started or at
        stored = 0
        for first in range(0, len(items), BATCH_SIZE):
            chunk = tuple(items[first : first + BATCH_SIZE])
            batch = Batch(
                agent_id=agent.agent_id,
                batch_id=str(uuid.uuid4()),
                sent_at=at,
                readings=chunk,
                heartbeat=Heartbeat(
                    agent_version=AGENT_VERSION,
                    uptime_seconds=(at - agent.started).total_seconds(),
                    printers=PrinterCounts(answering=len(chunk)),
                    spool_depth=len(chunk),
                    dropped_total=0,
                    last_poll_at=at,
                ),
            )
            body = encode_batch(batch)
            result = await self.collector.ingest(sign(agent.key, body, at), body)
            stored += sum(r.status == "accepted" for r in result.results)
        return stored
