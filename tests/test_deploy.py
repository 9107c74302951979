"""The systemd units in deploy/: they verify, are hardened, and their exposure stays low.

`systemd-analyze verify` (Debian's `systemd`, installed by `make test` when missing) checks
each unit with the venv's own executables in place of /opt/asr/venv; any warning fails the
test. `systemd-analyze security --offline` scores the sandbox (0 safest, 10 most exposed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "deploy").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 20  # systemd's scale times ten: 2.0, "OK"
HARDENING = {
    "DynamicUser": "yes",
    "StateDirectory": None,
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "Restart": "on-failure",
}

if ANALYZE is None:
    if os.environ.get("CI"):
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd")
    pytest.skip("systemd-analyze is missing (apt-get install systemd)", allow_module_level=True)


def _keys(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, all values of a repeated key in order."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _installed(unit: Path, tmp_path: Path) -> Path:
    """The unit as installed with this checkout's venv in place of /opt/asr/venv; each
    program's path quoted, as the checkout's may hold a space (systemd splits on them)."""
    venv_bin = Path(sys.executable).parent
    text = re.sub(r"/opt/asr/venv/bin/(\S+)", lambda m: f'"{venv_bin}/{m[1]}"', unit.read_text())
    path = tmp_path / unit.name
    path.write_text(text)
    return path


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )


def test_there_is_a_unit_for_the_agent_and_one_for_the_collector() -> None:
    assert [unit.name for unit in UNITS] == ["asr-agent.service", "asr-collector.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_the_unit_verifies_without_a_warning(unit: Path, tmp_path: Path) -> None:
    done = _verify(_installed(unit, tmp_path))
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_the_unit_is_hardened_and_checks_its_config_first(unit: Path) -> None:
    keys = _keys(unit)
    for key, value in HARDENING.items():
        assert key in keys, f"{unit.name}: no {key}="
        if value is not None:
            assert keys[key] == [value], f"{unit.name}: {key}={keys[key]}"
    program = unit.stem.replace(".service", "")
    [pre] = keys["ExecStartPre"]
    assert pre.startswith(f"/opt/asr/venv/bin/{program} check-config ")
    [start] = keys["ExecStart"]
    config = pre.split()[-1]
    assert start.endswith(f"--config {config}")
    # Secrets come as systemd credentials, never in the unit or its environment.
    assert keys["LoadCredential"] and "Environment" not in keys


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_the_sandbox_exposure_stays_low(unit: Path, tmp_path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [
            ANALYZE,
            "security",
            "--offline=yes",
            f"--threshold={MAX_EXPOSURE}",
            str(_installed(unit, tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overall exposure level" in done.stdout


def test_a_mistyped_key_or_a_missing_program_fails_the_check(tmp_path: Path) -> None:
    unit = _installed(UNITS[0], tmp_path)
    typo = tmp_path / "typo.service"
    typo.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHom=yes"))
    done = _verify(typo)
    assert "Unknown key 'ProtectHom'" in done.stderr
    missing = tmp_path / "missing.service"
    missing.write_text(unit.read_text().replace(str(Path(sys.executable).parent), "/nowhere"))
    assert _verify(missing).returncode != 0
