"""Errors of wire messages that do not decode: each names the offending field's path.

All are permanent: the same bytes sent again fail the same way.
"""

from __future__ import annotations

from pydantic_core import ValidationError


class WireError(ValueError):
    """A body that is not a valid message; `field` is a path like `readings[3].seq`."""

    reason = "invalid-message"
    permanent = True

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


class MalformedJSON(WireError):
    """The body is not JSON (or not UTF-8)."""

    reason = "malformed-json"


class UnsupportedSchema(WireError):
    """The body is JSON of a schema version this side does not speak."""

    reason = "schema-version"


class InvalidMessage(WireError):
    """The body is JSON, but a field is missing, unknown, of the wrong type or out of range."""

    reason = "invalid-message"


# The schema's pattern for "no NUL character" (PostgreSQL's text cannot hold one).
NO_NUL = "^[^\\x00]*$"


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ('readings', 3, 'reading') -> 'readings[3].reading'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def from_validation_error(err: ValidationError, schema: int | None = None) -> WireError:
    """The WireError for pydantic's error; with `schema`, a wrong `schema` field says so first."""
    errors = err.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return MalformedJSON(f"not JSON: {first['msg']}")
    if schema is not None:
        for e in errors:  # another version's message breaks many fields: name the version
            if e["loc"] == ("schema",) and e["type"] != "missing":
                return UnsupportedSchema(
                    f"schema {e['input']!r} is not spoken here (this side speaks {schema})",
                    "schema",
                )
    unknown = first["type"] in ("extra_forbidden", "unexpected_keyword_argument")
    message = "unknown field" if unknown else first["msg"]
    if first["type"] == "string_pattern_mismatch" and first["ctx"].get("pattern") == NO_NUL:
        message = "holds a NUL character"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return InvalidMessage(message, field_path(first["loc"]) or None)
