"""The portal API's inputs at their bounds (issue 13): over real TLS, on SQLite and PostgreSQL.

Ids past the signed 64-bit range, NUL and other control characters, lone surrogates and
overlong strings, in paths, queries and JSON bodies, are each a 4xx whose JSON error names the
field, and nothing of them is stored.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from collector.store.schema import audit_log, sites
from tests.collector.test_portal_api import Portal, portal  # noqa: F401  (the fixture)

HUGE = 99999999999999999999  # past 2**63 - 1
TOO_BIG = 2**63  # one past the largest BIGINT


def _raw(text: str) -> bytes:
    """A JSON body written by hand: json.dumps would not send a lone surrogate as it is."""
    return text.encode("ascii")


# (method, path, raw JSON body or None, who, the field the error names)
PROBES = [
    ("PATCH", "/sites/99999999999999999999", '{"address": "Via Roma 2"}', "sam", "site_id"),
    ("PATCH", f"/sites/{TOO_BIG}", '{"address": "Via Roma 2"}', "sam", "site_id"),
    ("PATCH", "/sites/-1", '{"address": "Via Roma 2"}', "sam", "site_id"),
    ("PATCH", "/contacts/99999999999999999999", '{"email": "a@b.example"}', "sam", "contact_id"),
    ("PUT", "/devices/S1/assignment", f'{{"site_id": {HUGE}, "contact_id": 1}}', "sam", "site_id"),
    (
        "PUT",
        "/devices/S1/assignment",
        f'{{"site_id": 1, "contact_id": {TOO_BIG}}}',
        "sam",
        "contact_id",
    ),
    (
        "POST",
        "/devices/S2/registration",
        f'{{"site_id": {HUGE}, "contact_id": 1}}',
        "sam",
        "site_id",
    ),
    ("PATCH", "/sites/{lyon}", '{"address": "Via \\ud800 Roma"}', "sam", "address"),
    ("PATCH", "/sites/{lyon}", '{"address": "Via\\u0000Roma 1"}', "sam", "address"),
    ("PATCH", "/sites/{lyon}", '{"address": "Via\\u001bRoma 1"}', "sam", "address"),
    ("PATCH", "/contacts/{bob}", '{"display_name": "\\udfff"}', "sam", "display_name"),
    ("PATCH", "/contacts/{bob}", '{"email": "bob\\u0000@selfco.example"}', "sam", "email"),
    ("POST", "/tokens", '{"name": "\\ud800"}', "sam", "name"),
    ("POST", "/tokens", '{"name": "a\\u0000b"}', "sam", "name"),
    (
        "POST",
        "/devices/M1/extra-orders",
        '{"supply_id": "\\u0000", "quantity": 1}',
        "hd",
        "supply_id",
    ),
    (
        "POST",
        "/devices/M1/extra-orders",
        '{"supply_id": "black", "quantity": 1, "note": "\\ud800"}',
        "hd",
        "note",
    ),
    (
        "POST",
        "/devices/M1/extra-orders",
        f'{{"supply_id": "black", "quantity": {HUGE}}}',
        "hd",
        "quantity",
    ),
    ("POST", "/session", '{"username": "sam\\u0000", "password": "x"}', None, "username"),
    ("POST", "/session", '{"username": "\\ud800", "password": "x"}', None, "username"),
    ("POST", "/session", '{"username": "sam", "password": "\\ud800"}', None, "password"),
    ("GET", "/devices/S1%00", None, "sam", "serial"),
    ("GET", "/devices/" + "S" * 2000, None, "sam", "serial"),
    ("DELETE", "/tokens/a%00b", None, "sam", "name"),
    ("GET", "/devices?filter=low%00", None, "sam", "filter"),
    ("GET", "/orders?status=open%00", None, "sam", "status"),
    ("GET", f"/audit?limit={HUGE}", None, "sam", "limit"),
]


@pytest.mark.parametrize(("method", "path", "body", "who", "field"), PROBES)
async def test_bad_input_is_a_4xx_naming_the_field(
    portal: Portal,  # noqa: F811
    method: str,
    path: str,
    body: str | None,
    who: str | None,
    field: str,
) -> None:
    client = await portal.client(who)
    target = path.format(**portal.ids)
    data = _raw(body) if body is not None else None
    reply = await client.call(method, target, data=data)
    assert 400 <= reply.status < 500, (reply.status, reply.text)
    assert reply.body is not None and reply.body.get("field") == field, reply.text


async def test_a_nul_in_an_address_is_not_stored(portal: Portal) -> None:  # noqa: F811
    sam = await portal.client("sam")
    lyon = portal.ids["lyon"]
    before = await portal.db.read(
        lambda c: c.execute(select(sites.c.address).where(sites.c.id == lyon)).scalar_one()
    )
    reply = await sam.call("PATCH", f"/sites/{lyon}", {"address": "Via\x00Roma 1"})
    assert reply.status == 400 and reply.body["field"] == "address", reply.text
    after = await portal.db.read(
        lambda c: c.execute(select(sites.c.address).where(sites.c.id == lyon)).scalar_one()
    )
    assert after == before
    rows = await portal.db.read(lambda c: c.execute(select(audit_log)).all())
    assert not [r for r in rows if r.action == "address-changed"]


async def test_the_largest_id_is_still_just_not_found(portal: Portal) -> None:  # noqa: F811
    """2**63 - 1 is a valid id that names nothing: 404, as any missing site."""
    sam = await portal.client("sam")
    reply = await sam.call("PATCH", f"/sites/{2**63 - 1}", {"address": "Via Roma 2"})
    assert reply.status == 404, reply.text
    assert reply.body["error"] == "not-found"
