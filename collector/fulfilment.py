"""The fulfilment interface's two messages, one canonical encoder and one parser each.

A *request* tells the warehouse what to ship, where and for which device (R3: every line
names the device's serial for the label); it is fixed when the order is placed, with the
site's address of that moment (R18). An *update* is the warehouse's word on a shipment:
backordered, shipped (with tracking), delivered, or cancelled. docs/fulfilment.md documents
both; `version` changes when their meaning does.

Is: the warehouse contract, below the collector's packages (docs/architecture.md, Layers):
the store writes requests in it when a shipment is placed, collector.fulfil sends them and
reads updates, the portal and the mails show references.
Is not: the sending or the receiving (collector.fulfil).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic_core import from_json, to_json

from collector.errors import InvalidRequest

VERSION = 1
UPDATE_STATUSES = ("backordered", "shipped", "delivered", "cancelled")


@dataclass(frozen=True)
class Line:
    """One supply for one device (R3)."""

    serial: str
    supply_id: str
    sku: str
    quantity: int
    reason: str


@dataclass(frozen=True)
class Request:
    """What the warehouse is asked to ship."""

    shipment_id: int
    placed_at: datetime
    customer_id: str
    customer_name: str | None
    site: str
    address: str | None
    contact_name: str | None
    contact_email: str
    lines: tuple[Line, ...]

    @property
    def reference(self) -> str:
        """The shipment's reference on labels and in every message: ASR-000123."""
        return reference(self.shipment_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "type": "fulfilment.request",
            "shipment_id": self.shipment_id,
            "reference": self.reference,
            "placed_at": _time(self.placed_at),
            "customer": {"id": self.customer_id, "name": self.customer_name},
            "ship_to": {
                "site": self.site,
                "address": self.address,
                "contact": {"name": self.contact_name, "email": self.contact_email},
            },
            "lines": [
                {
                    "serial": line.serial,
                    "supply_id": line.supply_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "label": f"For device {line.serial} only",  # R3
                }
                for line in self.lines
            ],
        }

    def encode(self) -> bytes:
        """The canonical JSON body (sorted keys, no spaces), as signed and sent."""
        return to_json(_sorted(self.to_dict()))


@dataclass(frozen=True)
class Update:
    """The warehouse's news of one shipment."""

    shipment_id: int
    status: str
    at: datetime
    tracking: str | None = None
    carrier: str | None = None
    expected_at: datetime | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": VERSION,
            "type": "fulfilment.update",
            "shipment_id": self.shipment_id,
            "status": self.status,
            "at": _time(self.at),
        }
        for key in ("tracking", "carrier", "note"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.expected_at is not None:
            body["expected_at"] = _time(self.expected_at)
        return body

    def encode(self) -> bytes:
        return to_json(_sorted(self.to_dict()))

    @classmethod
    def decode(cls, body: bytes) -> Update:
        """An update from its JSON body; InvalidRequest names the wrong field."""
        try:
            data = from_json(body)
        except ValueError as err:
            raise InvalidRequest(f"body is not JSON: {err}", "body") from err
        if not isinstance(data, dict):
            raise InvalidRequest("body must be a JSON object", "body")
        allowed = {
            "version",
            "type",
            "shipment_id",
            "status",
            "at",
            "tracking",
            "carrier",
            "expected_at",
            "note",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]!r}", unknown[0])
        if data.get("version") != VERSION:
            raise InvalidRequest(f"version must be {VERSION}", "version")
        if data.get("type") != "fulfilment.update":
            raise InvalidRequest("type must be 'fulfilment.update'", "type")
        shipment_id = data.get("shipment_id")
        if not isinstance(shipment_id, int) or isinstance(shipment_id, bool) or shipment_id < 1:
            raise InvalidRequest("shipment_id must be a positive integer", "shipment_id")
        status = data.get("status")
        if status not in UPDATE_STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(UPDATE_STATUSES)}", "status")
        texts = {}
        for key in ("tracking", "carrier", "note"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise InvalidRequest(f"{key} must be a string of at most 200 characters", key)
            texts[key] = value
        if status == "shipped" and not texts["tracking"]:
            raise InvalidRequest("a shipped update needs its tracking number", "tracking")
        expected = data.get("expected_at")
        return cls(
            shipment_id=shipment_id,
            status=status,
            at=_parse_time(data.get("at"), "at"),
            tracking=texts["tracking"],
            carrier=texts["carrier"],
            expected_at=None if expected is None else _parse_time(expected, "expected_at"),
            note=texts["note"],
        )


def reference(shipment_id: int) -> str:
    """A shipment's reference: ASR- and six or more digits."""
    return f"ASR-{shipment_id:06d}"


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be an ISO 8601 time with its zone", field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidRequest(f"{field} {value!r} is not an ISO 8601 time", field) from err
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{field} {value!r} has no time zone", field)
    return parsed.astimezone(timezone.utc)
