"""The agent's HTTPS client (agent/push.py) against the collector's real app over TLS on
127.0.0.1: the server certificate is verified against the configured CA, an optional pin of
its SHA-256 is checked on top, and a refused peer is sent nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import CollectorSection
from agent.identity import load_or_make_key
from agent.push import Refused, TlsRefused, Unreachable, open_client
from collector.tls import fingerprint
from tests.agent.conftest import InProcess
from tests.agent.kit import free_port
from tests.collector.kit import Pki, make_pki
from wire.enroll import EnrollRequest
from wire.signing import encode_public_key


@pytest.fixture
def other_pki(tmp_path: Path) -> Pki:
    """Another CA, with a certificate for 127.0.0.1 of its own."""
    (tmp_path / "other").mkdir()
    return make_pki(tmp_path / "other")


def _request(tmp_path: Path, token: str) -> EnrollRequest:
    key, _ = load_or_make_key(tmp_path)
    return EnrollRequest(token, encode_public_key(key.public_key()), "0.1.0", "edge-1")


async def _enroll(settings: CollectorSection, request: EnrollRequest) -> str:
    async with open_client(settings) as client:
        return (await client.enroll(request)).agent_id


async def test_the_collector_is_verified_against_the_configured_ca(
    tmp_path: Path, pki: Pki, served: InProcess
) -> None:
    settings = CollectorSection(url=served.url, ca_file=pki.ca_cert)
    assert await _enroll(settings, _request(tmp_path, await served.token()))


async def test_a_certificate_of_another_ca_is_refused(
    tmp_path: Path, served: InProcess, other_pki: Pki
) -> None:
    settings = CollectorSection(url=served.url, ca_file=other_pki.ca_cert)
    with pytest.raises(TlsRefused, match="not trusted"):
        await _enroll(settings, _request(tmp_path, await served.token()))


async def test_the_pinned_certificate_is_accepted(
    tmp_path: Path, pki: Pki, served: InProcess
) -> None:
    pin = fingerprint(pki.server_cert)
    settings = CollectorSection(url=served.url, ca_file=pki.ca_cert, pin_sha256=pin)
    assert await _enroll(settings, _request(tmp_path, await served.token()))


async def test_a_pin_mismatch_refuses_and_sends_nothing(
    tmp_path: Path, pki: Pki, served: InProcess
) -> None:
    wrong = "AB:" * 31 + "AB"
    settings = CollectorSection(url=served.url, ca_file=pki.ca_cert, pin_sha256=wrong)
    request = _request(tmp_path, await served.token())
    with pytest.raises(TlsRefused, match="pinned"):
        await _enroll(settings, request)
    # The one-time token is still unused: the request never reached the collector.
    trusted = CollectorSection(url=served.url, ca_file=pki.ca_cert)
    assert await _enroll(trusted, request)


async def test_a_pin_does_not_replace_the_ca_check(
    tmp_path: Path, pki: Pki, served: InProcess, other_pki: Pki
) -> None:
    pin = fingerprint(pki.server_cert)  # the right certificate, but we trust another CA
    settings = CollectorSection(url=served.url, ca_file=other_pki.ca_cert, pin_sha256=pin)
    with pytest.raises(TlsRefused, match="not trusted"):
        await _enroll(settings, _request(tmp_path, await served.token()))


async def test_a_refusal_carries_the_collectors_reason(
    tmp_path: Path, pki: Pki, served: InProcess
) -> None:
    settings = CollectorSection(url=served.url, ca_file=pki.ca_cert)
    with pytest.raises(Refused) as refused:
        await _enroll(settings, _request(tmp_path, "asr1_not-a-token"))
    assert (refused.value.answer.status, refused.value.answer.reason) == (401, "token-unknown")
    assert not refused.value.transient


async def test_no_collector_listening_is_unreachable(tmp_path: Path, pki: Pki) -> None:
    settings = CollectorSection(url=f"https://127.0.0.1:{free_port()}", ca_file=pki.ca_cert)
    with pytest.raises(Unreachable) as unreachable:
        await _enroll(settings, _request(tmp_path, "asr1_x"))
    assert unreachable.value.transient
