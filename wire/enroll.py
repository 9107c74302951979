"""Enrollment and key rotation messages (docs/protocol.md): records, encoder, validator.

Is: the bodies of `POST /api/v1/enroll` and `POST /api/v1/agents/{agent_id}/keys` and their
answers, shared by agent and collector. Keys travel as base64 of their 32 raw bytes.
Is not: the signature (wire.signing) nor the token's meaning (the collector's).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wire.errors import from_validation_error

_Base64Key = Field(min_length=44, max_length=44)  # 32 bytes in base64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _EnrollRequestModel(_Strict):
    token: str = Field(min_length=1, max_length=200)
    public_key: str = _Base64Key
    agent_version: str = Field(min_length=1, max_length=64)
    hostname: str = Field(min_length=1, max_length=255)


class _EnrollResponseModel(_Strict):
    agent_id: str
    key_id: str
    customer: str
    site: str


class _KeyRotationModel(_Strict):
    public_key: str = _Base64Key
    endorsement: str = Field(min_length=1, max_length=200)


class _KeyRotatedModel(_Strict):
    key_id: str
    retired_key_id: str


@dataclass(frozen=True)
class EnrollRequest:
    """An agent asks to enroll with a one-time token and its new public key."""

    token: str
    public_key: str
    agent_version: str
    hostname: str


@dataclass(frozen=True)
class EnrollResponse:
    """The collector's answer to an enrollment: who the agent now is."""

    agent_id: str
    key_id: str
    customer: str
    site: str


@dataclass(frozen=True)
class KeyRotation:
    """A new public key, endorsed by the old key (which also signs the request)."""

    public_key: str
    endorsement: str


@dataclass(frozen=True)
class KeyRotated:
    """The collector's answer to a rotation: the new key's id and the retired one's."""

    key_id: str
    retired_key_id: str


Message = EnrollRequest | EnrollResponse | KeyRotation | KeyRotated
_M = TypeVar("_M", EnrollRequest, EnrollResponse, KeyRotation, KeyRotated)

_MODELS: dict[type[Any], type[_Strict]] = {
    EnrollRequest: _EnrollRequestModel,
    EnrollResponse: _EnrollResponseModel,
    KeyRotation: _KeyRotationModel,
    KeyRotated: _KeyRotatedModel,
}


def encode_message(message: Message) -> bytes:
    """The canonical body of a message: UTF-8 JSON, keys sorted, no spaces."""
    return json.dumps(
        asdict(message), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def decode_message(kind: type[_M], body: bytes) -> _M:
    """The message of type `kind` in `body`; a WireError names the wrong field."""
    try:
        model = _MODELS[kind].model_validate_json(body)
    except ValidationError as err:
        raise from_validation_error(err) from None
    return kind(**model.model_dump())
