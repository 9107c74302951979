"""How a wire record is declared once: a frozen dataclass whose field types carry their bounds.

Is: the field types of the wire with their bounds (docs/protocol.md, Bounds), the `schema`
version key, and `Record`, the base that gives each record its `to_dict()` and its strict
validator (`decoder`), both derived by pydantic from the one declaration.
Is not: a message (wire.reading, wire.batch and wire.enroll declare those) nor the canonical
bytes (each message's `encode_*` writes them from `to_dict()`). The records stay plain frozen
dataclasses: building one does not validate it (the agent builds readings with a printer's odd
values and then bounds them, wire.reading.bound_reading); decoding the JSON does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar, cast, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    TypeAdapter,
    computed_field,
)
from pydantic_core import SchemaSerializer
from pydantic_core import core_schema as cs

from wire.errors import NO_NUL

# The wire's bounds (docs/protocol.md, Bounds): what the collector accepts in one reading, and
# what the agent cuts a printer's values down to before it spools them. Printers' texts are
# DisplayStrings of at most 255 octets (RFC 3805); the room above is for notes and UTF-8.
MAX_TEXT = 1024  # characters of any string
MAX_ITEMS = 256  # supplies of a reading, notes or error names of a list
INT32 = (-(2**31), 2**31 - 1)  # Integer32: levels, capacities, indexes (RFC 3805)
COUNTER = (0, 2**63 - 1)  # page counters, seqs, totals: what a signed 64-bit column holds

# Every record: strict types (no coercion from strings), unknown keys refused.
WIRE = ConfigDict(strict=True, extra="forbid")

_T = TypeVar("_T")


def iso_utc(at: datetime) -> str:
    """An aware datetime as ISO-8601 in UTC with a `Z`, microseconds always written."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: wire times are aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)


class _AsHeld:
    """Marks a float field to be written as it is held: an int stays an int (`round()` of an
    int is one), as the encoders of before wrote it; NaN stays NaN, for the encoder to refuse."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> cs.CoreSchema:
        return {**handler(source), "serialization": cs.simple_ser_schema("any")}


# Every string at most MAX_TEXT characters and free of NUL (PostgreSQL's text cannot hold one;
# the pattern's error is worded in wire.errors); every list at most MAX_ITEMS long; every
# integer within the column that keeps it. Lone surrogates are not JSON text at all: the JSON
# parser refuses them.
Text = Annotated[str, Field(max_length=MAX_TEXT, pattern=NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL)]
Int32 = Annotated[int, Field(ge=INT32[0], le=INT32[1])]
Counter = Annotated[int, Field(ge=COUNTER[0], le=COUNTER[1])]
Count = Annotated[int, Field(ge=0, le=INT32[1])]  # printers in a state, spool rows
Total = Annotated[int, Field(ge=0, le=COUNTER[1])]
Seq = Annotated[int, Field(ge=1, le=COUNTER[1])]
Real = Annotated[float, Field(allow_inf_nan=False), _AsHeld()]
# Aware only; read in any offset, kept and written in UTC.
UtcTime = Annotated[AwareDatetime, AfterValidator(_to_utc), PlainSerializer(iso_utc)]
# A JSON array, held as a tuple.
Many = Annotated[tuple[_T, ...], Field(strict=False)]
Items = Annotated[tuple[_T, ...], Field(strict=False, max_length=MAX_ITEMS)]


# A record whose JSON object carries a schema version declares it as its first field:
#     schema: InitVar[Literal[1]] = field(default=Field(), kw_only=True)
# For pydantic the key is required and must be that number (checked, then dropped: it is no
# field of the record); for the dataclass it is keyword-only and never passed, so records are
# built without it. `to_dict()` writes it first.


_VERSIONS: dict[type[Any], int] = {}
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_SERIALIZERS: dict[type[Any], SchemaSerializer] = {}
# NaN is written as NaN (see _AsHeld), for the canonical encoders' `allow_nan=False` to refuse
# it rather than send null.
_CORE_CONFIG = cs.CoreConfig(ser_json_inf_nan="constants")


def version_of(cls: type[Any]) -> int:
    """The `schema` version a versioned record class declares."""
    if cls not in _VERSIONS:
        hint = get_type_hints(cls)["schema"]  # InitVar[Literal[n]]
        _VERSIONS[cls] = cast(int, get_args(hint.type)[0])
    return _VERSIONS[cls]


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _serializer(cls: type[Any]) -> SchemaSerializer:
    # pydantic-core's serializer itself: TypeAdapter.dump_python's own work doubles the time of
    # a reading's to_dict(), which the collector calls for every reading it stores. Built with
    # the wire's config at its top, where the serializer reads `ser_json_inf_nan`.
    if cls not in _SERIALIZERS:
        _SERIALIZERS[cls] = SchemaSerializer(_adapter(cls).core_schema, _CORE_CONFIG)
    return _SERIALIZERS[cls]


def decoder(cls: type[_T]) -> TypeAdapter[_T]:
    """The strict validator of a record class, from its declaration (built once)."""
    return cast(TypeAdapter[_T], _adapter(cls))


class Record:
    """Base of the wire's records: `to_dict()` is derived from the dataclass's declaration."""

    # The pydantic config of every subclass (how pydantic reads a plain dataclass's config).
    __pydantic_config__ = WIRE

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object for this record (aliases as keys, times as text)."""
        out = _serializer(type(self)).to_python(self, mode="json", by_alias=True)
        return cast(dict[str, Any], out)


class Versioned(Record):
    """Base of a record whose JSON object carries a `schema` version (declared as above)."""

    @computed_field(alias="schema")  # type: ignore[prop-decorator]
    @property
    def schema_version(self) -> int:
        """The version this record's JSON object carries in its `schema` key."""
        return version_of(type(self))

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object for this record, its `schema` key first."""
        out = super().to_dict()
        return {"schema": out.pop("schema"), **out}
