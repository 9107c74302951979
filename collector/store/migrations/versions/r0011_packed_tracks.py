"""Packed tracks (issue 16): a track's daily usage is stored packed, not as a JSON list.

`supply_tracks.track` stays a JSON object (collector.replenish.track.Track.to_json); its
`usage`, and its page counter's (`meter.usage`), become base64 of little-endian float64s,
NaN for an unknown day, where they were a JSON list of numbers and nulls. float64 keeps every
value exactly. Upgrading converts every stored track, downgrading converts back (and drops
`usage_sums`, the windows' running sums the collector adds when it next moves a track); a
track already in the new form (or the old, on the way down) is left as it is, and the
collector reads either form, so a collector upgraded mid-run is safe.
The format is written out here, not imported, so this migration stays what it was when the
code moves on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BATCH = 2_000  # tracks read and written at a time

_tracks = sa.table(
    "supply_tracks", sa.column("serial"), sa.column("supply_id"), sa.column("track", Json)
)


def pack(usage: Any) -> Any:
    """A JSON list of numbers and nulls as base64 of little-endian float64 (NaN: null)."""
    if not isinstance(usage, list):
        return usage  # packed already
    values = [math.nan if u is None else float(u) for u in usage]
    return base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode("ascii")


def unpack(usage: Any) -> Any:
    """Back to the JSON list of numbers and nulls."""
    if not isinstance(usage, str):
        return usage  # a list already
    raw = base64.b64decode(usage)
    return [None if v != v else v for v in struct.unpack(f"<{len(raw) // 8}d", raw)]


def _convert(track: dict[str, Any], each: Callable[[Any], Any]) -> dict[str, Any]:
    out = {**track, "usage": each(track.get("usage"))}
    if each is unpack:
        out.pop("usage_sums", None)  # the running sums the packed form carries
    meter = track.get("meter")
    if isinstance(meter, dict) and "usage" in meter:
        out["meter"] = {**meter, "usage": each(meter["usage"])}
    return out


def _rewrite(each: Callable[[Any], Any]) -> None:
    """Every stored track converted, in batches in key order."""
    conn = op.get_bind()
    after: tuple[str, str] | None = None
    key = sa.tuple_(_tracks.c.serial, _tracks.c.supply_id)
    while True:
        query = sa.select(_tracks.c.serial, _tracks.c.supply_id, _tracks.c.track)
        if after is not None:
            query = query.where(key > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        rows = conn.execute(query.order_by(*key.clauses).limit(BATCH)).all()
        if not rows:
            return
        changed = [
            {"s": row.serial, "i": row.supply_id, "t": new}
            for row in rows
            if (new := _convert(row.track, each)) != row.track
        ]
        if changed:
            conn.execute(
                _tracks.update()
                .where(_tracks.c.serial == sa.bindparam("s"))
                .where(_tracks.c.supply_id == sa.bindparam("i"))
                .values(track=sa.bindparam("t", type_=Json)),
                changed,
            )
        after = (rows[-1].serial, rows[-1].supply_id)


def upgrade() -> None:
    _rewrite(pack)


def downgrade() -> None:
    _rewrite(unpack)
