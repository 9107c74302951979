"""Colour and kind from descriptions in other languages and scripts (R11: which supply is the
black toner), with the vocabulary read from mibs/colours.toml and mibs/printer.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.decode import decode_supply
from agent.profile import Profile, ProfileError, load_colours


def _read(profile: Profile, description: str) -> tuple[str, str | None]:
    """Kind and colour of a supply row that has only a description (no type column)."""
    s = decode_supply(profile, None, 1, "1.1", {"description": description.encode()}, {})
    return s.kind, s.colour


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("黑色碳粉", "toner", "black"),
        ("青色碳粉", "toner", "cyan"),
        ("品红碳粉", "toner", "magenta"),
        ("黄色碳粉", "toner", "yellow"),
        ("废粉盒", "waste", None),
    ],
)
def test_r11_chinese(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("ブラックトナー", "toner", "black"),
        ("トナー 黒", "toner", "black"),
        ("ﾌﾞﾗｯｸﾄﾅｰ", "toner", "black"),  # half-width katakana, as older panels send it
        ("シアントナー", "toner", "cyan"),
        ("マゼンタトナー", "toner", "magenta"),
        ("イエロートナー", "toner", "yellow"),
        ("廃トナーボックス", "waste", None),
        ("フォトブラックインク", "ink", "photo-black"),
    ],
)
def test_r11_japanese(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("Tonerkartusche Schwarz", "toner", "black"),
        ("TONER SCHWARZ", "toner", "black"),
        ("Toner Gelb", "toner", "yellow"),
        ("Toner Zyan", "toner", "cyan"),
        ("Toner Magenta", "toner", "magenta"),
        ("Resttonerbehälter", "waste", None),
        ("Hellcyan Tinte", "ink", "light-cyan"),
    ],
)
def test_r11_german(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("Toner Nero", "toner", "black"),
        ("Cartuccia toner giallo", "toner", "yellow"),
        ("Toner Ciano", "toner", "cyan"),
        ("Toner Magenta", "toner", "magenta"),
        ("Vaschetta di recupero toner", "waste", None),
        ("Inchiostro ciano chiaro", "ink", "light-cyan"),
    ],
)
def test_r11_italian(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("Cartouche de toner noir", "toner", "black"),
        ("Toner Jaune", "toner", "yellow"),
        ("Toner Cyan", "toner", "cyan"),
        ("Bac de récupération du toner", "waste", None),
        ("Encre magenta clair", "ink", "light-magenta"),
    ],
)
def test_r11_french(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("Tóner negro", "toner", "black"),
        ("Cartucho de tóner amarillo", "toner", "yellow"),
        ("Tóner cian", "toner", "cyan"),
        ("Cartucho de tinta magenta", "ink", "magenta"),
        ("Depósito de tóner residual", "waste", None),
    ],
)
def test_r11_spanish(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "kind", "colour"),
    [
        ("Black Cartridge HP CF410A", "toner", "black"),
        ("Photo Black Ink", "ink", "photo-black"),
        ("Light Cyan Ink", "ink", "light-cyan"),
        ("Matte Black Ink", "ink", "matte-black"),
        ("Waste Toner Box", "waste", None),
        ("Toner (Magenta)", "toner", "magenta"),
    ],
)
def test_r11_english(profile: Profile, description: str, kind: str, colour: str | None) -> None:
    assert _read(profile, description) == (kind, colour)


@pytest.mark.parametrize(
    ("description", "colour"),
    [
        ("Magenta", "magenta"),  # not black, whatever it holds
        ("Generoso Toner", None),  # "nero" inside a word is no colour
        ("Toner Blackwell", None),  # nor "black" inside a name
        ("Cyanotype Kit", None),
        ("Giallorosso Toner", None),
        ("Toner 1 (Black)", "black"),  # punctuation and digits are word boundaries
        ("Toner-Schwarz", "black"),
    ],
)
def test_latin_words_match_whole_words_only(
    profile: Profile, description: str, colour: str | None
) -> None:
    assert _read(profile, description)[1] == colour


def test_colorant_value_in_another_language(profile: Profile) -> None:
    s = decode_supply(
        profile, None, 1, "1.2", {"colorantIndex": 2, "description": b"Toner"}, {"1.2": b"gelb"}
    )
    assert s.colour == "yellow"


def test_a_broken_colour_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "colours.toml"
    path.write_text('[[colours]]\ncolour = "black"\nword = ["black"]\n')
    with pytest.raises(ProfileError, match="colours.toml: unknown key.*word"):
        load_colours(path)
    path.write_text('[[colour]]\ncolour = "black"\nwords = ["black"]\n')
    with pytest.raises(ProfileError, match="unknown key.*colour"):
        load_colours(path)
    path.write_text('[[colours]]\nwords = ["black"]\n')
    with pytest.raises(ProfileError, match="needs 'colour'"):
        load_colours(path)
