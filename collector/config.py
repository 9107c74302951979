"""The collector's configuration: strict TOML into frozen models, defaults here and only here.

Unknown keys are errors naming the key; the database URL (which may hold a password) is a
`SecretStr` and prints as '**********'; it may instead be read from a file (`url_file`), which
is how systemd's LoadCredential hands it over. Every number of the ingest rules is a setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)

from collector.replenish.settings import Rules
from common.strictconfig import ConfigError, Strict, load_toml, parse_toml


class CollectorSection(Strict):
    state_dir: Path = Path("/var/lib/asr-collector")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line


class ServerSection(Strict):
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=0, le=65535)  # 0: any free port, printed at start
    tls_cert: Path | None = None
    tls_key: Path | None = None
    plain_http: bool = False  # only behind a proxy that terminates TLS

    @model_validator(mode="after")
    def _tls(self) -> ServerSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.plain_http and self.tls_cert is not None:
            raise ValueError("plain_http = true serves no TLS: drop tls_cert/tls_key or it")
        return self


# Accepted URL schemes and the async driver each one means.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def driver_url(url: str) -> str:
    """The URL with its async driver named: 'postgresql://...' -> 'postgresql+asyncpg://...'."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _DRIVERS:
        raise ValueError(
            "must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
            f" (scheme {scheme!r} is not supported)"
        )
    return f"{_DRIVERS[scheme]}://{rest}"


class DatabaseSection(Strict):
    url: SecretStr | None = None  # default: SQLite in state_dir
    url_file: Path | None = None
    pool_size: int = Field(5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _supported(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            driver_url(url.get_secret_value())
        return url

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseSection:
        if self.url is not None and self.url_file is not None:
            raise ValueError("url and url_file: set one of them")
        return self


class IngestSection(Strict):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    clock_skew_seconds: float = Field(300, gt=0, le=86_400)
    max_readings_per_batch: int = Field(500, ge=1, le=100_000)
    retired_key_grace_hours: float = Field(24, ge=0)
    nonce_prune_interval_seconds: float = Field(60, gt=0)


class EnrollSection(Strict):
    token_ttl_hours: float = Field(168, gt=0)
    max_body_bytes: int = Field(16_384, ge=1024)


class PlanSection(Strict):
    enabled: bool = True  # the daily replenishment run in `serve`
    at: str = "02:30"  # HH:MM, UTC
    budget_minutes: float = Field(60, gt=0)  # a scheduled run slower than this says so

    @field_validator("at")
    @classmethod
    def _time(cls, at: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", at):
            raise ValueError(f"must be HH:MM (UTC), not {at!r}")
        return at


class MailSection(Strict):
    """The mailer of the notifications outbox (collector.notify.outbox)."""

    enabled: bool = False  # off until an SMTP server is configured
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    ca_file: Path | None = None  # to verify the server's certificate; unset: the system's
    username: str | None = None
    password_file: Path | None = None  # the SMTP password, one line (a credential)
    from_address: str = "asr@localhost"
    helpdesk_address: str | None = None  # MPS customers' notices go here (R16)
    helpdesk_language: Literal["it", "fr", "en"] = "en"
    portal_url: str | None = None  # linked from every email
    interval_seconds: float = Field(30, gt=0)
    batch_size: int = Field(50, ge=1)
    lease_seconds: float = Field(300, gt=0)
    retry_seconds: float = Field(60, gt=0)
    retry_max_seconds: float = Field(3600, gt=0)
    timeout_seconds: float = Field(30, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> MailSection:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        if self.username is not None and self.security == "none":
            raise ValueError(
                'security = "none" would send username and password in clear: set security'
                ' to "starttls" or "tls" (or drop username and password_file)'
            )
        if "@" not in self.from_address:
            raise ValueError(f"from_address {self.from_address!r} is not an email address")
        return self


class WarehouseSection(Strict):
    """The warehouse: where new shipments are sent, and who may report on them.

    mode "webhook" posts each new shipment, signed, to `url` (collector.fulfil.outbound);
    "simulated" hands them to the built-in warehouse instead (collector.fulfil.simulated);
    "off" keeps them waiting in the outbox. The inbound API (POST /api/v1/warehouse/updates)
    takes updates signed with the key in `inbound_secret_file`; without one it is off (404).
    """

    mode: Literal["off", "webhook", "simulated"] = "off"
    url: str | None = None  # the warehouse's webhook, https://...
    allow_plain_http_for_tests: bool = False  # an http:// url: for a test's loopback warehouse only
    ca_file: Path | None = None  # to verify the warehouse's certificate; unset: the system's
    secret_file: Path | None = None  # HMAC key we sign requests with (a credential)
    inbound_secret_file: Path | None = None  # HMAC key the warehouse signs updates with
    interval_seconds: float = Field(10, gt=0)
    batch_size: int = Field(50, ge=1)
    lease_seconds: float = Field(300, gt=0)
    retry_seconds: float = Field(60, gt=0)
    retry_max_seconds: float = Field(3600, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    clock_skew_seconds: float = Field(300, gt=0, le=86_400)  # inbound updates' timestamps
    max_body_bytes: int = Field(65_536, ge=1024)
    # The simulated warehouse (mode "simulated"): how it treats each request.
    ship_after_hours: float = Field(24, ge=0)
    deliver_after_hours: float = Field(48, ge=0)
    backorder_share: float = Field(0.1, ge=0, le=1)
    backorder_days: float = Field(5, ge=0)
    seed: int = 0

    @model_validator(mode="after")
    def _complete(self) -> WarehouseSection:
        if self.mode == "webhook":
            schemes = ("https://", "http://") if self.allow_plain_http_for_tests else ("https://",)
            if self.url is None or not self.url.startswith(schemes):
                raise ValueError(
                    'mode "webhook" needs url = "https://..." (url is'
                    f" {self.url!r}; http:// only with allow_plain_http_for_tests = true)"
                )
            if self.secret_file is None:
                raise ValueError('mode "webhook" needs secret_file (the HMAC signing key)')
        return self


class PortalSection(Strict):
    """The portal and its JSON API (collector.portal)."""

    enabled: bool = True
    # 32 random bytes, base64 (a credential); unset: made once in state_dir/portal-session.key
    session_key_file: Path | None = None
    session_max_age_hours: float = Field(12, gt=0)
    cookie_secure: bool = True  # false only with server.plain_http on a trusted loopback
    max_form_bytes: int = Field(65_536, ge=1024)
    # Proxies (addresses or networks) whose X-Forwarded-For names the client, for the login
    # throttle: nginx in front of the collectors. Empty: the TCP peer is the client.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()


def host_port(address: str) -> tuple[str, int]:
    """'HOST:PORT' (an IPv6 host in brackets: '[::1]:9464') as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:9464, not {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


class MetricsSection(Strict):
    """Where Prometheus scrapes GET /metrics (collector.views.metrics).

    By default a listener of its own, plain HTTP on loopback, and not the agents' and portal's
    port (which answers 404 there). `on_main_port` serves it there too, behind a bearer token.
    """

    listen: str = "127.0.0.1:9464"  # HOST:PORT of its own plain-HTTP listener; "": none
    on_main_port: bool = False  # also on server.port: only with token_file
    token_file: Path | None = None  # a bearer token, one line (a credential); then required

    @field_validator("listen")
    @classmethod
    def _address(cls, listen: str) -> str:
        if listen:
            host_port(listen)
        return listen

    @model_validator(mode="after")
    def _guarded(self) -> MetricsSection:
        if self.on_main_port and self.token_file is None:
            raise ValueError(
                "on_main_port = true needs token_file: /metrics on the public port answers"
                " only to a bearer token"
            )
        return self


class CollectorConfig(Strict):
    collector: CollectorSection = CollectorSection()
    server: ServerSection = ServerSection()
    database: DatabaseSection = DatabaseSection()
    ingest: IngestSection = IngestSection()
    enroll: EnrollSection = EnrollSection()
    plan: PlanSection = PlanSection()
    mail: MailSection = MailSection()
    warehouse: WarehouseSection = WarehouseSection()
    portal: PortalSection = PortalSection()
    metrics: MetricsSection = MetricsSection()
    # Any of collector.replenish.settings.Rules' fields, by name (R6 to R16's numbers).
    replenishment: dict[str, int | float | bool] = Field(default_factory=dict)

    @field_validator("replenishment")
    @classmethod
    def _rules(cls, values: dict[str, int | float | bool]) -> dict[str, int | float | bool]:
        Rules.from_mapping(dict(values), "replenishment")
        return values

    def rules(self) -> Rules:
        """The replenishment rules: the defaults, with this config's overrides."""
        return Rules.from_mapping(dict(self.replenishment), "replenishment")

    def database_url(self) -> str:
        """The database URL with its driver, the secret resolved; SQLite in state_dir if unset."""
        db = self.database
        if db.url_file is not None:
            try:
                text = db.url_file.read_text().strip()
            except OSError as err:
                raise ConfigError(f"database.url_file: cannot read {db.url_file}: {err}") from err
            try:
                return driver_url(text)
            except ValueError as err:
                raise ConfigError(f"database.url_file: {err}") from err
        if db.url is not None:
            return driver_url(db.url.get_secret_value())
        return f"sqlite+aiosqlite:///{self.collector.state_dir / 'collector.db'}"

    def metrics_token(self) -> str | None:
        """The bearer token /metrics asks for (metrics.token_file's first line), if any."""
        path = self.metrics.token_file
        if path is None:
            return None
        try:
            lines = path.read_text().splitlines()
        except OSError as err:
            raise ConfigError(f"metrics.token_file: cannot read {path}: {err}") from err
        token = lines[0].strip() if lines else ""
        if len(token) < 16:
            raise ConfigError(f"metrics.token_file: {path} holds no token of 16 characters or more")
        return token

    def is_embedded(self) -> bool:
        """True when the database is SQLite (the embedded default)."""
        return self.database_url().startswith("sqlite")

    def redacted(self) -> dict[str, Any]:
        """The whole configuration, defaults filled in, secrets as '**********'."""
        return self.model_dump(mode="json")


def parse_config(text: str, source: str = "<config>") -> CollectorConfig:
    """A config from TOML text; ConfigError names the file and every wrong key."""
    return parse_toml(CollectorConfig, text, source)


def load_config(path: Path) -> CollectorConfig:
    """A config from a TOML file."""
    return load_toml(CollectorConfig, path)
