"""The portal's refusals, apart from invalid input (collector.errors.InvalidRequest).

NotFound is also the answer for another customer's objects, so nothing of them leaks.
"""

from __future__ import annotations

from collector.errors import CollectorError


class NotFound(CollectorError):
    """No such object, or not one this principal may see."""

    reason = "not-found"


class Forbidden(CollectorError):
    """The object is visible, but this principal's role may not do this to it."""

    reason = "forbidden"
