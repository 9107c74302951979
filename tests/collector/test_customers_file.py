"""The customers file and the people commands, run as the operator runs them (R4, R18)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from collector.store.database import Database
from collector.store.people import token_principal
from collector.store.schema import contacts, customers, sites, users
from tests.collector.test_shipping import NOW

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo" / "customers.toml"


def _run(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args[:1], "--config", str(config), *args[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f'[collector]\nstate_dir = "{tmp_path}"\n')
    return path


def _read(tmp_path: Path, query: object) -> list[object]:
    async def read() -> list[object]:
        db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}")
        try:
            return await db.read(lambda c: list(c.execute(query)))
        finally:
            await db.close()

    return asyncio.run(read())


def test_r18_loading_the_demo_customers_twice_updates_and_keeps(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for _ in range(2):
        done = _run(config, "load-customers", str(DEMO))
        assert done.returncode == 0, done.stderr
        assert "3 customers loaded" in done.stdout
    assert len(_read(tmp_path, select(customers))) == 3
    assert len(_read(tmp_path, select(sites))) == 4
    rows = _read(tmp_path, select(contacts.c.name, contacts.c.language))
    assert ("luca", "it") in rows and len(rows) == 5
    changed = tmp_path / "changed.toml"
    changed.write_text(DEMO.read_text().replace("Via Roma 1", "Via Verdi 9"))
    assert _run(config, "load-customers", str(changed)).returncode == 0
    addresses = [a for (a,) in _read(tmp_path, select(sites.c.address))]
    assert any(a.startswith("Via Verdi 9") for a in addresses)


def test_a_wrong_customers_file_names_the_key_and_loads_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        DEMO.read_text()
        .replace('kind = "mps"', 'kind = "managed"')
        .replace('email = "sam.taylor@harbour.example"', 'email = "sam at harbour"')
    )
    done = _run(config, "load-customers", str(bad))
    assert done.returncode == 2
    assert "customers.1.kind" in done.stderr and "customers.2.contacts.0.email" in done.stderr
    assert not (tmp_path / "collector.db").exists()


def test_users_and_api_tokens_from_the_command_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _run(config, "load-customers", str(DEMO)).returncode == 0
    added = _run(
        config, "add-user", "--username", "anna", "--role", "customer", "--customer", "rossi",
        stdin="correct horse battery\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    short = _run(config, "add-user", "--username", "x", "--role", "helpdesk", stdin="short\n")
    assert short.returncode == 3 and "at least" in short.stderr
    orphan = _run(config, "add-user", "--username", "y", "--role", "customer", stdin="a" * 12)
    assert orphan.returncode == 3 and "customer" in orphan.stderr
    [(name, hashed)] = _read(tmp_path, select(users.c.username, users.c.password_hash))
    assert name == "anna" and hashed.startswith("$argon2id$")
    made = _run(config, "create-api-token", "--username", "anna", "--name", "erp")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("asrp_")

    async def who() -> object:
        db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}")
        try:
            return await token_principal(db, token, NOW)
        finally:
            await db.close()

    principal = asyncio.run(who())
    assert principal is not None and getattr(principal, "customer_id", None) == "rossi"
    nobody = _run(config, "create-api-token", "--username", "nobody", "--name", "x")
    assert nobody.returncode == 3 and "nobody" in nobody.stderr
