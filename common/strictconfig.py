"""Strict TOML configuration into frozen pydantic models, for the agent and the collector.

Unknown keys are errors naming the key; every wrong key is named in one message with the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """The configuration cannot be used; the message names each wrong key."""


class Strict(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Model = TypeVar("Model", bound=BaseModel)


def describe(err: ValidationError) -> str:
    """Every validation error as 'dotted.key: what is wrong', joined."""
    lines = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"]) or "(top level)"
        message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_toml(model: type[Model], text: str, source: str = "<config>") -> Model:
    """A config model from TOML text; ConfigError names the source and every wrong key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from err
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe(err)}") from err


def load_toml(model: type[Model], path: Path) -> Model:
    """A config model from a TOML file."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    return parse_toml(model, text, str(path))
