"""The package's metadata: an SPDX licence with its text, and an edge-box install (the base
dependencies) that runs the agent without the collector's database, web and mail stack."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EDGE_PACKAGES = ("agent", "wire", "common", "mibs", "sim")

# Run in a fresh interpreter: every module of the edge packages imported, with the modules
# of the collector-only distributions made unimportable.
IMPORT_ALL = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on the edge box")
        return None
sys.meta_path.insert(0, Block())
for top in sys.argv[2].split(","):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
import agent.cli
agent.cli.main(["--version"])
"""


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=;~! ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _collector_only_modules() -> set[str]:
    base = {_name(r) for r in PROJECT["dependencies"]}
    extra = {_name(r) for r in PROJECT["optional-dependencies"]["collector"]}
    assert extra and not extra & base
    modules = {
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in extra for d in dists)
    }
    return modules - {"__pycache__"}


def test_license_is_an_spdx_expression_with_its_text() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License\n" in (ROOT / "LICENSE").read_text()


def test_the_collector_stack_is_an_extra_the_makefile_installs() -> None:
    base = {_name(r) for r in PROJECT["dependencies"]}
    for collector_only in ("sqlalchemy", "asyncpg", "alembic", "jinja2", "argon2-cffi"):
        assert collector_only not in base
        assert collector_only in {_name(r) for r in PROJECT["optional-dependencies"]["collector"]}
    assert '".[collector,test,demo]"' in (ROOT / "Makefile").read_text()


def test_the_agent_imports_without_the_collector_stack() -> None:
    blocked = _collector_only_modules()
    assert {"sqlalchemy", "asyncpg", "alembic", "jinja2", "argon2", "aiohttp_jinja2"} <= blocked
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, ",".join(sorted(blocked)), ",".join(EDGE_PACKAGES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("asr-agent ")
