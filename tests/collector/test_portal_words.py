"""Customers read words, not rule ids: R1..R19 are for the helpdesk and the docs (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.portal import changes

RULE_ID = re.compile(r"\bR\d{1,2}\b")
TEMPLATES = Path(changes.__file__).parent / "templates"


@pytest.mark.parametrize(
    "text", [changes.HELPDESK_DOES_IT, changes.CUSTOMER_DOES_IT, changes.EXTRA_VIA_HELPDESK]
)
def test_refusals_customers_read_name_no_rule(text: str) -> None:
    assert not RULE_ID.search(text)


def test_templates_show_rule_ids_through_the_macro_only() -> None:
    """A rule id in a template's text goes through `m.rule` (shown to the helpdesk only), or
    sits in a part only the helpdesk sees (listed here), or in a comment."""
    helpdesk_only = {
        "Record an extra order (helpdesk, R14)",  # device.html: the form is the helpdesk's
        "R6: ordered by hand",  # fleet.html: the badge's title for the helpdesk
    }
    for path in sorted(TEMPLATES.glob("*.html")):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
        text = re.sub(r"m\.rule\(principal, \"[^\"]*\"\)", "", text)
        for line in text.splitlines():
            if RULE_ID.search(line) and not any(part in line for part in helpdesk_only):
                pytest.fail(f"{path.name}: a rule id customers would read: {line.strip()}")
