"""The collector's tables, one definition for SQLite and PostgreSQL: the one place to import them.

Is: `metadata` with every table on it (Alembic's env and `create_all` read it here), and each
table by name; the tables are declared per area in collector.store.tables.
Changed only together with a migration in `migrations/versions` (a test compares the two).
Uniqueness that ingest relies on is a constraint here, never a check in code: readings are
unique per (agent_id, seq), batches per (agent_id, batch_id), nonces per (key_id, nonce).
Is not: any query (the store's other modules).
"""

from __future__ import annotations

from collector.store.tables.columns import NAMING as NAMING
from collector.store.tables.columns import Id as Id
from collector.store.tables.columns import Json as Json
from collector.store.tables.columns import UTCDateTime as UTCDateTime
from collector.store.tables.columns import metadata as metadata
from collector.store.tables.columns import sqlite_time as sqlite_time
from collector.store.tables.fleet import agent_keys as agent_keys
from collector.store.tables.fleet import agents as agents
from collector.store.tables.fleet import customers as customers
from collector.store.tables.fleet import enroll_tokens as enroll_tokens
from collector.store.tables.fleet import nonces as nonces
from collector.store.tables.fleet import sites as sites
from collector.store.tables.ingest import QUARANTINE_KINDS as QUARANTINE_KINDS
from collector.store.tables.ingest import batches as batches
from collector.store.tables.ingest import devices as devices
from collector.store.tables.ingest import heartbeats as heartbeats
from collector.store.tables.ingest import quarantine as quarantine
from collector.store.tables.ingest import readings as readings
from collector.store.tables.ingest import supplies as supplies
from collector.store.tables.notifications import notifications as notifications
from collector.store.tables.orders import SHIPMENT_STATUSES as SHIPMENT_STATUSES
from collector.store.tables.orders import fulfilment_requests as fulfilment_requests
from collector.store.tables.orders import orders as orders
from collector.store.tables.orders import shipment_events as shipment_events
from collector.store.tables.orders import shipments as shipments
from collector.store.tables.orders import warehouse_nonces as warehouse_nonces
from collector.store.tables.people import api_tokens as api_tokens
from collector.store.tables.people import audit_log as audit_log
from collector.store.tables.people import login_throttle as login_throttle
from collector.store.tables.people import portal_sessions as portal_sessions
from collector.store.tables.people import users as users
from collector.store.tables.replenish import asr_devices as asr_devices
from collector.store.tables.replenish import asr_supplies as asr_supplies
from collector.store.tables.replenish import contacts as contacts
from collector.store.tables.replenish import device_states as device_states
from collector.store.tables.replenish import plan_chunks as plan_chunks
from collector.store.tables.replenish import plan_runs as plan_runs
from collector.store.tables.replenish import plan_work as plan_work
from collector.store.tables.replenish import supply_events as supply_events
from collector.store.tables.replenish import supply_tracks as supply_tracks
