"""R1 normalisation as pure functions: raw values in, meaning out (no SNMP, no clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.decode import decode_errors, decode_read, decode_supply, decode_text
from agent.profile import Profile, ProfileError, load_profile
from agent.reader import RawRead
from agent.snmp import ber
from agent.snmp.ber import parse_oid

HP_SERIAL = parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0")


def _row(**columns: ber.Value) -> dict[str, ber.Value]:
    return dict(columns)


def test_decode_text_forms() -> None:
    assert decode_text(b"Black Toner\x00\x00  ") == "Black Toner"
    assert decode_text("Tóner negro".encode()) == "Tóner negro"
    assert decode_text(b"Toner jaune \xe9") == "Toner jaune é"  # not UTF-8: Windows-1252
    assert decode_text(b"Cyan Cartridge H\n50 20 43 46 34 31 31 41") == "Cyan Cartridge HP CF411A"
    assert decode_text(b"4B 20 54 6F 6E 65 72") == "K Toner"
    assert decode_text(b"AB CD") == "AB CD"  # two pairs is a name, not hex
    assert decode_text(ber.NO_SUCH_OBJECT_VALUE) is None
    assert decode_text(42) is None


def _hp_form(text: str, width: int = 16, per_line: int | None = None) -> bytes:
    """`text` as HP sends a long description: its first characters, a newline, the rest as
    hex octets (`per_line` pairs to a line when given)."""
    head, rest = text[:width].encode(), text[width:].encode()
    pairs = [f"{b:02X}" for b in rest]
    step = per_line or len(pairs) or 1
    lines = [" ".join(pairs[i : i + step]) for i in range(0, len(pairs), step)]
    return head + b"\n" + "\n".join(lines).encode()


def test_hp_hex_tail_keeps_its_leading_space() -> None:
    # R1/R3: the octets 20 38 32 37 41 are " 827A", not "827A".
    assert decode_text(_hp_form("Yellow Cartridge 827A")) == "Yellow Cartridge 827A"
    assert decode_text(b"Yellow Cartridge\n20 38 32 37 41") == "Yellow Cartridge 827A"


def test_hp_hex_tail_over_several_lines() -> None:
    text = "Black Cartridge 410A HP CF410A"
    assert decode_text(_hp_form(text, per_line=4)) == text
    assert decode_text(_hp_form(text, per_line=1)) == text
    crlf = b"Black Cartridge \r\n34 31 30 41\r\n20 48 50\r\n20 43 46 34 31 30 41\r\n"
    assert decode_text(crlf) == "Black Cartridge 410A HP CF410A"
    # A UTF-8 character cut by the 16-octet head is joined whole again.
    japanese = "ブラックトナー カートリッジ"
    encoded = japanese.encode()
    cut = encoded[:16] + b"\n" + " ".join(f"{b:02x}" for b in encoded[16:]).encode()
    assert decode_text(cut) == japanese


@pytest.mark.parametrize(
    "raw",
    [
        b"Black Toner\nSecond line",  # words, not hex
        b"Black Toner\n41 4G",  # "4G" is no hex pair
        b"Black Toner\n414",  # an odd digit
        b"Black Toner\n00 01 02",  # octets that are no printable text
    ],
)
def test_a_tail_that_is_not_hex_text_stays_as_sent(raw: bytes) -> None:
    assert decode_text(raw) == raw.decode()


printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=17, max_size=80
).filter(lambda t: t.isprintable() and t == t.strip())


@given(printable, st.integers(min_value=1, max_value=20))
def test_any_printable_text_in_hp_form_decodes_back(text: str, per_line: int) -> None:
    assert decode_text(_hp_form(text, per_line=per_line)) == text


def test_error_bits_msb_first(profile: Profile) -> None:
    assert decode_errors(profile, b"\x00") == ()
    assert decode_errors(profile, b"") == ()
    assert decode_errors(profile, b"\x80") == ("lowPaper",)
    assert decode_errors(profile, b"\x30\x00") == ("lowToner", "noToner")
    assert decode_errors(profile, b"\x00\x01") == ("bit15",)
    assert decode_errors(profile, 5) == ()  # wrong type: no invented errors


def test_r1_thousandths_of_ounces_are_grams(profile: Profile) -> None:
    s = decode_supply(
        profile, None, 1, "1.1", _row(type=5, unit=12, maxCapacity=1000, level=250), {}
    )
    assert (s.kind, s.percent, s.grams_left, s.grams_used) == ("ink", 25.0, 7.087, 21.262)


def test_r1_percent_unit_needs_no_capacity(profile: Profile) -> None:
    s = decode_supply(profile, None, 1, "1.1", _row(type=3, unit=19, maxCapacity=-2, level=42), {})
    assert (s.percent, s.quality) == (42.0, "measured")


def test_r1_receptacle_by_type_when_class_is_absent(profile: Profile) -> None:
    s = decode_supply(profile, None, 1, "1.1", _row(type=8, maxCapacity=200, level=50), {})
    assert (s.kind, s.receptacle, s.percent) == ("waste", True, 75.0)


def test_r1_class_wins_over_type_and_description(profile: Profile) -> None:
    s = decode_supply(
        profile,
        None,
        1,
        "1.1",
        _row(**{"class": 3}, type=4, description=b"Waste", maxCapacity=100, level=30),
        {},
    )
    assert (s.receptacle, s.percent) == (False, 30.0)


def test_r1_special_values_never_become_numbers(profile: Profile) -> None:
    for level, quality in ((-1, "unknown"), (-2, "unknown"), (-3, "some-remaining")):
        s = decode_supply(profile, None, 1, "1.1", _row(type=3, maxCapacity=100, level=level), {})
        assert (s.percent, s.quality) == (None, quality)
    s = decode_supply(profile, None, 1, "1.1", _row(type=3, maxCapacity=-1, level=40), {})
    assert (s.percent, s.quality) == (None, "unknown")
    assert s.notes == ("max capacity other: no percentage without a capacity",)


def test_ricoh_near_end_is_a_state(profile: Profile) -> None:
    ricoh = profile.vendor_for(parse_oid("1.3.6.1.4.1.367.1.1"))
    assert ricoh is not None
    s = decode_supply(profile, ricoh, 1, "1.1", _row(type=3, maxCapacity=100, level=-100), {})
    assert (s.percent, s.quality) == (None, "some-remaining")
    other = decode_supply(profile, None, 1, "1.1", _row(type=3, maxCapacity=100, level=-100), {})
    assert other.quality == "unknown"  # -100 means nothing on other vendors


def test_colour_from_colorant_beats_description(profile: Profile) -> None:
    s = decode_supply(
        profile,
        None,
        1,
        "1.2",
        _row(colorantIndex=2, description=b"Toner Black?", type=3),
        {"1.2": b"cyan"},
    )
    assert s.colour == "cyan"
    assert (
        decode_supply(profile, None, 1, "1.3", _row(description=b"Toner giallo"), {}).colour
        == "yellow"
    )


def test_hp_serial_from_pml_without_its_type_octets(profile: Profile) -> None:
    raw = RawRead(scalars={"sysObjectID": parse_oid("1.3.6.1.4.1.11.2.3.9.1")})
    raw.vendor = profile.vendor_for(parse_oid("1.3.6.1.4.1.11.2.3.9.1"))
    raw.per_device = {"prtGeneralSerialNumber": b""}
    raw.vendor_values = {HP_SERIAL: b"\x01\x15VNCRC48198"}
    reading = decode_read(profile, raw)
    assert reading.serial == "VNCRC48198"
    assert reading.serial_source == "HP:1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0"


def test_a_vendor_file_adds_a_power_object_without_code(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text(
        'vendor = "Acme"\nenterprise = "1.3.6.1.4.1.99999"\n'
        '[power]\noid = "1.3.6.1.4.1.99999.5.1.0"\n[power.values]\n1 = "ready"\n3 = "standby"\n'
    )
    profile = load_profile(extra_vendor_dirs=(tmp_path,))
    acme = profile.vendor_for(parse_oid("1.3.6.1.4.1.99999.1.4500"))
    assert acme is not None and acme.power is not None
    raw = RawRead(
        scalars={},
        vendor=acme,
        per_device={"hrDeviceStatus": 2, "hrPrinterStatus": 3},  # says ready...
        vendor_values={acme.power.oid: 3},
    )  # ...the vendor knows it sleeps
    assert decode_read(profile, raw).status.power == "standby"


def test_a_broken_vendor_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('vendor = "Bad"\nenterprise = "1.3.x"\n')
    with pytest.raises(ProfileError, match="bad.toml"):
        load_profile(extra_vendor_dirs=(tmp_path,))
    (tmp_path / "bad.toml").write_text('vendor = "Bad"\nenterprise = "1.3.6"\ncolour = 1\n')
    with pytest.raises(ProfileError, match="unknown key.*colour"):
        load_profile(extra_vendor_dirs=(tmp_path,))


@pytest.mark.parametrize(
    ("row", "problem", "percent"),
    [
        (_row(type=3, maxCapacity=100, level=-7), "level -7 is negative and not a known", None),
        (_row(type=3, maxCapacity=-9, level=40), "max capacity -9 is negative and not a", None),
        (_row(type=3, unit=19, level=140), "level 140 is above 100 in a percent unit", None),
        (_row(type=3, maxCapacity=100, level=120), "level 120 is above the max capacity", None),
        (_row(type=3, maxCapacity=100, level=b"40"), "level: expected an INTEGER, got", None),
        # What does not touch the level leaves its percentage alone.
        (_row(type=99, maxCapacity=100, level=40), "type: value 99 is not in the MIB's", 40.0),
        (_row(type=3, description=7, maxCapacity=100, level=40), "description: expected", 40.0),
    ],
)
def test_values_that_break_the_mib_are_problems_never_numbers(
    profile: Profile, row: dict[str, ber.Value], problem: str, percent: float | None
) -> None:
    problems: list[str] = []
    s = decode_supply(profile, None, 1, "1.2", row, {}, problems)
    assert len(problems) == 1 and problems[0].startswith(f"supply 1.2: {problem}"), problems
    assert problems[0].removeprefix("supply 1.2: ") in s.notes
    assert s.percent == percent
    if percent is None:
        assert (s.quality, s.grams_left) == ("unknown", None)


@pytest.mark.parametrize("level", [-1, -2, -3, 0, 50, 100])
def test_special_values_and_plain_levels_are_no_problem(profile: Profile, level: int) -> None:
    problems: list[str] = []
    decode_supply(profile, None, 1, "1.1", _row(type=3, maxCapacity=100, level=level), {}, problems)
    decode_supply(profile, None, 1, "1.1", _row(type=3, maxCapacity=-2, level=level), {}, problems)
    assert problems == []


def test_a_serial_of_the_wrong_type_is_a_problem_and_no_serial(profile: Profile) -> None:
    raw = RawRead(per_device={"prtGeneralSerialNumber": 12345})
    problems: list[str] = []
    reading = decode_read(profile, raw, problems)
    assert reading.serial is None
    assert problems == ["prtGeneralSerialNumber: expected an OCTET STRING, got int 12345"]


@pytest.mark.parametrize(
    ("enterprise", "description", "part_number", "colour"),
    [
        ("1.3.6.1.4.1.11", b"Black Cartridge HP CF302A", "CF302A", "black"),
        ("1.3.6.1.4.1.11", b"Black Cartridge 410A HP CF410A", "CF410A", "black"),
        (
            "1.3.6.1.4.1.11",
            b"Black Cartridge\n20 34 31 30 41 20 48 50 20 43 46 34 31 30 41",
            "CF410A",
            "black",
        ),
        ("1.3.6.1.4.1.11", b"HP 827A Yellow", None, "yellow"),  # a family name, not a SKU
        ("1.3.6.1.4.1.11", b"Black Cartridge HP CF410ABC", None, "black"),  # not that shape
        ("1.3.6.1.4.1.11", b"Black Toner Cartridge", None, "black"),
        ("1.3.6.1.4.1.253", b"Waste Toner Container, PN 008R13061;SNunknown", "008R13061", None),
        ("1.3.6.1.4.1.253", b"Toner Cartridge Black P/N 106R03745", "106R03745", "black"),
        ("1.3.6.1.4.1.253", b"Fuser, PN unknown;SNunknown", None, None),
        ("1.3.6.1.4.1.99999", b"Black Cartridge HP CF410A", None, "black"),  # no vendor file
    ],
)
def test_r3_part_number_only_when_it_has_the_vendors_shape(
    profile: Profile,
    enterprise: str,
    description: bytes,
    part_number: str | None,
    colour: str | None,
) -> None:
    vendor = profile.vendor_for(parse_oid(enterprise + ".1"))
    s = decode_supply(profile, vendor, 1, "1.1", _row(description=description), {})
    assert (s.part_number, s.colour) == (part_number, colour)
    assert s.description == decode_text(description)  # the description stays the description


def test_a_broken_part_number_pattern_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'vendor = "Bad"\nenterprise = "1.3.6.1.4.1.99998"\n[part_numbers]\npatterns = ["(x"]\n'
    )
    with pytest.raises(ProfileError, match="bad.toml.*part_numbers"):
        load_profile(extra_vendor_dirs=(tmp_path,))
