"""The languages of the emails: a Babel message catalogue per language, and a jinja2
environment that speaks it.

Is: the catalogues `locale/<language>/LC_MESSAGES/messages.po`, read with Babel when a
language is first needed (no compiled .mo files: nothing to build, and the .po files are what
the package ships); English is the language the templates are written in, and its catalogue
gives every message back as it is. A message missing from a catalogue, or marked fuzzy, falls
back to the English words; the tests check that none is.
Is not: the words themselves (the templates and the catalogues) or the emails made with them
(collector.notify.compose).
"""

from __future__ import annotations

from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LOCALE = Path(__file__).parent / "locale"


def catalogue(language: str, locale: Path = LOCALE) -> Catalog:
    """The message catalogue of `language`, read from its .po file."""
    with (locale / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def translations(language: str, locale: Path = LOCALE) -> Translations:
    """The gettext translations of `language`: its catalogue, compiled in memory."""
    compiled = BytesIO()
    write_mo(compiled, catalogue(language, locale))  # fuzzy entries left out
    compiled.seek(0)
    return Translations(compiled)


def environment(language: str, templates: Path, locale: Path = LOCALE) -> Environment:
    """A jinja2 environment for the email templates that writes in `language`.

    Templates mark their words with `_()`, get the reader's `language` and format a date with
    the `day` filter, whose pattern is a message of the catalogue too.
    """
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    words = translations(language, locale)
    installer: Any = env  # the i18n extension adds the method, unknown to the type checker
    installer.install_gettext_translations(words, newstyle=True)
    # Translators: the strftime pattern of a date in the emails.
    pattern = words.gettext("%Y-%m-%d")

    def day(value: date) -> str:
        return value.strftime(pattern)

    env.filters["day"] = day
    env.globals["language"] = language
    return env
