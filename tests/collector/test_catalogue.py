"""The supplies catalogue (R3, R9, R11, R15): its files load strictly, models are found from
the text devices give, and a supply's part number comes from the device, then the catalogue,
then nobody (never from a description)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from hypothesis import given
from hypothesis import strategies as st

from collector import catalogue
from collector.catalogue import CatalogueError, is_part_number, load, parse, resolve
from tests import snmpsim

PRINTERS = snmpsim.SHARED_PRINTERS / "devices.json"
ROOT = Path(__file__).resolve().parents[2]

GOOD = """
vendor = "Acme"
names = ["Acme"]

[[model]]
name = "Acme P100"
match = ["P100*"]

[[model.supply]]
kind = "toner"
colour = "black"
standard = "ISO/IEC 19752"
parts = [{ number = "AC-100", yield = 3000 }, { number = "AC-100X", yield = 8000 }]

[[model.supply]]
kind = "waste"
parts = [{ number = "AC-W1" }]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_catalogue_loads() -> None:
    book = catalogue.default()
    assert len(book.models) >= 10
    for model in book.models:
        for supply in model.supplies:
            assert all(is_part_number(p.number) for p in supply.parts)


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("HP Color LaserJet Pro M252dw", "HP Color LaserJet Pro M252"),
        ("HP LaserJet Pro M252dw", "HP Color LaserJet Pro M252"),
        ("HP LaserJet MFP M130nw", "HP LaserJet Pro M102 / MFP M130"),
        ("Brother HL-5370DW series", "Brother HL-5300 series"),
        ("HL5370DW", "Brother HL-5300 series"),
        ("EPSON WF-C5790BA", "Epson WorkForce Pro WF-C5790"),
        ("Samsung M408x Series", "Samsung ProXpress M4080"),
        ("HP SimLaser Color C430dn", "SimLaser Color C400dn series"),
        ("Mono MFP M400", "Mono MFP M400"),
        ("Dell S5830dn 7XQ1R92", None),
        ("", None),
    ],
)
def test_model_found_from_device_text(text: str, model: str | None) -> None:
    found = catalogue.default().model(text)
    assert (found.name if found else None) == model


def test_every_dev_recording_with_a_catalogue_model_finds_it() -> None:
    """The DEV recordings' own names (hrDeviceDescr, else sysDescr) find their models."""
    if not PRINTERS.is_file():
        pytest.skip(snmpsim.SHARED_ABSENT)
    devices = json.loads(PRINTERS.read_text())
    found = set()
    for device in devices.values():
        text = (device["hrDeviceDescr"] or {}).get("1") or device["sysDescr"].split(";")[0]
        model = catalogue.default().model(text)
        if model is not None:
            found.add(model.name)
    assert {
        "HP Color LaserJet Pro M252",
        "HP Color LaserJet Pro M452",
        "HP LaserJet Pro M102 / MFP M130",
        "Brother HL-5300 series",
        "Canon i-SENSYS LBP6670",
        "Ricoh Aficio MP C3002",
        "Sharp MX-3570N",
        "Xerox AltaLink C8045",
    } <= found


def test_another_vendors_name_is_not_this_model(tmp_path: Path) -> None:
    book = load([_write(tmp_path, "acme.toml", GOOD), _write(tmp_path, "hp.toml", _HP)])
    assert book.model("Acme P100n") is not None
    assert book.model("HP P100n") is None  # the text names HP, not Acme
    assert book.model("P100n") is not None  # no vendor named: the model's words decide


_HP = 'vendor = "HP"\nnames = ["HP"]\n[[model]]\nname = "HP Q1"\nmatch = ["Q1"]\n' + (
    '[[model.supply]]\nkind = "toner"\ncolour = "black"\nparts = [{ number = "Q1A" }]\n'
)


def test_a_tie_between_two_models_finds_none(tmp_path: Path) -> None:
    other = GOOD.replace('"Acme P100"', '"Acme P100 twin"')
    book = load([_write(tmp_path, "a.toml", GOOD), _write(tmp_path, "b.toml", other)])
    assert book.model("Acme P100") is None


def test_resolution_order_device_then_catalogue_then_none(tmp_path: Path) -> None:
    """R15: the device's own part number, else the catalogue's first part, else none."""
    book = load([_write(tmp_path, "acme.toml", GOOD)])
    own = resolve(book, "Acme P100", "toner", "black", "AC-100X")
    assert (own.part_number, own.source, own.rated_yield) == ("AC-100X", "device", 8000)
    listed = resolve(book, "Acme P100", "toner", "black", None)
    assert (listed.part_number, listed.source, listed.rated_yield) == ("AC-100", "catalogue", 3000)
    waste = resolve(book, "Acme P100", "waste", None, None)
    assert waste.part_number == "AC-W1"  # R11: the waste container that goes with black
    unknown = resolve(book, "Other Z9", "toner", "black", None)
    assert (unknown.part_number, unknown.source) == (None, "none")


@pytest.mark.parametrize("description", ["Black Toner Cartridge", "Toner", "Black", "", " "])
def test_a_description_is_never_a_part_number(tmp_path: Path, description: str) -> None:
    book = load([_write(tmp_path, "acme.toml", GOOD)])
    assert resolve(book, "Acme P100", "toner", "black", description).source == "catalogue"
    assert resolve(book, "Unknown", "toner", "black", description).part_number is None


def test_mono_reading_without_colour_takes_the_only_toner(tmp_path: Path) -> None:
    book = load([_write(tmp_path, "acme.toml", GOOD)])
    assert resolve(book, "Acme P100", "toner", None, None).part_number == "AC-100"
    assert resolve(book, "Acme P100", "toner", "cyan", None).part_number is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (('kind = "waste"', 'kind = "drum"'), "supply 2: kind: one of toner, ink, waste"),
        (("yield = 3000", 'yield = "3000"'), "supply 1 part 1: yield"),
        (("yield = 3000", "yield = 0"), "supply 1 part 1: yield"),
        (('number = "AC-W1"', 'number = "Waste box"'), "supply 2 part 1: number"),
        (('standard = "ISO/IEC 19752"', 'standard = "ISO 1"'), "supply 1: standard"),
        (('colour = "black"\n', ""), "supply 1: colour: required"),
        (('name = "Acme P100"', 'name = "Acme P100"\nmodle = 1'), "'Acme P100': modle: unknown"),
        (('names = ["Acme"]', 'names = ["Acme"]\nvendr = 1'), "file: vendr: unknown key"),
        (('match = ["P100*"]', 'match = ["*"]'), "match: '*'"),
        (('match = ["P100*"]', "match = []"), "match: a non-empty list"),
        (('kind = "waste"', 'kind = "toner"\ncolour = "black"'), "two toner supplies"),
    ],
)
def test_a_bad_file_names_file_entry_and_key(
    tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    assert change[0] in GOOD
    path = _write(tmp_path, "acme.toml", GOOD.replace(*change, 1))
    with pytest.raises(CatalogueError) as err:
        load([path])
    assert str(path) in str(err.value)
    assert named in str(err.value)


def test_a_model_named_in_two_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="also in"):
        load([_write(tmp_path, "a.toml", GOOD), _write(tmp_path, "b.toml", GOOD)])


def test_not_toml_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.toml", "vendor = ")
    with pytest.raises(CatalogueError, match="x.toml: not TOML"):
        load([path])


_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.lists(st.text(max_size=6), max_size=3),
)


@given(
    st.dictionaries(st.sampled_from(["vendor", "names", "model", "x"]), _VALUE, max_size=4),
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "match", "supply", "kind", "colour", "parts", "yield"]),
            _VALUE,
            max_size=5,
        ),
        max_size=3,
    ),
)
def test_any_document_loads_or_is_refused_with_named_problems(
    top: dict[str, object], models: list[dict[str, object]]
) -> None:
    """Whatever a dealer writes, the loader answers with models or CatalogueError, never a crash."""
    doc = {**top, "model": models} if models else top
    try:
        parse(doc, "dealer.toml")
    except CatalogueError as err:
        assert err.problems
        assert all(p.startswith("dealer.toml: ") for p in err.problems)


@given(st.text(max_size=60))
def test_a_part_number_is_a_short_token_with_a_digit(text: str) -> None:
    if is_part_number(text):
        assert 2 <= len(text) <= 40
        assert any(ch.isdigit() for ch in text)
        assert all(ch.isascii() and (ch.isalnum() or ch in "-/.") for ch in text)
        assert " " not in text


def test_shipped_files_have_no_unknown_keys() -> None:
    for path in catalogue.DIRECTORY.glob("*.toml"):
        parse(tomllib.loads(path.read_text()), str(path))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", "catalogue", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_check_valid_files_exit_0(tmp_path: Path) -> None:
    done = _cli(str(_write(tmp_path, "acme.toml", GOOD)))
    assert done.returncode == 0, done.stderr
    assert "1 models in 1 files: valid" in done.stdout
    shipped = _cli()
    assert shipped.returncode == 0, shipped.stderr


def test_cli_check_names_each_problem_and_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.toml", GOOD.replace("yield = 3000", "yeld = 3000"))
    done = _cli(str(_write(tmp_path, "acme.toml", GOOD)), str(bad))
    assert done.returncode == 2
    assert f"{bad}: model 'Acme P100' supply 1 part 1: yeld: unknown key" in done.stderr
