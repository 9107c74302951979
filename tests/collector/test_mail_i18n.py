"""The emails in every language, byte for byte, and the catalogues that translate them.

Every message the templates use is in every catalogue, translated and not fuzzy; no email
shows a rule id ("R8"): customers and the helpdesk read what the rule does, in words.

The golden files under data/emails/ are the emails as rendered before the templates were made
one set with message catalogues; each kind is rendered for four readers (a contact with a
portal, an MPS contact with no portal, the helpdesk, and the helpdesk with the optional values
missing). To write them again after a deliberate change of wording:
`python -m tests.collector.test_mail_i18n`, then read the diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace as N
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir

from collector.notify import i18n
from collector.notify.compose import KINDS, LANGUAGES, TEMPLATES, Composer

GOLDEN = Path(__file__).parent / "data" / "emails"
AT = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)

_LINES = [
    N(serial="IT-7", supply="black", sku="CF400A", quantity=2, reason="trigger"),
    N(serial="IT-7", supply="Cyan", sku="CF401A", quantity=1, reason="consolidated"),
    N(serial="IT-7", supply="waste", sku=None, quantity=1, reason="waste-with-black"),
    N(serial="<X&1>", supply="magenta", sku="CF403A", quantity=1, reason="spike"),
    N(serial="<X&1>", supply="yellow", sku="CF402A", quantity=3, reason="extra"),
    N(serial="<X&1>", supply="photo", sku="PH-1", quantity=1, reason="other"),
]


def _shipment(full: bool) -> N:
    return N(
        id=7,
        reference="ASR-000007",
        placed_at=AT,
        address="Via Roma 1 & 3, Milano" if full else None,
        tracking="1Z999" if full else None,
        carrier="UPS" if full else None,
        expected=date(2026, 3, 20) if full else None,
        lines=_LINES if full else [],
    )


_DEVICES = [
    N(serial="IT-7", model="MFP <M428>", site="milano", address="Via Roma 1", last_seen=AT),
    N(serial="S-2", model=None, site="milano", address=None, last_seen=None),
    N(serial="S-3", model="LJ", site="", address="Corso Como 5", last_seen=None),
]

READERS: dict[str, dict[str, Any]] = {
    "contact": {
        "customer": N(id="rossi", name="Rossi & Figli", kind="self"),
        "contact": N(name="anna", email="anna@rossi.example", display_name="Anna Rossi"),
        "to_helpdesk": False,
        "portal_url": "https://asr.example/portal?a=1&b=2",
        "sent_for": 41,
        "devices": _DEVICES[:1],
        "shipment": _shipment(True),
    },
    "mps": {
        "customer": N(id="bianchi", name="Bianchi", kind="mps"),
        "contact": N(name="marco", email="marco@bianchi.example", display_name=None),
        "to_helpdesk": False,
        "portal_url": None,
        "sent_for": 42,
        "devices": _DEVICES,
        "shipment": _shipment(True),
    },
    "helpdesk": {
        "customer": N(id="rossi", name="Rossi & Figli", kind="mps"),
        "contact": N(name="anna", email="anna@rossi.example", display_name="Anna <Rossi>"),
        "to_helpdesk": True,
        "portal_url": "https://asr.example/",
        "sent_for": 43,
        "devices": _DEVICES[1:2],
        "shipment": _shipment(True),
    },
    "helpdesk-bare": {
        "customer": N(id="verdi", name=None, kind="self"),
        "contact": N(name="", email="", display_name=None),
        "to_helpdesk": True,
        "portal_url": None,
        "sent_for": 44,
        "devices": [],
        "shipment": _shipment(False),
    },
}


def cases() -> Iterator[tuple[str, str, str]]:
    """Every email the golden files hold: (language, kind, reader)."""
    for language in LANGUAGES:
        for kind in KINDS:
            for reader in READERS:
                yield language, kind, reader


def rendered(composer: Composer, language: str, kind: str, reader: str) -> tuple[str, str]:
    """The text (subject line, blank line, body) and the HTML of one email."""
    subject, text, html = composer.render(kind, language, READERS[reader])
    return f"Subject: {subject}\n\n{text}", html


def golden(language: str, kind: str, reader: str) -> tuple[Path, Path]:
    """The golden files of one email: text, HTML."""
    stem = GOLDEN / language / f"{kind}.{reader}"
    return stem.with_suffix(stem.suffix + ".txt"), stem.with_suffix(stem.suffix + ".html")


@pytest.mark.parametrize(("language", "kind", "reader"), list(cases()))
def test_the_emails_render_as_the_golden_files(language: str, kind: str, reader: str) -> None:
    text, html = rendered(Composer("asr@dealer.example"), language, kind, reader)
    text_file, html_file = golden(language, kind, reader)
    assert text == text_file.read_text(encoding="utf-8")
    assert html == html_file.read_text(encoding="utf-8")


def _used() -> set[str]:
    """The messages the templates and the i18n module mark for translation."""
    options = {"trim_blocks": "true", "lstrip_blocks": "true", "extensions": "jinja2.ext.i18n"}
    found = extract_from_dir(
        TEMPLATES.parent,
        method_map=[("templates/*.*", "jinja2"), ("i18n.py", "python")],
        options_map={"templates/*.*": options},
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_in_every_catalogue(language: str) -> None:
    catalogue = i18n.catalogue(language)
    messages = {m.id: m for m in catalogue if m.id}
    assert set(messages) == _used()  # none missing, none left over
    for message in messages.values():
        assert isinstance(message.string, str) and message.string.strip(), message.id
        assert not message.fuzzy, message.id
        placeholders = set(re.findall(r"%\((\w+)\)s", str(message.id)))
        assert set(re.findall(r"%\((\w+)\)s", message.string)) == placeholders, message.id


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_email_shows_a_rule_id(language: str) -> None:
    composer = Composer("asr@dealer.example")
    for kind in KINDS:
        for reader in READERS:
            for part in rendered(composer, language, kind, reader):
                assert not re.search(r"\bR\d{1,2}\b", part), (kind, reader)


def write_golden() -> None:
    """Render every case into the golden files."""
    composer = Composer("asr@dealer.example")
    for language, kind, reader in cases():
        text, html = rendered(composer, language, kind, reader)
        text_file, html_file = golden(language, kind, reader)
        text_file.parent.mkdir(parents=True, exist_ok=True)
        text_file.write_text(text, encoding="utf-8")
        html_file.write_text(html, encoding="utf-8")


if __name__ == "__main__":
    write_golden()
