"""What every benchmark prints about the code it measured (the bench scripts import it)."""

from __future__ import annotations

import subprocess


def code_version() -> str:
    """The commit measured, and how many tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    return f"code: git {head}" + (f" with {len(changed)} modified files" if changed else "")
