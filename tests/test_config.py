"""Strict agent configuration: unknown keys named, secrets never printed, files for secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from common.strictconfig import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "agent.example.toml"


def _example_with_secret_files(tmp_path: Path) -> Path:
    (tmp_path / "auth").write_text("auth-secret-123\n")
    (tmp_path / "priv").write_text("priv-secret-456\n")
    text = (
        EXAMPLE.read_text()
        .replace("/run/credentials/asr-agent.service/snmp-auth-key", str(tmp_path / "auth"))
        .replace("/run/credentials/asr-agent.service/snmp-priv-key", str(tmp_path / "priv"))
    )
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_secrets_come_from_files(tmp_path: Path) -> None:
    config = load_config(_example_with_secret_files(tmp_path))
    specs = {s.name: s for s in config.printer_specs()}
    assert specs["reception-mfp"].credentials.community == "public"
    secure = specs["finance-colour"].credentials
    assert (secure.auth_key, secure.priv_key, secure.security_level) == (
        "auth-secret-123",
        "priv-secret-456",
        "authPriv",
    )
    assert specs["finance-colour"].target.port == 161
    assert "auth-secret-123" not in repr(config) and "auth-secret-123" not in repr(secure)


def test_check_config_command_prints_no_secret(tmp_path: Path) -> None:
    path = _example_with_secret_files(tmp_path)
    text = path.read_text().replace('community = "public"', 'community = "c0mmunity-s3cret"')
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 printer(s)" in done.stdout and "authPriv" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr
    assert "auth-secret" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[snmp]\ntimeot = 2\n", "snmp.timeot: unknown key"),
        ("[agent]\nstate_dir = 3\n", "agent.state_dir"),
        ("[snmp]\nretries = -1\n", "snmp.retries"),
        ("[[printers]]\nname = 'a'\nhost = 'printer.example'\n", "printers.0.host"),
        ("[[printers]]\nname = 'a'\nhost = '127.0.0.1'\nport = 70000\n", "printers.0.port"),
        (
            "[[printers]]\nname = 'a'\nhost = '127.0.0.1'\ncredentials = 'nope'\n",
            "no [credentials.nope] section",
        ),
        (
            "[[printers]]\nname='a'\nhost='127.0.0.1'\n[[printers]]\nname='a'\nhost='127.0.0.2'\n",
            "'a' is used twice",
        ),
        ("[credentials.v3]\nversion = '3'\nauth_protocol = 'SHA256'\n", "SNMPv3 needs a user"),
        (
            "[credentials.v3]\nversion = '3'\nuser = 'u'\nauth_protocol = 'SHA1'\n",
            "credentials.v3.auth_protocol",
        ),
        (
            "[credentials.v3]\nversion='3'\nuser='u'\nauth_protocol='SHA'\nauth_key='short'\n",
            "at least 8 characters",
        ),
        (
            "[credentials.v3]\nversion='3'\nuser='u'\npriv_protocol='AES'\npriv_key='12345678'\n",
            "privacy needs authentication",
        ),
        (
            "[credentials.x]\ncommunity_file = '/nonexistent/community'\n",
            "community_file: cannot read",
        ),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_config_names_what_is_wrong(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match="my.toml") as err:
        parse_config(toml, "my.toml")
    assert message in str(err.value)


def test_check_config_exit_status_on_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[snmp]\nbackoff = 0.5\nfoo = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "snmp.backoff" in done.stderr and "snmp.foo: unknown key" in done.stderr
