"""The pages' change forms, posted as a browser would (page_kit.posted_change and path_id):
the 303 with where it goes, the form's page again (400), the 403 and 404 pages."""

from __future__ import annotations

from sqlalchemy import select

from collector.store.schema import sites
from tests.collector.test_portal_api import Client, Portal, portal  # noqa: F401  (the fixture)


async def _csrf(client: Client, path: str) -> str:
    html = await (await client.http.get(client.base + path)).text()
    return html.split('name="csrf_token" value="')[1].split('"')[0]


async def _post(client: Client, path: str, form: dict[str, str]) -> tuple[int, str, str]:
    """The answer's status, Location and text."""
    reply = await client.http.post(client.base + path, data=form, allow_redirects=False)
    return reply.status, reply.headers.get("Location", ""), await reply.text()


async def test_a_site_form_changes_the_address_or_shows_why_not(portal: Portal) -> None:  # noqa: F811
    sam = await portal.client("sam")
    lyon = portal.ids["lyon"]
    csrf = await _csrf(sam, "/sites")
    status, location, _ = await _post(
        sam, f"/sites/{lyon}", {"csrf_token": csrf, "address": "5 quai Saint-Antoine, Lyon"}
    )
    assert (status, location) == (303, f"/sites#site-{lyon}")
    stored = await portal.db.read(
        lambda c: c.execute(select(sites.c.address).where(sites.c.id == lyon)).scalar_one()
    )
    assert stored == "5 quai Saint-Antoine, Lyon"
    status, _, text = await _post(sam, f"/sites/{lyon}", {"csrf_token": csrf, "address": ""})
    assert status == 400 and 'data-testid="form-error"' in text
    status, _, text = await _post(sam, f"/sites/{lyon}", {"address": "Elsewhere 1"})
    assert status == 403 and "Form refused" in text


async def test_a_path_id_that_is_no_number_or_no_row_is_the_not_found_page(
    portal: Portal,  # noqa: F811
) -> None:
    sam = await portal.client("sam")
    csrf = await _csrf(sam, "/sites")
    for path, what in (("/sites/lyon", "site"), ("/contacts/bob", "contact")):
        status, _, text = await _post(sam, path, {"csrf_token": csrf, "address": "x"})
        assert status == 404 and f"There is no such {what} in your account." in text
    status, _, text = await _post(sam, "/sites/999999", {"csrf_token": csrf, "address": "x"})
    assert status == 404 and "There is no such site, contact or device" in text


async def test_the_extra_order_form_records_or_shows_the_device_again(portal: Portal) -> None:  # noqa: F811
    hd = await portal.client("hd")
    csrf = await _csrf(hd, "/devices/M1")
    form = {"csrf_token": csrf, "supply_id": "black", "quantity": "many", "note": ""}
    status, _, text = await _post(hd, "/devices/M1/extra-orders", form)
    assert status == 400 and "quantity" in text
    status, location, _ = await _post(hd, "/devices/M1/extra-orders", {**form, "quantity": "1"})
    assert (status, location) == (303, "/devices/M1")
    status, _, text = await _post(hd, "/devices/NOPE/extra-orders", {**form, "quantity": "1"})
    assert status == 404 and "There is no such device" in text
