"""The agent's configuration: strict TOML into frozen models, defaults here and only here.

Unknown keys are errors naming the key; secrets (communities, USM keys) are `SecretStr` and
print as '**********'; each secret may instead be read from a file (`*_file`), which is how
systemd's LoadCredential hands them over. `[collector]` is needed by `enroll`, `run` and
`rotate-key` only; `poll` and `check-config` work without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from agent.poller import PrinterSpec
from agent.snmp.session import AUTH_PROTOCOLS, PRIV_PROTOCOLS, Credentials, Target
from common.strictconfig import ConfigError, Strict, load_toml, parse_toml
from wire.batch import DEFAULT_MAX_READINGS


class AgentSection(Strict):
    state_dir: Path = Path("/var/lib/asr-agent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line
    # host:port to serve Prometheus metrics on (agent.metrics); unset: not served.
    metrics_address: str | None = None

    @field_validator("metrics_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:9464, not {value!r}")
        return value


class SnmpSection(Strict):
    timeout: float = Field(1.0, gt=0, le=60)
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(2.0, ge=1, le=10)
    max_in_flight: int = Field(32, ge=1, le=1024)
    max_repetitions: int = Field(10, ge=1, le=100)
    unreachable_after_hours: float = Field(24, gt=0)
    backend: Literal["native", "pysnmp"] = "native"


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str | None:
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as err:
            raise ValueError(f"{what}_file: cannot read {path}: {err.strerror}") from err
    return value.get_secret_value() if value is not None else None


class CredentialsSection(Strict):
    version: Literal["1", "2c", "3"] = "2c"
    community: SecretStr | None = None
    community_file: Path | None = None
    user: str | None = None
    auth_protocol: Literal[AUTH_PROTOCOLS] | None = None  # type: ignore[valid-type]
    auth_key: SecretStr | None = None
    auth_key_file: Path | None = None
    priv_protocol: Literal[PRIV_PROTOCOLS] | None = None  # type: ignore[valid-type]
    priv_key: SecretStr | None = None
    priv_key_file: Path | None = None
    context: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> CredentialsSection:
        self.credentials()  # raises ValueError naming what does not fit
        return self

    def credentials(self) -> Credentials:
        """The session credentials, secrets resolved."""
        if self.version != "3" and self.user:
            raise ValueError("'user' is for SNMPv3; v1/v2c use 'community'")
        return Credentials(
            version=self.version,
            community=_secret(self.community, self.community_file, "community") or "public",
            user=self.user,
            auth_protocol=self.auth_protocol,
            auth_key=_secret(self.auth_key, self.auth_key_file, "auth_key"),
            priv_protocol=self.priv_protocol,
            priv_key=_secret(self.priv_key, self.priv_key_file, "priv_key"),
            context=self.context,
        )


class PrinterSection(Strict):
    name: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(161, ge=1, le=65535)
    credentials: str = "default"

    @field_validator("host")
    @classmethod
    def _ip(cls, host: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(host)
        except ValueError as err:
            raise ValueError(
                f"must be an IP address (no name lookups on the edge): {host!r}"
            ) from err
        return host


_PIN = re.compile(r"[0-9a-f]{64}")


class CollectorSection(Strict):
    url: str = Field(min_length=1)
    ca_file: Path | None = None  # None: the system's trust store
    pin_sha256: str | None = None  # the collector certificate's SHA-256, 'AB:CD:...'
    connect_timeout_seconds: float = Field(10, gt=0, le=300)
    request_timeout_seconds: float = Field(60, gt=0, le=3600)
    max_body_bytes: int = Field(1_048_576, ge=16_384)  # the collector's ingest.max_body_bytes

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://") or len(url) <= len("https://"):
            raise ValueError(f"must be an https:// URL (readings travel over TLS, R2): {url!r}")
        return url.rstrip("/")

    @field_validator("pin_sha256")
    @classmethod
    def _pin(cls, pin: str | None) -> str | None:
        if pin is None:
            return None
        digits = pin.replace(":", "").lower()
        if not _PIN.fullmatch(digits):
            raise ValueError("must be a SHA-256 fingerprint: 64 hex digits, colons allowed")
        return digits

    def pin(self) -> bytes | None:
        """The pinned fingerprint as 32 bytes, if one is set."""
        return bytes.fromhex(self.pin_sha256) if self.pin_sha256 else None


class ScheduleSection(Strict):
    # Each rhythm fires at most `interval` after the previous run and at least
    # `interval - jitter` after it (agent.schedule.rhythm).
    poll_interval_seconds: float = Field(3600, gt=0)
    poll_jitter_seconds: float = Field(300, ge=0)
    push_interval_seconds: float = Field(86_400, gt=0, le=86_400)  # R2: at least daily
    push_jitter_seconds: float = Field(3600, ge=0)
    backoff_base_seconds: float = Field(10, gt=0)
    backoff_max_seconds: float = Field(3600, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleSection:
        if self.poll_jitter_seconds >= self.poll_interval_seconds:
            raise ValueError("poll_jitter_seconds must be less than poll_interval_seconds")
        if self.push_jitter_seconds >= self.push_interval_seconds:
            raise ValueError("push_jitter_seconds must be less than push_interval_seconds")
        if self.backoff_base_seconds > self.backoff_max_seconds:
            raise ValueError("backoff_base_seconds must not exceed backoff_max_seconds")
        return self


class SpoolSection(Strict):
    # Readings per batch: the collector takes at most 500 (ingest.max_readings_per_batch).
    batch_size: int = Field(200, ge=1, le=DEFAULT_MAX_READINGS)
    cap_rows: int = Field(100_000, ge=10)

    @model_validator(mode="after")
    def _room(self) -> SpoolSection:
        if self.cap_rows < 2 * self.batch_size:
            raise ValueError("cap_rows must be at least twice batch_size")
        return self


class AgentConfig(Strict):
    agent: AgentSection = Field(default_factory=AgentSection)
    snmp: SnmpSection = Field(default_factory=SnmpSection)
    collector: CollectorSection | None = None
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    spool: SpoolSection = Field(default_factory=SpoolSection)
    credentials: dict[str, CredentialsSection] = Field(
        default_factory=lambda: {"default": CredentialsSection()}
    )
    printers: list[PrinterSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> AgentConfig:
        names: set[str] = set()
        for i, printer in enumerate(self.printers):
            if printer.credentials not in self.credentials:
                raise ValueError(
                    f"printers.{i}.credentials: no [credentials.{printer.credentials}]"
                    f" section (have: {', '.join(sorted(self.credentials))})"
                )
            if printer.name in names:
                raise ValueError(f"printers.{i}.name: {printer.name!r} is used twice")
            names.add(printer.name)
        return self

    def require_collector(self) -> CollectorSection:
        """The [collector] section; ConfigError when the file has none."""
        if self.collector is None:
            raise ConfigError("[collector] section missing: url (and ca_file) are needed here")
        return self.collector

    def printer_specs(self) -> list[PrinterSpec]:
        """Each configured printer, ready to poll."""
        return [
            PrinterSpec(
                name=p.name,
                target=Target(
                    p.host, p.port, self.snmp.timeout, self.snmp.retries, self.snmp.backoff
                ),
                credentials=self.credentials[p.credentials].credentials(),
                backend=self.snmp.backend,
            )
            for p in self.printers
        ]


def parse_config(text: str, source: str = "<config>") -> AgentConfig:
    """A config from TOML text; ConfigError names the file and every wrong key."""
    return parse_toml(AgentConfig, text, source)


def load_config(path: Path) -> AgentConfig:
    """A config from a TOML file."""
    return load_toml(AgentConfig, path)
