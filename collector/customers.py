"""The customers file: customers, their sites and supplies contacts, loaded in one go (R4, R18).

TOML, strict like the config (unknown keys are errors naming the key). Loading it again
updates what changed and adds what is new; nothing is removed. Users and devices are not in
it: users are made with `asr-collector add-user`, devices are registered once they report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from collector.errors import InvalidRequest
from collector.store import fleet, registry
from collector.store.database import Database
from common.strictconfig import Strict, load_toml

Language = Literal["it", "fr", "en"]


class SiteIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)  # R18: where shipments go


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str | None = None
    language: Language | None = None  # unset: the customer's


class CustomerIn(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    kind: Literal["mps", "self"]  # mps: the helpdesk acts and is told
    name: str | None = None
    language: Language = "en"
    sites: tuple[SiteIn, ...] = ()
    contacts: tuple[ContactIn, ...] = ()


class CustomersFile(Strict):
    customers: tuple[CustomerIn, ...]


def load_customers(path: Path) -> CustomersFile:
    """The customers file; ConfigError names the file and every wrong key."""
    return load_toml(CustomersFile, path)


@dataclass(frozen=True)
class NewCustomer:
    """A customer to create or update, with its sites (name, address) and contacts (R18)."""

    id: str
    kind: str
    name: str | None
    language: str | None
    sites: tuple[tuple[str, str | None], ...]
    contacts: tuple[fleet.ContactSpec, ...]


async def add_customers(db: Database, customers: Iterable[NewCustomer], now: datetime) -> int:
    """Create or update each customer with its sites and contacts; how many customers."""
    count = 0
    for c in customers:
        await fleet.add_customer(
            db,
            c.id,
            c.kind,
            now,
            name=c.name,
            language=c.language,
            sites_=c.sites,
            contacts_=c.contacts,
        )
        count += 1
    return count


async def apply(db: Database, customers: CustomersFile, now: datetime) -> int:
    """Create or update every customer of the file with its sites and contacts; how many."""
    return await add_customers(db, map(_new, customers.customers), now)


def _new(c: CustomerIn) -> NewCustomer:
    return NewCustomer(
        c.id,
        c.kind,
        c.name,
        c.language,
        tuple((site.name, site.address) for site in c.sites),
        tuple(fleet.ContactSpec(x.name, x.email, x.display_name, x.language) for x in c.contacts),
    )


async def require_site(db: Database, customer: str, site: str) -> None:
    """InvalidRequest naming the customer or the site unless both were loaded (R4, R18)."""
    names = await registry.site_names(db, customer)
    if names is None:
        raise InvalidRequest(
            f"unknown customer {customer!r}: load it first (asr-collector load-customers)",
            "customer",
        )
    if site not in names:
        known = ", ".join(repr(name) for name in names) or "none"
        raise InvalidRequest(
            f"customer {customer!r} has no site {site!r} (its sites: {known}): add it to the"
            " customers file and load it (asr-collector load-customers)",
            "site",
        )
