"""The portal's refusals, apart from invalid input (collector.errors.InvalidRequest).

NotFound is also the answer for another customer's objects, so nothing of them leaks; it names
a field only for a path value that cannot name anything (an id past 2**63 - 1, a NUL).
"""

from __future__ import annotations

from collector.errors import CollectorError


class NotFound(CollectorError):
    """No such object, or not one this principal may see."""

    reason = "not-found"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(CollectorError):
    """The object is visible, but this principal's role may not do this to it."""

    reason = "forbidden"


class Throttled(CollectorError):
    """Too many failed logins for the account or the client address: refused, unchecked,
    for `retry_after` seconds."""

    reason = "too-many-logins"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
