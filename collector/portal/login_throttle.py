"""The portal's login, throttled (`log_in`, for the page and the API alike).

Is: each attempt is counted against its account and its client address before the password
is checked; past `LoginThrottle`'s limits the key is refused (Throttled: 429, Retry-After)
unchecked for a while that doubles with each further failure, up to a cap; a right password
clears the account's count. The counts are in the database, so several collectors share them.
The client address is the TCP peer, or, only when the peer is one of `trusted_proxies`, the
nearest X-Forwarded-For hop that is not one of them.
Is not: sessions, tokens or CSRF (collector.portal.auth), or the password check itself
(collector.store.people).
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from collector.appkeys import CLOCK, COLLECTOR, METRICS
from collector.portal.errors import Throttled
from collector.records import Principal
from collector.store import people

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# 5 failures lock an account for 1 minute, each further one doubles it, 15 minutes at most:
# about 100 guesses a day, while its owner waits minutes, not hours, after a typo spree.
ACCOUNT_LIMIT = people.LoginLimit(5, timedelta(minutes=1), timedelta(minutes=15))
ADDRESS_LIMIT = people.LoginLimit(20, timedelta(minutes=1), timedelta(hours=1))


@dataclass(frozen=True)
class LoginThrottle:
    """Failed logins allowed per account and per client address, and whose X-Forwarded-For
    is believed. The address's limit is higher: an office behind one NAT shares it."""

    account: people.LoginLimit = ACCOUNT_LIMIT
    address: people.LoginLimit = ADDRESS_LIMIT
    trusted_proxies: tuple[Network, ...] = field(default=())


THROTTLE = web.AppKey("portal_login_throttle", LoginThrottle)


def _ip(text: str | None) -> Address | None:
    try:
        ip = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]) -> str:
    """Whom a login is counted against: the TCP peer; when the peer is a trusted proxy, the
    nearest X-Forwarded-For hop that is not one (a proxy appends the address it saw, so the
    hops further left are the client's word). An IPv6 client by its /64, which one host
    usually has whole."""
    address = _ip(peer)
    if address is None:
        return "unknown"
    if any(address in net for net in trusted):
        hops = [hop for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # not an address: the last trusted hop is all that is known
            address = ip
            if not any(ip in net for net in trusted):
                break
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def log_in(request: web.Request, username: str, password: str) -> Principal | None:
    """Check a login, throttled: the principal; None for a wrong name or password (counted);
    Throttled while the account or the client address has had too many failures."""
    throttle = request.app[THROTTLE]
    db, now = request.app[COLLECTOR].db, request.app[CLOCK]()
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), throttle.trusted_proxies
    )
    # Names no user can have share one count: they never log in, and are not stored as sent.
    account_key = "account:" + (username if people.is_username(username) else "?")
    keys = [(account_key, throttle.account), ("address:" + address, throttle.address)]
    charge = await people.charge_login(db, keys, now)
    if charge.refused_until is not None:
        wait = max(1, math.ceil((charge.refused_until - now).total_seconds()))
        by = (charge.refused_key or "").partition(":")[0]
        request.app[METRICS].logins_throttled.labels(by).inc()
        log.warning(
            "portal login throttled: user %r from %s (too many failed logins by %s, %d s left)",
            username[:64],
            address,
            by,
            wait,
        )
        raise Throttled(f"too many failed logins: try again in {wait} seconds", wait)
    principal = await people.authenticate(db, username, password, now)
    if principal is None:
        log.info("portal login refused for %r from %s", username[:64], address)
        return None
    await people.login_succeeded(db, account_key, charge)
    return principal
