"""The import contract (.importlinter, docs/architecture.md Layers): the code keeps it, and each
contract catches an upward import planted in a copy of the code."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "collector", "common", "demo", "mibs", "wire")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(
    cwd: Path, pythonpath: Path | None = None, contract: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run in `cwd` (which holds .importlinter), without its on-disk cache."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    only = [] if contract is None else ["--contract", contract]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *only],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_code_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages' Python files and the contract, copied where an import can be planted."""
    tree = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tree / package,
            ignore=lambda _, names: [n for n in names if n == "__pycache__"],
        )
    shutil.copy(ROOT / ".importlinter", tree / ".importlinter")
    return tree


# One upward import per contract (its id in .importlinter): where it goes, what it imports.
UPWARD = [
    ("store", "collector/store/people.py", "collector.portal.auth"),
    ("store", "collector/store/shipping.py", "collector.fulfil.outbound"),
    ("store", "collector/store/plans.py", "collector.daily_run"),
    ("core", "collector/replenish/planner.py", "collector.store.database"),
    ("core", "collector/replenish/daily.py", "collector.daily_run"),
    ("core", "collector/replenish/forecast.py", "collector.portal.queries"),
    ("wire", "wire/batch.py", "agent.spool"),
    ("wire", "wire/reading.py", "collector.records"),
    ("agent", "agent/decode.py", "collector.records"),
    ("agent-face", "collector/simulation/agent.py", "agent.decode"),
    ("agent-face", "collector/portal/api.py", "agent.api"),
    ("simulated", "collector/fulfil/outbound.py", "collector.fulfil.simulated"),
    ("simulated", "collector/fulfil/webhook.py", "collector.fulfil.simulated_app"),
    ("sql", "collector/portal/queries.py", "sqlalchemy"),
    ("sql", "collector/notify/compose.py", "sqlalchemy"),
    ("sql", "collector/simulation/runner.py", "alembic"),
    ("sql", "demo/summary.py", "sqlalchemy"),
]


@pytest.mark.parametrize(("contract", "module", "imported"), UPWARD)
def test_an_upward_import_breaks_the_contract(
    copy: Path, contract: str, module: str, imported: str
) -> None:
    path = copy / module
    original = path.read_text()
    path.write_text(original + f"\nimport {imported}  # planted by the test\n")
    try:
        result = lint_imports(copy, pythonpath=copy, contract=contract)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    source = module.removesuffix(".py").replace("/", ".")
    assert f"{source} -> {imported}" in result.stdout, result.stdout


def test_every_package_but_the_store_is_held_to_no_sql() -> None:
    """A new module of the collector (or package beside it) falls under the `sql` contract:
    it is listed there, or the contract would let it speak SQL unseen."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    listed = set(config["importlinter:contract:sql"]["source_modules"].split())
    found = {p for p in PACKAGES if p != "collector"} | {
        f"collector.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "collector").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists() and path.name != "store")
    }
    assert listed == found


# What sits below the store (docs/architecture.md, Layers): records and messages, the pure core.
BELOW_THE_STORE = {"catalogue", "errors", "fulfilment", "records", "replenish", "rules", "store"}


def _collector_modules() -> set[str]:
    return {
        path.stem if path.is_file() else path.name
        for path in (ROOT / "collector").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }


@pytest.mark.parametrize("contract", ["store", "core"])
def test_every_module_above_the_store_is_forbidden_to_it(contract: str) -> None:
    """A new module of the collector is placed: below the store (BELOW_THE_STORE), or
    forbidden to the store and to the pure core, so neither can come to import it unseen."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    forbidden = set(config[f"importlinter:contract:{contract}"]["forbidden_modules"].split())
    above = {f"collector.{m}" for m in _collector_modules() - BELOW_THE_STORE} | {"demo"}
    if contract == "core":
        above.add("collector.store")
    assert forbidden == above
