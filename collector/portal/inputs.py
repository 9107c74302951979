"""What the portal's JSON API accepts: each request body declared once with its bounds, and
the checks of path and query values; every refusal names its field.

Is: shape, type and bounds. Ids are whole numbers from 1 to 2**63 - 1 (BIGINT on PostgreSQL,
INTEGER on SQLite); text is valid Unicode (no lone surrogate), without NUL or other control
characters but tab and newline, and at most as long as its field allows. A body that breaks
these is InvalidRequest (400) naming the field; a path value that breaks them names nothing
that exists, so it is NotFound (404), naming the field too.
Is not: what the values mean (collector.portal.changes checks an address, an email, a language
and whether the site is the customer's).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from collector.errors import InvalidRequest
from collector.portal.errors import NotFound
from wire.reading import MAX_TEXT

MAX_ID = 2**63 - 1  # the largest BIGINT (PostgreSQL) and INTEGER (SQLite)
MAX_ADDRESS = 500
MAX_NAME = 200
MAX_NOTE = 500
MAX_EXTRA_QUANTITY = 50
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MAX_EMAIL = 254
MAX_TOKEN_NAME = 64
MAX_SUPPLY_ID = 64  # asr_supplies.supply_id
MAX_SERIAL = MAX_TEXT  # what the readings carry
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def is_id(value: object) -> bool:
    """Whether the value can be an id: a whole number from 1 to MAX_ID (never a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def is_plain(value: object) -> bool:
    """Whether the value is text that `plain_text` takes."""
    try:
        plain_text(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def plain_text(value: str) -> str:
    """The text, if it is valid Unicode without NUL or control characters but tab and newline."""
    if any((ch < " " and ch not in _ALLOWED_CONTROLS) or ch == "\x7f" for ch in value):
        raise ValueError("control characters (NUL included) are refused")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError("not valid Unicode (a lone surrogate)") from err
    return value


_Plain = AfterValidator(plain_text)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=MAX_USERNAME), _Plain]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD), _Plain]
Address = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ADDRESS), _Plain]
Email = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EMAIL), _Plain]
DisplayName = Annotated[str, StringConstraints(max_length=MAX_NAME), _Plain]
SupplyId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUPPLY_ID), _Plain]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE), _Plain]
TokenName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_NAME), _Plain]


class Body(BaseModel):
    # strict: 1.0 is no id, "1" no quantity, true no number; unknown fields are refused.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Login(Body):
    username: Username
    password: Password


class AddressChange(Body):
    address: Address


class ContactChange(Body):
    """Fields left out are kept (see `model_fields_set`)."""

    email: Email = ""
    display_name: DisplayName | None = None
    language: Literal["it", "fr", "en", ""] | None = None


class Assignment(Body):
    site_id: Id
    contact_id: Id


class ExtraOrder(Body):
    supply_id: SupplyId
    quantity: Annotated[int, Field(ge=1, le=MAX_EXTRA_QUANTITY)]
    note: Note = ""


class TokenRequest(Body):
    name: TokenName


_B = TypeVar("_B", bound=Body)


def parse(kind: type[_B], body: bytes) -> _B:
    """The body as `kind`, or InvalidRequest naming the first field that is wrong."""
    try:
        value = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError) as err:  # a number of 5000 digits is a ValueError
        raise InvalidRequest(f"the body is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        return kind.model_validate(value)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else None
        reason = "required" if first["type"] == "missing" else first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "not a field of this request"
        if field is not None:
            field = _printable(field)
        raise InvalidRequest(f"{field}: {reason}" if field else reason, field) from err


def _printable(name: str) -> str:
    """A field name fit to echo: an unknown one may hold anything."""
    try:
        return plain_text(name)[:MAX_USERNAME]
    except ValueError:
        return name.encode("utf-8", "backslashreplace").decode("ascii", "replace")[:MAX_USERNAME]


def path_id(value: str, field: str, what: str) -> int:
    """An id from the path: 1 to MAX_ID in decimal digits, else no such object (404)."""
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or not (
        1 <= int(value) <= MAX_ID
    ):
        raise NotFound(f"no such {what}", field)
    return int(value)


def path_text(value: str, field: str, what: str, max_length: int) -> str:
    """Text from the path (a serial, a token's name), else no such object (404)."""
    try:
        plain_text(value)
    except ValueError as err:
        raise NotFound(f"no such {what}", field) from err
    if not value or len(value) > max_length:
        raise NotFound(f"no such {what}", field)
    return value


def query_text(value: str | None, field: str, max_length: int = MAX_TEXT) -> str | None:
    """A query parameter's text (None when absent or empty), refused (400) when not plain."""
    if not value:
        return None
    try:
        plain_text(value)
    except ValueError as err:
        raise InvalidRequest(f"{field}: {err}", field) from err
    if len(value) > max_length:
        raise InvalidRequest(f"{field}: at most {max_length} characters", field)
    return value
