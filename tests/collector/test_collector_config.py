"""The collector's config: strict, defaults in one place, secrets redacted; and its CLI."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from collector.cli import main
from collector.config import CollectorConfig, driver_url, load_config, parse_config
from collector.replenish.settings import Rules
from collector.service import Collector, Settings
from collector.store.database import Database
from common.strictconfig import ConfigError
from wire.enroll import EnrollRequest, encode_message
from wire.signing import encode_public_key

EXAMPLE = Path(__file__).parents[2] / "config" / "collector.example.toml"


def test_defaults() -> None:
    config = parse_config("")
    assert config.server.port == 8443
    assert config.ingest.max_body_bytes == 1 << 20
    assert config.ingest.clock_skew_seconds == 300
    assert config.ingest.max_readings_per_batch == 500
    assert config.database_url() == "sqlite+aiosqlite:////var/lib/asr-collector/collector.db"
    assert Settings.from_config(config) == Settings()


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key; ingest\.skew: unknown key"):
        parse_config("[server]\nprot = 1\n[ingest]\nskew = 3\n", "c.toml")


def test_values_are_checked() -> None:
    with pytest.raises(ConfigError, match="ingest.clock_skew_seconds"):
        parse_config("[ingest]\nclock_skew_seconds = -1\n")
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        parse_config('[server]\ntls_cert = "/c.pem"\n')
    with pytest.raises(ConfigError, match="plain_http"):
        parse_config('[server]\nplain_http = true\ntls_cert = "/c"\ntls_key = "/k"\n')
    with pytest.raises(ConfigError, match="database.url"):
        parse_config('[database]\nurl = "mysql://db/asr"\n')


def test_database_url_is_a_secret() -> None:
    config = parse_config('[database]\nurl = "postgresql://asr:hunter2@db:5432/asr"\n')
    assert config.database_url() == "postgresql+asyncpg://asr:hunter2@db:5432/asr"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in json.dumps(config.redacted())


def test_database_url_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("postgres://asr:hunter2@db/asr\n")
    config = parse_config(f'[database]\nurl_file = "{secret}"\n')
    assert config.database_url() == "postgresql+asyncpg://asr:hunter2@db/asr"


def test_driver_names() -> None:
    assert driver_url("sqlite:////x.db") == "sqlite+aiosqlite:////x.db"
    assert driver_url("postgresql+asyncpg://h/d") == "postgresql+asyncpg://h/d"


def test_example_parses_and_shows_every_key() -> None:
    text = EXAMPLE.read_text()
    assert isinstance(load_config(EXAMPLE), CollectorConfig)
    shown = set(re.findall(r"^#? ?([a-z_]+) =", text, re.MULTILINE))
    for section, model in CollectorConfig.model_fields.items():
        assert f"[{section}]" in text
        if section == "replenishment":
            keys = set(Rules.names())  # every rule's number, by name
        else:
            keys = set(model.annotation.model_fields)  # type: ignore[union-attr]
        assert keys <= shown, f"[{section}] lacks {keys - shown}"
    assert load_config(EXAMPLE).rules() == Rules()  # the example shows the defaults


def test_replenishment_settings_are_checked_by_name() -> None:
    config = parse_config("[replenishment]\ntrigger_days = 14\nrate_window_days = 21\n")
    assert config.rules().trigger_days == 14
    assert config.rules().rate_window_days == 21
    with pytest.raises(ConfigError, match="replenishment.trigger_dayz: unknown setting"):
        parse_config("[replenishment]\ntrigger_dayz = 14\n")
    with pytest.raises(ConfigError, match="replenishment.supply_days: must be a number >= 0"):
        parse_config("[replenishment]\nsupply_days = -1\n")
    with pytest.raises(ConfigError, match="plan.at"):
        parse_config('[plan]\nat = "25:00"\n')


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "postgresql://asr:hunter2@db/asr"\n')
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["database"]["url"] == "**********"
    path.write_text("[database]\npasword = 1\n")
    assert main(["check-config", str(path)]) == 2
    assert "database.pasword: unknown key" in capsys.readouterr().err


def test_cli_token_then_revoke(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[collector]\nstate_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n')
    assert main(["migrate", "--config", str(path)]) == 0
    assert "revision" in capsys.readouterr().out
    customers = tmp_path / "customers.toml"
    customers.write_text(
        '[[customers]]\nid = "acme"\nkind = "self"\n'
        'sites = [{ name = "Milano 2", address = "Via Roma 2, Milano" }]\n'
    )
    assert main(["load-customers", "--config", str(path), str(customers)]) == 0
    capsys.readouterr()
    args = ["enroll-token", "--config", str(path), "--customer", "acme", "--site", "Milano 2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("asr1_") and "works once" in captured.err

    async def enroll() -> str:
        db = Database.open(db_url)
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            key = encode_public_key(Ed25519PrivateKey.generate().public_key())
            body = encode_message(EnrollRequest(token, key, "0.1.0", "edge"))
            return (await Collector(db, Settings()).enroll(body)).key_id
        finally:
            await db.close()

    key_id = asyncio.run(enroll())
    assert main(["revoke-key", "--config", str(path), key_id]) == 0
    assert capsys.readouterr().out.strip().endswith(": revoked")
    assert main(["revoke-key", "--config", str(path), "0" * 16]) == 3
    bad = ["enroll-token", "--config", str(path), "--customer", "Not A Slug", "--site", "x"]
    assert main(bad) == 3


def test_serve_with_postgresql_needs_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "postgresql://asr@127.0.0.1:1/asr"\n')
    assert main(["serve", "--config", str(path)]) == 2
    assert "tls_cert" in capsys.readouterr().err
