"""The collector's storage: SQLAlchemy Core on SQLite (embedded) or PostgreSQL, one schema."""
