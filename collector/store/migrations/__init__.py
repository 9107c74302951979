"""Alembic migrations of the collector's schema; run by `asr-collector migrate` and `serve`."""
