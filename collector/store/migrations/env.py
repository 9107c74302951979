"""Alembic's entry point: migrate on the connection that collector.store.migrate hands over."""

from __future__ import annotations

from alembic import context

from collector.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `asr-collector migrate`, not the alembic command")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
