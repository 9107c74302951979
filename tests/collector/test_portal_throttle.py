"""The portal's login throttle (issue 13), over real TLS on SQLite and PostgreSQL.

Failed logins are counted per account and per client address in the database; past the limit
the login answers 429 with Retry-After without checking the password, for a while that grows
with further failures. The test clock moves time on instead of sleeping.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest
from aiohttp import web

from collector.appkeys import METRICS
from collector.config import CollectorConfig
from collector.portal.auth import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    THROTTLE,
    client_address,
    setup_portal_auth,
)
from collector.store.people import LoginLimit
from tests.collector.test_portal_api import PASSWORD, Client, Portal, portal  # noqa: F401

WRONG = "not the password"


def _throttled(metrics: bytes, by: str) -> float:
    found = re.search(
        rf'^asr_portal_logins_throttled_total{{by="{by}"}} (\S+)$', metrics.decode(), re.M
    )
    return float(found.group(1)) if found else 0.0


async def _fail(client: Client, username: str, times: int) -> None:
    for _ in range(times):
        reply = await client.login(username, WRONG)
        assert reply.status == 401, reply.text


async def test_wrong_passwords_lock_the_account_for_a_while_that_grows(
    portal: Portal,  # noqa: F811
) -> None:
    client = await portal.client()
    await _fail(client, "sam", ACCOUNT_LIMIT.failures)
    locked = await client.login("sam")  # the right password: refused unchecked
    assert locked.status == 429, locked.text
    assert locked.body["error"] == "too-many-logins"
    assert locked.headers["Retry-After"] == "60"
    other = await (await portal.client()).login("sam")  # any client: the account is locked
    assert other.status == 429
    portal.clock.advance(seconds=30)
    assert (await client.login("sam")).headers["Retry-After"] == "30"
    portal.clock.advance(seconds=31)
    await _fail(client, "sam", 1)  # the lock is over; one more failure locks it for twice as long
    again = await client.login("sam")
    assert again.status == 429 and again.headers["Retry-After"] == "120"
    portal.clock.advance(minutes=2, seconds=1)
    assert (await client.login("sam")).status == 200  # the right password works after the lock
    # ... and the success cleared the account's count: four more failures lock nothing
    await _fail(client, "sam", ACCOUNT_LIMIT.failures - 1)
    assert (await client.login("sam")).status == 200
    exposition, _ = portal.app[METRICS].exposition()
    assert _throttled(exposition, "account") == 4.0


async def test_the_login_page_is_throttled_too(portal: Portal) -> None:  # noqa: F811
    client = await portal.client()
    await _fail(client, "mona", ACCOUNT_LIMIT.failures)
    async with client.http.get(f"{portal.base}/login") as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    form = {"csrf_token": token.group(1), "username": "mona", "password": PASSWORD}
    async with client.http.post(f"{portal.base}/login", data=form, allow_redirects=False) as answer:
        text = await answer.text()
        assert answer.status == 429, text
        assert answer.headers["Retry-After"] == "60"
    assert "Too many failed logins" in text


async def test_the_address_limit_covers_every_account_and_ignores_forged_forwarding(
    portal: Portal,  # noqa: F811
) -> None:
    client = await portal.client()
    names = ["hd", "mona", "sam", "nobody", "ghost"]
    for i in range(ADDRESS_LIMIT.failures):  # at most four per account: no account is locked
        forged = {"X-Forwarded-For": f"198.51.100.{i}"}  # not from a trusted proxy: ignored
        reply = await client.call(
            "POST",
            "/session",
            {"username": names[i % len(names)], "password": WRONG},
            headers=forged,
        )
        assert reply.status == 401, (i, reply.text)
    refused = await client.login("hd")  # another account, the right password, same address
    assert refused.status == 429, refused.text
    assert refused.headers["Retry-After"] == "60"
    exposition, _ = portal.app[METRICS].exposition()
    assert _throttled(exposition, "address") == 1.0
    portal.clock.advance(seconds=61)
    assert (await client.login("hd")).status == 200


async def test_guesses_in_parallel_do_not_pass_the_limit(portal: Portal) -> None:  # noqa: F811
    clients = [await portal.client() for _ in range(3 * ACCOUNT_LIMIT.failures)]
    replies = await asyncio.gather(*(c.login("sam", WRONG) for c in clients))
    statuses = sorted(r.status for r in replies)
    # each attempt is counted before its password is checked, in one locking transaction
    assert statuses.count(401) == ACCOUNT_LIMIT.failures, statuses
    assert set(statuses) == {401, 429}


def test_the_lock_doubles_up_to_its_cap() -> None:
    limit = LoginLimit(5, ACCOUNT_LIMIT.base, ACCOUNT_LIMIT.cap)
    spans = [limit.lock(n) for n in range(4, 12)]
    assert spans[0] is None
    assert [s.total_seconds() for s in spans[1:] if s] == [60, 120, 240, 480, 900, 900, 900]


TRUSTED = (ipaddress.ip_network("10.0.0.0/24"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: the header is ignored
        ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),  # nginx appended the client it saw
        ("10.0.0.5", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's word is not
        ("10.0.0.5", ["198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # two trusted hops
        ("10.0.0.5", ["junk"], "10.0.0.5"),
        ("10.0.0.5", [], "10.0.0.5"),
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", [], "2001:db8:1:2::/64"),  # one host's IPv6 prefix
        (None, [], "unknown"),
    ],
)
def test_the_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_trusted_proxies_come_from_the_config() -> None:
    """[portal] trusted_proxies: the addresses whose X-Forwarded-For the throttle believes."""
    config = CollectorConfig.model_validate({"portal": {"trusted_proxies": ["10.0.0.5"]}})
    app = web.Application()
    setup_portal_auth(app, config)
    assert app[THROTTLE].trusted_proxies == (ipaddress.ip_network("10.0.0.5/32"),)
    assert client_address("10.0.0.5", ["203.0.113.9"], app[THROTTLE].trusted_proxies) == (
        "203.0.113.9"
    )
    assert client_address("10.0.0.6", ["203.0.113.9"], app[THROTTLE].trusted_proxies) == (
        "10.0.0.6"
    )
