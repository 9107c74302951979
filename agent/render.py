"""A printer reading as a table for people (the CLI's default output)."""

from __future__ import annotations

from wire.reading import PrinterReading


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_table(reading: PrinterReading) -> str:
    """Identity and status lines, then one line per supply."""
    s = reading.status
    lines = [
        f"Model     {_cell(reading.model)}",
        f"Serial    {_cell(reading.serial)}"
        + (f"  (from {reading.serial_source})" if reading.serial_source else ""),
        f"Vendor    {_cell(reading.vendor)}   sysObjectID {_cell(reading.sys_object_id)}",
        f"Pages     {_cell(reading.page_count)}   uptime {_cell(reading.uptime_seconds)} s",
        f"Status    device {_cell(s.device)}, printer {_cell(s.printer)}, power {s.power}"
        + (f", errors: {', '.join(s.errors)}" if s.errors else ""),
        "",
    ]
    header = ("index", "kind", "colour", "percent", "quality", "level/max", "unit", "description")
    rows = [header]
    for sup in reading.supplies:
        pct = (
            "-"
            if sup.percent is None
            else f"{sup.percent:g}%" + (" full" if sup.receptacle else "")
        )
        rows.append(
            (
                sup.index,
                sup.kind,
                _cell(sup.colour),
                pct,
                sup.quality,
                f"{_cell(sup.level)}/{_cell(sup.max_capacity)}",
                _cell(sup.unit),
                _cell(sup.description),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for note in reading.notes:
        lines.append(f"note: {note}")
    for sup in reading.supplies:
        for note in sup.notes:
            lines.append(f"note {sup.index}: {note}")
    return "\n".join(lines)
