"""The portal API fuzzed against its own openapi.yaml with schemathesis (issue 13).

The real app over real TLS on 127.0.0.1, on SQLite and PostgreSQL, with the seeded world of
test_portal_api; requests generated for every operation, sent with a helpdesk's and with a
customer's API token. No answer may be a 5xx, and each must be one the description lists,
with the content type and body it documents. Deterministic (derandomize) and bounded:
EXAMPLES per operation and caller, no shrinking.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from collector import portal as portal_package
from collector.store import people
from tests.collector.test_portal_api import Portal, portal  # noqa: F401  (the fixture)

SPEC = Path(portal_package.__file__).parent / "openapi.yaml"
EXAMPLES = 20  # per operation and caller
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Invalid input (a NUL, an id past 2**63 - 1, a wrong type) must be refused, never a 5xx. The
# 4xx it gets need not be the one the description lists for it (an id past 2**63 - 1 in the
# path is a 404, not a 400), so only this check applies.
NEGATIVE_CHECKS = [not_a_server_error]
# Not a name the generator will hit: DELETE /tokens/{name} must not revoke the caller's own.
TOKEN_NAME = "schemathesis-caller-token-7f3a9c"


def _fuzz(base: str, ca_file: Path, token: str, calls: Counter[str]) -> list[str]:
    """Every operation, EXAMPLES generated requests each of valid input (checked against the
    description) and of invalid input (which must be refused with a 4xx, never a 5xx); the
    failures, one line each."""
    schema = schemathesis.openapi.from_path(SPEC)
    failures: list[str] = []
    with requests.Session() as http:
        send = _sender(base, http, token, ca_file, calls)
        for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
            operation = result.ok()
            run = _examples(operation.as_strategy(mode))(send)
            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            except Exception as err:  # a check's failure, reported with the others below
                failures.append(f"{operation.label} ({mode.value}): {str(err)[:2000]}")
    return failures


def _examples(strategy: Any) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """Hypothesis's @given for one operation's cases: bounded, deterministic, not shrunk."""
    limits = settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    return lambda test: limits(given(case=strategy)(test))


def _sender(
    base: str, http: requests.Session, token: str, ca_file: Path, calls: Counter[str]
) -> Callable[[schemathesis.Case], None]:
    """The test each case goes through: sent over TLS with the token, then checked."""
    auth = {"Authorization": f"Bearer {token}"}

    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, session=http, headers=auth, verify=str(ca_file))
        calls[case.operation.label] += 1
        positive = case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE
        case.validate_response(response, checks=CHECKS if positive else NEGATIVE_CHECKS)

    return send


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
    portal: Portal,  # noqa: F811
) -> None:
    calls: Counter[str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    for username in ("hd", "sam"):
        user = await people.authenticate(portal.db, username, "portal password 1", portal.clock())
        assert user is not None and user.user_id is not None
        token = await people.create_api_token(portal.db, user.user_id, TOKEN_NAME, portal.clock())
        failures += await asyncio.to_thread(_fuzz, portal.base, portal.pki.ca_cert, token, calls)
    seconds = time.monotonic() - started
    print(f"schemathesis: {len(calls)} operations, {sum(calls.values())} requests, {seconds:.1f} s")
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 17, sorted(calls)  # every operation of openapi.yaml was called
