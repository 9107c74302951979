"""The column types and the metadata every table of the collector is declared on.

Is: `metadata` (with the constraint naming convention the migrations use), the UTC datetime
type for both databases, the 64-bit id and the JSON type.
Is not: any table (collector.store.tables.*), nor the place to import tables from
(collector.store.schema gathers them all).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases (SQLite keeps naive text, so it is UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def sqlite_time(value: datetime) -> str:
    """The text UTCDateTime stores on SQLite, for rows the SQLite writer binds itself."""
    # SQLAlchemy's SQLite DATETIME format, always with microseconds: as text they sort in time
    # order, which the devices upsert relies on (a test compares it with SQLAlchemy's).
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store keeps UTC")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


# A 64-bit surrogate key; on SQLite it must be INTEGER to be the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
