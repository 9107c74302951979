"""One printer read over any Session: which objects, in how few round trips.

A v2c/v3 read is normally two round trips: one GETBULK that carries the system scalars as
non-repeaters and walks the supplies and colorant columns side by side, then one GET for the
objects indexed by the printer's hrDeviceIndex plus the vendor's fallbacks. v1 walks with
GETNEXT. The result is raw (`RawRead`); `agent.decode` gives it meaning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from agent.profile import Profile, Vendor
from agent.snmp import ber
from agent.snmp.ber import Oid, Value, format_oid
from agent.snmp.errors import NotAPrinter, SnmpProtocolError, TooBig
from agent.snmp.session import Session

MAX_WALK_ROUNDS = 64  # a supplies table longer than this many rounds is a broken agent


@dataclass
class RawRead:
    """What the printer answered, keyed by object name (and row index for tables)."""

    scalars: dict[str, Value] = field(default_factory=dict)
    per_device: dict[str, Value] = field(default_factory=dict)
    per_marker: dict[str, Value] = field(default_factory=dict)
    supplies: dict[str, dict[str, Value]] = field(default_factory=dict)  # "h.i" -> column
    colorants: dict[str, Value] = field(default_factory=dict)  # "h.c" -> value
    vendor: Vendor | None = None
    vendor_values: dict[Oid, Value] = field(default_factory=dict)
    hr_device_index: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass
class _Column:
    name: str
    root: Oid
    last: Oid
    rows: dict[Oid, Value] = field(default_factory=dict)
    done: bool = False

    def take(self, oid: Oid, value: Value) -> bool:
        """Record one successor; False when the column is finished."""
        if isinstance(value, ber.NoValue) or oid[: len(self.root)] != self.root:
            self.done = True
            return False
        if oid <= self.last:
            raise SnmpProtocolError(
                f"agent returned {format_oid(oid)} after "
                f"{format_oid(self.last)}: OIDs not increasing"
            )
        self.rows[oid[len(self.root) :]] = value
        self.last = oid
        return True


async def _walk(
    session: Session, columns: list[_Column], non_repeaters: list[Oid], max_repetitions: int
) -> list[ber.VarBind]:
    """Walk the columns side by side; returns the non-repeaters' answers."""
    first: list[ber.VarBind] = []
    pending_nr = list(non_repeaters)
    for _ in range(MAX_WALK_ROUNDS):
        active = [c for c in columns if not c.done]
        if not active and not pending_nr:
            return first
        if not session.bulk:
            answer = await session.get_next([*pending_nr, *(c.last for c in active)])
            asked, pending_nr = len(pending_nr), []
            if asked:
                first = answer[:asked]
            for col, (oid, value) in zip(active, answer[asked:]):
                col.take(oid, value)
            continue
        try:
            answer = await session.get_bulk(pending_nr, [c.last for c in active], max_repetitions)
        except TooBig:
            if max_repetitions == 1:
                raise
            max_repetitions = max(1, max_repetitions // 2)
            continue
        if len(answer) < len(pending_nr):
            raise SnmpProtocolError("GETBULK answer shorter than its non-repeaters")
        if pending_nr:
            first, answer, pending_nr = answer[: len(pending_nr)], answer[len(pending_nr) :], []
        if not answer and active:
            raise SnmpProtocolError("GETBULK answer with no rows")
        alive = [True] * len(active)
        for k, (oid, value) in enumerate(answer):
            j = k % len(active)
            if alive[j]:
                alive[j] = active[j].take(oid, value)
    raise SnmpProtocolError(f"walk did not end after {MAX_WALK_ROUNDS} rounds")


def _index(suffix: Oid) -> str:
    return format_oid(suffix)


async def read_printer(session: Session, profile: Profile, max_repetitions: int = 10) -> RawRead:
    """Read one printer's identity, counters, status and supplies, raw."""
    raw = RawRead()
    scalar_names = list(profile.scalars)
    scalar_oids = [profile.scalars[n] for n in scalar_names]
    columns = [
        _Column(name, profile.supplies_table + (number,), profile.supplies_table + (number,))
        for name, number in profile.supply_columns.items()
    ]
    colorants = _Column("colorant", profile.colorant_value, profile.colorant_value)
    # The scalars' parents as non-repeaters: GETNEXT of "sysDescr" answers "sysDescr.0".
    nr_answer = await _walk(
        session, [*columns, colorants], [oid[:-1] for oid in scalar_oids], max_repetitions
    )
    for name, oid, (got, value) in zip(scalar_names, scalar_oids, nr_answer):
        raw.scalars[name] = value if got == oid else ber.NO_SUCH_OBJECT_VALUE

    for col in columns:
        for suffix, value in col.rows.items():
            raw.supplies.setdefault(_index(suffix), {})[col.name] = value
    raw.colorants = {_index(s): v for s, v in colorants.rows.items()}

    devices = Counter(int(index.split(".")[0]) for index in raw.supplies)
    raw.hr_device_index = devices.most_common(1)[0][0] if devices else 1
    h = raw.hr_device_index

    sys_object_id = raw.scalars.get("sysObjectID")
    raw.vendor = profile.vendor_for(sys_object_id if isinstance(sys_object_id, tuple) else None)
    device_names = list(profile.per_device)
    marker_names = list(profile.per_marker)
    vendor_oids = raw.vendor.oids() if raw.vendor else []
    oids = (
        [profile.per_device[n] + (h,) for n in device_names]
        + [profile.per_marker[n] + (h, 1) for n in marker_names]
        + vendor_oids
    )
    answer = await session.get(oids)
    if len(answer) != len(oids):
        raise SnmpProtocolError(f"asked {len(oids)} objects, got {len(answer)}")
    values = [value for _, value in answer]
    raw.per_device = dict(zip(device_names, values))
    raw.per_marker = dict(zip(marker_names, values[len(device_names) :]))
    raw.vendor_values = dict(zip(vendor_oids, values[len(device_names) + len(marker_names) :]))

    printer_status = raw.per_device.get("hrPrinterStatus")
    if not raw.supplies and (printer_status is None or isinstance(printer_status, ber.NoValue)):
        descr = raw.scalars.get("sysDescr")
        what = descr.decode("utf-8", "replace")[:60] if isinstance(descr, bytes) else "device"
        raise NotAPrinter(
            f"{what!r} answers SNMP but has no Printer-MIB supplies table or printer status"
        )
    return raw
