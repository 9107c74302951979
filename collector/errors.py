"""The collector's error tree: each error has a short `reason` code and says if it is permanent.

Permanent errors reject a request for good (sending it again cannot succeed); transient ones
(`StoreUnavailable`) ask the agent to retry later, so a reading is delivered late, not lost
(R2). The HTTP status of each is chosen by the views, not here.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of the collector's errors."""

    reason = "error"
    permanent = True


class EnrollError(CollectorError):
    """An enrollment that cannot be done."""

    reason = "enroll-refused"


class TokenUnknown(EnrollError):
    """No enrollment token with that value exists."""

    reason = "token-unknown"


class TokenUsed(EnrollError):
    """The enrollment token was used already: each works once."""

    reason = "token-used"


class TokenExpired(EnrollError):
    """The enrollment token is past its expiry."""

    reason = "token-expired"


class KeyInUse(EnrollError):
    """The public key is enrolled already (an agent makes a new key for each enrollment)."""

    reason = "key-in-use"


class InvalidRequest(CollectorError):
    """A request body that is not what the endpoint takes; `field` names where, if known."""

    reason = "invalid-request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuthError(CollectorError):
    """The request's key cannot be used."""

    reason = "auth"


class UnknownKey(AuthError):
    """No key has this key id."""

    reason = "unknown-key"


class RevokedKey(AuthError):
    """The key was revoked by an operator."""

    reason = "revoked-key"


class RetiredKey(AuthError):
    """The key was replaced and its grace period is over."""

    reason = "retired-key"


class WrongAgent(AuthError):
    """The key belongs to another agent than the one the request speaks for."""

    reason = "wrong-agent"


class ReplayedNonce(CollectorError):
    """This key signed a request with this nonce before: a replay."""

    reason = "replayed-nonce"


class BatchConflict(CollectorError):
    """A batch id received before comes again with readings its first body did not hold."""

    reason = "batch-conflict"


class StoreUnavailable(CollectorError):
    """The database cannot be reached or is busy; retry later."""

    reason = "store-unavailable"
    permanent = False


class BodyTooLarge(CollectorError):
    """The request body is larger than the endpoint accepts."""

    reason = "body-too-large"


class UnsupportedMediaType(CollectorError):
    """The request body is not declared as application/json."""

    reason = "content-type"


class UnknownShipment(CollectorError):
    """No shipment has this id."""

    reason = "unknown-shipment"


class InvalidTransition(CollectorError):
    """A shipment cannot take this step from where it is (delivered cannot be backordered)."""

    reason = "invalid-transition"
