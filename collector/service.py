"""What the collector does for a request, apart from HTTP: enroll, authenticate, ingest, rotate.

The views call these with the raw headers and body; the store is injected, and so is the
clock, so tests can move time (stale signatures, expired tokens, a key's grace period).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.config import CollectorConfig
from collector.errors import InvalidRequest, UnknownKey, WrongAgent
from collector.records import AgentKey, EnrollToken, IngestResult
from collector.rules import check_key, sort_readings
from collector.store import registry
from collector.store.database import Database
from collector.store.ingest import PreparedBatch, device_owners, prepare_batch
from wire.batch import Batch, Refused, split_batch
from wire.enroll import EnrollRequest, EnrollResponse, KeyRotated, KeyRotation, decode_message
from wire.signing import (
    BadSignature,
    SignatureHeaders,
    StaleSignature,
    check_fresh,
    decode_public_key,
    key_id,
    load_public_key,
    raw_public_key,
    verify,
    verify_endorsement,
)

Clock = Callable[[], datetime]
_CUSTOMER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def utcnow() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


def token_hash(token: str) -> str:
    """How a token is stored: SHA-256 hex (a 256-bit random token needs no slow hash)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Settings:
    """The ingest rules' numbers, from the config."""

    max_readings_per_batch: int = 500
    clock_skew: timedelta = timedelta(seconds=300)
    retired_key_grace: timedelta = timedelta(days=1)
    token_ttl: timedelta = timedelta(days=7)

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Settings:
        """The settings a config file gives."""
        return cls(
            max_readings_per_batch=config.ingest.max_readings_per_batch,
            clock_skew=timedelta(seconds=config.ingest.clock_skew_seconds),
            retired_key_grace=timedelta(hours=config.ingest.retired_key_grace_hours),
            token_ttl=timedelta(hours=config.enroll.token_ttl_hours),
        )


class Collector:
    """The collector's requests, each one transaction on the injected store."""

    def __init__(self, db: Database, settings: Settings, clock: Clock = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def authenticate(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[AgentKey, SignatureHeaders]:
        """The key that signed this request; raises unless it may sign and the signature holds."""
        signed = SignatureHeaders.from_headers(headers)
        key = await registry.find_key(self.db, signed.key_id)
        if key is None:
            raise UnknownKey(f"no key {signed.key_id}: enroll the agent first")
        verify(_stored_key(key), signed, body)
        now = self.clock()
        check_key(key, now, self.settings.retired_key_grace)
        try:
            check_fresh(signed, now, self.settings.clock_skew.total_seconds())
        except StaleSignature as err:  # name the agent: its clock is the one to set right
            raise StaleSignature(f"agent {key.agent_id}: {err}") from None
        return key, signed

    async def ingest(self, headers: Mapping[str, str], body: bytes) -> IngestResult:
        """Authenticate, validate and store a batch of readings (R2); the result also says
        which agent sent it and the clock offset its heartbeat reports, if any. Readings that
        cannot be stored are answered `rejected` one by one and kept in the quarantine; the
        others are stored (docs/protocol.md: per reading, per batch)."""
        key, signed = await self.authenticate(headers, body)
        batch, refused = split_batch(body, self.settings.max_readings_per_batch)
        if batch.agent_id != key.agent_id:
            raise WrongAgent(f"key {key.key_id} does not belong to agent {batch.agent_id}")
        serials = [item.reading.serial for item in batch.readings if item.reading.serial]
        customer, owners = await device_owners(self.db, key.agent_id, serials)
        prepared = self._prepare(batch, refused, customer, owners, signed, body)
        offset = batch.heartbeat.clock_offset_seconds
        del batch  # thousands of objects: not kept while the batch waits for the database
        result = await prepared.store(self.db)
        return replace(result, agent_id=key.agent_id, clock_offset_seconds=offset)

    def _prepare(
        self,
        batch: Batch,
        refused: tuple[Refused, ...],
        customer: str | None,
        owners: dict[str, str],
        signed: SignatureHeaders,
        body: bytes,
    ) -> PreparedBatch:
        now = self.clock()
        sorted_ = sort_readings(batch, now, self.settings.clock_skew, refused, customer, owners)
        return prepare_batch(
            self.db.dialect,
            batch,
            body,
            signed,
            sorted_.storable,
            sorted_.rejected,
            now,
            sorted_.seqs,
        )

    async def enroll(self, body: bytes) -> EnrollResponse:
        """Enroll an agent with a one-time token and its public key."""
        request = decode_message(EnrollRequest, body)
        public_key = _public_key(request.public_key)
        raw = raw_public_key(public_key)
        enrollment = await registry.enroll(
            self.db,
            token_hash=token_hash(request.token),
            agent_id=str(uuid.uuid4()),
            public_key=raw,
            key_id=key_id(raw),
            hostname=request.hostname,
            agent_version=request.agent_version,
            now=self.clock(),
        )
        return EnrollResponse(
            enrollment.agent_id, enrollment.key_id, enrollment.customer, enrollment.site
        )

    async def rotate_key(
        self, agent_id: str, headers: Mapping[str, str], body: bytes
    ) -> KeyRotated:
        """Replace the signing key by the new key it endorses; it is retired, not revoked."""
        old, signed = await self.authenticate(headers, body)
        if old.agent_id != agent_id:
            raise WrongAgent(f"key {old.key_id} does not belong to agent {agent_id}")
        rotation = decode_message(KeyRotation, body)
        new_key = _public_key(rotation.public_key)
        verify_endorsement(_stored_key(old), new_key, rotation.endorsement)
        raw = raw_public_key(new_key)
        new = await registry.rotate_key(
            self.db,
            old,
            new_key_id=key_id(raw),
            new_public_key=raw,
            nonce=signed.nonce,
            signed_at=datetime.fromtimestamp(signed.timestamp, timezone.utc),
            now=self.clock(),
        )
        return KeyRotated(key_id=new.key_id, retired_key_id=old.key_id)

    async def create_token(
        self, customer: str, site: str, ttl: timedelta | None = None
    ) -> tuple[str, EnrollToken]:
        """A new one-time enrollment token for a site: the token (shown once) and its record."""
        if not _CUSTOMER.fullmatch(customer):
            raise InvalidRequest(f"customer must match {_CUSTOMER.pattern}", "customer")
        if not site.strip() or len(site) > 200:
            raise InvalidRequest("site must be 1 to 200 characters", "site")
        token = "asr1_" + secrets.token_urlsafe(32)
        now = self.clock()
        record = await registry.create_token(
            self.db, token_hash(token), customer, site, now, now + (ttl or self.settings.token_ttl)
        )
        return token, record

    async def revoke_key(self, key_id: str) -> AgentKey:
        """Revoke a key: every request it signs is refused from now on."""
        return await registry.revoke_key(self.db, key_id, self.clock())

    async def prune_nonces(self) -> int:
        """Forget nonces too old to be replayed (the clock check refuses them anyway)."""
        return await registry.prune_nonces(self.db, self.clock() - 2 * self.settings.clock_skew)


def _stored_key(key: AgentKey) -> Ed25519PublicKey:
    # A weak key stored before enrollment refused them would verify forged signatures.
    try:
        return load_public_key(key.public_key)
    except ValueError as err:
        raise BadSignature(f"key {key.key_id} is refused ({err}); revoke it") from None


def _public_key(text: str) -> Ed25519PublicKey:
    try:
        return decode_public_key(text)
    except ValueError as err:
        raise InvalidRequest(f"public_key refused: {err}", "public_key") from err
