"""Enrollment and key rotation messages (docs/protocol.md): records, encoder, validator.

Is: the bodies of `POST /api/v1/enroll` and `POST /api/v1/agents/{agent_id}/keys` and their
answers, shared by agent and collector. Keys travel as base64 of their 32 raw bytes.
Is not: the signature (wire.signing) nor the token's meaning (the collector's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, TypeVar

from pydantic import Field, ValidationError

from wire.errors import from_validation_error
from wire.record import Record, decoder

Base64Key = Annotated[str, Field(min_length=44, max_length=44)]  # 32 bytes in base64


@dataclass(frozen=True)
class EnrollRequest(Record):
    """An agent asks to enroll with a one-time token and its new public key."""

    token: Annotated[str, Field(min_length=1, max_length=200)]
    public_key: Base64Key
    agent_version: Annotated[str, Field(min_length=1, max_length=64)]
    hostname: Annotated[str, Field(min_length=1, max_length=255)]


@dataclass(frozen=True)
class EnrollResponse(Record):
    """The collector's answer to an enrollment: who the agent now is."""

    agent_id: str
    key_id: str
    customer: str
    site: str


@dataclass(frozen=True)
class KeyRotation(Record):
    """A new public key, endorsed by the old key (which also signs the request)."""

    public_key: Base64Key
    endorsement: Annotated[str, Field(min_length=1, max_length=200)]


@dataclass(frozen=True)
class KeyRotated(Record):
    """The collector's answer to a rotation: the new key's id and the retired one's."""

    key_id: str
    retired_key_id: str


Message = EnrollRequest | EnrollResponse | KeyRotation | KeyRotated
_M = TypeVar("_M", EnrollRequest, EnrollResponse, KeyRotation, KeyRotated)


def encode_message(message: Message) -> bytes:
    """The canonical body of a message: UTF-8 JSON, keys sorted, no spaces."""
    return json.dumps(
        message.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def decode_message(kind: type[_M], body: bytes) -> _M:
    """The message of type `kind` in `body`; a WireError names the wrong field."""
    try:
        return decoder(kind).validate_json(body)
    except ValidationError as err:
        raise from_validation_error(err) from None
