"""The signed wire bytes stay the same: golden bodies written by the encoders of before issue 15.

The records below are encoded and compared with bodies kept in tests/data/wire_golden/, which
were written (and signed, with the test key there) by the hand-written encoders that came before
the records were declared once. So an agent of any version and the collector agree on the bytes
a signature covers, and bodies signed by an older agent still verify and decode.

`python -m tests.collector.test_wire_golden` writes the files again: only ever on purpose, when
the wire's schema version changes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire.batch import (
    Batch,
    BatchReading,
    Heartbeat,
    PrinterCounts,
    decode_batch,
    decode_reading,
    encode_batch,
)
from wire.enroll import (
    EnrollRequest,
    EnrollResponse,
    KeyRotated,
    KeyRotation,
    decode_message,
    encode_message,
)
from wire.reading import PrinterReading, Status, Supply
from wire.signing import encode_public_key, endorse, sign, verify

HERE = Path(__file__).resolve().parents[1] / "data" / "wire_golden"
NOW = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=timezone.utc)
CET = timezone(timedelta(hours=1))
AGENT = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
NONCE = "00112233445566778899aabbccddeeff"


def _key() -> Ed25519PrivateKey:
    # A key for these files only (Ed25519 signs deterministically: same key, same bytes).
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _supplies() -> tuple[Supply, ...]:
    """One supply of each gauge kind and quality, with nulls, unicode and int-valued grams."""
    return (
        Supply(
            index="1.1",
            description="Schwarz Toner – größer ✓ 黒",
            type="toner",
            supply_class="consumed",
            colour="black",
            unit="tenthsOfGrams",
            max_capacity=2400,
            level=1570,
            percent=65.4,
            grams_left=157.0,
            grams_used=83,  # round(int, 3) is an int: the agent sends what it has
            quality="measured",
            kind="toner",
            receptacle=False,
            part_number="TK-5240K",
            marker_index=1,
            colorant_index=1,
            notes=("level from prtMarkerSuppliesLevel", 'quote " and \\ backslash'),
        ),
        Supply(
            index="1.2",
            description="Cyan",
            type="toner",
            supply_class="consumed",
            colour="cyan",
            unit="percent",
            max_capacity=100,
            level=-3,
            percent=None,
            grams_left=None,
            grams_used=None,
            quality="some-remaining",
            kind="toner",
            receptacle=False,
        ),
        Supply(
            index="1.3",
            description=None,
            type=None,
            supply_class=None,
            colour=None,
            unit=None,
            max_capacity=None,
            level=None,
            percent=None,
            grams_left=None,
            grams_used=None,
            quality="unknown",
            kind="other",
            receptacle=False,
        ),
        Supply(
            index="1.4",
            description="Drum Unit",
            type="opc",
            supply_class="consumed",
            colour=None,
            unit="impressions",
            max_capacity=3,
            level=2,
            percent=66.7,
            grams_left=None,
            grams_used=None,
            quality="coarse",
            kind="drum",
            receptacle=False,
        ),
        Supply(
            index="1.5",
            description="Waste Toner Box",
            type="wasteToner",
            supply_class="filled",
            colour=None,
            unit="percent",
            max_capacity=100,
            level=-2,
            percent=0.0,
            grams_left=None,
            grams_used=None,
            quality="some-remaining",
            kind="waste",
            receptacle=True,
            notes=(),
        ),
    )


def rich_reading() -> PrinterReading:
    """A reading with every field set, toner alerts, big counters and a second hrDevice."""
    return PrinterReading(
        serial="VCF9Z00001",
        serial_source="prtGeneralSerialNumber",
        model="ECOSYS M5526cdn",
        sys_object_id="1.3.6.1.4.1.1347.41",
        sys_descr="KYOCERA Document Solutions Printing System",
        vendor="kyocera",
        uptime_seconds=123456.78,
        page_count=2**40 + 7,
        power_on_count=0,
        counter_unit="impressions",
        status=Status(
            device="warning", printer="idle", errors=("lowToner", "noToner"), power="standby"
        ),
        supplies=_supplies(),
        hr_device_index=2,
        notes=("power-save", "ünïcödé note"),
    )


def bare_reading() -> PrinterReading:
    """A reading of a printer that answered almost nothing."""
    return PrinterReading(
        serial=None,
        serial_source=None,
        model=None,
        sys_object_id=None,
        sys_descr=None,
        vendor=None,
        uptime_seconds=None,
        page_count=None,
        power_on_count=None,
        counter_unit=None,
        status=Status(device=None, printer=None, errors=(), power="unknown"),
        supplies=(),
    )


def rich_batch() -> Batch:
    """Three readings, a heartbeat with every count and a clock offset."""
    return Batch(
        agent_id=AGENT,
        batch_id="3f2a6c1e-8d7b-4e5f-9a0b-1c2d3e4f5a6b",
        sent_at=NOW,
        readings=(
            BatchReading(
                seq=41,
                read_at=datetime(2026, 2, 3, 5, 0, tzinfo=CET),  # written in UTC
                printer="front-desk ☎",
                address="192.0.2.10:161",
                reading=rich_reading(),
            ),
            BatchReading(
                seq=42,
                read_at=NOW - timedelta(seconds=30, microseconds=1),
                printer="back",
                address="[2001:db8::1]:1161",
                reading=bare_reading(),
            ),
            BatchReading(
                seq=2**62,
                read_at=NOW,
                printer="p",
                address="198.51.100.7:161",
                reading=rich_reading(),
            ),
        ),
        heartbeat=Heartbeat(
            agent_version="0.4.2",
            uptime_seconds=86400.5,
            printers=PrinterCounts(
                answering=3, asleep=1, unreachable=2, refused=1, not_a_printer=4, faulty=5
            ),
            spool_depth=3,
            dropped_total=17,
            last_poll_at=datetime(2026, 2, 3, 4, 4, 0, tzinfo=timezone.utc),
            clock_offset_seconds=-86400.25,
        ),
    )


def bare_batch() -> Batch:
    """A bare heartbeat of an agent that never polled: no readings, every count zero."""
    return Batch(
        agent_id="edge-1",
        batch_id="00000000-0000-4000-8000-000000000000",
        sent_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        readings=(),
        heartbeat=Heartbeat(
            agent_version="0.1.0",
            uptime_seconds=0.0,
            printers=PrinterCounts(),
            spool_depth=0,
            dropped_total=0,
            last_poll_at=None,
        ),
    )


def old_agent_batch() -> Batch:
    """The form of an agent from before the clock offset: no `clock_offset_seconds` key."""
    return Batch(
        agent_id=AGENT,
        batch_id="5d0c9a2b-7e6f-4a1b-8c3d-2e1f0a9b8c7d",
        sent_at=NOW,
        readings=(
            BatchReading(
                seq=1,
                read_at=NOW - timedelta(minutes=5),
                printer="printer-1",
                address="192.0.2.11:161",
                reading=rich_reading(),
            ),
        ),
        heartbeat=Heartbeat(
            agent_version="0.1.0",
            uptime_seconds=3600,  # an int where a float goes: written as it was given
            printers=PrinterCounts(answering=1),
            spool_depth=1,
            dropped_total=0,
            last_poll_at=NOW - timedelta(minutes=5),
        ),
    )


BATCHES = {"rich": rich_batch, "bare": bare_batch, "old_agent": old_agent_batch}


def _messages() -> dict[str, Any]:
    key = _key()
    new = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    return {
        "enroll_request": EnrollRequest(
            "asr1_tökén", encode_public_key(key.public_key()), "0.4.2", "edge-1.example"
        ),
        "enroll_response": EnrollResponse(AGENT, "0123456789abcdef", "Acme GmbH", "Zürich"),
        "key_rotation": KeyRotation(
            encode_public_key(new.public_key()), endorse(key, new.public_key())
        ),
        "key_rotated": KeyRotated("fedcba9876543210", "0123456789abcdef"),
    }


def _signed(name: str) -> tuple[bytes, dict[str, str]]:
    body = (HERE / f"{name}.json").read_bytes()
    headers = json.loads((HERE / f"{name}.headers.json").read_text("utf-8"))
    return body, headers


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_batches_encode_to_the_golden_bytes(name: str) -> None:
    assert encode_batch(BATCHES[name]()) == _signed(f"batch_{name}")[0]


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_golden_signed_batches_verify_and_decode(name: str) -> None:
    body, headers = _signed(f"batch_{name}")
    verify(_key().public_key(), headers, body)
    batch = decode_batch(body)
    assert batch == decode_batch(encode_batch(BATCHES[name]()))
    # Decoded and encoded again: the same values, a float field's int now a float (the old
    # agent's uptime 3600 is written 3600.0), as the decoder of before did.
    assert encode_batch(batch) == (HERE / f"batch_{name}.again.json").read_bytes()


@pytest.mark.parametrize("name", sorted(_messages()))
def test_enrollment_messages_encode_to_the_golden_bytes(name: str) -> None:
    message = _messages()[name]
    body, headers = _signed(name)
    assert encode_message(message) == body
    verify(_key().public_key(), headers, body)
    assert decode_message(type(message), body) == message


def test_a_spooled_reading_of_before_still_reads() -> None:
    # The agent's spool keeps `to_dict()` as JSON (unsorted); rows written before still read.
    row = (HERE / "spool_reading.json").read_bytes()
    assert decode_reading(row) == decode_reading(_spool_row(rich_reading()))
    assert _spool_row(rich_reading()) == row  # the same bytes, keys in the same order


def _spool_row(reading: PrinterReading) -> bytes:
    # agent.spool's encoding of a reading
    return json.dumps(
        reading.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def _write() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    bodies = {f"batch_{name}": encode_batch(make()) for name, make in BATCHES.items()}
    bodies.update({name: encode_message(message) for name, message in _messages().items()})
    for name, body in bodies.items():
        (HERE / f"{name}.json").write_bytes(body)
        headers = sign(_key(), body, NOW, nonce=NONCE)
        (HERE / f"{name}.headers.json").write_text(json.dumps(headers, indent=1) + "\n", "utf-8")
    for name in BATCHES:
        again = encode_batch(decode_batch(bodies[f"batch_{name}"]))
        (HERE / f"batch_{name}.again.json").write_bytes(again)
    (HERE / "spool_reading.json").write_bytes(_spool_row(rich_reading()))


if __name__ == "__main__":
    _write()
