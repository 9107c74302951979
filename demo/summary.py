"""The demo's closing summary: what a run left, a line per part, in a customer's words.

Is: the devices and their states, the readings stored, the orders and the cartridges the
customers put in, the printer-days out of toner, the shipments (and how many were
backordered), the emails by language and kind, a line per printer whose gauge is not exact
(issue 14) and the helpdesk's part numbers; figures read from the store as records
(collector.store.read_summary) and from the run itself (demo.days.Demo).
Is not: a query (the store's), nor the words for a state or an email (demo.words).
"""

from __future__ import annotations

from collections import Counter

from collector.store.read_summary import printer_outcomes, run_figures
from demo.days import Demo
from demo.words import DEVICE_WORDS, EMAIL_WORDS, counts

# How the summary names a gauge that is not exact (demo.printers).
GAUGE_NAMES = {"some-remaining": '"some remaining"', "steps:25": "steps of 25 %"}


async def summary(demo: Demo) -> list[str]:
    """The closing figures: devices, readings, orders, shipments, emails."""
    figures = await run_figures(demo.db)
    mails = demo.sink.mailbox.mails
    languages = Counter(m.language for m in mails)
    registered = [p for p in demo.printers if p is not demo.unregistered]
    dry = sum(p.stock_out_days for p in registered)
    return [
        f"devices    {len(demo.printers)} printers, {len(registered)} registered:"
        f" {counts(figures.states, DEVICE_WORDS)}",
        f"readings   {figures.readings} stored by the collector",
        f"orders     {figures.lines} order lines, {figures.cartridges} cartridges;"
        f" {demo.installs} put in by the customers",
        f"toner      registered printers out of toner: {dry} printer-day(s);"
        f" {demo.unregistered.serial}, not registered, ran dry for"
        f" {demo.unregistered.stock_out_days} working day(s)",
        f"shipments  {sum(figures.shipments.values())}:"
        f" {counts(figures.shipments)}; {figures.backordered} were backordered",
        f"emails     {len(mails)} received by the SMTP sink ({counts(languages)}):"
        f" {counts(figures.notices, EMAIL_WORDS)}",
        *await gauges(demo),
        f"helpdesk   {demo.answered} part number(s) given for the SimLaser M460dn, a model no"
        f" catalogue knows (its shipments waited for them); {demo.needed} supply(ies) in"
        " the queue for one",
    ]


async def gauges(demo: Demo) -> list[str]:
    """A line per printer whose gauge is not exact: what ASR made of it (issue 14)."""
    odd = [p for p in demo.printers if p.gauge != "exact" and p is not demo.unregistered]
    found = await printer_outcomes(demo.db, (p.serial for p in odd))
    return [
        f"gauge      {p.serial} ({GAUGE_NAMES.get(p.gauge, p.gauge)}):"
        f" {outcome.cartridges} cartridge(s) ordered, {p.stock_out_days} day(s) out;"
        f" black: {outcome.why or 'no forecast yet'}"
        for p, outcome in zip(odd, found)
    ]
