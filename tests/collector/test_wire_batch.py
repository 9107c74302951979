"""The batch contract: canonical encoding, strict validation naming the field's path."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tests.collector.kit import make_batch, with_reading
from wire.batch import decode_batch, encode_batch
from wire.errors import InvalidMessage, MalformedJSON, UnsupportedSchema, WireError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
AGENT = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"


def _body(**changes: object) -> dict[str, object]:
    data: dict[str, object] = json.loads(encode_batch(make_batch(AGENT, range(1, 6), NOW)))
    data.update(changes)
    return data


def _decode(data: object, **kwargs: int) -> object:
    return decode_batch(json.dumps(data).encode(), **kwargs)


def test_round_trip_gives_the_same_records_and_bytes() -> None:
    batch = make_batch(AGENT, range(1, 6), NOW)
    body = encode_batch(batch)
    assert decode_batch(body) == batch
    assert encode_batch(decode_batch(body)) == body


def test_encoding_is_canonical_json() -> None:
    body = encode_batch(make_batch(AGENT, [1], NOW))
    data = json.loads(body)
    assert body == json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    assert data["schema"] == 1
    assert data["sent_at"] == "2026-01-05T10:00:00.000000Z"
    assert set(data["heartbeat"]["printers"]) == {
        "answering",
        "asleep",
        "unreachable",
        "refused",
        "not-a-printer",
        "faulty",
    }
    item = data["readings"][0]
    assert set(item) == {"seq", "read_at", "printer", "address", "reading"}
    assert item["reading"]["supplies"][0]["class"] == "consumed"


def test_times_are_utc_whatever_offset_was_sent() -> None:
    data = _body(sent_at="2026-01-05T11:00:00+01:00")
    assert _decode(data).sent_at == NOW  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (
            ("readings", 3, "reading", "supplies", 0, "level"),
            "1570",
            "readings[3].reading.supplies[0].level",
        ),
        (("readings", 0, "seq"), 0, "readings[0].seq"),
        (("readings", 1, "read_at"), "2026-01-05T10:00:00", "readings[1].read_at"),
        (("readings", 2, "address"), "192.0.2.1", "readings[2].address"),
        (
            ("readings", 0, "reading", "status", "errors"),
            "lowToner",
            "readings[0].reading.status.errors",
        ),
        (("heartbeat", "printers", "not-a-printer"), -1, "heartbeat.printers.not-a-printer"),
        (("heartbeat", "spool_depth"), 1.5, "heartbeat.spool_depth"),
        (("batch_id",), "not-a-uuid", "batch_id"),
        (("agent_id",), 7, "agent_id"),
    ],
)
def test_wrong_field_is_named_by_its_path(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    data = _body()
    target: object = data
    for part in path[:-1]:
        target = target[part]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    with pytest.raises(InvalidMessage) as caught:
        _decode(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")


def test_unknown_field_is_an_error() -> None:
    data = _body()
    data["readings"][0]["reading"]["supplies"][1]["colour_name"] = "black"  # type: ignore[index]
    with pytest.raises(InvalidMessage, match="unknown field") as caught:
        _decode(data)
    assert caught.value.field == "readings[0].reading.supplies[1].colour_name"


def test_missing_field_is_an_error() -> None:
    data = _body()
    del data["heartbeat"]["spool_depth"]  # type: ignore[attr-defined]
    with pytest.raises(InvalidMessage) as caught:
        _decode(data)
    assert caught.value.field == "heartbeat.spool_depth"


def test_other_schema_version_is_named_before_other_errors() -> None:
    with pytest.raises(UnsupportedSchema) as caught:
        _decode({"schema": 2, "agent": "x", "items": []})
    assert caught.value.field == "schema"


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"not json", b"[1,"])
def test_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedJSON):
        decode_batch(body)


def test_json_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidMessage):
        decode_batch(b"[1, 2]")


def test_max_readings_is_a_setting() -> None:
    data = _body()
    assert _decode(data, max_readings=5)
    with pytest.raises(InvalidMessage, match="more than the 4 allowed") as caught:
        _decode(data, max_readings=4)
    assert caught.value.field == "readings"


def test_seqs_increase_within_a_batch() -> None:
    batch = with_reading(make_batch(AGENT, range(1, 6), NOW), 2, seq=2)
    with pytest.raises(InvalidMessage) as caught:
        decode_batch(encode_batch(batch))
    assert caught.value.field == "readings[2].seq"


def test_a_reading_without_serial_is_valid_form() -> None:
    # Attributing it to a device is the collector's call (R3), not the wire format's.
    batch = make_batch(AGENT, [1], NOW)
    data = json.loads(encode_batch(batch))
    data["readings"][0]["reading"]["serial"] = None
    assert _decode(data).readings[0].reading.serial is None  # type: ignore[attr-defined]


def test_every_wire_error_is_permanent() -> None:
    assert WireError.permanent


def test_reading_schema_version_is_checked_where_it_is() -> None:
    data = _body()
    data["readings"][2]["reading"]["schema"] = 2  # type: ignore[index]
    with pytest.raises(InvalidMessage) as caught:
        _decode(data)
    assert caught.value.field == "readings[2].reading.schema"


def test_enrollment_messages_round_trip_and_name_wrong_fields() -> None:
    from wire.enroll import EnrollRequest, KeyRotated, decode_message, encode_message

    request = EnrollRequest("asr1_x", "A" * 43 + "=", "0.1.0", "edge-1")
    assert decode_message(EnrollRequest, encode_message(request)) == request
    rotated = KeyRotated("0" * 16, "1" * 16)
    assert decode_message(KeyRotated, encode_message(rotated)) == rotated
    with pytest.raises(InvalidMessage) as caught:
        decode_message(EnrollRequest, b'{"token": "t", "public_key": 1}')
    assert caught.value.field == "public_key"


def test_the_clock_offset_is_optional_and_written_only_when_there_is_one() -> None:
    plain = make_batch(AGENT, [1], NOW)
    assert "clock_offset_seconds" not in json.loads(encode_batch(plain))["heartbeat"]
    assert decode_batch(encode_batch(plain)).heartbeat.clock_offset_seconds is None  # old form
    skewed = replace(plain, heartbeat=replace(plain.heartbeat, clock_offset_seconds=-86400.0))
    body = encode_batch(skewed)
    assert json.loads(body)["heartbeat"]["clock_offset_seconds"] == -86400.0
    assert decode_batch(body) == skewed
    data = json.loads(body)
    data["heartbeat"]["clock_offset_seconds"] = "-86400"
    with pytest.raises(InvalidMessage) as err:
        _decode(data)
    assert err.value.field == "heartbeat.clock_offset_seconds"


def test_the_encoder_refuses_nan_and_writes_numbers_as_held() -> None:
    batch = make_batch(AGENT, [1], NOW)
    supply = batch.readings[0].reading.supplies[0]
    reading = replace(batch.readings[0].reading, supplies=(replace(supply, percent=float("nan")),))
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_batch(with_reading(batch, 0, reading=reading))
    reading = replace(reading, supplies=(replace(supply, grams_left=157),))
    written = json.loads(encode_batch(with_reading(batch, 0, reading=reading)))
    assert written["readings"][0]["reading"]["supplies"][0]["grams_left"] == 157
    assert b'"grams_left":157,' in encode_batch(with_reading(batch, 0, reading=reading))


def test_every_printer_count_is_required_on_the_wire() -> None:
    # The record's defaults are for the agent that builds one, not for the JSON.
    data = _body()
    del data["heartbeat"]["printers"]["not-a-printer"]  # type: ignore[index]
    with pytest.raises(InvalidMessage, match="Field required") as caught:
        _decode(data)
    assert caught.value.field == "heartbeat.printers.not-a-printer"
