"""The replenishment engine's tables (R4 to R16): registration and the daily plan's state.

Is: which devices are in ASR, where they ship and who is told (contacts); each registered
supply naming the reading's supply it is; the supplies' tracks and forecasts, the plan runs,
supply events (installs) and device states.
Is not: what was ordered and shipped (collector.store.tables.orders).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collector.store.tables.columns import Id, Json, UTCDateTime, metadata

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("name", String(64), nullable=False),  # the customer's id for the contact
    Column("email", Text, nullable=False),
    Column("display_name", Text),
    Column("language", String(8)),  # it, fr, en; NULL: the customer's
    UniqueConstraint("customer_id", "name"),
)

asr_devices = Table(
    "asr_devices",
    metadata,
    Column("serial", Text, primary_key=True),  # R3
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False),  # R10, R18
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),  # R10, R18
    Column("model", Text),
    Column("registered_at", UTCDateTime, nullable=False),  # R4
    Index("ix_asr_devices_contact_id", "contact_id"),  # the daily run's chunks (issue 16)
)

asr_supplies = Table(
    "asr_supplies",
    metadata,
    Column("serial", Text, ForeignKey("asr_devices.serial"), nullable=False),
    Column("supply_id", String(64), nullable=False),
    Column("supply_index", String(32), nullable=False),  # readings' supplies.supply_index
    Column("kind", String(16), nullable=False),
    Column("colour", Text),
    Column("sku", Text),  # the part number; NULL: part number needed (docs/catalogue.md)
    Column("capacity_grams", Float),
    Column("rated_yield", Integer),  # pages the cartridge is rated for (catalogue), if known
    PrimaryKeyConstraint("serial", "supply_id"),
    UniqueConstraint("serial", "supply_index"),
    CheckConstraint("kind IN ('toner', 'ink', 'waste')", name="kind"),  # R5
)

supply_tracks = Table(
    "supply_tracks",
    metadata,
    Column("serial", Text, nullable=False),
    Column("supply_id", String(64), nullable=False),
    # collector.replenish.track.Track.to_json: its daily usage packed, with its running sums (r0011)
    Column("track", Json, nullable=False),
    Column("forecast", Json, nullable=False),  # Forecast.figures() at updated_at
    # R17: when the installed and shipped cartridges run out at the rate (days left = this
    # less now); NULL: not known, or no usage. Holds until the track changes.
    Column("runs_out_at", UTCDateTime),
    Column("balance", Integer, nullable=False),  # R13
    Column("updated_at", UTCDateTime, nullable=False),  # the run that last changed it
    PrimaryKeyConstraint("serial", "supply_id"),
    ForeignKeyConstraint(
        ["serial", "supply_id"], ["asr_supplies.serial", "asr_supplies.supply_id"]
    ),
)

plan_runs = Table(
    "plan_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("received_until", UTCDateTime, nullable=False),  # readings up to here were applied
    Column("counts", Json, nullable=False),
)

# The daily run in chunks (issue 16, collector.store.plan_chunks): the run's shared work...
plan_work = Table(
    "plan_work",
    metadata,
    Column("run_id", Id, ForeignKey("plan_runs.id"), primary_key=True),
    Column("since", UTCDateTime, nullable=False),  # readings received after this are new
    Column("yields", Json, nullable=False),  # the fleet's pages per cartridge, by part number
    Column("chunks", Integer, nullable=False),
    Column("groups", Integer, nullable=False),  # (customer, contact) pairs at the start
    Column("done_at", UTCDateTime),  # NULL: a chunk is not planned yet
)

# ...and its chunks: the devices whose contact id is in (after_contact, through_contact].
plan_chunks = Table(
    "plan_chunks",
    metadata,
    Column("run_id", Id, ForeignKey("plan_work.run_id"), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("after_contact", BigInteger, nullable=False),
    Column("through_contact", BigInteger),  # NULL: to the end
    Column("groups", Integer, nullable=False),
    Column("devices", Integer, nullable=False),
    Column("done_at", UTCDateTime),  # set in the transaction that wrote the chunk's outcome
    Column("worker", Text),
    Column("counts", Json),
    PrimaryKeyConstraint("run_id", "chunk"),
)


supply_events = Table(
    "supply_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("serial", Text, nullable=False),
    Column("supply_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Json, nullable=False),
    Column("plan_run_id", Id, ForeignKey("plan_runs.id"), nullable=False),
    ForeignKeyConstraint(
        ["serial", "supply_id"], ["asr_supplies.serial", "asr_supplies.supply_id"]
    ),
    CheckConstraint("kind IN ('install', 'early-replacement')", name="kind"),  # R13
    Index("ix_supply_events_serial_at", "serial", "at"),
)

device_states = Table(
    "device_states",
    metadata,
    Column("serial", Text, ForeignKey("asr_devices.serial"), primary_key=True),
    Column("state", String(24), nullable=False),  # collector.replenish.lifecycle.STATES
    Column("reason", Text, nullable=False),
    Column("high_usage", Boolean, nullable=False),  # R6
    Column("since", UTCDateTime, nullable=False),
    Column("notices_sent", Integer, nullable=False),  # R16: for the current disconnection
    Column("updated_at", UTCDateTime, nullable=False),
)
