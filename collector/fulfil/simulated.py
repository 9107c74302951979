"""The built-in simulated warehouse: what becomes of each request, decided from its id.

Is: a pure, deterministic model of a warehouse. A request received at `t` is either shipped
`ship_after_hours` later, or first backordered at `t` (a share `backorder_share` of them,
drawn from `random.Random` seeded with `seed` and the shipment's id, so a shipment's fate
does not depend on the order requests come in) and shipped `backorder_days` later; it is
delivered `deliver_after_hours` after it ships. Tracking numbers are `SIM-<reference>` with
the carrier "SimPost". Nothing reads the clock: `now` is a parameter.
Two drivers use it: in mode "simulated" the collector applies the updates itself
(collector.fulfil.simulated_mode.apply_simulated), recomputing each shipment's fate from the
database's acknowledged requests so nothing is lost across a restart; and the HTTP warehouse
of collector.fulfil.simulated_app, which takes real signed webhooks and answers with real
signed updates (the demo and the tests).
Is not: a stock model (no quantities, no partial shipments), nor I/O of any kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic_core import from_json

from collector.config import WarehouseSection
from collector.errors import InvalidRequest
from collector.fulfilment import VERSION, Update, reference

CARRIER = "SimPost"
# The order of a shipment's steps: an update whose status ranks at or below the shipment's
# current one has happened already (or was overtaken, by the helpdesk for instance).
_RANK = {"placed": 0, "backordered": 1, "shipped": 2, "delivered": 3, "installed": 4}


class Received(Protocol):
    """What the warehouse needs of a request: which shipment it is (a `message.Request`)."""

    @property
    def shipment_id(self) -> int: ...


@dataclass(frozen=True)
class Order:
    """A request as the simulated warehouse reads it off the wire."""

    shipment_id: int
    reference: str
    serials: tuple[str, ...]  # R3: one per line, printed on the label


@dataclass(frozen=True)
class Fate:
    """What the warehouse does with one request: its updates, in time order."""

    shipment_id: int
    received_at: datetime
    backordered: bool
    ships_at: datetime
    delivered_at: datetime

    @property
    def reference(self) -> str:
        return reference(self.shipment_id)

    def updates(self) -> tuple[Update, ...]:
        """Backordered (if it is), shipped with tracking, delivered."""
        steps = []
        if self.backordered:
            steps.append(
                Update(
                    self.shipment_id,
                    "backordered",
                    self.received_at,
                    expected_at=self.delivered_at,
                    note=f"back in stock on {self.ships_at.date().isoformat()}",
                )
            )
        steps.append(
            Update(
                self.shipment_id,
                "shipped",
                self.ships_at,
                tracking=f"SIM-{self.reference}",
                carrier=CARRIER,
                expected_at=self.delivered_at,
            )
        )
        steps.append(Update(self.shipment_id, "delivered", self.delivered_at))
        return tuple(steps)


@dataclass
class _Story:
    updates: tuple[Update, ...]
    told: int = 0  # how many of them `due` has returned


@dataclass
class SimulatedWarehouse:
    """The simulated warehouse with the `[warehouse]` section's settings."""

    settings: WarehouseSection
    _stories: dict[int, _Story] = field(default_factory=dict)

    def fate(self, shipment_id: int, received_at: datetime) -> Fate:
        """The fate of a request for this shipment received at `received_at` (pure)."""
        s = self.settings
        draw = random.Random(f"asr-simulated-warehouse:{s.seed}:{shipment_id}").random()
        backordered = draw < s.backorder_share
        ships_at = received_at + timedelta(hours=s.ship_after_hours)
        if backordered:
            ships_at += timedelta(days=s.backorder_days)
        return Fate(
            shipment_id=shipment_id,
            received_at=received_at,
            backordered=backordered,
            ships_at=ships_at,
            delivered_at=ships_at + timedelta(hours=s.deliver_after_hours),
        )

    def receive(self, request: Received, now: datetime) -> bool:
        """Take a request at `now`; False (and nothing changes) if this shipment's is here."""
        if request.shipment_id in self._stories:
            return False
        self._stories[request.shipment_id] = _Story(self.fate(request.shipment_id, now).updates())
        return True

    def due(self, now: datetime) -> list[Update]:
        """The updates whose time has come by `now`, in time order, each returned once."""
        out = []
        for story in self._stories.values():
            while story.told < len(story.updates) and story.updates[story.told].at <= now:
                out.append(story.updates[story.told])
                story.told += 1
        return sorted(out, key=lambda u: (u.at, u.shipment_id, _RANK[u.status]))

    def holds(self, shipment_id: int) -> bool:
        """Whether a request for this shipment was received."""
        return shipment_id in self._stories

    @property
    def received(self) -> int:
        """How many distinct shipments were received."""
        return len(self._stories)

    def following(
        self, shipment_id: int, received_at: datetime, status: str, now: datetime
    ) -> list[Update]:
        """The updates of a shipment now in `status` that are due at `now` and come after it.

        What the collector's own driver applies: the fate is recomputed from the request's
        acknowledgement time, so it needs no memory of what it did before.
        """
        rank = _RANK.get(status)
        if rank is None:  # cancelled: the warehouse does nothing more with it
            return []
        return [
            u
            for u in self.fate(shipment_id, received_at).updates()
            if _RANK[u.status] > rank and u.at <= now
        ]


def read_request(body: bytes) -> Order:
    """The shipment and serials of a request's JSON body; InvalidRequest names the field."""
    try:
        data: Any = from_json(body)
    except ValueError as err:
        raise InvalidRequest(f"body is not JSON: {err}", "body") from err
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object", "body")
    if data.get("version") != VERSION or data.get("type") != "fulfilment.request":
        raise InvalidRequest(f"not a version {VERSION} fulfilment.request", "type")
    shipment_id = data.get("shipment_id")
    if not isinstance(shipment_id, int) or isinstance(shipment_id, bool) or shipment_id < 1:
        raise InvalidRequest("shipment_id must be a positive integer", "shipment_id")
    if data.get("reference") != reference(shipment_id):
        raise InvalidRequest(f"reference must be {reference(shipment_id)}", "reference")
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        raise InvalidRequest("lines must be a non-empty list", "lines")
    serials = []
    for line in lines:
        serial = line.get("serial") if isinstance(line, dict) else None
        if not isinstance(serial, str) or not serial:
            raise InvalidRequest("every line names its device's serial (R3)", "lines")
        serials.append(serial)
    return Order(shipment_id, reference(shipment_id), tuple(serials))
