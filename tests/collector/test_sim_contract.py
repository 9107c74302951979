"""The simulation contract's input files: fleet.json and usage.csv parse exactly as written.

Every malformed input is a ContractError naming the file and the key path (JSON) or the line
(CSV); the contract's own example files are copied here verbatim.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.replenish.settings import Rules
from collector.simulation import spec
from collector.simulation.contract import (
    ContractError,
    Fleet,
    load_fleet,
    load_usage,
    parse_fleet,
    parse_usage,
)

# The contract's example fleet.json and usage.csv, verbatim.
CONTRACT_FLEET = """\
{
  "start": "2026-01-05",
  "days": 365,
  "lead_days": 3,
  "settings": {"trigger_days": 21, "supply_days": 30, "consolidation_days": 45},
  "customers": [
    {"id": "acme", "kind": "mps", "language": "it",
     "contacts": [{"id": "anna", "email": "anna@acme.example"}],
     "sites": [{"id": "milano", "address": "Via Roma 1, 20100 Milano"}]}
  ],
  "devices": [
    {"serial": "XRX-0001", "model": "Colour MFP", "customer": "acme", "site": "milano",
     "contact": "anna",
     "supplies": [
       {"id": "black", "kind": "toner", "colour": "black", "sku": "TN-K",
        "capacity_grams": 300, "start_grams": 120},
       {"id": "waste", "kind": "waste", "sku": "WT-1", "capacity_grams": 900,
        "start_grams": 0}
     ]}
  ]
}
"""

CONTRACT_USAGE = """\
date,serial,supply,grams,reachable
2026-01-05,XRX-0001,black,6.2,1
2026-01-06,XRX-0001,black,0,0
"""

START = datetime.date(2026, 1, 5)


def contract_doc() -> dict[str, Any]:
    """The contract's fleet as a fresh dict to change."""
    doc: dict[str, Any] = json.loads(CONTRACT_FLEET)
    return doc


def two_customer_doc() -> dict[str, Any]:
    """The contract's fleet plus a second customer with its own contact, site and device."""
    doc = contract_doc()
    doc["customers"].append(
        {
            "id": "beta",
            "kind": "self",
            "contacts": [{"id": "bob", "email": "bob@beta.example", "name": "Bob"}],
            "sites": [{"id": "roma", "address": "Via Appia 2, Roma"}],
        }
    )
    device = copy.deepcopy(doc["devices"][0])
    device.update(serial="HP-0002", customer="beta", site="roma", contact="bob")
    doc["devices"].append(device)
    return doc


def fleet_of(doc: dict[str, Any]) -> Fleet:
    return parse_fleet(json.dumps(doc))


def fleet_error(doc: dict[str, Any]) -> ContractError:
    with pytest.raises(ContractError) as info:
        fleet_of(doc)
    return info.value


def raised(call: Callable[..., object], *args: Any) -> ContractError:
    """The ContractError that call(*args) raises."""
    with pytest.raises(ContractError) as info:
        call(*args)
    return info.value


def usage_of(text: str, fleet: Fleet | None = None) -> Any:
    return parse_usage(text.splitlines(), fleet or parse_fleet(CONTRACT_FLEET))


def usage_error(text: str, fleet: Fleet | None = None) -> ContractError:
    with pytest.raises(ContractError) as info:
        usage_of(text, fleet)
    return info.value


# --- the contract's examples -------------------------------------------------------------------


def test_contract_example_fleet_parses_to_its_records() -> None:
    fleet = parse_fleet(CONTRACT_FLEET)
    assert fleet.start == START
    assert fleet.days == 365
    assert fleet.lead_days == 3
    assert fleet.settings == {"trigger_days": 21, "supply_days": 30, "consolidation_days": 45}
    assert fleet.rules == Rules(trigger_days=21, supply_days=30, consolidation_days=45)
    assert fleet.customers == (
        spec.Customer(
            id="acme",
            kind="mps",
            language="it",
            contacts=(spec.Contact(id="anna", email="anna@acme.example"),),
            sites=(spec.Site(id="milano", address="Via Roma 1, 20100 Milano"),),
        ),
    )
    assert fleet.devices == (
        spec.DeviceSpec(
            serial="XRX-0001",
            model="Colour MFP",
            customer="acme",
            site="milano",
            contact="anna",
            supplies=(
                spec.SupplySpec("black", "toner", "black", "TN-K", 300.0, 120.0),
                spec.SupplySpec("waste", "waste", None, "WT-1", 900.0, 0.0),
            ),
        ),
    )
    assert (fleet.extra_orders, fleet.replacements, fleet.backorders) == ((), (), ())
    assert isinstance(fleet.devices[0].supplies[0].capacity_grams, float)


def test_contract_example_usage_parses_to_grams_per_day_and_reachable() -> None:
    usage = usage_of(CONTRACT_USAGE)
    assert usage.days == 365
    assert set(usage.grams) == {"XRX-0001"}
    black = usage.grams["XRX-0001"]["black"]
    assert len(black) == 365
    assert black[:3] == [6.2, 0.0, 0.0]
    assert sum(black) == pytest.approx(6.2)
    assert usage.grams["XRX-0001"]["waste"] == [0.0] * 365  # missing rows mean 0 grams
    reachable = usage.reachable["XRX-0001"]
    assert len(reachable) == 365
    assert (reachable[0], reachable[1], reachable[2]) == (1, 0, 1)  # R16: day 2 did not answer
    assert sum(reachable) == 364


def test_fleet_days_and_dates_convert_both_ways() -> None:
    fleet = parse_fleet(CONTRACT_FLEET)
    assert fleet.day_index(START) == 0
    assert fleet.day_index(datetime.date(2026, 2, 1)) == 27
    assert fleet.date_of(0) == START
    assert fleet.date_of(364) == datetime.date(2027, 1, 4)


def test_records_are_frozen_and_the_fleet_hashable() -> None:
    fleet = parse_fleet(CONTRACT_FLEET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fleet.days = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fleet.devices[0].supplies[0].start_grams = 0  # type: ignore[misc]
    assert hash(fleet) == hash(parse_fleet(CONTRACT_FLEET))


# --- defaults and optional keys ----------------------------------------------------------------


def test_optional_keys_take_their_defaults() -> None:
    doc = contract_doc()
    del doc["lead_days"], doc["settings"], doc["customers"][0]["language"]
    del doc["devices"][0]["model"]
    fleet = fleet_of(doc)
    assert fleet.lead_days == 3  # the contract: 3 days from order to delivery
    assert fleet.settings == {}
    assert fleet.rules == Rules()  # ASR-RULES.md's defaults
    assert fleet.customers[0].language is None
    assert fleet.customers[0].name is None
    assert fleet.customers[0].contacts[0].name is None
    assert fleet.devices[0].model is None
    assert fleet.devices[0].supplies[1].colour is None
    assert (fleet.extra_orders, fleet.replacements, fleet.backorders) == ((), (), ())


def test_optional_names_and_nulls_are_accepted() -> None:
    doc = two_customer_doc()
    doc["customers"][0]["name"] = "ACME S.p.A."
    doc["customers"][0]["language"] = None
    doc["devices"][0]["model"] = None
    fleet = fleet_of(doc)
    assert fleet.customers[0].name == "ACME S.p.A."
    assert fleet.customers[0].language is None
    assert fleet.customers[1].kind == "self"
    assert fleet.customers[1].contacts == (spec.Contact("bob", "bob@beta.example", "Bob"),)
    assert fleet.devices[0].model is None
    assert [d.serial for d in fleet.devices] == ["XRX-0001", "HP-0002"]


def test_ink_supply_and_float_grams_parse() -> None:
    doc = contract_doc()
    doc["devices"][0]["supplies"].append(
        {
            "id": "cyan",
            "kind": "ink",
            "colour": "cyan",
            "sku": "INK-C",
            "capacity_grams": 45.5,
            "start_grams": 45.5,
        }
    )
    assert fleet_of(doc).devices[0].supplies[2] == spec.SupplySpec(
        "cyan", "ink", "cyan", "INK-C", 45.5, 45.5
    )


def test_r8_settings_override_reaches_the_rules() -> None:
    doc = contract_doc()
    doc["settings"] = {"trigger_days": 14, "consolidate_same_device": False}
    fleet = fleet_of(doc)
    assert fleet.rules.trigger_days == 14
    assert fleet.rules.consolidate_same_device is False
    assert fleet.rules.supply_days == Rules().supply_days  # the rest keep their defaults
    assert fleet.settings == {"trigger_days": 14, "consolidate_same_device": False}


def test_unknown_setting_names_the_key() -> None:
    doc = contract_doc()
    doc["settings"] = {"trigger_days": 14, "trigger_dayz": 14}
    err = fleet_error(doc)
    assert err.where == "settings.trigger_dayz"
    assert str(err).startswith("fleet.json: settings.trigger_dayz: unknown setting")


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"trigger_days": -1}, "settings.trigger_days"),
        ({"trigger_days": "21"}, "settings.trigger_days"),
        ({"trigger_days": True}, "settings.trigger_days"),  # a bool is not a number
        ({"rate_window_days": 28.5}, "settings.rate_window_days"),
        ({"consolidate_same_device": 1}, "settings.consolidate_same_device"),
        ({"spike_ratio": 0}, "settings.spike_ratio"),
        ({"history_days": 10}, "settings.history_days"),  # must cover the rate window
    ],
)
def test_bad_setting_names_the_key(settings: dict[str, Any], where: str) -> None:
    doc = contract_doc()
    doc["settings"] = settings
    err = fleet_error(doc)
    assert err.where == where
    assert str(err).startswith(f"fleet.json: {where}: ")


def test_settings_that_are_not_finite_are_refused() -> None:
    text = CONTRACT_FLEET.replace('"trigger_days": 21', '"trigger_days": Infinity')
    err = raised(parse_fleet, text)
    assert err.where == "settings.trigger_days"


# --- extensions ----------------------------------------------------------------------------------


def test_r13_r14_extension_lists_parse() -> None:
    doc = contract_doc()
    doc["extra_orders"] = [
        {"date": "2026-03-02", "serial": "XRX-0001", "supply": "black", "quantity": 2}
    ]
    doc["replacements"] = [{"date": "2026-04-10", "serial": "XRX-0001", "supply": "black"}]
    doc["backorders"] = [
        {"sku": "TN-K", "from": "2026-02-01", "until": "2026-02-14", "delay_days": 10},
        {"sku": "WT-1", "from": "2027-01-04", "until": "2027-01-04", "delay_days": 1},
    ]
    fleet = fleet_of(doc)
    assert fleet.extra_orders == (
        spec.ExtraOrder(datetime.date(2026, 3, 2), "XRX-0001", "black", 2),
    )
    assert fleet.replacements == (
        spec.Replacement(datetime.date(2026, 4, 10), "XRX-0001", "black"),
    )
    assert fleet.backorders == (
        spec.Backorder("TN-K", datetime.date(2026, 2, 1), datetime.date(2026, 2, 14), 10),
        spec.Backorder("WT-1", datetime.date(2027, 1, 4), datetime.date(2027, 1, 4), 1),
    )


# --- fleet.json errors: each names the key path --------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    """A change setting the value at a path like 'devices.0.supplies.1.sku'."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


def _drop(path: str) -> Change:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return change


def _append(path: str, item: Any) -> Change:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node.append(copy.deepcopy(item))

    return change


def _rename(path: str, key: str, new: str) -> Change:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node[new] = node.pop(key)

    return change


def _extend(key: str, item: dict[str, Any]) -> Change:
    return _set(key, [item])


EXTRA = {"date": "2026-03-02", "serial": "XRX-0001", "supply": "black", "quantity": 1}
SWAP = {"date": "2026-03-02", "serial": "XRX-0001", "supply": "black"}
BACK = {"sku": "TN-K", "from": "2026-02-01", "until": "2026-02-14", "delay_days": 3}
SUPPLY = {"id": "black", "kind": "toner", "colour": "black", "sku": "TN-K"}

FLEET_ERRORS: list[tuple[str, Change, str, str]] = [
    # (test id, change, key path, a fragment of the message)
    ("unknown-top-key", _set("dayz", 3), "dayz", "unknown key"),
    (
        "unknown-nested-key",
        _set("devices.0.supplies.0.capcity_grams", 300),
        "devices[0].supplies[0].capcity_grams",
        "unknown key",
    ),
    (
        "misspelt-key-is-named-not-the-missing-one",
        _rename("devices.0.supplies.0", "capacity_grams", "capcity_grams"),
        "devices[0].supplies[0].capcity_grams",
        "unknown key",
    ),
    ("unknown-customer-key", _set("customers.0.tier", 1), "customers[0].tier", "unknown key"),
    ("missing-start", _drop("start"), "start", "missing key"),
    ("missing-days", _drop("days"), "days", "missing key"),
    ("missing-devices", _drop("devices"), "devices", "missing key"),
    ("missing-sku", _drop("devices.0.supplies.0.sku"), "devices[0].supplies[0].sku", "missing"),
    ("start-not-a-date", _set("start", "2026-13-01"), "start", "ISO date"),
    ("start-not-iso", _set("start", "05/01/2026"), "start", "ISO date"),
    ("start-a-number", _set("start", 20260105), "start", "ISO date"),
    ("days-zero", _set("days", 0), "days", "greater than or equal to 1"),
    ("days-too-many", _set("days", 3661), "days", "less than or equal to 3660"),
    ("days-a-float", _set("days", 365.5), "days", "integer"),
    ("days-a-bool", _set("days", True), "days", "integer"),
    ("days-a-string", _set("days", "365"), "days", "integer"),
    ("lead-days-negative", _set("lead_days", -1), "lead_days", "greater than or equal to 0"),
    ("settings-not-object", _set("settings", [1]), "settings", "dictionary"),
    ("customers-not-list", _set("customers", {}), "customers", "list"),
    ("customer-not-object", _set("customers.0", "acme"), "customers[0]", "must be an object"),
    ("customer-kind", _set("customers.0.kind", "corporate"), "customers[0].kind", "'mps'"),
    ("customer-id-empty", _set("customers.0.id", ""), "customers[0].id", "must not be empty"),
    ("customer-id-number", _set("customers.0.id", 7), "customers[0].id", "string"),
    ("language-empty", _set("customers.0.language", ""), "customers[0].language", "empty"),
    (
        "customer-id-twice",
        _append("customers", json.loads(CONTRACT_FLEET)["customers"][0]),
        "customers[1].id",
        "'acme' appears twice",
    ),
    (
        "contact-id-twice",
        _append("customers.0.contacts", {"id": "anna", "email": "a2@acme.example"}),
        "customers[0].contacts[1].id",
        "appears twice",
    ),
    (
        "site-id-twice",
        _append("customers.0.sites", {"id": "milano", "address": "elsewhere"}),
        "customers[0].sites[1].id",
        "appears twice",
    ),
    (
        "email-without-at",
        _set("customers.0.contacts.0.email", "anna.acme.example"),
        "customers[0].contacts[0].email",
        "not an email address",
    ),
    ("address-empty", _set("customers.0.sites.0.address", ""), "customers[0].sites[0].address", ""),
    ("r3-serial-empty", _set("devices.0.serial", ""), "devices[0].serial", "must not be empty"),
    (
        "r3-serial-twice",
        _append("devices", json.loads(CONTRACT_FLEET)["devices"][0]),
        "devices[1].serial",
        "'XRX-0001' appears twice",
    ),
    ("device-customer-unknown", _set("devices.0.customer", "zeta"), "devices[0].customer", "zeta"),
    (
        "r18-device-site-unknown",
        _set("devices.0.site", "torino"),
        "devices[0].site",
        "has no site 'torino'",
    ),
    (
        "r18-device-contact-unknown",
        _set("devices.0.contact", "mario"),
        "devices[0].contact",
        "has no contact 'mario'",
    ),
    (
        "supply-id-twice",
        _append("devices.0.supplies", {**SUPPLY, "capacity_grams": 1, "start_grams": 1}),
        "devices[0].supplies[2].id",
        "appears twice",
    ),
    (
        "r5-supply-kind",
        _set("devices.0.supplies.0.kind", "drum"),
        "devices[0].supplies[0].kind",
        "'toner', 'ink' or 'waste'",
    ),
    (
        "r5-toner-needs-colour",
        _drop("devices.0.supplies.0.colour"),
        "devices[0].supplies[0].colour",
        "needs a colour",
    ),
    (
        "r5-ink-needs-colour",
        _append(
            "devices.0.supplies",
            {"id": "c", "kind": "ink", "sku": "INK-C", "capacity_grams": 9, "start_grams": 9},
        ),
        "devices[0].supplies[2].colour",
        "needs a colour",
    ),
    ("sku-empty", _set("devices.0.supplies.0.sku", ""), "devices[0].supplies[0].sku", "empty"),
    (
        "capacity-zero",
        _set("devices.0.supplies.0.capacity_grams", 0),
        "devices[0].supplies[0].capacity_grams",
        "greater than 0",
    ),
    (
        "capacity-a-string",
        _set("devices.0.supplies.0.capacity_grams", "300"),
        "devices[0].supplies[0].capacity_grams",
        "number",
    ),
    (
        "capacity-a-bool",
        _set("devices.0.supplies.0.capacity_grams", True),
        "devices[0].supplies[0].capacity_grams",
        "number",
    ),
    (
        "start-grams-negative",
        _set("devices.0.supplies.0.start_grams", -1),
        "devices[0].supplies[0].start_grams",
        "greater than or equal to 0",
    ),
    (
        "start-grams-over-capacity",
        _set("devices.0.supplies.0.start_grams", 301),
        "devices[0].supplies[0].start_grams",
        "more than capacity_grams (300)",
    ),
    (
        "r14-extra-order-serial",
        _extend("extra_orders", {**EXTRA, "serial": "NOPE"}),
        "extra_orders[0].serial",
        "no device 'NOPE'",
    ),
    (
        "r14-extra-order-supply",
        _extend("extra_orders", {**EXTRA, "supply": "cyan"}),
        "extra_orders[0].supply",
        "has no supply 'cyan'",
    ),
    (
        "r14-extra-order-before-start",
        _extend("extra_orders", {**EXTRA, "date": "2026-01-04"}),
        "extra_orders[0].date",
        "outside the run",
    ),
    (
        "r14-extra-order-after-end",
        _extend("extra_orders", {**EXTRA, "date": "2027-01-05"}),
        "extra_orders[0].date",
        "outside the run",
    ),
    (
        "r14-extra-order-quantity-zero",
        _extend("extra_orders", {**EXTRA, "quantity": 0}),
        "extra_orders[0].quantity",
        "greater than or equal to 1",
    ),
    (
        "r14-extra-order-quantity-bool",
        _extend("extra_orders", {**EXTRA, "quantity": True}),
        "extra_orders[0].quantity",
        "integer",
    ),
    (
        "r14-extra-order-bad-date",
        _extend("extra_orders", {**EXTRA, "date": "2026-02-30"}),
        "extra_orders[0].date",
        "ISO date",
    ),
    (
        "r13-replacement-serial",
        _extend("replacements", {**SWAP, "serial": "NOPE"}),
        "replacements[0].serial",
        "no device",
    ),
    (
        "r13-replacement-supply",
        _extend("replacements", {**SWAP, "supply": "cyan"}),
        "replacements[0].supply",
        "no supply",
    ),
    (
        "r13-replacement-date",
        _extend("replacements", {**SWAP, "date": "2027-06-01"}),
        "replacements[0].date",
        "outside the run",
    ),
    (
        "r13-replacement-unknown-key",
        _extend("replacements", {**SWAP, "grams": 10}),
        "replacements[0].grams",
        "unknown key",
    ),
    (
        "backorder-sku-unknown",
        _extend("backorders", {**BACK, "sku": "TN-C"}),
        "backorders[0].sku",
        "no supply of the fleet has sku 'TN-C'",
    ),
    (
        "backorder-from-after-until",
        _extend("backorders", {**BACK, "from": "2026-02-15"}),
        "backorders[0].until",
        "before from",
    ),
    (
        "backorder-from-outside",
        _extend("backorders", {**BACK, "from": "2025-12-31"}),
        "backorders[0].from",
        "outside the run",
    ),
    (
        "backorder-until-outside",
        _extend("backorders", {**BACK, "until": "2027-01-05"}),
        "backorders[0].until",
        "outside the run",
    ),
    (
        "backorder-delay-zero",
        _extend("backorders", {**BACK, "delay_days": 0}),
        "backorders[0].delay_days",
        "greater than or equal to 1",
    ),
    (
        "backorder-start-is-not-the-json-key",
        _extend("backorders", {"sku": "TN-K", "start": "2026-02-01", "until": "2026-02-14"}),
        "backorders[0].start",
        "unknown key",
    ),
]


@pytest.mark.parametrize(
    ("change", "where", "fragment"),
    [
        pytest.param(change, where, fragment, id=name)
        for name, change, where, fragment in FLEET_ERRORS
    ],
)
def test_fleet_error_names_the_file_and_key_path(change: Change, where: str, fragment: str) -> None:
    doc = contract_doc()
    change(doc)
    err = fleet_error(doc)
    assert (err.file, err.where) == ("fleet.json", where), str(err)
    assert str(err).startswith(f"fleet.json: {where}: "), str(err)
    assert fragment in err.message, str(err)


def test_r18_device_site_of_another_customer_is_refused() -> None:
    doc = two_customer_doc()
    doc["devices"][1]["site"] = "milano"  # acme's site, not beta's
    err = fleet_error(doc)
    assert str(err).startswith("fleet.json: devices[1].site: customer 'beta' has no site 'milano'")
    doc = two_customer_doc()
    doc["devices"][1]["contact"] = "anna"
    assert fleet_error(doc).where == "devices[1].contact"


def test_several_shape_errors_are_counted_after_the_first() -> None:
    doc = contract_doc()
    doc["days"] = 0
    doc["lead_days"] = -1
    assert fleet_error(doc).message.endswith("(and 1 more)")


def test_json_syntax_error_names_line_and_column() -> None:
    text = CONTRACT_FLEET.replace('"days": 365,', '"days": 365,,')
    err = raised(parse_fleet, text, "s.json")
    assert err.where == "line 3, column 15"
    assert str(err).startswith("s.json: line 3, column 15: not valid JSON")


@pytest.mark.parametrize("text", ["[]", '"fleet"', "null"])
def test_top_level_must_be_an_object(text: str) -> None:
    err = raised(parse_fleet, text)
    assert str(err) == "fleet.json: (top level): must be a JSON object"


def test_contract_error_format_and_attributes() -> None:
    err = ContractError("f.json", "devices[2].serial", "bad")
    assert str(err) == "f.json: devices[2].serial: bad"
    assert (err.file, err.where, err.message) == ("f.json", "devices[2].serial", "bad")
    assert isinstance(err, ValueError)


def test_load_fleet_reads_the_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(CONTRACT_FLEET)
    assert load_fleet(path) == parse_fleet(CONTRACT_FLEET)
    path.write_text(CONTRACT_FLEET.replace('"days": 365', '"days": 0'))
    assert str(raised(load_fleet, path)).startswith(f"{path}: days: ")


def test_load_fleet_of_an_unreadable_file_says_file(tmp_path: Path) -> None:
    err = raised(load_fleet, tmp_path / "missing.json")
    assert (err.file, err.where) == (str(tmp_path / "missing.json"), "file")
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"start": "\xe9"}')
    assert raised(load_fleet, path).where == "file"


# --- usage.csv -----------------------------------------------------------------------------------


def test_usage_columns_in_any_order_and_reachable_optional() -> None:
    usage = usage_of("grams,supply,serial,date\n2.5,waste,XRX-0001,2026-01-07\n")
    assert usage.grams["XRX-0001"]["waste"][2] == 2.5
    assert usage.reachable["XRX-0001"] == bytearray(b"\x01") * 365


def test_usage_header_whitespace_and_byte_order_mark_are_tolerated() -> None:
    usage = usage_of("\ufeffdate, serial ,supply,grams\n2026-01-05,XRX-0001,black,1\n")
    assert usage.grams["XRX-0001"]["black"][0] == 1.0


def test_usage_trailing_blank_lines_are_fine() -> None:
    usage = usage_of(CONTRACT_USAGE + "\n\n  \n")
    assert usage.grams["XRX-0001"]["black"][0] == 6.2


def test_usage_header_only_is_no_usage_and_every_device_is_present() -> None:
    fleet = fleet_of(two_customer_doc())
    usage = usage_of("date,serial,supply,grams,reachable\n", fleet)
    assert set(usage.grams) == set(usage.reachable) == {"XRX-0001", "HP-0002"}
    assert set(usage.grams["HP-0002"]) == {"black", "waste"}
    assert all(sum(g) == 0 for per in usage.grams.values() for g in per.values())
    assert all(r == bytearray(b"\x01") * 365 for r in usage.reachable.values())


def test_r16_device_unreachable_when_any_row_of_the_day_says_0() -> None:
    usage = usage_of(
        "date,serial,supply,grams,reachable\n"
        "2026-01-10,XRX-0001,black,3,1\n"
        "2026-01-10,XRX-0001,waste,1,0\n"
        "2026-01-11,XRX-0001,black,3,1\n"
        "2026-01-11,XRX-0001,waste,1,\n"  # an empty cell is the default, 1
    )
    assert usage.reachable["XRX-0001"][5] == 0
    assert usage.reachable["XRX-0001"][6] == 1
    assert usage.grams["XRX-0001"]["black"][5] == 3.0  # usage still happens


def test_usage_devices_are_kept_apart() -> None:
    fleet = fleet_of(two_customer_doc())
    usage = usage_of(
        "serial,date,supply,grams,reachable\n"
        "HP-0002,2027-01-04,black,4,0\n"
        "XRX-0001,2027-01-04,black,1,1\n",
        fleet,
    )
    assert usage.grams["HP-0002"]["black"][364] == 4.0
    assert usage.grams["XRX-0001"]["black"][364] == 1.0
    assert (usage.reachable["HP-0002"][364], usage.reachable["XRX-0001"][364]) == (0, 1)


HEADER = "date,serial,supply,grams,reachable\n"
ROW = "2026-01-05,XRX-0001,black,6.2,1\n"

USAGE_ERRORS: list[tuple[str, str, int, str]] = [
    # (test id, CSV text, line, a fragment of the message)
    ("empty-file", "", 1, "no header row"),
    ("missing-grams-column", "date,serial,supply\n", 1, "no 'grams' column"),
    ("missing-date-column", "serial,supply,grams\n", 1, "no 'date' column"),
    ("unknown-column", "date,serial,supply,grams,colour\n", 1, "unknown column 'colour'"),
    ("column-twice", "date,serial,supply,grams,grams\n", 1, "column 'grams' appears twice"),
    ("bad-date", HEADER + ROW + "2026-1-6,XRX-0001,black,1,1\n", 3, "'2026-1-6' is not an ISO"),
    ("impossible-date", HEADER + "2026-02-30,XRX-0001,black,1,1\n", 2, "not an ISO date"),
    ("date-before-run", HEADER + "2026-01-04,XRX-0001,black,1,1\n", 2, "outside the run"),
    ("date-after-run", HEADER + ROW + ROW.replace("2026-01-05", "2027-01-05"), 3, "outside"),
    ("r3-unknown-serial", HEADER + "2026-01-05,XRX-9999,black,1,1\n", 2, "unknown serial"),
    ("supply-not-on-device", HEADER + "2026-01-05,XRX-0001,cyan,1,1\n", 2, "no supply 'cyan'"),
    ("grams-not-a-number", HEADER + "2026-01-05,XRX-0001,black,lots,1\n", 2, "not a number"),
    ("grams-empty", HEADER + "2026-01-05,XRX-0001,black,,1\n", 2, "not a number"),
    ("grams-negative", HEADER + "2026-01-05,XRX-0001,black,-0.5,1\n", 2, "finite number >= 0"),
    ("grams-nan", HEADER + "2026-01-05,XRX-0001,black,nan,1\n", 2, "finite number >= 0"),
    ("grams-inf", HEADER + "2026-01-05,XRX-0001,black,inf,1\n", 2, "finite number >= 0"),
    ("r16-reachable-2", HEADER + "2026-01-05,XRX-0001,black,1,2\n", 2, "must be 0 or 1"),
    ("r16-reachable-yes", HEADER + "2026-01-05,XRX-0001,black,1,yes\n", 2, "must be 0 or 1"),
    ("same-row-twice", HEADER + ROW + ROW, 3, "a second row for 2026-01-05, XRX-0001, black"),
    ("too-few-fields", HEADER + ROW + "2026-01-06,XRX-0001,black,1\n", 3, "4 fields"),
    ("too-many-fields", HEADER + "2026-01-06,XRX-0001,black,1,1,1\n", 2, "6 fields"),
    ("blank-line-in-the-middle", HEADER + ROW + "\n" + ROW, 3, "blank line"),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [pytest.param(text, line, fragment, id=name) for name, text, line, fragment in USAGE_ERRORS],
)
def test_usage_error_names_the_file_and_line(text: str, line: int, fragment: str) -> None:
    err = usage_error(text)
    assert (err.file, err.where) == ("usage.csv", f"line {line}"), str(err)
    assert str(err).startswith(f"usage.csv: line {line}: "), str(err)
    assert fragment in err.message, str(err)


def test_usage_error_names_the_given_file() -> None:
    fleet = parse_fleet(CONTRACT_FLEET)
    err = raised(parse_usage, [HEADER, "x"], fleet, "u.csv")
    assert str(err).startswith("u.csv: line 2: ")


def test_load_usage_reads_the_file_and_names_it(tmp_path: Path) -> None:
    fleet = parse_fleet(CONTRACT_FLEET)
    path = tmp_path / "usage.csv"
    path.write_text(CONTRACT_USAGE.replace("\n", "\r\n"))  # Windows line ends too
    usage = load_usage(path, fleet)
    assert usage.grams["XRX-0001"]["black"][:2] == [6.2, 0.0]
    assert usage.reachable["XRX-0001"][1] == 0
    path.write_text(HEADER + ROW + ROW)
    assert str(raised(load_usage, path, fleet)).startswith(f"{path}: line 3: ")
    err = raised(load_usage, tmp_path / "missing.csv", fleet)
    assert (err.file, err.where) == (str(tmp_path / "missing.csv"), "file")


def test_usage_of_a_large_fleet_parses_every_row() -> None:
    doc = contract_doc()
    device = doc["devices"][0]
    doc["devices"] = [{**device, "serial": f"S{i:03d}"} for i in range(50)]
    doc["days"] = 30
    fleet = fleet_of(doc)
    lines = [HEADER]
    for day in range(30):
        date = fleet.date_of(day).isoformat()
        for i in range(50):
            lines.append(f"{date},S{i:03d},black,{day + i / 100},{int(day % 7 != 0)}\n")
            lines.append(f"{date},S{i:03d},waste,0.5,1\n")
    usage = parse_usage(lines, fleet)
    assert usage.grams["S007"]["black"][29] == 29.07
    assert sum(usage.grams["S049"]["waste"]) == 15.0
    assert list(usage.reachable["S000"][:8]) == [0, 1, 1, 1, 1, 1, 1, 0]
